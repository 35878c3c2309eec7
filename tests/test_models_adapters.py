"""Every PEFT method applies to the tiny model and leaves only its own parameters trainable."""

from __future__ import annotations

import pytest

from tunesmith.config.schema import AdapterConfig
from tunesmith.core.errors import CheckpointError, DependencyError
from tunesmith.core.registry import UnknownNameError
from tunesmith.models.adapters import (
    PEFT_METHODS,
    apply_adapter,
    count_parameters,
    find_feedforward_targets,
    find_linear_targets,
    load_trainable_state_dict,
    trainable_state_dict,
)

LLAMA_LINEARS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
# the substring of a parameter name that marks it as belonging to each method
ADAPTER_MARK = {"lora": "lora_", "dora": "lora_", "ia3": "ia3_l", "prefix": "prompt_encoder"}


def test_find_linear_targets_excludes_output_head(tiny_model) -> None:
    assert find_linear_targets(tiny_model) == LLAMA_LINEARS


def test_untied_head_is_excluded_too(tiny_tokenizer) -> None:
    from tunesmith.testing.tiny import build_tiny_llama

    model = build_tiny_llama(tiny_tokenizer)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = type(model.lm_head.weight)(model.lm_head.weight.detach().clone())
    assert model.lm_head.weight is not model.get_input_embeddings().weight
    assert "lm_head" not in find_linear_targets(model)


def test_feedforward_targets_are_mlp_down_projections(tiny_model) -> None:
    assert find_feedforward_targets(tiny_model, LLAMA_LINEARS) == ["down_proj"]
    assert find_feedforward_targets(tiny_model, ["k_proj", "v_proj"]) == []


@pytest.mark.parametrize("method", ["lora", "dora", "ia3", "prefix"])
def test_peft_method_trains_only_adapter_params(method, tiny_model, tiny_tokenizer) -> None:
    import torch

    _, base_total = count_parameters(tiny_model)
    model = apply_adapter(tiny_model, AdapterConfig(method=method, r=4, alpha=8, num_virtual_tokens=4))
    trainable, total = count_parameters(model)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(ADAPTER_MARK[method] in n for n in names)
    assert 0 < trainable < base_total and total == base_total + trainable
    # adapters reach every auto-detected linear layer (lora/dora), and the model still trains end to end
    if method in ("lora", "dora"):
        adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
        assert adapted == set(LLAMA_LINEARS)
    ids = torch.tensor([tiny_tokenizer("Play some jazz music.")["input_ids"]])
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)


def test_full_finetune_trains_everything(tiny_model) -> None:
    model = apply_adapter(tiny_model, AdapterConfig(method="full"))
    trainable, total = count_parameters(model)
    assert trainable == total > 0
    state = trainable_state_dict(model)
    assert "lm_head.weight" not in state or "model.embed_tokens.weight" not in state  # tied: stored once


def test_explicit_target_modules_are_respected(tiny_model) -> None:
    model = apply_adapter(tiny_model, AdapterConfig(method="lora", r=2, target_modules=["q_proj", "v_proj"]))
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad}
    assert adapted == {"q_proj", "v_proj"}


def test_qlora_without_cuda_or_bitsandbytes_says_why(tiny_model) -> None:
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes"):
        pytest.skip("CUDA and bitsandbytes present")
    with pytest.raises(DependencyError, match="qlora"):
        apply_adapter(tiny_model, AdapterConfig(method="qlora"))


def test_unknown_method_suggests_close_name(tiny_model) -> None:
    with pytest.raises(UnknownNameError, match="lora"):
        apply_adapter(tiny_model, AdapterConfig(method="loar"))  # type: ignore[arg-type]
    assert PEFT_METHODS.names() == ["dora", "full", "ia3", "lora", "prefix", "qlora"]
    assert not PEFT_METHODS.get("prefix").supports_packing


@pytest.mark.parametrize("method", ["lora", "full"])
def test_trainable_state_round_trip(method, tiny_model_dir, tmp_path) -> None:
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    def fresh():
        return apply_adapter(
            AutoModelForCausalLM.from_pretrained(tiny_model_dir), AdapterConfig(method=method, r=2)
        )

    trained = fresh()
    with torch.no_grad():
        for p in trained.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.01)
    save_file({k: v.contiguous() for k, v in trainable_state_dict(trained).items()}, tmp_path / "s.safetensors")
    other = fresh()
    load_trainable_state_dict(other, load_file(tmp_path / "s.safetensors"))
    for (name, a), (_, b) in zip(trained.named_parameters(), other.named_parameters(), strict=True):
        assert torch.equal(a, b), name
    with pytest.raises(CheckpointError, match="missing"):
        load_trainable_state_dict(other, {})


def test_place_for_training_stores_frozen_linears_in_bf16_with_identical_loss(tiny_model) -> None:
    import copy

    import torch

    from tunesmith.config.schema import AdapterConfig
    from tunesmith.models.adapters import apply_adapter, place_for_training
    from tunesmith.train.loss import causal_lm_loss

    model = apply_adapter(tiny_model, AdapterConfig(method="lora", r=4))
    for name, p in model.named_parameters():  # non-zero LoRA B so the adapter path counts
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    reference = copy.deepcopy(model)
    placed = place_for_training(model, "lora", torch.device("cpu"), torch.bfloat16)
    dtypes = {n: p.dtype for n, p in placed.named_parameters()}
    assert all(dtypes[n] == torch.float32 for n in dtypes if "lora_" in n)  # trained weights stay fp32
    assert dtypes["base_model.model.model.embed_tokens.weight"] == torch.float32  # tied to the head
    assert any(d == torch.bfloat16 for n, d in dtypes.items() if "q_proj.base_layer" in n)
    ids = torch.randint(0, 400, (2, 12))
    batch = {"input_ids": ids, "labels": ids.clone(), "position_ids": torch.arange(12).repeat(2, 1)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, _ = causal_lm_loss(reference, batch)
        got, _ = causal_lm_loss(placed, batch)
    assert torch.equal(expected, got)  # the cast autocast would do anyway, done once
    # other methods keep an fp32 base (DoRA, for one, reads its base weight outside the matmul for its norms)
    dora = place_for_training(copy.deepcopy(reference), "dora", torch.device("cpu"), torch.bfloat16)
    assert all(p.dtype == torch.float32 for p in dora.parameters())
