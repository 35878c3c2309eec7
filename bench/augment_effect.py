"""Does augmentation help in low-data regimes? Fine-tune with and without each augmenter family, same budget.

    .venv/bin/python bench/augment_effect.py                  # full: 2 regimes x 3 families x 3 seeds (hours, CPU)
    .venv/bin/python bench/augment_effect.py --quick          # smoke run: 32 records, 1 seed, 8 steps, 40 test
    .venv/bin/python bench/augment_effect.py --learner tfidf  # minutes: TF-IDF + logistic regression, no LM
    .venv/bin/python bench/augment_effect.py --families none eda paraphrase --regimes 32

Data: the bundled intent-recognition utterances (BIG-bench, 693 records, 7 intents; `make data`). A fixed
stratified 30% is the held-out test set for every run; each (regime n, seed) draws n training records from the
rest, balanced across intents. Conditions, per regime and seed:

- `none`: the n originals only;
- a family (`eda`: synonym + insert + delete + swap; `char_noise`; `back_translation`; `paraphrase`;
  `synthetic`): the n originals plus augmented records up to `--multiplier` x n (quality gate on, held-out
  records given to it so nothing near a test record is kept).

Same budget: every condition of a regime trains for the same number of optimizer steps on batches of the same
size (`--steps-32`, `--steps-128`), so the originals-only run sees its records more often, not fewer examples.
The learner (`--learner lora`, default) is tunesmith's own fine-tuning recipe: the bundled SmolLM2-135M-Instruct,
LoRA r=16, no packing, evaluated on the test set by generated-answer accuracy and label log-likelihood accuracy
(`--metric`). `--learner tfidf` swaps in a TF-IDF + logistic-regression classifier: a fast sanity check, not
the issue's measurement.

Back-translation needs translation models, which no package ships: pass `--bt-forward DIR --bt-backward DIR`
(MarianMT folders, e.g. opus-mt-en-de and opus-mt-de-en); without them the family is skipped. Paraphrase and
synthetic prompt the bundled model (slow on CPU).

Each finished run is appended to `<out>/results.jsonl`; a rerun skips the runs already there (`--fresh` starts
over). Prints a table of mean +- std over seeds and the difference to `none`, then one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import intent_rows  # noqa: E402

FAMILIES = {
    "none": (),
    "eda": ("synonym", "insert", "delete", "swap"),
    "char_noise": ("char_noise",),
    "back_translation": ("back_translation",),
    "paraphrase": ("paraphrase",),
    "synthetic": ("synthetic",),
}
TEST_SEED = 12345
TEST_FRACTION = 0.3


def load_data() -> tuple[list[Any], list[Any]]:
    """(training pool, fixed test set) as LabelRecords."""
    from tunesmith.core.records import LabelRecord, Origin
    from tunesmith.data.split import split_records

    rows, source = intent_rows()
    records = [LabelRecord(t, lab, Origin(source, i + 1)) for i, (t, lab) in enumerate(rows)]
    splits = split_records(records, 0.0, TEST_FRACTION, seed=TEST_SEED, stratify=True)
    return splits.train, splits.test


def sample_balanced(pool: list[Any], n: int, seed: int) -> list[Any]:
    """n records, intents taken round-robin from per-intent seeded shuffles (balanced within one record)."""
    by_label: dict[str, list[Any]] = defaultdict(list)
    for record in pool:
        by_label[record.label].append(record)
    rng = random.Random(seed)
    queues = []
    for label in sorted(by_label):
        members = list(by_label[label])
        rng.shuffle(members)
        queues.append(members)
    chosen: list[Any] = []
    while len(chosen) < n:
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop())
    return chosen


def augment_config(family: str, multiplier: float, args: argparse.Namespace) -> Any:
    from tunesmith.config.augment_schema import AUGMENTER_BLOCKS, AugmentConfig

    cfg = AugmentConfig(enabled=True, multiplier=multiplier)
    for name in AUGMENTER_BLOCKS:
        setattr(cfg, name, dataclasses.replace(getattr(cfg, name), enabled=name in FAMILIES[family]))
    if family == "back_translation":
        cfg.back_translation.forward_model = args.bt_forward
        cfg.back_translation.backward_model = args.bt_backward
    return cfg


def augmented_training_set(
    train: list[Any], test: list[Any], family: str, seed: int, args: argparse.Namespace
) -> tuple[list[Any], dict[str, Any]]:
    if family == "none":
        return list(train), {}
    from tunesmith.augment.runner import augment_records
    from tunesmith.config.schema import ModelConfig

    result = augment_records(
        train, augment_config(family, args.multiplier, args), seed, heldout=test, model_config=ModelConfig(device="cpu")
    )
    report = {k: result.report[k] for k in ("planned", "added", "dropped", "seconds")}
    return list(train) + list(result.records), report


def score_tfidf(train: list[Any], test: list[Any], seed: int) -> dict[str, float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform([r.text for r in train])
    model = LogisticRegression(C=10.0, solver="newton-cg", max_iter=200, random_state=seed)
    model.fit(features, [r.label for r in train])
    predicted = model.predict(vectorizer.transform([r.text for r in test]))
    return {"accuracy": float(sum(p == r.label for p, r in zip(predicted, test, strict=True)) / len(test))}


def score_lora(
    train: list[Any], test: list[Any], seed: int, run_id: str, steps: int, args: argparse.Namespace
) -> dict[str, float]:
    from tunesmith.config import load_config
    from tunesmith.data.rows import write_records_jsonl
    from tunesmith.recipes.finetune import finetune

    folder = Path(args.out) / "data" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    write_records_jsonl(folder / "train.jsonl", train)
    write_records_jsonl(folder / "test.jsonl", test)
    overrides = [
        f"--data.train_file={folder / 'train.jsonl'}",
        f"--data.eval_file={folder / 'test.jsonl'}",
        "--data.val_fraction=0",
        "--vet.enabled=false",
        "--augment.enabled=false",
        f"--run.seed={seed}",
        f"--run.output_dir={Path(args.out) / 'runs'}",
        f"--run.run_id={run_id}",
        f"--train.max_steps={steps}",
        f"--train.batch_size={args.batch_size}",
        f"--train.save_every_steps={steps}",
        "--encode.packing=false",
        "--eval.compare_base=false",
        f"--model.num_threads={args.threads}",
    ]
    result = finetune(load_config(None, overrides + skip_extra_evaluations()))
    metrics = (result.eval_report or {}).get("metrics", {})
    return {
        name: float(values["tuned"])
        for name, values in metrics.items()
        if name in ("accuracy", "loglik_accuracy", "macro_f1")
    }


def skip_extra_evaluations() -> list[str]:
    """Overrides that turn off the evaluation's extra analyses (robustness, counterfactuals, generalisation gap,
    HTML report) where this version has them: only the test-set metrics are compared here."""
    from dataclasses import fields

    from tunesmith.config.schema import EvalConfig

    wanted = {
        "generalisation_samples": "0",
        "robustness": "[]",
        "counterfactual": "false",
        "report_html": "false",
        "review_samples": "0",
    }
    present = {f.name for f in fields(EvalConfig)}
    return [f"--eval.{name}={value}" for name, value in wanted.items() if name in present]


def done_runs(path: Path) -> dict[tuple[int, str, int], dict[str, Any]]:
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["regime"], r["family"], r["seed"]): r for r in rows}


def summarise(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[str, dict[str, float]]]:
    """regime -> family -> {mean, std, n, delta} of `metric` over seeds."""
    grouped: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if metric in row["metrics"]:
            grouped[row["regime"]][row["family"]].append(row["metrics"][metric])
    table: dict[str, dict[str, dict[str, float]]] = {}
    for regime, families in sorted(grouped.items()):
        base = statistics.mean(families["none"]) if families.get("none") else None
        table[str(regime)] = {}
        for family, values in families.items():
            mean = statistics.mean(values)
            table[str(regime)][family] = {
                "mean": mean,
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values),
                "delta_vs_none": mean - base if base is not None else float("nan"),
            }
    return table


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--families", nargs="+", default=["none", "eda", "char_noise"], choices=list(FAMILIES))
    parser.add_argument("--multiplier", type=float, default=4.0, help="augmented training size / original size")
    parser.add_argument("--learner", choices=["lora", "tfidf"], default="lora")
    parser.add_argument("--metric", default="loglik_accuracy", help="metric in the table (lora also has accuracy)")
    parser.add_argument("--steps-32", type=int, default=48, help="optimizer steps for every run with 32 records")
    parser.add_argument("--steps-128", type=int, default=96, help="optimizer steps for every run with 128 records")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--test-size", type=int, default=None, help="use only the first N test records")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bt-forward", help="MarianMT folder translating English into the pivot language")
    parser.add_argument("--bt-backward", help="MarianMT folder translating back into English")
    parser.add_argument("--out", default="runs/augment-effect")
    parser.add_argument("--fresh", action="store_true", help="ignore results.jsonl from an earlier invocation")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 records, seed 0, 8 steps, 40 test")
    args = parser.parse_args(argv)
    if args.quick:
        args.regimes, args.seeds, args.steps_32, args.test_size = [32], [0], 8, 40
    if args.learner == "tfidf" and args.metric == "loglik_accuracy":
        args.metric = "accuracy"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / f"results-{args.learner}.jsonl"
    if args.fresh:
        results_path.unlink(missing_ok=True)
    finished = done_runs(results_path)
    pool, test = load_data()
    test = test[: args.test_size] if args.test_size else test
    families = [f for f in args.families if f != "back_translation" or args.bt_forward]
    skipped = sorted(set(args.families) - set(families))
    for regime in args.regimes:
        steps = args.steps_32 if regime <= 32 else args.steps_128
        for seed in args.seeds:
            train = sample_balanced(pool, regime, seed)
            for family in families:
                if (regime, family, seed) in finished:
                    continue
                start = time.perf_counter()
                records, aug_report = augmented_training_set(train, test, family, seed, args)
                run_id = f"{args.learner}-n{regime}-{family}-s{seed}-x{args.multiplier:g}-steps{steps}"
                if args.learner == "tfidf":
                    metrics = score_tfidf(records, test, seed)
                else:
                    metrics = score_lora(records, test, seed, run_id, steps, args)
                row = {
                    "regime": regime,
                    "family": family,
                    "seed": seed,
                    "train_records": len(records),
                    "steps": steps,
                    "metrics": metrics,
                    "augment": aug_report,
                    "seconds": round(time.perf_counter() - start, 1),
                }
                with results_path.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                finished[(regime, family, seed)] = row
                print(f"n={regime} {family:<16} seed {seed}: {metrics} ({row['seconds']}s)", flush=True)
    rows = [
        r
        for r in finished.values()
        if r["regime"] in args.regimes and r["family"] in families and r["seed"] in args.seeds
    ]
    table = summarise(rows, args.metric)
    print(
        f"\nheld-out {args.metric} (mean +- std over seeds {args.seeds}), {len(test)} test records, "
        f"learner {args.learner}"
    )
    print(f"{'records':>8} {'family':<16} {'mean':>8} {'std':>8} {'vs none':>8}")
    for regime, by_family in table.items():
        for family, figures in by_family.items():
            mean, std, delta = figures["mean"], figures["std"], figures["delta_vs_none"]
            print(f"{regime:>8} {family:<16} {mean:>8.3f} {std:>8.3f} {delta:>+8.3f}")
    if skipped:
        print(f"skipped (no translation models given): {', '.join(skipped)}")
    print(
        json.dumps(
            {
                "learner": args.learner,
                "metric": args.metric,
                "multiplier": args.multiplier,
                "test_records": len(test),
                "seeds": args.seeds,
                "table": table,
                "skipped": skipped,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
