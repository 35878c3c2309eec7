"""Saving adapters, loading them back with plain peft, and the verified merged export."""

from __future__ import annotations

import pytest

from tunesmith.config.schema import AdapterConfig, ModelConfig
from tunesmith.models.adapters import apply_adapter
from tunesmith.models.export import ExportError, export_merged, load_tuned, save_adapter
from tunesmith.models.load import load_model_and_tokenizer


def _perturb(model) -> None:
    """Move the adapter off its identity init, as training would."""
    import torch

    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)


def _logits(model, tokenizer):
    import torch

    ids = torch.tensor([tokenizer("Play some jazz music from the seventies.")["input_ids"]])
    with torch.no_grad():
        return model.eval()(input_ids=ids).logits


@pytest.fixture()
def base_cfg(tiny_model_dir) -> ModelConfig:
    return ModelConfig(source=str(tiny_model_dir))


@pytest.mark.parametrize("method", ["lora", "dora", "ia3"])
def test_saved_adapter_reloads_with_plain_peft(method, base_cfg, tmp_path) -> None:
    import torch
    from peft import PeftModel

    base, tokenizer = load_model_and_tokenizer(base_cfg)
    base_logits = _logits(base, tokenizer)
    model = apply_adapter(base, AdapterConfig(method=method, r=4))
    _perturb(model)
    expected = _logits(model, tokenizer)
    assert not torch.allclose(expected, base_logits, atol=1e-3)  # the adapter changes the output
    folder = save_adapter(model, tmp_path / "adapter", tokenizer)
    assert (folder / "adapter_model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert not list(folder.glob("*.bin"))
    fresh, _ = load_model_and_tokenizer(base_cfg)
    reloaded = PeftModel.from_pretrained(fresh, str(folder))
    torch.testing.assert_close(_logits(reloaded, tokenizer), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(_logits(load_tuned(base_cfg, folder), tokenizer), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["lora", "dora", "ia3"])
def test_export_merged_equals_adapter_logits(method, base_cfg, tmp_path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    base, tokenizer = load_model_and_tokenizer(base_cfg)
    model = apply_adapter(base, AdapterConfig(method=method, r=4))
    _perturb(model)
    expected = _logits(model, tokenizer)
    save_adapter(model, tmp_path / "adapter", tokenizer)
    report = export_merged(base_cfg, tmp_path / "adapter", tmp_path / "merged")
    assert report.max_abs_diff < 1e-4 and report.reloaded_max_abs_diff < 1e-4
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not any("lora" in n for n, _ in merged.named_parameters())  # a plain model, no peft needed
    torch.testing.assert_close(_logits(merged, tokenizer), expected, atol=1e-4, rtol=0)
    assert (tmp_path / "merged" / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp folder left


def test_full_finetune_saves_whole_model(base_cfg, tmp_path) -> None:
    import torch

    base, tokenizer = load_model_and_tokenizer(base_cfg)
    model = apply_adapter(base, AdapterConfig(method="full"))
    _perturb(model)
    expected = _logits(model, tokenizer)
    folder = save_adapter(model, tmp_path / "full", tokenizer)
    assert (folder / "model.safetensors").is_file()
    torch.testing.assert_close(_logits(load_tuned(base_cfg, folder), tokenizer), expected, atol=1e-5, rtol=0)


def test_prefix_tuning_cannot_be_merged(base_cfg, tmp_path) -> None:
    base, tokenizer = load_model_and_tokenizer(base_cfg)
    model = apply_adapter(base, AdapterConfig(method="prefix", num_virtual_tokens=4))
    save_adapter(model, tmp_path / "prefix", tokenizer)
    with pytest.raises(ExportError, match="prefix"):
        export_merged(base_cfg, tmp_path / "prefix", tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_export_refuses_a_merge_that_changes_logits(base_cfg, tmp_path, monkeypatch) -> None:
    import torch
    from peft.tuners.lora import LoraModel

    base, tokenizer = load_model_and_tokenizer(base_cfg)
    model = apply_adapter(base, AdapterConfig(method="lora", r=4))
    _perturb(model)
    save_adapter(model, tmp_path / "adapter", tokenizer)
    real_merge = LoraModel.merge_and_unload

    def broken_merge(self, *args, **kwargs):
        merged = real_merge(self, *args, **kwargs)
        with torch.no_grad():
            merged.model.layers[0].self_attn.q_proj.weight.mul_(1.5)
        return merged

    monkeypatch.setattr(LoraModel, "merge_and_unload", broken_merge)
    with pytest.raises(ExportError, match="differ"):
        export_merged(base_cfg, tmp_path / "adapter", tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
