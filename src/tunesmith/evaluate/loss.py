"""Held-out loss and perplexity over labelled batches (the same batches training uses).

Batch contract: `input_ids` (batch, seq), `labels` (batch, seq) aligned with `input_ids` and -100 where no loss
goes (the model shifts them, as in Hugging Face), `position_ids` (batch, seq; restarting at 0 for each packed
example), optional `attention_mask`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any


def mean_target_loss(model: Any, batches: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
    """Token-weighted mean cross-entropy over every loss token of every batch, and `exp` of it (perplexity).

    Token-weighted, not batch-averaged: a batch with few answer tokens must not count as much as a full one.
    """
    import torch

    # Why the training package's loss: training and evaluation must measure the same quantity.
    from tunesmith.train.loss import causal_lm_loss

    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                on_device = {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
                loss, n_tokens = causal_lm_loss(model, on_device)
                total += float(loss) * int(n_tokens)
                count += int(n_tokens)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError(
            "no loss tokens in the evaluation batches (every label is -100); check the loss mask and that the "
            "validation split is not empty"
        )
    mean = total / count
    return mean, math.exp(min(mean, 700.0))  # why the cap: exp overflows a float past ~709
