"""Does TPE with median pruning find a better config than random search without pruning, in the same wall-clock?

    .venv/bin/python bench/search_efficiency.py                    # 3 seeds x 2 arms x 150 s each (~16 min)
    .venv/bin/python bench/search_efficiency.py --quick            # smoke run: 1 seed, 30 s an arm
    .venv/bin/python bench/search_efficiency.py --budget-s 300 --seeds 5

Both arms run `tunesmith.hpo.search` (the Optuna backend, trials one after another in this process) on the
tiny random Llama built in code (`tunesmith.testing.tiny`, no download) and synthetic intent data (4 intents,
`--records` records, 10% validation), over the same space: the default search space (learning rate, LoRA r /
alpha / dropout, epochs, batch size, warm-up) with the learning-rate range widened to [1e-5, 1e-1], because a
tiny random model needs larger rates than a pretrained one. Each arm gets `--budget-s` seconds
(`search.timeout_minutes`; a trial running at the deadline finishes, so both arms overrun by up to one trial).

- `tpe_prune`: `sampler: tpe` (5 random start-up trials), `pruner: median` (after 2 complete trials, validation
  every 3 steps).
- `random`: `sampler: random`, `pruner: none`.

The arms of one seed run back to back in one process, in alternating order (seed 0: TPE first, seed 1: random
first, ...), after one untimed warm-up trial, so imports and a loaded machine hit both arms alike. Reported per
arm: the best validation loss reached (lower is better), trials completed and pruned. Wall-clock figures depend
on the machine's load; on a shared CPU the number of trials per arm varies from run to run.

Prints a table, then one JSON line: {"budget_s", "seeds", "tpe_prune_best_val_loss", "random_best_val_loss" (means
over seeds), "tpe_minus_random" (negative: TPE better), "tpe_wins" (seeds where TPE's best is lower), per-arm
trial counts, and the per-seed values}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

INTENTS = {
    "weather": ["what is the weather in {w}", "will it rain in {w} tomorrow", "forecast for {w} please"],
    "music": ["play some {w} music", "put on a {w} playlist", "i want to hear {w} songs"],
    "alarm": ["wake me up at {w}", "set an alarm for {w}", "alarm at {w} please"],
    "food": ["order {w} for dinner", "find a {w} restaurant nearby", "i am hungry for {w}"],
}
WORDS = {
    "weather": ["paris", "rome", "oslo", "lima", "cairo", "tokyo", "berlin", "quito", "delhi", "seoul"],
    "music": ["jazz", "rock", "folk", "punk", "soul", "metal", "blues", "disco", "funk", "opera"],
    "alarm": ["six", "seven", "eight", "nine", "ten", "noon", "five", "four", "three", "two"],
    "food": ["pizza", "sushi", "tacos", "curry", "ramen", "pasta", "salad", "soup", "bread", "rice"],
}
SPACE = (
    "{train.learning_rate: {type: loguniform, low: 1.0e-5, high: 1.0e-1}, adapter.r: {choices: [4, 8, 16, 32]},"
    " adapter.alpha: {choices: [8, 16, 32, 64]}, adapter.dropout: {type: uniform, low: 0.0, high: 0.2},"
    " train.epochs: {type: int, low: 1, high: 4}, train.batch_size: {choices: [4, 8, 16]},"
    " train.warmup_steps: {type: int, low: 0, high: 20, step: 5}}"
)
ARMS = {
    "tpe_prune": ["--search.sampler=tpe", "--search.startup_trials=5", "--search.pruner=median",
                  "--search.pruner_startup_trials=2"],
    "random": ["--search.sampler=random", "--search.pruner=none"],
}


def write_data(path: Path, records: int) -> Path:
    rng = random.Random(0)
    rows = [{"text": t.format(w=w), "label": label} for label, templates in INTENTS.items()
            for t in templates for w in WORDS[label]]
    rng.shuffle(rows)
    rows = (rows * (records // len(rows) + 1))[:records] if records > len(rows) else rows[:records]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def base_overrides(work: Path, model_dir: Path, data: Path) -> list[str]:
    return [f"--model.source={model_dir}", f"--data.train_file={data}", f"--run.output_dir={work / 'runs'}",
            "--model.num_threads=1", "--encode.max_seq_length=96", "--data.val_fraction=0.1",
            "--data.test_fraction=0.1", "--vet.enabled=false", "--train.save_every_steps=1000",
            "--search.eval_every_steps=3", f"--search.space={SPACE}"]


def run_arm(arm: str, seed: int, budget_s: float, work: Path, base: list[str]) -> dict[str, Any]:
    from tunesmith.config import load_config
    from tunesmith.hpo import search

    cfg = load_config(None, base + ARMS[arm] + [f"--search.seed={seed}", "--search.n_trials=null",
                                                f"--search.timeout_minutes={budget_s / 60}"])
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()):  # the trials' own progress lines
        report = search(cfg, work / f"{arm}-seed{seed}").report
    counts = report["counts"]
    return {"arm": arm, "seed": seed, "best_val_loss": report["best"]["value"] if report["best"] else None,
            "complete": counts.get("COMPLETE", 0), "pruned": counts.get("PRUNED", 0), "failed": counts.get("FAIL", 0),
            "wall_s": round(time.monotonic() - started, 1)}


def warm_up(work: Path, base: list[str]) -> None:
    """One untimed trial: imports and first-use costs are paid before either arm's clock starts."""
    from tunesmith.config import load_config
    from tunesmith.hpo import search

    cfg = load_config(None, base + ["--search.n_trials=1", "--search.pruner=none"])
    with contextlib.redirect_stdout(io.StringIO()):
        search(cfg, work / "warm-up")


def summarise(results: list[dict[str, Any]], budget_s: float, seeds: list[int]) -> dict[str, Any]:
    by = {arm: [r for r in results if r["arm"] == arm] for arm in ARMS}
    best = {arm: [r["best_val_loss"] for r in rows] for arm, rows in by.items()}
    mean = {arm: statistics.mean(v) for arm, v in best.items() if v and None not in v}
    wins = sum(t < r for t, r in zip(best["tpe_prune"], best["random"], strict=True))
    summary: dict[str, Any] = {
        "budget_s": budget_s, "seeds": len(seeds),
        "tpe_prune_best_val_loss": round(mean.get("tpe_prune", float("nan")), 4),
        "random_best_val_loss": round(mean.get("random", float("nan")), 4),
        "tpe_minus_random": round(mean.get("tpe_prune", float("nan")) - mean.get("random", float("nan")), 4),
        "tpe_wins": wins,
    }
    for arm, rows in by.items():
        summary[f"{arm}_trials_complete"] = round(statistics.mean(r["complete"] for r in rows), 1)
        summary[f"{arm}_trials_pruned"] = round(statistics.mean(r["pruned"] for r in rows), 1)
        summary[f"{arm}_per_seed"] = [round(v, 4) if v is not None else None for v in best[arm]]
    return summary


def print_table(results: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    print(f"\n{'arm':<10} {'seed':>4} {'best val_loss':>13} {'complete':>8} {'pruned':>6} {'failed':>6} {'wall s':>7}")
    for r in results:
        best = f"{r['best_val_loss']:.4f}" if r["best_val_loss"] is not None else "-"
        print(f"{r['arm']:<10} {r['seed']:>4} {best:>13} {r['complete']:>8} {r['pruned']:>6} {r['failed']:>6} "
              f"{r['wall_s']:>7}")
    diff = summary["tpe_minus_random"]
    verdict = "TPE + pruning reached a lower validation loss" if diff < 0 else \
        "TPE + pruning did NOT beat random search"
    print(f"\nmean best val_loss: tpe_prune {summary['tpe_prune_best_val_loss']}, random "
          f"{summary['random_best_val_loss']} ({verdict} on average; it won {summary['tpe_wins']} of "
          f"{summary['seeds']} seeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget-s", type=float, default=150.0, help="wall-clock seconds per arm and seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--records", type=int, default=160, help="synthetic intent records (10%% val, 10%% test)")
    parser.add_argument("--quick", action="store_true", help="1 seed, 30 s an arm")
    args = parser.parse_args()
    if args.quick:
        args.budget_s, args.seeds = 30.0, 1
    import torch

    from tunesmith.testing.tiny import save_tiny_model

    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    results = []
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        work = Path(tmp)
        model_dir = save_tiny_model(work / "tiny")
        base = base_overrides(work, model_dir, write_data(work / "intents.jsonl", args.records))
        warm_up(work, base)
        for seed in seeds:
            order = list(ARMS) if seed % 2 == 0 else list(reversed(ARMS))
            for arm in order:
                results.append(run_arm(arm, seed, args.budget_s, work, base))
                print(json.dumps(results[-1]), file=sys.stderr)
    summary = summarise(results, args.budget_s, seeds)
    print_table(results, summary)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
