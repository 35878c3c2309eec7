"""Scoring text with a causal language model, for the optional perplexity check of the `outliers` filter.

The filter only sees a `TextScorer`: a function from texts to their mean per-token negative log-likelihood (the
log of perplexity). The recipe builds one from the base model with `causal_lm_scorer` and hands it to the
vetting context, so the filter never loads a model itself and tests can pass a tiny one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

TextScorer = Callable[[list[str]], "np.ndarray"]
"""texts -> (n,) mean token negative log-likelihood in nats; higher is more surprising to the model."""


def causal_lm_scorer(model: Any, tokenizer: Any, batch_size: int = 16, max_tokens: int = 512) -> TextScorer:
    """A `TextScorer` backed by a Hugging Face causal LM and its tokenizer (run without gradients, in eval mode)."""

    def score(texts: list[str]) -> np.ndarray:
        import numpy as np

        # without a pad token, batches cannot be padded: score one text at a time
        step = batch_size if tokenizer.pad_token_id is not None else 1
        losses = [_mean_nll(model, tokenizer, texts[i : i + step], max_tokens) for i in range(0, len(texts), step)]
        return np.concatenate(losses) if losses else np.zeros(0, dtype=np.float32)

    return score


def _mean_nll(model: Any, tokenizer: Any, texts: list[str], max_tokens: int) -> np.ndarray:
    import torch

    batch = tokenizer(texts, return_tensors="pt", padding=len(texts) > 1, truncation=True, max_length=max_tokens)
    device = next(model.parameters()).device
    input_ids = batch["input_ids"].to(device)  # (batch, seq)
    mask = batch["attention_mask"].to(device)  # (batch, seq)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=mask).logits.float()  # (batch, seq, vocab)
    if was_training:
        model.train()
    # token t is predicted from the tokens before it
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), input_ids[:, 1:], reduction="none"
    )  # (batch, seq-1)
    target_mask = mask[:, 1:].float()
    per_text = (nll * target_mask).sum(1) / target_mask.sum(1).clamp(min=1.0)
    return per_text.cpu().numpy()
