"""GPU check: tunesmith LoRA vs TRL SFTTrainer + peft on one GPU (tokens/s, peak GPU memory), and QLoRA's memory.

Run on a CUDA machine (`bench/gpu_check.sh` runs this and the multi-process smoke runs in one go):

    .venv/bin/python bench/gpu_check.py                  # 5 warm-up + 40 timed steps, batch 16 x 1024 tokens
    .venv/bin/python bench/gpu_check.py --dry-run        # CPU, 1 + 1 steps of 2 x 128: checks the script only

In this order, each in its own spawned process with a fresh model: ours LoRA, TRL LoRA, ours QLoRA (skipped with
a reason when bitsandbytes or CUDA is missing). Same bundled model, data, packed rows of `--seq-len`, batch,
learning-rate schedule, clipping and steps; bf16; no gradient checkpointing. The last line is one JSON object.
The target from the issue: ours at least 1.68x TRL's tokens/s (what Unsloth reports over plain HF).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RunResult, RunSpec, run_in_spawned_child  # noqa: E402

TARGET_RATIO = 1.68


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check that every part runs")
    args = parser.parse_args(argv)
    if args.dry_run:
        args.steps, args.warmup_steps, args.batch_size, args.seq_len = 1, 1, 2, 128
    return args


def _child(job: str, spec: RunSpec, device: str, queue: Any) -> None:
    try:
        from _gpu_runs import run_ours_on, run_trl_on

        result = run_trl_on(spec, device) if job == "trl" else run_ours_on(spec, device, job.split("_")[1])
        queue.put(("ok", result.to_json()))
    except BaseException:
        queue.put(("error", traceback.format_exc()))


def run_in_child(job: str, spec: RunSpec, device: str) -> tuple[str, str]:
    return run_in_spawned_child(_child, (job, spec, device), name=f"gpu-check-{job}")


def skip_reason(job: str, device: str) -> str | None:
    if job == "ours_qlora":
        if device != "cuda":
            return "QLoRA needs CUDA"
        if importlib.util.find_spec("bitsandbytes") is None:
            return "bitsandbytes is not installed (pip install 'tunesmith[qlora]')"
    return None


def summary(results: dict[str, RunResult], skipped: dict[str, str], spec: RunSpec, device: str) -> dict[str, Any]:
    def get(name: str, key: str) -> float | None:
        r = results.get(name)
        if r is None:
            return None
        value = r.notes.get(key) if key.startswith("peak_gpu") else getattr(r, key)
        return None if value is None else float(value)

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else round(a / b, 3)

    ours, trl = get("ours_lora", "tokens_per_s"), get("trl", "tokens_per_s")
    return {
        "device": device,
        "tokens_per_s_ours_lora": ours,
        "tokens_per_s_trl_lora": trl,
        "tokens_per_s_ratio_vs_trl": ratio(ours, trl),
        "target_ratio": TARGET_RATIO,
        # only a GPU run answers the target; a dry run's one CPU step says nothing about it
        "meets_target": None if ratio(ours, trl) is None or device != "cuda" else ratio(ours, trl) >= TARGET_RATIO,  # type: ignore[operator]
        "peak_gpu_mb_ours_lora": get("ours_lora", "peak_gpu_mb"),
        "peak_gpu_mb_trl_lora": get("trl", "peak_gpu_mb"),
        "peak_gpu_mb_ours_qlora": get("ours_qlora", "peak_gpu_mb"),
        "qlora_memory_vs_lora": ratio(get("ours_qlora", "peak_gpu_mb"), get("ours_lora", "peak_gpu_mb")),
        "tokens_per_s_ours_qlora": get("ours_qlora", "tokens_per_s"),
        "final_loss_ours_lora": get("ours_lora", "final_loss"),
        "final_loss_trl_lora": get("trl", "final_loss"),
        "skipped": skipped,
        "steps": spec.steps, "warmup_steps": spec.warmup_steps, "batch": spec.batch_size, "seq_len": spec.seq_len,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    device = "cpu" if args.dry_run else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    spec = RunSpec(steps=args.steps, warmup_steps=args.warmup_steps, batch_size=args.batch_size,
                   seq_len=args.seq_len, threads=1 if args.dry_run else 4)
    results: dict[str, RunResult] = {}
    skipped: dict[str, str] = {}
    failed = False
    for job in ("ours_lora", "trl", "ours_qlora"):
        reason = skip_reason(job, device)
        if reason:
            skipped[job] = reason
            print(f"[gpu-check] {job}: skipped ({reason})", flush=True)
            continue
        print(f"[gpu-check] {job}: running on {device}", flush=True)
        status, payload = run_in_child(job, spec, device)
        if status != "ok":
            print(f"[gpu-check] {job} FAILED:\n{payload}", file=sys.stderr, flush=True)
            skipped[job], failed = "failed: " + payload.strip().splitlines()[-1][:200], True
            continue
        r = results[job] = RunResult(**json.loads(payload))
        print(f"[gpu-check] {job}: {r.tokens_per_s:,.0f} tok/s, peak GPU {r.notes.get('peak_gpu_mb')} MB, "
              f"loss {r.final_loss:.4f}, {r.notes}", flush=True)
    print(json.dumps(summary(results, skipped, spec, device)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
