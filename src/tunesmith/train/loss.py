"""Causal-LM loss over target tokens only, without materialising the full (batch, seq, vocab) logits.

The output head of a small model dominates memory and time: SmolLM2-135M has a 49k vocabulary, so the logits of
one 512-token row weigh more than the whole decoder's activations. With answer-only loss most positions carry
label -100, so we run the decoder body, keep only the hidden states whose *next* token is a target, and apply the
head + cross-entropy to those in chunks (each chunk recomputed in the backward pass, so at most one chunk of
logits is alive at a time).

Models where the body and head cannot be called apart (peft prompt learning injects past key values in the
wrapper's forward; heads with logit soft-capping or scaling) fall back to `model(**batch, labels=...)`.
`split_body_and_head` decides which path a model takes.

Shapes: B batch, T sequence, H hidden, V vocabulary, N target positions in the batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunesmith.encode.pack import count_target_tokens

if TYPE_CHECKING:
    import torch
    from torch import nn

IGNORE_INDEX = -100
_HEAD_MODIFIERS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale", "logits_scaling")


def split_body_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """The decoder body (returns hidden states) and the output head of `model`, or None to use the fallback.

    Works for plain HF causal LMs and for peft models whose adapters live inside the modules (LoRA, DoRA, IA3):
    the injected layers stay active because we call the same modules the wrapper would.
    """
    from torch import nn

    base = model
    if hasattr(model, "get_base_model") and hasattr(model, "peft_config"):
        config = model.active_peft_config  # type: ignore[attr-defined]
        if getattr(config, "is_prompt_learning", False):
            return None  # the wrapper's forward adds virtual tokens / past key values: must go through it
        base = model.get_base_model()  # type: ignore[operator]
    get_head = getattr(base, "get_output_embeddings", None)
    get_body = getattr(base, "get_decoder", None)
    if get_head is None or get_body is None:
        return None
    head, body = get_head(), get_body()
    if not isinstance(head, nn.Linear) or body is None or body is base:
        return None
    hf_config = getattr(base, "config", None)
    if any(getattr(hf_config, name, None) not in (None, 1.0) for name in _HEAD_MODIFIERS):
        return None  # the model transforms logits after the head; only its own forward knows how
    return body, head


def causal_lm_loss(
    model: nn.Module, batch: dict[str, Any], chunk_tokens: int = 1024, reduction: str = "mean"
) -> tuple[torch.Tensor, int]:
    """Cross-entropy over target tokens: (loss, number of target tokens).

    `reduction="mean"` equals the Hugging Face loss (mean over target tokens); `"sum"` is what gradient
    accumulation needs (the loop divides by the target tokens of the whole optimizer step). A batch with no
    target token gives a zero loss that still backpropagates.
    A batch may carry `inputs_embeds` (B, T, H); the forward then uses them instead of `input_ids` (the ids
    still give the shape and the labels).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    parts = split_body_and_head(model)
    if parts is None:
        loss_sum, n_targets = _fallback_loss_sum(model, batch)
    else:
        loss_sum, n_targets = _chunked_loss_sum(parts[0], parts[1], batch, chunk_tokens)
    if reduction == "mean":
        return loss_sum / max(n_targets, 1), n_targets
    return loss_sum, n_targets


def _chunked_loss_sum(
    body: nn.Module, head: nn.Module, batch: dict[str, Any], chunk_tokens: int
) -> tuple[torch.Tensor, int]:
    import torch
    from torch.utils.checkpoint import checkpoint

    # adversarial training passes perturbed `inputs_embeds` (B, T, H) in place of the ids
    key = "inputs_embeds" if "inputs_embeds" in batch else "input_ids"
    tokens = {key: batch[key]}
    hidden = body(
        **tokens,
        attention_mask=batch.get("attention_mask"),
        position_ids=batch.get("position_ids"),
        use_cache=False,
    ).last_hidden_state  # (B, T, H)
    targets = batch["labels"][:, 1:]  # (B, T-1): the token each position predicts
    keep = targets != IGNORE_INDEX
    selected = hidden[:, :-1][keep]  # (N, H)
    wanted = targets[keep]  # (N,)
    n_targets = int(wanted.numel())
    if n_targets == 0:
        return hidden.sum() * 0.0, 0  # keeps the graph so backward() works on an all-prompt batch
    chunk_tokens = max(1, chunk_tokens)
    recompute = torch.is_grad_enabled() and n_targets > chunk_tokens
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, n_targets, chunk_tokens):
        h, y = selected[start : start + chunk_tokens], wanted[start : start + chunk_tokens]
        # recompute frees each chunk's (n, V) logits after use; they are rebuilt in the backward pass
        part = checkpoint(_head_ce_sum, head, h, y, use_reentrant=False) if recompute else _head_ce_sum(head, h, y)
        total = total + part
    return total, n_targets


def _head_ce_sum(head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    import torch.nn.functional as F

    logits = head(hidden).float()  # (n, V); float like HF's loss, also under bf16 autocast
    return F.cross_entropy(logits, targets, reduction="sum")


def _fallback_loss_sum(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
    n_targets = count_target_tokens(batch)
    skip = {"labels", "input_ids"} if "inputs_embeds" in batch else {"labels"}
    inputs = {k: v for k, v in batch.items() if k not in skip}
    out = model(**inputs, labels=batch["labels"], use_cache=False)
    if n_targets == 0:
        return out.logits.sum() * 0.0, 0  # HF returns nan for an empty mean
    return out.loss.float() * n_targets, n_targets
