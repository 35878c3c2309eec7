"""Greedy, batched answer generation from chat prompts, for scoring a model against references."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tunesmith.core.records import Message
from tunesmith.models.load import eos_token_ids

T = TypeVar("T")
R = TypeVar("R")


def chat_text(tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool) -> str:
    """Render messages with the tokenizer's chat template (the same text training and serving use)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the tokenizer has no chat template; use an instruct/chat model or set `tokenizer.chat_template`"
        )
    conversation = [
        {"role": m.role, "content": m.content, **({"name": m.name} if m.name else {})} for m in messages
    ]
    text = tokenizer.apply_chat_template(conversation, add_generation_prompt=add_generation_prompt, tokenize=False)
    return str(text)


def generate_answers(
    model: Any,
    tokenizer: Any,
    prompt_messages: Sequence[Sequence[Message]],
    max_new_tokens: int,
    batch_size: int,
    device: Any,
) -> list[str]:
    """Greedy answers for each prompt conversation, new tokens only, special tokens skipped, in input order.

    Prompts are sorted by length before batching (less padding) and left-padded, so every row's last prompt
    token sits at the end of the batch and generation continues straight from it; the answer for a prompt is
    the same alone or in a batch.
    """
    texts = [chat_text(tokenizer, m, add_generation_prompt=True) for m in prompt_messages]
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]

    def run(rows: list[list[int]]) -> list[str]:
        return _generate_batch(model, tokenizer, _left_padded(tokenizer, rows, device), max_new_tokens)

    return map_in_length_batches(model, encoded, [len(ids) for ids in encoded], batch_size, run)


def map_in_length_batches(
    model: Any, items: Sequence[T], lengths: Sequence[int], batch_size: int, run_batch: Callable[[list[T]], list[R]]
) -> list[R]:
    """`run_batch` over items grouped by length (less padding), in eval and inference mode; results in input order.

    The model's train/eval mode is restored afterwards.
    """
    import torch

    order = sorted(range(len(items)), key=lambda i: lengths[i])
    results: list[Any] = [None] * len(items)
    step = max(1, batch_size)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), step):
                rows = order[start : start + step]
                for i, result in zip(rows, run_batch([items[i] for i in rows]), strict=True):
                    results[i] = result
    finally:
        model.train(was_training)
    return results


def _left_padded(tokenizer: Any, ids: list[list[int]], device: Any) -> dict[str, Any]:
    """Pad token id lists on the left (restoring the tokenizer's padding side) and move them to `device`."""
    saved_side, saved_pad = tokenizer.padding_side, tokenizer.pad_token
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        # Why: padding needs some id; pad positions are masked out, so eos serves.
        tokenizer.pad_token = tokenizer.eos_token
    try:
        batch = tokenizer.pad({"input_ids": ids}, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = saved_side
        if saved_pad is None:
            tokenizer.pad_token = saved_pad
    return {key: value.to(device) for key, value in batch.items()}


def _generate_batch(model: Any, tokenizer: Any, batch: dict[str, Any], max_new_tokens: int) -> list[str]:
    """Greedy-decode one left-padded batch and return the decoded new tokens of each row."""
    eos = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else 0)
    output = model.generate(
        **batch,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        use_cache=True,  # training loads models with use_cache off; decoding without a KV cache is quadratic
        # Why unset: a checkpoint's sampling defaults would otherwise trigger "not used in greedy" warnings.
        temperature=None,
        top_p=None,
        top_k=None,
        eos_token_id=eos or None,
        pad_token_id=pad_id,
    )  # (batch, prompt + new)
    new_tokens = output[:, batch["input_ids"].shape[1] :].tolist()
    # Why cut at eos ourselves: finished rows are filled with pad ids, which need not be special tokens.
    cut = [_until_eos(row, eos) for row in new_tokens]
    return [text.strip() for text in tokenizer.batch_decode(cut, skip_special_tokens=True)]


def _until_eos(ids: list[int], eos: list[int]) -> list[int]:
    """The ids before the first end-of-sequence id."""
    for position, token in enumerate(ids):
        if token in eos:
            return ids[:position]
    return ids
