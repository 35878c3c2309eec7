"""Per-token log-probabilities of encoded examples' target tokens (where training put its loss).

Log-softmax runs in fp32; the model runs in fp32, or under autocast when training left half-precision weights.

Two paths with the same numbers (tested):
- `target_logprobs`: padded batches; the output head runs only at target positions when the model's body and
  head can be called apart (as in `train.loss`), so a 49k vocabulary costs nothing at prompt positions.
- `shared_prefix_logprobs`: for many candidates that differ only at the end (the canary candidates share the
  prompt and "my PIN is"), the common prefix runs once and its key/value cache is reused for every candidate, so
  each candidate costs only its last few tokens.

Shapes: B batch, T sequence, S suffix, H hidden, V vocabulary.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

IGNORE_INDEX = -100


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def _autocast(model: Any) -> Any:
    """Autocast in the dtype of the model's half-precision weights, if any (training stores frozen LoRA base
    weights in bf16 under autocast, see `models.adapters.place_for_training`); else a no-op."""
    import contextlib

    import torch

    half = {p.dtype for p in model.parameters()} & {torch.bfloat16, torch.float16}
    if not half:
        return contextlib.nullcontext()
    return torch.autocast(_device(model).type, dtype=half.pop())


def _is_prompt_learning(model: Any) -> bool:
    config = getattr(model, "active_peft_config", None)
    return bool(getattr(config, "is_prompt_learning", False))


def target_logprobs(model: Any, examples: Sequence[Any], batch_size: int = 32) -> list[np.ndarray]:
    """For each example, the log-probabilities (nats) of its target tokens given everything before them."""
    import torch

    from tunesmith.train.loss import split_body_and_head

    parts = split_body_and_head(model)
    device = _device(model)
    results: list[np.ndarray] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _autocast(model):
            for start in range(0, len(examples), batch_size):
                chunk = examples[start:start + batch_size]
                width = max(len(e.input_ids) for e in chunk)
                ids = torch.zeros((len(chunk), width), dtype=torch.long)
                labels = torch.full((len(chunk), width), IGNORE_INDEX, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, example in enumerate(chunk):  # right padding: causal attention never sees it
                    n = len(example.input_ids)
                    ids[row, :n] = torch.tensor(example.input_ids)
                    labels[row, :n] = torch.tensor(example.labels)
                    mask[row, :n] = 1
                ids, labels, mask = ids.to(device), labels.to(device), mask.to(device)
                results.extend(_batch_logprobs(model, parts, ids, labels, mask))
    finally:
        model.train(was_training)
    return results


def _batch_logprobs(model: Any, parts: Any, ids: Any, labels: Any, mask: Any) -> list[np.ndarray]:
    import torch

    targets = labels[:, 1:]  # (B, T-1): the token each position predicts
    where = targets != IGNORE_INDEX
    if parts is None:
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]  # (B, T-1, V)
        chosen = logits[where].float()
    else:
        body, head = parts
        hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]  # (B, T-1, H)
        chosen = head(hidden[where]).float()  # (N, V): the head only where a target follows
    logprobs = torch.log_softmax(chosen, dim=-1).gather(1, targets[where].unsqueeze(1)).squeeze(1)
    counts = where.sum(dim=1).tolist()
    return [part.cpu().numpy().astype(np.float64) for part in torch.split(logprobs, counts)]


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every sequence shares, leaving at least one token of each as its suffix."""
    first = sequences[0]
    limit = min(len(s) for s in sequences) - 1
    length = 0
    while length < limit and all(s[length] == first[length] for s in sequences):
        length += 1
    return length


def shared_prefix_logprobs(model: Any, examples: Sequence[Any], batch_size: int = 64) -> list[np.ndarray]:
    """`target_logprobs` for examples that share a long token prefix, running that prefix once.

    Falls back to `target_logprobs` for models that carry their own cache (prefix tuning) or share no prefix.
    """
    import torch

    prefix_len = common_prefix_length([e.input_ids for e in examples]) if examples else 0
    if prefix_len < 2 or _is_prompt_learning(model):
        return target_logprobs(model, examples, batch_size)
    device = _device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), _autocast(model):
            prefix = torch.tensor([examples[0].input_ids[:prefix_len]], device=device)
            out = model(input_ids=prefix, use_cache=True)
            prefix_logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)  # (P, V); row i predicts token i+1
            results = []
            for start in range(0, len(examples), batch_size):
                chunk = examples[start:start + batch_size]
                suffix_logprobs = _suffix_logprobs(model, out.cache, chunk, prefix_len, device)
                for example, suffix_lp in zip(chunk, suffix_logprobs, strict=True):
                    results.append(_gather_targets(example, prefix_logprobs, suffix_lp, prefix_len))
    finally:
        model.train(was_training)
    return results


def _suffix_logprobs(model: Any, cache: Any, chunk: Sequence[Any], prefix_len: int, device: Any) -> Any:
    """(B, S, V) log-probs at the suffix positions of `chunk`, each continuing a copy of the prefix's cache."""
    import torch

    width = max(len(e.input_ids) for e in chunk) - prefix_len
    ids = torch.zeros((len(chunk), width), dtype=torch.long)
    for row, example in enumerate(chunk):  # right padding after the real tokens: causal attention ignores it
        suffix = example.input_ids[prefix_len:]
        ids[row, :len(suffix)] = torch.tensor(suffix)
    batch_cache = copy.deepcopy(cache)
    batch_cache.batch_repeat_interleave(len(chunk))
    logits = model(input_ids=ids.to(device), cache=batch_cache, use_cache=True).logits
    return torch.log_softmax(logits.float(), dim=-1)


def _gather_targets(example: Any, prefix_lp: Any, suffix_lp: Any, prefix_len: int) -> np.ndarray:
    """Log-prob of each target token: position t is predicted by row t-1 of the prefix or of the suffix."""
    values = []
    for t, label in enumerate(example.labels):
        if t == 0 or label == IGNORE_INDEX:
            continue
        row = prefix_lp[t - 1] if t - 1 < prefix_len else suffix_lp[t - 1 - prefix_len]
        values.append(float(row[label]))  # labels are the input ids at target positions
    return np.asarray(values, dtype=np.float64)
