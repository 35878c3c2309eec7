"""Training throughput: tunesmith's loop vs TRL's SFTTrainer, same model, LoRA, data, batch, length and steps.

Run (from the repository root; `make bench` does the same):

    .venv/bin/python bench/train_throughput.py            # 3 warm-up + 30 timed steps, batch 4 x 256, 2 threads
    .venv/bin/python bench/train_throughput.py --quick    # 1 warm-up + 5 timed steps: a smoke run

In one invocation, in this order, each in a fresh spawned process with a fresh model copy (so peak RSS is per run):
1. tunesmith: `tunesmith.train.loop.train` with packing and answer-only loss;
2. TRL `SFTTrainer` at its SFTConfig defaults (gradient checkpointing and bf16 on, no packing, loss on all tokens);
3. TRL at its best CPU settings (bf16, BFD packing + padding-free, no checkpointing, completion-only loss);
4. bf16 matmul peak of this machine (a 2048 square and the model's linear shapes).
A table is printed, then the LAST line is one JSON object with the headline figures (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers sit next to this script

from _common import RunResult, RunSpec, run_in_spawned_child  # noqa: E402

RUN_NAMES = ("ours", "trl_default", "trl_best", "trl_our_rows")
FLOPS_FORMULA = (
    "model FLOPs/token = 4*N_base + 6*N_lora (LoRA on a frozen base: forward 2N, backward through activations 2N, "
    "weight grads only for LoRA; N = matmul weights incl. the tied lm_head; attention scores excluded)"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps (default 30)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps before timing (default 3)")
    parser.add_argument("--batch-size", type=int, default=4, help="rows per step (default 4)")
    parser.add_argument("--seq-len", type=int, default=256, help="max tokens per row (default 256)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every run (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 warm-up + 5 timed steps")
    parser.add_argument("--only", choices=(*RUN_NAMES, "matmul"), action="append",
                        help="run only these parts (repeatable); the JSON then has null for the others")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.warmup_steps = 5, 1
    if min(args.steps, args.batch_size, args.seq_len, args.threads) < 1 or args.warmup_steps < 0:
        parser.error("--steps, --batch-size, --seq-len and --threads must be >= 1; --warmup-steps >= 0")
    return args


def _child(job: str, spec: RunSpec, quick: bool, queue: Any) -> None:
    """Entry point of a spawned child: run one job, send back ("ok", payload) or ("error", traceback)."""
    try:
        if job == "ours":
            from _ours_run import run_ours

            payload: Any = run_ours(spec).to_json()
        elif job.startswith("trl_"):
            from _trl_run import run_trl

            payload = run_trl(job.removeprefix("trl_"), spec).to_json()
        else:
            from _matmul_peak import run_matmul_peak

            payload = json.dumps(run_matmul_peak(spec, quick))
        queue.put(("ok", payload))
    except BaseException:  # report any failure (even SystemExit) to the parent instead of dying silently
        queue.put(("error", traceback.format_exc()))


def run_in_child(job: str, spec: RunSpec, quick: bool) -> tuple[str, str]:
    """Run `job` in a fresh spawned interpreter; its peak RSS is its own."""
    return run_in_spawned_child(_child, (job, spec, quick), name=f"bench-{job}")


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: dict[str, RunResult], peak_gflops: float | None) -> None:
    """Readable summary (rich when installed)."""
    header = ["run", "tokens/s", "vs ours", "peak RSS MB", "final loss", "% bf16 peak", "trainable", "settings"]
    ours = results.get("ours")
    rows = []
    for name, r in results.items():
        share = r.tokens_per_s * r.flops_per_token / (peak_gflops * 1e9) if peak_gflops else None
        ratio = ours.tokens_per_s / r.tokens_per_s if ours and name != "ours" else None
        settings = ", ".join(f"{k}={v}" for k, v in r.notes.items() if k != "model")
        rows.append([name, _fmt(r.tokens_per_s, ",.1f"), "-" if ratio is None else f"ours x{ratio:.2f}",
                     _fmt(r.peak_rss_mb), _fmt(r.final_loss, ".4f"), _fmt(share and 100 * share, ".1f"),
                     f"{r.trainable_params:,}", settings])
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="training throughput (non-pad tokens/s over the timed steps)")
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        Console(width=200).print(table)
    except ImportError:
        print(" | ".join(header))
        for row in rows:
            print(" | ".join(row))


def summary_json(results: dict[str, RunResult], peak: float | None, spec: RunSpec) -> dict[str, Any]:
    """The headline figures; null where a run failed or was skipped."""

    def get(name: str, attr: str) -> float | None:
        r = results.get(name)
        value = None if r is None else float(getattr(r, attr))
        return None if value is None or math.isnan(value) else value  # keep the JSON line strict

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    ours_tps = get("ours", "tokens_per_s")
    ours_loss, best_loss = get("ours", "final_loss"), get("trl_best", "final_loss")
    same_loss = get("trl_our_rows", "final_loss")
    ours = results.get("ours")
    share = ours.tokens_per_s * ours.flops_per_token / (peak * 1e9) if ours and peak else None
    return {
        "tokens_per_s_ours": ours_tps,
        "tokens_per_s_trl_default": get("trl_default", "tokens_per_s"),
        "tokens_per_s_trl_best": get("trl_best", "tokens_per_s"),
        "tokens_per_s_ratio_vs_trl_default": ratio(ours_tps, get("trl_default", "tokens_per_s")),
        "tokens_per_s_ratio_vs_trl_best": ratio(ours_tps, get("trl_best", "tokens_per_s")),
        "peak_rss_mb_ours": get("ours", "peak_rss_mb"),
        "peak_rss_mb_trl_default": get("trl_default", "peak_rss_mb"),
        "peak_rss_mb_trl_best": get("trl_best", "peak_rss_mb"),
        "peak_rss_mb_trl_our_rows": get("trl_our_rows", "peak_rss_mb"),
        "final_loss_ours": ours_loss,
        "final_loss_trl_best": best_loss,
        "loss_rel_diff_vs_trl_best": None if ours_loss is None or not best_loss else ours_loss / best_loss - 1,
        # TRL trained on our exact rows in our order: the like-for-like check that both compute the same loss
        "tokens_per_s_trl_our_rows": get("trl_our_rows", "tokens_per_s"),
        "final_loss_trl_our_rows": same_loss,
        "loss_rel_diff_vs_trl_our_rows": None if ours_loss is None or not same_loss else ours_loss / same_loss - 1,
        "bf16_matmul_peak_gflops": peak,
        "share_of_bf16_peak_ours": share,
        "threads": spec.threads,
        "steps": spec.steps,
        "batch": spec.batch_size,
        "seq_len": spec.seq_len,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spec = RunSpec(steps=args.steps, warmup_steps=args.warmup_steps, batch_size=args.batch_size,
                   seq_len=args.seq_len, threads=args.threads)
    jobs = [j for j in (*RUN_NAMES, "matmul") if not args.only or j in args.only]
    results: dict[str, RunResult] = {}
    matmul: dict[str, float] = {}
    failed: list[str] = []
    for job in jobs:
        print(f"[bench] {job}: running ({spec.warmup_steps} warm-up + {spec.steps} timed steps)", flush=True)
        status, payload = run_in_child(job, spec, args.quick)
        if status != "ok":
            print(f"[bench] {job} FAILED:\n{payload}", file=sys.stderr, flush=True)
            failed.append(job)
        elif job == "matmul":
            matmul = json.loads(payload)
        else:
            results[job] = RunResult(**json.loads(payload))
            r = results[job]
            print(f"[bench] {job}: {r.tokens_per_s:,.1f} tok/s, loss {r.final_loss:.4f}, "
                  f"peak RSS {r.peak_rss_mb:,.0f} MB, {r.notes}", flush=True)
    peak = matmul.get("peak")
    for shape, gflops in matmul.items():
        print(f"[bench] matmul {shape}: {gflops:,.1f} GFLOP/s")
    print_table(results, peak)
    print(FLOPS_FORMULA)
    print("loss: mean of the last 5 steps, each a token-weighted mean cross-entropy over the completion tokens "
          "(trl_default: over all tokens, so not comparable)")
    print(json.dumps(summary_json(results, peak, spec)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
