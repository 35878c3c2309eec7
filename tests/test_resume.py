"""Resume in-process: a run interrupted (by an exception, also mid-checkpoint) and resumed ends bitwise equal."""

from __future__ import annotations

import pytest
import torch
from test_train_loop import lora_model, pad_collate, small_cfg, synthetic_items, trainable

from tunesmith.track.run_dir import RunDir
from tunesmith.train import checkpoint as ckpt
from tunesmith.train.loop import train
from tunesmith.train.strategy import PlainStrategy


class Interrupted(Exception):
    pass


def _fresh(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), dropout=0.1)


def _train(tiny_model_dir, tmp_path, run_id: str, **cfg_overrides):
    model = _fresh(tiny_model_dir)
    items = synthetic_items(10, model.config.vocab_size)
    settings = {"max_steps": 7, "grad_accum_steps": 2, "save_every_steps": 1, "log_every_steps": 1}
    cfg = small_cfg(**{**settings, **cfg_overrides})
    run = RunDir.create(tmp_path, {"id": run_id}, run_id=run_id)
    result = train(model, items, items[:2], cfg, run, torch.device("cpu"), None, pad_collate, seed=3)
    return model, result, run


def test_interrupted_runs_resume_to_bitwise_identical_weights(tiny_model_dir, tmp_path, monkeypatch):
    reference, ref_result, _ = _train(tiny_model_dir, tmp_path, "reference")

    calls = {"n": 0}
    original_after_backward = PlainStrategy.after_backward
    original_marker = ckpt._write_marker

    def crash_on_step_5(self, model):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Interrupted
        return original_after_backward(self, model)

    def crash_saving_step_6(folder):
        if folder.name.startswith("step-000006"):
            raise Interrupted
        return original_marker(folder)

    monkeypatch.setattr(PlainStrategy, "after_backward", crash_on_step_5)
    with pytest.raises(Interrupted):
        _train(tiny_model_dir, tmp_path, "resumed")
    monkeypatch.setattr(PlainStrategy, "after_backward", original_after_backward)
    monkeypatch.setattr(ckpt, "_write_marker", crash_saving_step_6)
    with pytest.raises(Interrupted):
        _, _, run = _train(tiny_model_dir, tmp_path, "resumed", resume="must")
    run = RunDir(tmp_path / "resumed")
    assert ckpt.latest_complete_checkpoint(run.path).name == "step-000005"
    assert any(".tmp-" in p.name for p in run.checkpoints_dir.iterdir()), "the half-written step 6 is left behind"
    monkeypatch.setattr(ckpt, "_write_marker", original_marker)

    resumed, result, run = _train(tiny_model_dir, tmp_path, "resumed", resume="must")
    assert result.resumed_from_step == 5
    ref_weights, got = trainable(reference), trainable(resumed)
    assert ref_weights.keys() == got.keys()
    for name in ref_weights:
        assert torch.equal(ref_weights[name], got[name]), f"{name} differs after resume"
    assert [r["step"] for r in run.read_metrics() if "loss" in r] == list(range(1, 8)), "no duplicate log lines"
    assert result.val_loss == ref_result.val_loss


def test_resume_with_changed_data_refuses(tiny_model_dir, tmp_path):
    from tunesmith.core.errors import CheckpointError

    _train(tiny_model_dir, tmp_path, "r", max_steps=2)
    model = _fresh(tiny_model_dir)
    items = synthetic_items(12, model.config.vocab_size)
    run = RunDir(tmp_path / "r")
    with pytest.raises(CheckpointError, match="num_train_items"):
        train(model, items, None, small_cfg(max_steps=2, grad_accum_steps=2), run, torch.device("cpu"), None,
              pad_collate, seed=3)
