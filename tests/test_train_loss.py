"""The chunked target-only loss equals the Hugging Face reference loss (value and gradients)."""

from __future__ import annotations

import pytest
import torch

from tunesmith.encode.pack import count_target_tokens
from tunesmith.train.loss import causal_lm_loss, split_body_and_head


def _packed_batch(vocab: int) -> dict[str, torch.Tensor]:
    """Two rows, each packing two examples; loss only on the second half of each example."""
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(3, vocab, (2, 14), generator=g)
    labels = input_ids.clone()
    position_ids = torch.cat([torch.arange(6), torch.arange(8)]).repeat(2, 1)
    labels[:, :3] = -100  # prompt of example 1
    labels[:, 6:10] = -100  # prompt of example 2
    labels[1, 12:] = -100  # a trailing non-target tail
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


def _padded_batch(vocab: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(2)
    input_ids = torch.randint(3, vocab, (2, 10), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 7:] = 0
    labels = input_ids.clone()
    labels[:, :4] = -100
    labels[attention_mask == 0] = -100
    position_ids = torch.arange(10).repeat(2, 1)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids,
            "attention_mask": attention_mask}


def _reference(model, batch):
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    return model(**inputs, labels=batch["labels"], use_cache=False).loss


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _lora(model):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    peft_model = get_peft_model(model, config)
    for name, p in peft_model.named_parameters():  # LoRA B starts at 0; make the adapter matter
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return peft_model


@pytest.mark.parametrize("make_batch", [_packed_batch, _padded_batch])
@pytest.mark.parametrize("chunk_tokens", [3, 1024])
@pytest.mark.parametrize("with_lora", [False, True])
def test_loss_and_grads_equal_hf_reference(tiny_model, make_batch, chunk_tokens, with_lora):
    model = _lora(tiny_model) if with_lora else tiny_model
    assert split_body_and_head(model) is not None, "the fast path must be used for plain and LoRA models"
    batch = make_batch(tiny_model.config.vocab_size)

    ref = _reference(model, batch)
    ref.backward()
    ref_grads = _grads(model)
    model.zero_grad(set_to_none=True)

    loss, n = causal_lm_loss(model, batch, chunk_tokens=chunk_tokens)
    loss.backward()
    assert n == count_target_tokens(batch)
    assert chunk_tokens > n or n > 2 * chunk_tokens, "the small chunk size must really split into chunks"
    assert abs(loss.item() - ref.item()) < 1e-5
    grads = _grads(model)
    assert grads.keys() == ref_grads.keys() and grads
    for name, g in grads.items():
        torch.testing.assert_close(g, ref_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_sum_reduction_is_mean_times_tokens(tiny_model):
    batch = _packed_batch(tiny_model.config.vocab_size)
    mean, n = causal_lm_loss(tiny_model, batch)
    total, n2 = causal_lm_loss(tiny_model, batch, reduction="sum")
    assert n == n2 == 12
    assert abs(total.item() - mean.item() * n) < 1e-4


def test_batch_without_targets_gives_zero_loss_that_backpropagates(tiny_model):
    batch = _packed_batch(tiny_model.config.vocab_size)
    batch["labels"][:] = -100
    loss, n = causal_lm_loss(tiny_model, batch)
    loss.backward()
    assert n == 0 and loss.item() == 0.0


def test_prefix_tuning_falls_back_to_the_model_forward(tiny_model):
    from peft import PrefixTuningConfig, get_peft_model

    model = get_peft_model(tiny_model, PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
    assert split_body_and_head(model) is None
    batch = _padded_batch(tiny_model.config.vocab_size)
    batch.pop("position_ids")
    loss, n = causal_lm_loss(model, batch)
    loss.backward()
    assert n == count_target_tokens(batch)
    assert abs(loss.item() - _reference(model, batch).item()) < 1e-6
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)


def test_bf16_autocast_is_close_to_fp32(tiny_model):
    batch = _packed_batch(tiny_model.config.vocab_size)
    fp32, _ = causal_lm_loss(tiny_model, batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16, _ = causal_lm_loss(tiny_model, batch, chunk_tokens=4)
    assert bf16.dtype == torch.float32
    assert abs(bf16.item() - fp32.item()) < 0.05
