"""Checkpoints: pickle-free round trip, atomic publication, stale tmp cleanup, keep-K."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest
import torch

from tunesmith.core.errors import CheckpointError
from tunesmith.train.checkpoint import (
    MARKER,
    _decode,
    _encode,
    complete_checkpoints,
    latest_complete_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)
from tunesmith.train.optim import build_optimizer, build_scheduler
from tunesmith.train.strategy import PlainStrategy


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.frozen = torch.nn.Linear(3, 3)
        self.frozen.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frozen(self.norm(self.proj(x)))


def _trained_setup(steps: int = 3):
    torch.manual_seed(0)
    net = _Net()
    opt = build_optimizer(net, 1e-2, 0.1)
    sched = build_scheduler(opt, "cosine", 1, 10)
    for _ in range(steps):
        net(torch.randn(2, 4)).pow(2).sum().backward()
        opt.step()
        sched.step()
        opt.zero_grad()
    return net, opt, sched


def _save(run_dir, step, net, opt, sched, keep=None):
    return save_checkpoint(run_dir, step=step, epoch=0, batch_index=step, model=net, optimizer=opt,
                           scheduler=sched, strategy=PlainStrategy(), metrics=[{"step": step}],
                           meta={"total_steps": 10}, keep=keep)


def test_encoding_round_trips_nested_state_without_pickle():
    tensors: dict = {}
    state = {"state": {0: {"step": torch.tensor(3.0), "m": torch.ones(2)}}, "groups": [{"betas": (0.9, 0.99)}],
             "np": np.arange(5, dtype=np.uint32), "__odd": 1, "none": None}
    encoded = _encode(state, "x", tensors)
    json.dumps(encoded)  # must be plain JSON
    decoded = _decode(json.loads(json.dumps(encoded)), tensors)
    assert list(decoded["state"]) == [0] and decoded["groups"][0]["betas"] == (0.9, 0.99)
    assert torch.equal(decoded["state"][0]["m"], torch.ones(2))
    assert decoded["np"].dtype == np.uint32 and decoded["np"].tolist() == [0, 1, 2, 3, 4]
    assert decoded["__odd"] == 1 and decoded["none"] is None
    with pytest.raises(CheckpointError, match="cannot store"):
        _encode({"f": object()}, "x", {})


def test_save_load_restores_weights_optimizer_scheduler_and_rng(tmp_path):
    net, opt, sched = _trained_setup()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    path = _save(tmp_path, 3, net, opt, sched)
    assert sorted(p.name for p in path.iterdir()) == [MARKER, "state.json", "state.safetensors",
                                                      "trainable.safetensors"]
    expected = (random.random(), float(np.random.rand()), torch.rand(1).item())
    weights = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt_state, lr = opt.state_dict(), sched.get_last_lr()

    net2, opt2, sched2 = _trained_setup(steps=0)
    with torch.no_grad():
        net2.frozen.weight.copy_(net.frozen.weight)  # frozen weights come from the base model, not the checkpoint
        net2.frozen.bias.copy_(net.frozen.bias)
    state = load_checkpoint(path, model=net2, optimizer=opt2, scheduler=sched2, strategy=PlainStrategy())
    assert (state.step, state.batch_index, state.metrics, state.meta) == (3, 3, [{"step": 3}], {"total_steps": 10})
    assert (random.random(), float(np.random.rand()), torch.rand(1).item()) == expected
    for name, p in net2.named_parameters():
        assert torch.equal(p, weights[name]), name
    assert sched2.get_last_lr() == lr
    loaded = opt2.state_dict()
    assert loaded["param_groups"] == opt_state["param_groups"]
    for idx, per_param in opt_state["state"].items():
        for key, value in per_param.items():
            assert torch.equal(loaded["state"][idx][key], value)


def test_tmp_and_unmarked_folders_are_never_picked(tmp_path):
    net, opt, sched = _trained_setup()
    good = _save(tmp_path, 2, net, opt, sched)
    root = good.parent
    dead_tmp = root / "step-000009.tmp-999999999"  # a pid that cannot be running
    dead_tmp.mkdir()
    (dead_tmp / MARKER).write_text("{}")
    unmarked = root / "step-000007"
    unmarked.mkdir()
    (unmarked / "state.json").write_text("{}")
    live_tmp = root / f"step-000008.tmp-{os.getpid()}"
    live_tmp.mkdir()

    assert latest_complete_checkpoint(tmp_path) == good
    assert not dead_tmp.exists(), "tmp folders of dead processes are cleaned"
    assert live_tmp.exists(), "a tmp folder of a running process is left alone"
    with pytest.raises(CheckpointError, match="not a complete checkpoint"):
        load_checkpoint(unmarked, model=net, optimizer=opt, scheduler=sched, strategy=PlainStrategy())


def test_no_checkpoint_gives_none(tmp_path):
    assert latest_complete_checkpoint(tmp_path) is None


def test_keep_k_keeps_the_newest(tmp_path):
    net, opt, sched = _trained_setup()
    for step in (1, 2, 3, 4):
        _save(tmp_path, step, net, opt, sched, keep=2)
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step-000003", "step-000004"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000003", "step-000004"]
    assert prune_checkpoints(tmp_path, keep=0) == [tmp_path / "checkpoints" / "step-000003"]


def test_loading_into_a_different_model_fails_with_a_fix(tmp_path):
    net, opt, sched = _trained_setup()
    path = _save(tmp_path, 1, net, opt, sched)
    other = torch.nn.Linear(4, 3)
    opt2 = build_optimizer(other, 1e-2, 0.0)
    with pytest.raises(CheckpointError, match="same model and adapter"):
        load_checkpoint(path, model=other, optimizer=opt2, scheduler=None, strategy=PlainStrategy())
