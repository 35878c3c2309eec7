"""DP-SGD (`train.dp`): per-example gradients, clipping and noise, Poisson sampling, accumulation, resume."""

from __future__ import annotations

import math

import pytest
import torch
from test_train_loop import lora_model, pad_collate, small_cfg, synthetic_items, trainable

from tunesmith.config.privacy_schema import PrivacyConfig
from tunesmith.config.schema import Config
from tunesmith.core.errors import ConfigError
from tunesmith.track.run_dir import RunDir
from tunesmith.train.batches import EpochBatches
from tunesmith.train.dp import DPStrategy
from tunesmith.train.dp_accounting import epsilon_spent
from tunesmith.train.dp_grads import per_example_grads, sequence_mean_losses, take_grad_samples, trainable_parameters
from tunesmith.train.dp_sampling import PoissonBatches
from tunesmith.train.loop import train


def dp_config(train_overrides: dict | None = None, **privacy) -> Config:
    cfg = Config()
    cfg.train = small_cfg(**(train_overrides or {}))
    cfg.train.strategy = "dp"
    cfg.privacy = PrivacyConfig(**{"noise_multiplier": 1.0, "secret_seed": 7, **privacy})
    return cfg


def _lora(tiny_model_dir, dtype=torch.float32):
    from transformers import AutoModelForCausalLM

    model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir)).to(dtype)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # LoRA B starts at 0, which would make every A gradient 0: a weak check
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.1)
    return model


def test_per_example_gradients_equal_one_example_autograd(tiny_model_dir):
    model = _lora(tiny_model_dir, torch.float64)
    items = synthetic_items(5, model.config.vocab_size, seed=3)  # 6..12 tokens: the batch is padded
    params = trainable_parameters(model)
    expected = []
    for item in items:  # reference: each example alone, its mean loss over its own target tokens
        model.zero_grad()
        means, _ = sequence_mean_losses(model, pad_collate([item]))
        means.sum().backward()
        expected.append([p.grad.detach().clone() for _, p in params])
    model.zero_grad()
    with per_example_grads(model):
        means, _ = sequence_mean_losses(model, pad_collate(items))
        means.sum().backward()
        samples = take_grad_samples(params, len(items))
    assert all(s.dtype == torch.float64 for s in samples)
    worst = max(float((samples[k][i] - expected[i][k]).abs().max()) for i in range(len(items))
                for k in range(len(params)))
    assert worst < 1e-6
    assert all(p.grad is None and getattr(p, "grad_sample", None) is None for _, p in params), "hooks cleaned up"
    assert not any(hasattr(m, "activations") for m in model.modules())


def test_dp_step_is_clipped_sum_plus_noise_over_expected_batch(tiny_model_dir):
    model = _lora(tiny_model_dir, torch.float64)
    items = synthetic_items(8, model.config.vocab_size)
    cfg = dp_config({"batch_size": 4}, noise_multiplier=0.0, max_grad_norm=0.05)
    strategy = DPStrategy(cfg)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    _, _, source = strategy.setup(model, optimizer, EpochBatches(items, 4, pad_collate))
    micro = [source.batch(0, 0)]
    strategy.accumulate_gradients(model, micro, torch.device("cpu"))
    strategy.after_backward(model)
    params = trainable_parameters(model)
    got = [p.grad.clone() for _, p in params]
    expected = [torch.zeros_like(p) for _, p in params]
    for item in micro[0]["items"]:  # clip each example's own gradient by hand
        model.zero_grad()
        means, _ = sequence_mean_losses(model, pad_collate([item]))
        means.sum().backward()
        grads = [p.grad.detach().clone() for _, p in params]
        norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads))
        factor = min(1.0, 0.05 / (float(norm) + 1e-6))
        assert norm > 0.05, "the clip must bite for this check to mean anything"
        for total, g in zip(expected, grads, strict=True):
            total += factor * g
    assert micro[0]["items"], "the draw is not empty"
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e / 4.0, atol=1e-6, rtol=1e-5)
    assert strategy.steps == 1 and strategy.metrics()["clipped_share"] == 1.0


def test_noise_has_the_configured_scale(tiny_model_dir):
    model = _lora(tiny_model_dir)
    items = synthetic_items(8, model.config.vocab_size)
    strategy = DPStrategy(dp_config({"batch_size": 4}, noise_multiplier=2.0, max_grad_norm=0.5))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    _, _, source = strategy.setup(model, optimizer, EpochBatches(items, 4, pad_collate))
    strategy.accumulate_gradients(model, [{"items": []}], torch.device("cpu"))  # an empty draw: noise only
    strategy.after_backward(model)
    noise = torch.cat([p.grad.flatten() for _, p in trainable_parameters(model)]) * 4.0  # undo / expected size
    assert noise.numel() > 1000
    assert abs(float(noise.std()) - 2.0 * 0.5) < 0.05 and abs(float(noise.mean())) < 0.05


def test_dp_training_moves_adapters_and_leaves_frozen_weights_bytewise(tiny_model_dir, tmp_path):
    model = _lora(tiny_model_dir)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = trainable(model)
    items = synthetic_items(12, model.config.vocab_size)
    cfg = dp_config({"max_steps": 4, "grad_accum_steps": 2})
    strategy = DPStrategy(cfg)
    run = RunDir.create(tmp_path, {}, run_id="dp")
    result = train(model, items, items[:2], cfg.train, run, torch.device("cpu"), None, pad_collate,
                   strategy=strategy, seed=0)
    after = dict(model.named_parameters())
    for name, value in before.items():
        assert not torch.equal(value, after[name]), f"{name} did not train"
    for name, value in frozen.items():
        assert torch.equal(value, after[name]), f"frozen {name} changed"
    assert strategy.steps == 4 == result.steps, "one accountant step per optimizer step, not per micro-batch"
    assert not hasattr(model, "autograd_grad_sample_hooks"), "Opacus' hooks are removed after the last step"
    assert not any(hasattr(p, "grad_sample") or hasattr(p, "_forward_counter") for p in model.parameters())
    assert strategy.history == [(1.0, 2 * 2 / 12, 4)]  # batch_size 2 x 2 micro-batches of 12
    logged = [r for r in run.read_metrics() if "epsilon" in r]
    assert [r["step"] for r in logged] == [1, 2, 3, 4]
    assert all(a["epsilon"] < b["epsilon"] for a, b in zip(logged, logged[1:], strict=False))
    assert logged[-1]["epsilon"] == pytest.approx(epsilon_spent([(1.0, 4 / 12, 4)], 1e-5, "rdp"))


def test_grad_accumulation_equals_one_large_batch(tiny_model_dir, tmp_path):
    weights, strategies = [], []
    # one pass per draw vs two micro-batches split further into passes of one example each
    for name, overrides, cap in (("big", {"batch_size": 4, "grad_accum_steps": 1}, None),
                                 ("accum", {"batch_size": 2, "grad_accum_steps": 2}, 1)):
        model = _lora(tiny_model_dir, torch.float64)
        items = synthetic_items(12, model.config.vocab_size)
        cfg = dp_config({"max_steps": 3, **overrides}, max_physical_batch_size=cap)
        strategies.append(DPStrategy(cfg))
        train(model, items, None, cfg.train, RunDir.create(tmp_path, {}, run_id=name), torch.device("cpu"), None,
              pad_collate, strategy=strategies[-1], seed=0)
        weights.append(trainable(model))
    assert strategies[0].history == strategies[1].history == [(1.0, 4 / 12, 3)]
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], atol=1e-6, rtol=1e-6)


def test_poisson_sampler_statistics_and_determinism():
    items = list(range(1000))
    source = PoissonBatches(items, 0.05, collate=list, seed=11, grad_accum_steps=3)
    draws = [source.sample(step) for step in range(400)]
    sizes = torch.tensor([len(d) for d in draws], dtype=torch.float64)
    assert abs(float(sizes.mean()) - 50) < 3 * math.sqrt(1000 * 0.05 * 0.95 / 400)
    assert float(sizes.var()) == pytest.approx(1000 * 0.05 * 0.95, rel=0.2)  # binomial, not fixed-size
    counts = torch.zeros(1000)
    for d in draws:
        counts[d] += 1
    assert float(counts.mean()) == pytest.approx(400 * 0.05, rel=0.02)  # each example joins at rate q
    again = PoissonBatches(items, 0.05, collate=list, seed=11, grad_accum_steps=3)
    assert again.sample(123) == draws[123], "a pure function of (seed, step): resume redraws the same batch"
    assert PoissonBatches(items, 0.05, collate=list, seed=12).sample(123) != draws[123]
    assert source.steps_per_epoch() == 20 and source.num_batches() == 60
    parts = [source.batch(1, 3 + j)["items"] for j in range(3)]  # step 21 = epoch 1, micro-batches 3..5
    assert sorted(i for part in parts for i in part) == source.sample(21)


def test_dp_refuses_a_sampler_it_cannot_account(tiny_model_dir):
    class FixedShuffled:
        def num_batches(self) -> int:
            return 3

        def batch(self, epoch: int, index: int) -> dict:
            return {}

    model = _lora(tiny_model_dir)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with pytest.raises(ConfigError, match="Poisson sampling"):
        DPStrategy(dp_config()).setup(model, optimizer, FixedShuffled())  # type: ignore[arg-type]
    from tunesmith.encode.pack import PackedRow

    packed = EpochBatches([PackedRow()], 2, pad_collate)
    with pytest.raises(ConfigError, match="encode.packing"):
        DPStrategy(dp_config()).setup(model, optimizer, packed)
    with pytest.raises(ConfigError, match="privacy.delta"):
        DPStrategy(dp_config(delta=0.2)).setup(model, optimizer, EpochBatches(list(range(10)), 2, pad_collate))
    stale = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1)
    with pytest.raises(ConfigError, match="optimizer does not hold"):
        DPStrategy(dp_config()).setup(model, stale, EpochBatches(list(range(10)), 2, pad_collate))


def test_target_epsilon_calibrates_the_noise_at_or_below_budget(tiny_model_dir):
    model = _lora(tiny_model_dir)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    cfg = dp_config({"batch_size": 2, "max_steps": 50}, noise_multiplier=None, target_epsilon=3.0)
    strategy = DPStrategy(cfg)
    strategy.setup(model, optimizer, EpochBatches(list(range(40)), 2, pad_collate))
    assert strategy.sample_rate == 2 / 40
    spent = epsilon_spent([(strategy.noise_multiplier, 2 / 40, 50)], 1e-5, "rdp")
    assert 3.0 - 0.05 < spent <= 3.0


class Interrupted(Exception):
    pass


def test_dp_run_resumes_bitwise_after_interruption(tiny_model_dir, tmp_path, monkeypatch):
    def run(run_id: str, **overrides):
        model = _lora(tiny_model_dir)
        items = synthetic_items(10, model.config.vocab_size)
        cfg = dp_config({"max_steps": 6, "grad_accum_steps": 2, "save_every_steps": 1, **overrides},
                        secret_seed=None)
        strategy = DPStrategy(cfg)
        result = train(model, items, items[:2], cfg.train, RunDir.create(tmp_path, {}, run_id=run_id),
                       torch.device("cpu"), None, pad_collate, strategy=strategy, seed=3)
        return model, strategy, result

    reference, ref_strategy, _ = run("reference")
    calls = {"n": 0}
    original = DPStrategy.after_backward

    def crash_on_step_4(self, model):
        calls["n"] += 1
        if calls["n"] == 4:
            raise Interrupted
        return original(self, model)

    monkeypatch.setattr(DPStrategy, "after_backward", crash_on_step_4)
    with pytest.raises(Interrupted):
        run("resumed")
    monkeypatch.setattr(DPStrategy, "after_backward", original)
    # the resumed process draws a new secret seed, and must take the checkpoint's instead
    resumed, strategy, result = run("resumed", resume="must")
    assert result.resumed_from_step == 3
    assert strategy.history == ref_strategy.history and strategy.steps == 6
    # both runs drew their own secret seed: replay the reference with the interrupted run's seed to compare
    reference2, _, _ = _replay_with_seed(tiny_model_dir, tmp_path, strategy.secret_seed)
    for name, value in trainable(reference2).items():
        assert torch.equal(value, dict(resumed.named_parameters())[name]), f"{name} differs after resume"
    assert strategy.secret_seed != ref_strategy.secret_seed
    assert any(not torch.equal(v, dict(reference.named_parameters())[k]) for k, v in trainable(resumed).items())


def _replay_with_seed(tiny_model_dir, tmp_path, secret_seed: int):
    model = _lora(tiny_model_dir)
    items = synthetic_items(10, model.config.vocab_size)
    cfg = dp_config({"max_steps": 6, "grad_accum_steps": 2, "save_every_steps": 1}, secret_seed=secret_seed)
    strategy = DPStrategy(cfg)
    result = train(model, items, items[:2], cfg.train, RunDir.create(tmp_path, {}, run_id="replay"),
                   torch.device("cpu"), None, pad_collate, strategy=strategy, seed=3)
    return model, strategy, result
