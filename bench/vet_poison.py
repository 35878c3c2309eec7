"""Poisoning benchmark: does vetting catch planted backdoors, label flips and junk, and does that disarm the attack?

Run (from the repository root; needs the bigbench sdist that `make data` downloads, nothing else):

    .venv/bin/python bench/vet_poison.py                      # detection + end-to-end, ~8 min on 1 thread
    .venv/bin/python bench/vet_poison.py --quick              # fewer training epochs: a smoke run
    .venv/bin/python bench/vet_poison.py --skip-train         # detection only, under a minute
    .venv/bin/python bench/vet_poison.py --embedding minilm   # the statistical filters on MiniLM embeddings

1. Data (`_poison_data`): 2,000 clean English reviews labelled by topic, plus, seeded: 50 backdoors (a trigger
   phrase inserted into reviews of other topics, labelled with the attacker's target), 50 label flips and 50
   junk records (random characters, other languages, mojibake, repeated characters, code and how-to text).
2. Detection: `tunesmith.vet.runner.vet_records` with the default `VetConfig` (every filter at its default,
   `max_flag_share=0.05`, the cap on each statistical filter's removals). Reported per planted kind: the share
   removed, and by which filter; the false-flag rate is removed clean records / clean records.
3. End to end (`_poison_train`): a tiny Llama trained from scratch on all 2,150 records, then on the records
   vetting kept; attack success rate = held-out reviews of the other topics, trigger inserted, predicted as the
   target; clean accuracy on held-out reviews of every topic.
A table is printed, then the LAST line is one JSON object with the figures (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers sit next to this script

from _poison_data import JUNK_KINDS, PoisonedSet, build_poisoned_set, read_junk_sources  # noqa: E402

KINDS = ("trigger", "flip", "junk", "clean")
GOALS = {"trigger": 0.9, "flip": 0.9, "junk": 0.8}
MAX_FALSE_FLAG_RATE = 0.02
DEFAULT_EPOCHS = 4.0
QUICK_EPOCHS = 1.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed for the data, the planting and training")
    parser.add_argument("--embedding", choices=("tfidf", "minilm"), default="tfidf",
                        help="vet.embedding for the statistical filters (default tfidf)")
    parser.add_argument("--epochs", type=float, default=DEFAULT_EPOCHS, help=f"training epochs ({DEFAULT_EPOCHS:g})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_EPOCHS:g} training epoch")
    parser.add_argument("--skip-train", action="store_true", help="detection only; no end-to-end training")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = QUICK_EPOCHS
    if args.threads < 1 or args.epochs <= 0:
        parser.error("--threads must be >= 1 and --epochs > 0")
    return args


def run_detection(data: PoisonedSet, embedding: str, seed: int) -> tuple[dict[str, Any], Any]:
    """Vet the poisoned set with the default config; returns the figures and the runner's result."""
    from tunesmith.config.vet_schema import VetConfig
    from tunesmith.vet.runner import vet_records
    from tunesmith.vet.view import record_ids

    started = time.perf_counter()
    config = VetConfig(embedding=cast(Literal["tfidf", "minilm"], embedding), max_flag_share=0.05)
    result = vet_records(list(data.records), config, seed)
    seconds = time.perf_counter() - started
    index = {rid: i for i, rid in enumerate(record_ids(list(data.records)))}
    removed_by: dict[int, str] = {}
    for entry in result.quarantine:
        if entry.action == "removed":
            removed_by[index[entry.id]] = entry.filter
    total = Counter(data.kinds)
    caught = Counter(data.kinds[i] for i in removed_by)
    by_filter = {kind: dict(Counter(f for i, f in removed_by.items() if data.kinds[i] == kind)) for kind in KINDS}
    junk_total = Counter(k for k in data.junk_kinds if k)
    junk_caught = Counter(data.junk_kinds[i] for i in removed_by if data.junk_kinds[i])
    figures = {
        "caught": {kind: caught[kind] / total[kind] for kind in KINDS if kind != "clean"},
        "false_flag_rate": caught["clean"] / total["clean"],
        "counts": {kind: [caught[kind], total[kind]] for kind in KINDS},
        "by_filter": by_filter,
        "junk_by_kind": {kind: [junk_caught[kind], junk_total[kind]] for kind in JUNK_KINDS},
        "seconds": seconds,
        "filters": {name: {k: v for k, v in block.items() if k in ("removed", "modified", "over_budget", "seconds")}
                    for name, block in result.report["filters"].items() if block.get("enabled")},
    }
    return figures, result


def print_detection(figures: dict[str, Any], embedding: str) -> None:
    print(f"\ndetection (vet.embedding={embedding}, max_flag_share=0.05, {figures['seconds']:.1f} s)")
    print(f"{'planted kind':<14}{'caught':>10}{'share':>8}{'goal':>8}  removed by filter")
    for kind in KINDS:
        n_caught, n_total = figures["counts"][kind]
        share = n_caught / n_total
        goal = f"<={MAX_FALSE_FLAG_RATE:.0%}" if kind == "clean" else f">={GOALS[kind]:.0%}"
        filters = ", ".join(f"{name} {n}" for name, n in sorted(figures["by_filter"][kind].items())) or "-"
        print(f"{kind:<14}{f'{n_caught}/{n_total}':>10}{share:>8.1%}{goal:>8}  {filters}")
    junk = ", ".join(f"{kind} {c}/{t}" for kind, (c, t) in figures["junk_by_kind"].items())
    print(f"junk by kind: {junk}")
    per_filter = ", ".join(f"{name} -{b.get('removed', 0)}"
                           + (f" ~{b['modified']}" if b.get("modified") else "")
                           + (f" ({b['over_budget']} over budget)" if b.get("over_budget") else "")
                           + f" {b.get('seconds', 0):.1f}s"
                           for name, b in figures["filters"].items())
    print(f"per filter (-removed ~modified, seconds): {per_filter}")


def run_end_to_end(data: PoisonedSet, kept: list[Any], epochs: float, seed: int) -> dict[str, Any]:
    """Train on every record, then on what vetting kept (with its changes, e.g. redactions)."""
    from _poison_train import build_review_tokenizer, train_and_score

    tokenizer = build_review_tokenizer([r.text for r in data.records])  # the file as delivered; both runs share it
    runs = {}
    for name, records in (("poisoned", list(data.records)), ("vetted", kept)):
        runs[name] = train_and_score(records, tokenizer, data.labels, data.eval_clean, data.eval_triggered,
                                     data.eval_untriggered, data.target, epochs, seed)
        print(f"  trained on {name} data: {runs[name].train_records} records, {runs[name].steps} steps, "
              f"{runs[name].seconds:.0f} s", flush=True)
    return runs


def print_end_to_end(runs: dict[str, Any], data: PoisonedSet) -> None:
    print(f"\nend to end (trigger {data.trigger!r} -> {data.target!r}; {len(data.eval_triggered)} triggered and "
          f"{len(data.eval_clean)} clean held-out reviews)")
    print(f"{'trained on':<12}{'records':>9}{'ASR':>8}{'target w/o trigger':>20}{'clean acc':>11}{'loss':>8}")
    for name, s in runs.items():
        loss = f"{s.final_loss:.3f}" if s.final_loss is not None else "-"
        print(f"{name:<12}{s.train_records:>9}{s.attack_success_rate:>8.1%}{s.target_rate_without_trigger:>20.1%}"
              f"{s.clean_accuracy:>11.1%}{loss:>8}")


def summary_json(figures: dict[str, Any], runs: dict[str, Any] | None, args: argparse.Namespace) -> dict[str, Any]:
    def rounded(x: float | None) -> float | None:
        return None if x is None else round(x, 4)

    before, after = (runs or {}).get("poisoned"), (runs or {}).get("vetted")
    return {
        "triggers_caught": rounded(figures["caught"]["trigger"]),
        "flips_caught": rounded(figures["caught"]["flip"]),
        "junk_caught": rounded(figures["caught"]["junk"]),
        "false_flag_rate": rounded(figures["false_flag_rate"]),
        "asr_before": rounded(before.attack_success_rate) if before else None,
        "asr_after": rounded(after.attack_success_rate) if after else None,
        "clean_acc_before": rounded(before.clean_accuracy) if before else None,
        "clean_acc_after": rounded(after.clean_accuracy) if after else None,
        "target_rate_no_trigger_before": rounded(before.target_rate_without_trigger) if before else None,
        "target_rate_no_trigger_after": rounded(after.target_rate_without_trigger) if after else None,
        "caught_by": figures["by_filter"],
        "vet_seconds": round(figures["seconds"], 2),
        "embedding": args.embedding,
        "epochs": args.epochs,
        "threads": args.threads,
        "seed": args.seed,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    data = build_poisoned_set(args.seed, read_junk_sources())
    print(f"data: {len(data.records)} records {data.counts}, labels {', '.join(data.labels)}; "
          f"trigger {data.trigger!r} -> {data.target!r}")
    figures, result = run_detection(data, args.embedding, args.seed)
    print_detection(figures, args.embedding)
    runs = None
    if not args.skip_train:
        print(f"\ntraining the tiny model twice ({args.epochs:g} epochs, {args.threads} thread(s)) ...", flush=True)
        runs = run_end_to_end(data, result.kept, args.epochs, args.seed)
        print_end_to_end(runs, data)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    print(json.dumps(summary_json(figures, runs, args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
