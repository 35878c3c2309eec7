"""Device, compute precision and CPU threads.

Precision is applied with autocast; weights stay fp32 (master weights), so `auto` is safe everywhere.

Why `auto` is bf16 on CPUs with native bf16 (AVX512-BF16 / AMX / Arm BF16): measured on this project's 2-core
AVX512-BF16 machine, LoRA r=16 on all linears, forward+backward of a Llama with SmolLM2's width (hidden 576,
4 layers, vocab 49152), batch 2 x 256 tokens, best of 6 interleaved steps (the machine was shared, so medians
are noisy): 1 thread fp32 2080 ms vs bf16 autocast 1374 ms (medians 4140 vs 2632); 2 threads fp32 3952 ms vs
bf16 2248 ms. Without native bf16 the casts cost more than they save, so `auto` stays fp32 there.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tunesmith.core.errors import ConfigError, DependencyError, Problem

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "bf16", "fp16", "fp32"]
log = logging.getLogger(__name__)


def _xla_available() -> bool:
    return importlib.util.find_spec("torch_xla") is not None


def _mps_available() -> bool:
    import torch

    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def _xla_device() -> torch.device:
    import torch_xla  # type: ignore[import-not-found]

    return torch_xla.device()  # type: ignore[no-any-return]


def select_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA > MPS > XLA (torch_xla importable) > CPU; or names one: cpu, cuda, cuda:N, mps, xla."""
    import torch

    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        if _xla_available():
            return _xla_device()
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        return _cuda_device(name)
    if name == "mps":
        if not _mps_available():
            raise DependencyError(
                "device 'mps' was asked for but MPS is not available; use model.device=auto or cpu"
            )
        return torch.device("mps")
    if name == "xla":
        if not _xla_available():
            raise DependencyError("device 'xla' needs torch_xla: pip install torch_xla (on a TPU host)")
        return _xla_device()
    raise ConfigError(
        [Problem("model.device", None, f"unknown device {name!r}", "use auto, cpu, cuda, cuda:N, mps or xla")]
    )


def _cuda_device(name: str) -> torch.device:
    import torch

    if not torch.cuda.is_available():
        raise DependencyError(
            f"device {name!r} was asked for but CUDA is not available (torch {torch.__version__}, "
            f"built for CUDA {torch.version.cuda}); install a CUDA build of torch, or use model.device=auto or cpu"
        )
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(
            [Problem("model.device", None, f"bad CUDA device {name!r}", "use cuda or cuda:N")]
        ) from None
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise DependencyError(
            f"device {name!r} does not exist: {count} CUDA device(s); use cuda:0..cuda:{count - 1}"
        )
    return device


def attention_implementation(device: torch.device) -> str:
    """The attention kernels transformers should use on `device`.

    `flash_attention_2` on CUDA when the flash-attn package is installed: its varlen kernel takes the example
    borders of packed rows from position_ids, so no mask is built at all. Otherwise `sdpa` (PyTorch's fused
    attention, which picks its flash / memory-efficient kernels on GPUs); for packed rows transformers builds
    the block-diagonal mask from the position_ids (see encode/pack.py).
    """
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def resolve_precision(device: torch.device, precision: Precision = "auto") -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`; None means plain fp32 (no autocast).

    `auto`: bf16 on CUDA when supported (else fp16); on CPU bf16 when the CPU has native bf16 instructions
    (measured about 1.5x faster, see the module doc), else fp32; bf16 on XLA; fp32 on MPS (its bf16 autocast
    is partial). fp16 on CUDA needs a gradient scaler (the train loop's job); on CPU it is allowed but slow.
    """
    import torch

    if precision not in ("auto", "bf16", "fp16", "fp32"):
        raise ConfigError(
            [Problem("model.precision", None, f"unknown precision {precision!r}", "auto|bf16|fp16|fp32")]
        )
    kind = device.type
    if precision == "fp32":
        return None
    if precision == "auto":
        if kind == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if kind == "mps" or (kind == "cpu" and not cpu_has_native_bf16()):
            return None
        return torch.bfloat16
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if kind == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise DependencyError("this GPU does not support bf16; use model.precision=fp16 or auto")
    return dtype


def cpu_has_native_bf16() -> bool:
    """Whether the CPU flags (Linux /proc/cpuinfo) list bf16 instructions; False when they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set(text.split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def autocast_context(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager[object]:
    """Autocast to `dtype` on the device's type; a no-op context for None (fp32)."""
    import torch

    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def physical_cores_available() -> int:
    """Physical cores among the CPUs this process may run on (hyper-thread siblings counted once)."""
    cpus = (
        sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    )
    cores: set[str] = set()
    for cpu in cpus:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(str(cpu))  # no topology info: count every CPU
    return max(1, len(cores))


def set_cpu_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads; default: physical cores free to this process. Returns the number set.

    Why not torch's default: it counts logical CPUs of the whole machine, ignoring the affinity mask of a
    container or `taskset`, and hyper-threads share one core's vector units. More threads than cores means
    oversubscription, where threads wait on each other and step time collapses (several times slower).
    """
    import torch

    threads = n if n is not None else physical_cores_available()
    if threads < 1:
        raise ConfigError([Problem("model.num_threads", None, f"must be >= 1, got {threads}", "omit it for auto")])
    torch.set_num_threads(threads)
    return threads
