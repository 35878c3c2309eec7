"""Strategy `adversarial`: bounded perturbations, frozen weights, loss ordering, training, exact resume."""

from __future__ import annotations

import pytest
import torch
from test_train_loop import lora_model, pad_collate, small_cfg, synthetic_items, trainable

from tunesmith.config.adversarial_schema import AdversarialConfig
from tunesmith.config.schema import Config
from tunesmith.core.errors import ConfigError
from tunesmith.track.run_dir import RunDir
from tunesmith.train.adversarial import AdversarialStrategy
from tunesmith.train.loop import train
from tunesmith.train.loss import causal_lm_loss
from tunesmith.train.strategy import make_strategy


def _strategy(**settings) -> AdversarialStrategy:
    cfg = Config()
    for key, value in settings.items():
        setattr(cfg.adversarial, key, value)
    return AdversarialStrategy(cfg)


def _batch(model, n: int = 4, seed: int = 0):
    return pad_collate(synthetic_items(n, model.config.vocab_size, seed=seed))


@pytest.mark.parametrize("method", ["pgd", "freelb", "fgsm"])
@pytest.mark.parametrize("norm", ["l2", "linf"])
@pytest.mark.parametrize("init", ["zero", "random"])
def test_perturbation_stays_within_the_bound_and_off_padding(tiny_model, method, norm, init):
    model = lora_model(tiny_model)
    batch = _batch(model)
    strategy = _strategy(method=method, norm=norm, init=init, epsilon=0.2, step_size=0.15, steps=3)
    out = strategy.losses(model, batch)
    embeds = model.get_input_embeddings()(batch["input_ids"]).detach()
    mask = batch["attention_mask"].bool()
    rms_norm = embeds[mask].norm(dim=-1).pow(2).mean().sqrt()
    expected_bound = 0.2 * (rms_norm if norm == "l2" else rms_norm / embeds.shape[-1] ** 0.5)
    assert torch.allclose(out.bound, expected_bound, rtol=1e-5)
    sizes = out.delta.norm(dim=-1) if norm == "l2" else out.delta.abs().amax(dim=-1)
    assert float(sizes.max()) <= float(out.bound) * (1 + 1e-5)
    assert float(sizes[mask].max()) > 0.5 * float(out.bound), "the ascent should move the tokens"
    assert torch.count_nonzero(out.delta[~mask]) == 0, "padding is never perturbed"


def test_absolute_epsilon_is_the_bound_itself(tiny_model):
    model = lora_model(tiny_model)
    out = _strategy(relative=False, epsilon=0.03, step_size=0.02, steps=2).losses(model, _batch(model))
    assert float(out.bound) == pytest.approx(0.03)
    assert float(out.delta.norm(dim=-1).max()) <= 0.03 * (1 + 1e-5)


def test_perturbation_is_no_parameter_and_base_weights_stay_frozen(tiny_model):
    model = lora_model(tiny_model)
    names_before = [n for n, _ in model.named_parameters()]
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    strategy = _strategy(method="freelb", steps=3)
    loss, n = strategy.compute_loss(model, _batch(model))
    assert all(p.grad is None for p in model.parameters()), "the ascent must not leave gradients on parameters"
    (loss / n).backward()
    assert [n for n, _ in model.named_parameters()] == names_before
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    optimizer.step()
    for name, before in frozen_before.items():
        assert torch.equal(before, dict(model.named_parameters())[name]), f"frozen {name} changed"


@pytest.mark.parametrize("method", ["pgd", "freelb", "fgsm"])
def test_adversarial_loss_is_at_least_the_clean_loss(tiny_model, method):
    model = lora_model(tiny_model).eval()  # no dropout: the same weights and the same function for both
    batch = _batch(model, n=6, seed=1)
    with torch.no_grad():
        reference, n_ref = causal_lm_loss(model, batch, reduction="sum")
        out = _strategy(method=method, epsilon=0.1, step_size=0.05, steps=3).losses(model, batch)
    assert out.n_targets == n_ref
    assert float(out.clean) == pytest.approx(float(reference), rel=1e-5), "clean pass equals the plain loss"
    assert float(out.adversarial) > float(out.clean)


def test_zero_weight_gives_exactly_the_plain_gradient(tiny_model):
    model = lora_model(tiny_model).eval()
    batch = _batch(model)
    loss, n = causal_lm_loss(model, batch, reduction="sum")
    (loss / n).backward()
    plain = {k: p.grad.clone() for k, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)
    loss, n = _strategy(weight=0.0).compute_loss(model, batch)
    (loss / n).backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, plain[name], rtol=1e-5, atol=1e-7)


def test_adversarial_training_moves_lora_and_lowers_the_loss(tiny_model, tmp_path):
    model = lora_model(tiny_model)
    items = synthetic_items(8, model.config.vocab_size)
    before = trainable(model)
    cfg = Config()
    cfg.adversarial.steps = 2
    strategy = make_strategy("adversarial", cfg)
    assert isinstance(strategy, AdversarialStrategy)
    run = RunDir.create(tmp_path, {"name": "adv"}, run_id="adv")
    cfg_train = small_cfg(max_steps=16, save_every_steps=16, learning_rate=3e-2, batch_size=4)
    result = train(model, items, None, cfg_train, run, torch.device("cpu"), None, pad_collate, strategy=strategy,
                   seed=0)
    rows = [r for r in result.metrics if "loss" in r]
    for key in ("clean_loss", "adv_loss"):  # each log line covers one of the two batches: compare pairs
        first, last = rows[0][key] + rows[1][key], rows[-2][key] + rows[-1][key]
        assert last < first - 0.4, f"{key} did not fall: {first / 2:.3f} -> {last / 2:.3f}"
    assert all(r["adv_loss"] >= r["clean_loss"] for r in rows)
    assert rows[0]["loss"] == pytest.approx(rows[0]["clean_loss"] + rows[0]["adv_loss"], rel=1e-6)
    after = trainable(model)
    assert all(not torch.equal(before[name], after[name]) for name in before)


def test_bad_settings_fail_naming_the_field():
    with pytest.raises(ConfigError, match=r"adversarial\.epsilon") as info:
        _strategy(epsilon=0.0, steps=0)
    assert "adversarial.steps" in str(info.value)
    assert AdversarialStrategy(None).settings == AdversarialConfig()


class Interrupted(Exception):
    pass


def _train_adv(tiny_model_dir, tmp_path, run_id: str, **overrides):
    from transformers import AutoModelForCausalLM

    model = lora_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), dropout=0.1)
    items = synthetic_items(10, model.config.vocab_size)
    cfg = Config()
    cfg.adversarial.init = "random"  # the strategy draws random numbers: they must resume exactly too
    settings = {"max_steps": 6, "grad_accum_steps": 2, "save_every_steps": 1, "log_every_steps": 2}
    run = RunDir.create(tmp_path, {"id": run_id}, run_id=run_id)
    result = train(model, items, items[:2], small_cfg(**{**settings, **overrides}), run, torch.device("cpu"), None,
                   pad_collate, strategy=AdversarialStrategy(cfg), seed=3)
    return model, result


def test_interrupted_adversarial_run_resumes_bitwise(tiny_model_dir, tmp_path, monkeypatch):
    reference, ref_result = _train_adv(tiny_model_dir, tmp_path, "reference")
    calls = {"n": 0}
    original = AdversarialStrategy.after_backward

    def crash_on_step_4(self, model):
        calls["n"] += 1
        if calls["n"] == 4:  # the checkpoint of step 3 holds a half-filled logging window
            raise Interrupted
        return original(self, model)

    monkeypatch.setattr(AdversarialStrategy, "after_backward", crash_on_step_4)
    with pytest.raises(Interrupted):
        _train_adv(tiny_model_dir, tmp_path, "resumed")
    monkeypatch.setattr(AdversarialStrategy, "after_backward", original)
    resumed, result = _train_adv(tiny_model_dir, tmp_path, "resumed", resume="must")
    assert result.resumed_from_step == 3
    ref_weights, got = trainable(reference), trainable(resumed)
    for name in ref_weights:
        assert torch.equal(ref_weights[name], got[name]), f"{name} differs after resume"
    keys = ("step", "clean_loss", "adv_loss")  # the strategy's running sums survive the interruption
    logged = [{k: r[k] for k in keys} for r in result.metrics if "loss" in r]
    assert logged == [{k: r[k] for k in keys} for r in ref_result.metrics if "loss" in r]
    assert result.val_loss == ref_result.val_loss
