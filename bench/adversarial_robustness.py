"""Does embedding-space adversarial training make the tuned model more robust to perturbed inputs?

    OMP_NUM_THREADS=1 .venv/bin/python bench/adversarial_robustness.py                 # tiny model, synthetic task
    OMP_NUM_THREADS=1 .venv/bin/python bench/adversarial_robustness.py --model bundled  # the demo (slow on CPU)
    .venv/bin/python bench/adversarial_robustness.py --adv adversarial.method=freelb --adv adversarial.steps=3

Two fine-tuning runs of tunesmith's own recipe (`recipes.finetune`), identical except `train.strategy`: `plain`
and `adversarial` (the `adversarial:` defaults unless `--adv` overrides them): the same seed, split, batches and
optimizer steps. Vetting and the evaluation extras that do not bear on the question (base-model comparison,
counterfactuals, generalisation samples, bootstrap, review table, HTML) are off for both.

- `--model bundled`: configs/demo.yaml (SmolLM2-135M-Instruct, LoRA r=16, the bundled intent-recognition data,
  `make data`). About 1 + 3 x the demo's training time; `--max-records` / `--max-steps` shorten it.
- `--model tiny` (default): the test suite's tiny random Llama (2 layers, hidden 64, its own 512-token BPE), fully
  fine-tuned (LoRA on random frozen weights barely learns; full tuning also trains the embedding the perturbation
  is added to), on a synthetic intent task written here: 6 intents, each sentence built from
  an intent's template and slot words shared across intents, so the label rests on a few keywords, which is
  what typos and deletions attack. Minutes on a loaded CPU; it says whether the mechanism transfers, not how
  much it helps a real model.

Measured on the tuned model of each run, by the evaluation suite's robustness check (`evaluate/robustness.py`, the
`eval.robustness` perturbations: typos, deletion, swap, synonyms, case, whitespace at `eval.robustness_rate`):
clean accuracy on the test split, accuracy under each perturbation on a seeded sample of `--robustness-samples`
test records, and the robustness score (mean over perturbations of perturbed / clean accuracy, capped at 1).
Also the price of the ascent steps: the training time of the two runs (wall-clock, so only meaningful on a quiet
machine) and the cost of one training step, timed interleaved on the same model and batch.

These are text-level perturbations; the training perturbs embeddings. Whether one transfers to the other is the
question, not an assumption: read the differences against the sample size (64 records: one record is 1.6 points).
A rerun with the same `--out` reuses the runs that finished. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "configs" / "demo.yaml"
MODELS = {
    "tiny": ("tiny random Llama (tests)", "synthetic 6-intent task", "full fine-tuning"),
    "bundled": ("bundled:smollm2-135m-instruct", "bundled:intent-recognition", "LoRA r=16"),
}


SLOTS = {
    "place": ["paris", "london", "the city", "new york", "my town", "rome", "berlin", "the beach"],
    "when": ["tonight", "tomorrow", "this weekend", "on friday", "next week", "at noon", "today", "this evening"],
    "thing": ["jazz", "rock", "classical", "quiet", "happy", "old", "new", "loud"],
    "n": ["two", "four", "three", "five", "six", "one"],
    "title": ["the hobbit", "dune", "the road", "emma", "the little prince", "ulysses", "the stranger"],
}
INTENTS = {
    "get_weather": ["what is the weather like in {place} {when}", "will it rain in {place} {when}",
                    "tell me the forecast for {place} {when}", "how cold will it be in {place} {when}"],
    "play_music": ["play some {thing} music {when}", "put on a {thing} song for me",
                   "i want to hear {thing} music in {place}", "start playing {title} by the {thing} band"],
    "book_restaurant": ["book a table for {n} in {place} {when}", "reserve a restaurant for {n} people {when}",
                        "find me a table at a {thing} restaurant {when}", "get a dinner reservation for {n} {when}"],
    "rate_book": ["rate the book {title} {n} out of five", "give {title} {n} stars",
                  "i would rate this novel {title} {n} points", "my rating for the book {title} is {n}"],
    "add_to_playlist": ["add {title} to my {thing} playlist", "put this track on my playlist {when}",
                        "add the song {title} to the {thing} list", "save {title} in my playlist for {place}"],
    "search_screening_event": ["find the movie schedule in {place} {when}", "when is {title} showing in {place}",
                               "which cinema plays {title} {when}", "show me film times near {place} {when}"],
}


def synthetic_intents(path: Path, per_intent: int = 80, seed: int = 0) -> Path:
    """`{"text", "label"}` JSONL: each intent's templates filled with slot words that every intent shares."""
    import random

    rng = random.Random(seed)
    rows = []
    for label, templates in INTENTS.items():
        for _ in range(per_intent):
            text = rng.choice(templates).format(**{k: rng.choice(v) for k, v in SLOTS.items()})
            rows.append({"text": text, "label": label})
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_overrides(out: Path) -> list[str]:
    """The tiny model and the synthetic task (both written under `out`)."""
    from tunesmith.testing.tiny import save_tiny_model

    model_dir = out / "tiny-model"
    if not (model_dir / "config.json").is_file():
        save_tiny_model(model_dir)
    data = synthetic_intents(out / "intents.jsonl")
    return [
        f"model.source={model_dir}", "model.device=cpu", "model.precision=fp32", f"data.train_file={data}",
        "data.test_fraction=0.3", "data.val_fraction=0.05", "encode.max_seq_length=64", "encode.label_prompt='{text}'",
        "adapter.method=full", "train.learning_rate=3e-3", "train.batch_size=8", "train.epochs=3",
        "train.warmup_steps=5", "eval.max_new_tokens=12",
    ]


def common_overrides(args: argparse.Namespace, out: Path) -> list[str]:
    """The settings both runs share (everything but the strategy)."""
    overrides = tiny_overrides(out) if args.model == "tiny" else []
    overrides += [
        f"run.output_dir={out}",
        "vet.enabled=false",
        "eval.compare_base=false",
        "eval.counterfactual=false",
        "eval.generalisation_samples=0",
        "eval.review_samples=0",
        "eval.bootstrap_samples=0",
        "eval.report_html=false",
        f"eval.robustness_samples={args.robustness_samples}",
        "train.save_every_steps=1000",
    ]
    if args.max_records:
        overrides.append(f"data.max_records={args.max_records}")
    if args.max_steps:
        overrides.append(f"train.max_steps={args.max_steps}")
    return overrides


def run_one(strategy: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from tunesmith.config.loader import load_config
    from tunesmith.recipes.finetune import finetune

    extra = args.adv if strategy == "adversarial" else []
    base = DEMO_CONFIG if args.model == "bundled" else None
    cfg = load_config(base, [*common_overrides(args, out), f"run.run_id={strategy}", f"train.strategy={strategy}",
                             *extra])
    run_dir = out / strategy
    started = time.perf_counter()
    if not (run_dir / "eval_report.json").is_file():  # a rerun with the same --out reuses finished runs
        run_dir = finetune(cfg).run_dir
    seconds = time.perf_counter() - started
    report = json.loads((run_dir / "eval_report.json").read_text())
    robustness = report.get("robustness") or {}
    train_report = json.loads((run_dir / "train_report.json").read_text())
    return {
        "strategy": strategy,
        "accuracy": report["metrics"]["accuracy"]["tuned"],
        "n_test": report["n"],
        "robustness_clean": robustness.get("clean"),
        "robustness_score": robustness.get("score"),
        "robustness_n": robustness.get("n"),
        "perturbations": {name: r.get("score") for name, r in robustness.get("perturbations", {}).items()},
        "train_seconds": train_report.get("elapsed_s"),
        "steps": train_report.get("steps"),
        "val_loss": train_report.get("val_loss"),
        "total_seconds": seconds,
        "adversarial": cfg.adversarial.__dict__ if strategy == "adversarial" else None,
    }


def step_cost_ratio(args: argparse.Namespace, out: Path, repeats: int = 5) -> float:
    """Median time of one forward+backward under the adversarial strategy over the plain one, measured interleaved
    on the same model and batch (8 x 64 random tokens), so a shared machine's load drift cancels out."""
    import statistics

    import torch

    from tunesmith.config.loader import load_config
    from tunesmith.models.adapters import apply_adapter
    from tunesmith.models.load import load_model_and_tokenizer
    from tunesmith.train.strategy import make_strategy

    base = DEMO_CONFIG if args.model == "bundled" else None
    cfg = load_config(base, [*common_overrides(args, out), *args.adv])
    model = apply_adapter(load_model_and_tokenizer(cfg.model)[0], cfg.adapter).train()
    ids = torch.randint(3, model.config.vocab_size, (8, 64), generator=torch.Generator().manual_seed(0))
    batch = {"input_ids": ids, "labels": ids.clone(), "position_ids": torch.arange(64).repeat(8, 1)}
    strategies = {name: make_strategy(name, cfg) for name in ("plain", "adversarial")}
    times: dict[str, list[float]] = {name: [] for name in strategies}
    for _ in range(repeats + 1):  # the first round warms up and is dropped
        for name, strategy in strategies.items():
            started = time.perf_counter()
            loss, n = strategy.compute_loss(model, batch)
            (loss / n).backward()
            model.zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - started)
    return statistics.median(times["adversarial"][1:]) / statistics.median(times["plain"][1:])


def mean_perturbed(result: dict[str, Any]) -> float | None:
    """Mean accuracy over the perturbed copies: unlike the robustness score it cannot be 1.0 for a model that
    predicts one label for everything."""
    values = [v for v in result["perturbations"].values() if v is not None]
    return sum(values) / len(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def print_table(plain: dict[str, Any], adv: dict[str, Any]) -> None:
    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    rows = [("test accuracy", "accuracy"), ("robustness clean acc.", "robustness_clean"),
            ("mean perturbed acc.", "mean_perturbed"), ("robustness score", "robustness_score"),
            ("val loss", "val_loss"), ("train seconds", "train_seconds")]
    rows += [(f"  {name}", ("perturbations", name)) for name in plain["perturbations"]]
    print(f"{'':26s} {'plain':>10s} {'adversarial':>12s} {'adv / plain':>12s}")
    for label, key in rows:
        a, b = (r["perturbations"].get(key[1]) if isinstance(key, tuple) else r.get(key) for r in (plain, adv))
        print(f"{label:26s} {fmt(a):>10s} {fmt(b):>12s} {fmt(ratio(b, a)):>12s}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "bundled"], default="tiny",
                        help="tiny: the test model on a synthetic intent task; bundled: the demo")
    parser.add_argument("--max-records", type=int, default=None, help="use the first N records (default: all 693)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap the optimizer steps (default: one epoch)")
    parser.add_argument("--robustness-samples", type=int, default=64)
    parser.add_argument("--adv", action="append", default=[], help="an adversarial override, e.g. adversarial.steps=3")
    parser.add_argument("--out", type=Path, default=None, help="run folders go here (default: a temporary folder)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="adv-bench-"))
    results = {strategy: run_one(strategy, args, out) for strategy in ("plain", "adversarial")}
    plain, adv = results["plain"], results["adversarial"]
    for result in (plain, adv):
        result["mean_perturbed"] = mean_perturbed(result)
    cost = step_cost_ratio(args, out)
    print()
    what = MODELS[args.model]
    print(f"{what[0]}, {what[2]}, {what[1]}; {plain['steps']} steps each; robustness on "
          f"{plain['robustness_n']} test records x {len(plain['perturbations'])} perturbations; runs in {out}")
    print_table(plain, adv)
    print(f"cost of one training step, adversarial / plain (interleaved, same batch): {cost:.2f}x")
    summary = {
        "model": MODELS[args.model][0],
        "data": MODELS[args.model][1],
        "steps": plain["steps"],
        "robustness_n": plain["robustness_n"],
        "adversarial_settings": adv["adversarial"],
        "plain_accuracy": plain["accuracy"],
        "adversarial_accuracy": adv["accuracy"],
        "accuracy_ratio": ratio(adv["accuracy"], plain["accuracy"]),
        "plain_robustness_score": plain["robustness_score"],
        "adversarial_robustness_score": adv["robustness_score"],
        "robustness_score_ratio": ratio(adv["robustness_score"], plain["robustness_score"]),
        "plain_mean_perturbed_accuracy": plain["mean_perturbed"],
        "adversarial_mean_perturbed_accuracy": adv["mean_perturbed"],
        "mean_perturbed_accuracy_ratio": ratio(adv["mean_perturbed"], plain["mean_perturbed"]),
        "plain_perturbed": plain["perturbations"],
        "adversarial_perturbed": adv["perturbations"],
        "train_time_ratio": ratio(adv["train_seconds"], plain["train_seconds"]),
        "step_cost_ratio": cost,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
