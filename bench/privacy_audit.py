"""Leakage audit of plain vs DP-SGD training on the same data: canary exposure, membership inference, empirical
epsilon against the claimed one, and a noiseless run presented with a noisy run's claim (must FAIL).

    OMP_NUM_THREADS=1 .venv/bin/python bench/privacy_audit.py                 # tiny model, about 4 min on one core
    OMP_NUM_THREADS=1 .venv/bin/python bench/privacy_audit.py --quick         # 10 epochs instead of 30
    .venv/bin/python bench/privacy_audit.py --model bundled --epochs 3        # SmolLM2-135M (slow on a CPU)

Data: 128 records "code i" -> four random colour words (seeded), so a member's answer can only be predicted by
remembering it; 45% held out (the non-members). Canaries "my PIN is dddddd" are inserted 1, 4 and 16 times
(2 secrets each) plus 64 never-inserted references. Every run uses the same data, seed, adapter (LoRA r=64 on the
tiny model, r=16 on the bundled one) and optimiser; DP runs add Poisson sampling, per-example clipping
(max_grad_norm 10) and noise calibrated to each target epsilon at delta 1e-5.

No other fine-tuning tool ships a leakage audit, so there is no peer run: the figures compare our plain and DP
runs. The output ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COLOURS = ["red", "blue", "green", "gold", "black", "white", "pink", "grey"]
ATTACKS = ("loss", "reference", "min_k", "zlib")


def write_codes(path: Path, n: int = 128, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = [{"prompt": f"code {i}", "completion": " ".join(rng.choice(COLOURS) for _ in range(4))} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def base_overrides(args: argparse.Namespace, work: Path, model_source: str) -> list[str]:
    tiny = args.model == "tiny"
    return [
        f"--model.source={model_source}", f"--data.train_file={write_codes(work / 'codes.jsonl')}",
        f"--run.output_dir={work / 'runs'}", f"--model.num_threads={args.threads}", "--model.precision=fp32",
        "--encode.max_seq_length=64", "--data.val_fraction=0.05", "--data.test_fraction=0.45", "--vet.enabled=false",
        f"--adapter.r={64 if tiny else 16}", f"--adapter.alpha={128 if tiny else 32}",
        f"--train.learning_rate={3e-3 if tiny else 2e-4}", f"--train.epochs={args.epochs}", "--train.batch_size=8",
        "--train.save_every_steps=100000", "--audit.enabled=true", "--audit.canary_repetitions=[1,4,16]",
        "--audit.canaries_per_repetition=2", "--audit.reference_canaries=64",
        f"--audit.exposure_samples={args.exposure_samples}", "--audit.members=64", "--audit.non_members=64",
    ]


def train_and_audit(overrides: list[str], run_id: str, *extra: str) -> tuple[Path, float]:
    from tunesmith.config import load_config
    from tunesmith.recipes.finetune import finetune

    cfg = load_config(None, [*overrides, f"--run.run_id={run_id}", *extra])
    start = time.perf_counter()
    run = finetune(cfg, evaluate_after=False).run_dir
    return run, time.perf_counter() - start


def summarise(run: Path, seconds: float) -> dict[str, Any]:
    report = json.loads((run / "audit_report.json").read_text())
    claim_path = run / "privacy_report.json"
    claim = json.loads(claim_path.read_text()) if claim_path.is_file() else None
    epsilon = report["empirical_epsilon"]
    groups = report["canaries"]["by_repetitions"]
    return {
        "seconds": round(seconds, 1),
        "exposure": {k: groups[k]["mean_exposure"] for k in groups},
        "exposure_sample": {k: groups[k]["mean_exposure_sample"] for k in groups},
        "auc": {a: f["auc"] for a, f in report["membership"]["attacks"].items()},
        "tpr_at_1pct_fpr": {a: f["tpr_at_1pct_fpr"] for a, f in report["membership"]["attacks"].items()},
        "eps_lower_bound": epsilon["max_epsilon_lower_bound"],
        "eps_claimed": None if claim is None else claim["epsilon"],
        "noise_multiplier": None if claim is None else claim["noise_multiplier"],
        "verdict": epsilon["verdict"],
    }


def print_table(results: dict[str, dict[str, Any]]) -> None:
    names = list(results)
    print(f"\n{'':34}" + "".join(f"{n:>14}" for n in names))

    def row(label: str, values: list[Any]) -> None:
        cells = "".join(f"{v:>14.3f}" if isinstance(v, float) else f"{v!s:>14}" for v in values)
        print(f"{label:34}{cells}")

    for count, label in (("0", "reference"), ("1", "1 copy"), ("4", "4 copies"), ("16", "16 copies")):
        row(f"exposure bits, {label}", [results[n]["exposure"].get(count) for n in names])
    for count in ("0", "16"):
        row(f"  sampled estimate, {'reference' if count == '0' else '16 copies'}",
            [results[n]["exposure_sample"].get(count) for n in names])
    for attack in ATTACKS:
        row(f"MIA AUC, {attack}", [results[n]["auc"].get(attack) for n in names])
        row(f"  TPR at 1% FPR, {attack}", [results[n]["tpr_at_1pct_fpr"].get(attack) for n in names])
    row("empirical eps lower bound (95%)", [results[n]["eps_lower_bound"] for n in names])
    row("claimed eps", [results[n]["eps_claimed"] for n in names])
    row("noise multiplier", [results[n]["noise_multiplier"] for n in names])
    row("consistency", [results[n]["verdict"] for n in names])
    row("seconds (train + audit)", [results[n]["seconds"] for n in names])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["tiny", "bundled"], default="tiny")
    parser.add_argument("--epochs", type=float, default=None, help="default 30 (tiny), 3 (bundled)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[8.0, 0.5], help="DP runs' target epsilons")
    parser.add_argument("--exposure-samples", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="10 epochs, one DP run (epsilon 0.5)")
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 10 if args.quick else (30 if args.model == "tiny" else 3)
    if args.quick:
        args.epsilons = [0.5]
    work = Path(tempfile.mkdtemp(prefix="privacy-audit-"))
    try:
        return run_bench(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_bench(args: argparse.Namespace, work: Path) -> int:
    from tunesmith.recipes.audit import audit_run

    if args.model == "tiny":
        from tunesmith.testing.tiny import save_tiny_model

        source = str(save_tiny_model(work / "tiny-model"))
    else:
        source = "bundled:smollm2-135m-instruct"
    overrides = base_overrides(args, work, source)
    dp = ("--train.strategy=dp", "--privacy.secret_seed=1", "--privacy.max_grad_norm=10")
    results: dict[str, dict[str, Any]] = {}
    runs: dict[str, Path] = {}
    runs["plain"], seconds = train_and_audit(overrides, "plain")
    results["plain"] = summarise(runs["plain"], seconds)
    for eps in args.epsilons:
        name = f"dp_eps{eps:g}"
        runs[name], seconds = train_and_audit(overrides, name, *dp, f"--privacy.target_epsilon={eps}")
        results[name] = summarise(runs[name], seconds)
    runs["noiseless"], seconds = train_and_audit(overrides, "noiseless", *dp, "--privacy.noise_multiplier=0")
    results["noiseless"] = summarise(runs["noiseless"], seconds)
    # the noiseless model presented with the smallest DP claim: noise off by mistake, epsilon still reported
    smallest = f"dp_eps{min(args.epsilons):g}"
    shutil.copy(runs[smallest] / "privacy_report.json", runs["noiseless"] / "privacy_report.json")
    start = time.perf_counter()
    audit_run(runs["noiseless"])
    results["noiseless+claim"] = summarise(runs["noiseless"], time.perf_counter() - start)
    print_table(results)
    figures = json_figures(results, smallest, args)
    print(json.dumps({k: _plain_number(v) for k, v in figures.items()}))
    return 0


def _plain_number(value: Any) -> Any:
    """JSON has no infinity: an infinite epsilon (noise off) is written as the string "inf"."""
    return "inf" if isinstance(value, float) and value == float("inf") else value


def json_figures(results: dict[str, dict[str, Any]], smallest: str, args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {"bench": "privacy_audit", "model": args.model, "epochs": args.epochs}
    for name, result in results.items():
        if name == "noiseless+claim":
            continue
        figures[f"{name}_exposure_x16"] = result["exposure"].get("16")
        figures[f"{name}_exposure_x1"] = result["exposure"].get("1")
        figures[f"{name}_exposure_reference"] = result["exposure"].get("0")
        figures[f"{name}_mia_auc_loss"] = result["auc"].get("loss")
        figures[f"{name}_mia_auc_reference"] = result["auc"].get("reference")
        figures[f"{name}_eps_lower_bound"] = result["eps_lower_bound"]
        figures[f"{name}_eps_claimed"] = result["eps_claimed"]
    plain, dp = results["plain"]["exposure"].get("16"), results[smallest]["exposure"].get("16")
    figures[f"exposure_x16_ratio_{smallest}_vs_plain"] = round(dp / plain, 4) if dp and plain else None
    figures["noiseless_with_claim_verdict"] = results["noiseless+claim"]["verdict"]
    figures["noiseless_with_claim_eps_lower_bound"] = results["noiseless+claim"]["eps_lower_bound"]
    figures["noiseless_with_claim_eps_claimed"] = results["noiseless+claim"]["eps_claimed"]
    return figures


if __name__ == "__main__":
    sys.exit(main())
