"""Vetting speed: 100k short records through the non-embedding filters (goal: under 60 s in all).

Run (from the repository root; needs the demo data, `make data`):

    OMP_NUM_THREADS=1 .venv/bin/python bench/vet_speed.py                  # 100k records, 1k eval records
    .venv/bin/python bench/vet_speed.py --records 20000 --eval-records 500  # a quicker look

The records are the bundled intent-recognition utterances (693, 7 intents) recombined with seeded word
substitutions (words taken from utterances of the same intent), with planted exact copies, near-copies (a word
added), personal data (emails, phone numbers), junk (empty, repeated characters, mojibake, other languages) and
near-copies of eval records. They go through `tunesmith.vet.runner.vet_records` with the rule filters on
(quality, pii with the regex engine, dedup exact + near, contamination against the eval set) and the embedding
filters (outliers, label_noise, poison) off. Printed: seconds per filter (the runner's own clock), the total,
and what each filter removed or changed against what was planted. The LAST line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers sit next to this script

from _common import intent_rows  # noqa: E402

GOAL_SECONDS = 60.0
RULE_FILTERS = ("quality", "pii", "dedup", "contamination")
# per 1,000 generated training records: how many of each planted kind
PLANTED_PER_MILLE = {"exact_copy": 20, "near_copy": 20, "pii": 20, "junk": 5, "eval_copy": 5}
JUNK = (
    "",
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "Iâ€™d like to book a cafÃ© table for two, itâ€™s for tonight",
    "Ajoute cette chanson à ma liste de lecture du matin, s'il te plaît.",
    "Wie wird das Wetter morgen in Berlin und in München sein, weißt du das?",
)


def utterance_generator(rows: list[tuple[str, str]], rng: random.Random) -> Any:
    """Endless (text, label): a real utterance with 1-3 words swapped for words of the same intent."""
    vocabulary: dict[str, list[str]] = defaultdict(list)
    for text, label in rows:
        vocabulary[label].extend(text.split())
    while True:
        text, label = rng.choice(rows)
        words = text.split()
        for _ in range(rng.randint(1, 3)):
            words[rng.randrange(len(words))] = rng.choice(vocabulary[label])
        yield " ".join(words), label


def make_data(total: int, eval_total: int, seed: int) -> tuple[list[Any], list[Any], dict[str, int]]:
    """(training records, eval records, planted counts by kind)."""
    from tunesmith.core.records import LabelRecord, Origin

    rows, _ = intent_rows()
    rng = random.Random(seed)
    fresh = utterance_generator(rows, rng)
    evaluation = []
    for line in range(1, eval_total + 1):
        text, label = next(fresh)
        evaluation.append(LabelRecord(text, label, Origin("eval.jsonl", line)))
    planted = {kind: 0 for kind in PLANTED_PER_MILLE}
    kinds, weights = list(PLANTED_PER_MILLE), list(PLANTED_PER_MILLE.values())
    train: list[Any] = []
    while len(train) < total:
        kind = rng.choices([*kinds, "fresh"], weights=[*weights, 1000 - sum(weights)])[0]
        if kind in ("exact_copy", "near_copy") and not train:
            kind = "fresh"
        text, label = next(fresh)
        if kind == "exact_copy":
            source = rng.choice(train)
            text, label = rng.choice([source.text, source.text.lower(), f"  {source.text} "]), source.label
        elif kind == "near_copy":
            source = rng.choice(train)
            text, label = f"{source.text} {rng.choice(['please', 'now', 'today', 'thanks'])}", source.label
        elif kind == "pii":
            contact = rng.choice(
                [f"write to sam.{rng.randint(1, 999)}@example.com", f"call 415-555-{rng.randint(1000, 9999)}"]
            )
            text = f"{text} and {contact}"
        elif kind == "junk":
            text = rng.choice(JUNK)
        elif kind == "eval_copy":
            source = rng.choice(evaluation)
            text, label = f"{source.text} please", source.label
        if kind != "fresh":
            planted[kind] += 1
        train.append(LabelRecord(text, label, Origin("train.jsonl", len(train) + 1)))
    return train, evaluation, planted


def vet_config() -> Any:
    from tunesmith.config.vet_schema import VetConfig

    config = VetConfig()
    config.pii.engine = "regex"
    config.dedup.near, config.dedup.semantic = True, False
    for name in ("outliers", "label_noise", "poison"):
        getattr(config, name).enabled = False
    return config


def print_table(report: dict[str, Any], total_s: float, planted: dict[str, int]) -> None:
    print(f"{'filter':<15}{'seconds':>9}{'removed':>9}{'modified':>10}  note")
    for name in RULE_FILTERS:
        figures = report["filters"][name]
        counts = f"{figures['seconds']:>9.2f}{figures['removed']:>9}{figures['modified']:>10}"
        print(f"{name:<15}{counts}  {figures.get('note', '')}")
    print(f"{'total':<15}{total_s:>9.2f}{report['removed']:>9}{report['modified']:>10}  goal < {GOAL_SECONDS:.0f} s")
    print("planted: " + ", ".join(f"{kind} {n}" for kind, n in planted.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="training records generated")
    parser.add_argument("--eval-records", type=int, default=1_000, help="eval records for the contamination check")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from tunesmith.vet.runner import vet_records

    start = time.perf_counter()
    train, evaluation, planted = make_data(args.records, args.eval_records, args.seed)
    generate_s = time.perf_counter() - start
    print(f"generated {len(train):,} training and {len(evaluation):,} eval records in {generate_s:.1f} s")
    start = time.perf_counter()
    result = vet_records(train, vet_config(), seed=args.seed, eval_records=evaluation)
    total_s = time.perf_counter() - start
    print_table(result.report, total_s, planted)
    filters = result.report["filters"]
    figures: dict[str, Any] = {
        "records": len(train),
        "eval_records": len(evaluation),
        "seconds_total": round(total_s, 3),
        **{f"seconds_{name}": filters[name]["seconds"] for name in RULE_FILTERS},
        "records_per_s": round(len(train) / total_s, 1),
        "goal_seconds": GOAL_SECONDS,
        "meets_goal": total_s < GOAL_SECONDS,
        **{f"removed_{name}": filters[name]["removed"] for name in RULE_FILTERS},
        "modified_pii": filters["pii"]["modified"],
        **{f"planted_{kind}": n for kind, n in planted.items()},
        "seed": args.seed,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
