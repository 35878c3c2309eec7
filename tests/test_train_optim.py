"""Optimizer groups, schedule and step arithmetic."""

from __future__ import annotations

import pytest
import torch

from tunesmith.config.schema import TrainConfig
from tunesmith.core.errors import ConfigError
from tunesmith.train.optim import build_optimizer, build_scheduler, steps_per_epoch, total_steps, warmup_steps_for


def test_total_steps():
    assert steps_per_epoch(10, 4) == 3
    assert total_steps(10, 4, epochs=2, max_steps=None) == 6
    assert total_steps(10, 4, epochs=0.5, max_steps=None) == 2
    assert total_steps(10, 4, epochs=2, max_steps=7) == 7
    with pytest.raises(ConfigError, match="no training batches"):
        total_steps(0, 1, 1, None)
    assert warmup_steps_for(TrainConfig(), 100) == 5
    assert warmup_steps_for(TrainConfig(warmup_steps=0), 100) == 0


def test_no_weight_decay_on_bias_and_norm():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    opt = build_optimizer(model, 1e-3, 0.1)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and [p.shape for p in decayed["params"]] == [(3, 3)]
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3


def test_only_trainable_params_and_none_is_an_error():
    model = torch.nn.Linear(3, 3)
    model.bias.requires_grad_(False)
    assert [len(g["params"]) for g in build_optimizer(model, 1e-3, 0.0).param_groups] == [1]
    model.weight.requires_grad_(False)
    with pytest.raises(ConfigError, match="no trainable parameters"):
        build_optimizer(model, 1e-3, 0.0)


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant"])
def test_schedule_warms_up_then_decays(schedule):
    opt = build_optimizer(torch.nn.Linear(2, 2), 1.0, 0.0)
    sched = build_scheduler(opt, schedule, warmup_steps=2, total=10)
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[2] == pytest.approx(1.0)
    assert (lrs[-1] < 0.5) if schedule != "constant" else lrs[-1] == 1.0
