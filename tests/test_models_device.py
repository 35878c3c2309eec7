"""Device selection, precision resolution and CPU thread defaults."""

from __future__ import annotations

import pytest

from tunesmith.core.errors import ConfigError, DependencyError
from tunesmith.models.device import (
    autocast_context,
    physical_cores_available,
    resolve_precision,
    select_device,
    set_cpu_threads,
)


def test_cpu_and_auto(monkeypatch) -> None:
    import torch

    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("tunesmith.models.device._mps_available", lambda: False)
    monkeypatch.setattr("tunesmith.models.device._xla_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")


def test_cuda_asked_but_absent_says_what_to_do(monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(DependencyError, match="CUDA is not available") as info:
            select_device(name)
        assert "model.device=auto or cpu" in str(info.value)


def test_unknown_device_and_missing_backends(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        select_device("tpu")
    monkeypatch.setattr("tunesmith.models.device._xla_available", lambda: False)
    with pytest.raises(DependencyError, match="torch_xla"):
        select_device("xla")
    monkeypatch.setattr("tunesmith.models.device._mps_available", lambda: False)
    with pytest.raises(DependencyError, match="MPS"):
        select_device("mps")


def test_precision_resolution(monkeypatch) -> None:
    import torch

    cpu, mps = torch.device("cpu"), torch.device("mps")
    assert resolve_precision(cpu, "fp32") is None
    assert resolve_precision(cpu, "bf16") is torch.bfloat16
    assert resolve_precision(cpu, "fp16") is torch.float16
    assert resolve_precision(mps, "auto") is None
    monkeypatch.setattr("tunesmith.models.device.cpu_has_native_bf16", lambda: True)
    assert resolve_precision(cpu, "auto") is torch.bfloat16
    monkeypatch.setattr("tunesmith.models.device.cpu_has_native_bf16", lambda: False)
    assert resolve_precision(cpu, "auto") is None  # emulated bf16 is slower than fp32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision(torch.device("cuda"), "auto") is torch.float16
    with pytest.raises(DependencyError, match="bf16"):
        resolve_precision(torch.device("cuda"), "bf16")
    with pytest.raises(ConfigError):
        resolve_precision(cpu, "int8")  # type: ignore[arg-type]


def test_autocast_context_changes_matmul_dtype() -> None:
    import torch

    a = torch.ones(2, 2)
    with autocast_context(torch.device("cpu"), torch.bfloat16):
        assert (a @ a).dtype == torch.bfloat16
    with autocast_context(torch.device("cpu"), None):
        assert (a @ a).dtype == torch.float32


def test_cpu_threads_default_to_available_physical_cores() -> None:
    import os

    import torch

    before = torch.get_num_threads()
    try:
        cores = physical_cores_available()
        assert 1 <= cores <= len(os.sched_getaffinity(0))
        assert set_cpu_threads(None) == cores == torch.get_num_threads()
        assert set_cpu_threads(1) == 1 == torch.get_num_threads()
        with pytest.raises(ConfigError):
            set_cpu_threads(0)
    finally:
        torch.set_num_threads(before)
