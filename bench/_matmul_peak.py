"""bf16 matmul throughput on this machine: the ceiling a bf16 training step could reach.

Times `torch.matmul` of bf16 tensors after warm-up, for a 2048x2048 square and for the shapes of SmolLM2-135M's
linear layers at the benchmark's (batch * seq_len) tokens. Runs in a spawned child, like the trainers.
"""

from __future__ import annotations

import time

from _common import RunSpec, prepare_child

# (in_features, out_features) of SmolLM2-135M's linear layers: hidden 576, kv 3 heads x 64, MLP 1536, vocab 49152.
SMOLLM2_LINEARS: dict[str, tuple[int, int]] = {
    "q/o_proj 576x576": (576, 576),
    "k/v_proj 576x192": (576, 192),
    "gate/up 576x1536": (576, 1536),
    "down 1536x576": (1536, 576),
    "lm_head 576x49152": (576, 49152),
}


def time_matmul_gflops(
    m: int, k: int, n: int, min_seconds: float = 0.3, warmup: int = 3, dtype_name: str = "bfloat16"
) -> float:
    """GFLOP/s of (m, k) @ (k, n): 2*m*k*n FLOPs per call, timed over repeats after `warmup` calls."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(m, k, dtype=dtype)
    b = torch.randn(k, n, dtype=dtype)
    for _ in range(warmup):
        torch.matmul(a, b)
    repeats, start = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        repeats += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and repeats >= 3:
            return 2.0 * m * k * n * repeats / elapsed / 1e9


def run_matmul_peak(spec: RunSpec, quick: bool = False) -> dict[str, float]:
    """bf16 GFLOP/s per shape; `peak` is the best of them (the square one, normally); plus an fp32 reference."""
    prepare_child(spec.threads)
    min_seconds = 0.1 if quick else 0.5
    tokens = spec.batch_size * spec.seq_len
    results = {"square 2048x2048x2048": time_matmul_gflops(2048, 2048, 2048, min_seconds)}
    for name, (k, n) in SMOLLM2_LINEARS.items():
        results[f"{name} @ {tokens} tok"] = time_matmul_gflops(tokens, k, n, min_seconds)
    results["peak"] = max(results.values())
    # Not part of the peak: whether bf16 buys anything over fp32 on this CPU (it does only with native bf16 dot
    # products in the matmul library; otherwise bf16 autocast adds casts for nothing).
    results["fp32 reference: square 2048"] = time_matmul_gflops(2048, 2048, 2048, min_seconds, dtype_name="float32")
    return results
