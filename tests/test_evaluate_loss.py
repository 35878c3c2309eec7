"""Held-out loss: token-weighted mean cross-entropy that agrees with Hugging Face's own loss."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tunesmith.evaluate.loss import mean_target_loss


def _batch(rows: list[list[int]], loss_from: list[int], pad_id: int) -> dict[str, Any]:
    """Right-padded batch; labels are -100 before `loss_from[i]` and on padding."""
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), -100)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (row, start) in enumerate(zip(rows, loss_from, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        labels[i, start : len(row)] = torch.tensor(row[start:])
        attention_mask[i, : len(row)] = 1
    position_ids = torch.arange(width).expand(len(rows), width).clone()
    return {
        "input_ids": input_ids,
        "labels": labels,
        "position_ids": position_ids,
        "attention_mask": attention_mask,
    }


def _hf_loss_and_count(model: Any, batch: dict[str, Any]) -> tuple[float, int]:
    import torch

    with torch.no_grad():
        loss = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).loss
    return float(loss), int((batch["labels"][:, 1:] != -100).sum())


def test_loss_is_token_weighted_mean_of_hf_losses(tiny_model: Any, tiny_tokenizer: Any) -> None:
    ids = [tiny_tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("Play some jazz music.", "Rate it")]
    pad = tiny_tokenizer.pad_token_id
    first = _batch([ids[0], ids[1]], loss_from=[2, 1], pad_id=pad)
    second = _batch([ids[0]], loss_from=[len(ids[0]) - 2], pad_id=pad)  # few loss tokens: must weigh less
    tiny_model.eval()
    (l1, n1), (l2, n2) = _hf_loss_and_count(tiny_model, first), _hf_loss_and_count(tiny_model, second)
    assert n1 != n2 and abs(l1 - l2) > 1e-3  # else weighting would not be tested

    tiny_model.train()
    loss, perplexity = mean_target_loss(tiny_model, [first, second])
    assert loss == pytest.approx((l1 * n1 + l2 * n2) / (n1 + n2), rel=1e-5)
    assert perplexity == pytest.approx(math.exp(loss))
    assert tiny_model.training


def test_no_loss_tokens_is_an_error(tiny_model: Any, tiny_tokenizer: Any) -> None:
    ids = tiny_tokenizer("hello", add_special_tokens=False)["input_ids"]
    batch = _batch([ids], loss_from=[len(ids)], pad_id=tiny_tokenizer.pad_token_id)
    with pytest.raises(ValueError, match="no loss tokens"):
        mean_target_loss(tiny_model, [batch])
