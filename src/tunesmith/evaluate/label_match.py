"""Turn model output into a class label, two ways.

- `match_label`: map a free-form generated answer to a label (what a user of the tuned model would see).
- `score_labels_by_loglik`: pick the label whose tokens the model finds most likely after the prompt. This is how
  a base model that rarely answers in the label format is usually measured (e.g. "18.8% by label
  log-likelihood"), so the report shows both numbers for label data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tunesmith.core.records import Message
from tunesmith.evaluate.metrics import normalize_answer

if TYPE_CHECKING:
    import torch


def match_label(answer: str, labels: Sequence[str]) -> str | None:
    """The label a generated answer names, or None.

    In order: the normalised answer equals a label; else the label the answer starts with; else a label the
    answer contains anywhere (case-insensitive). When several labels fit a step, the longest wins, so
    `play_music` beats `play` in "play_music please".
    """
    norm = normalize_answer(answer)
    by_norm = {normalize_answer(label): label for label in labels if normalize_answer(label)}
    if norm in by_norm:
        return by_norm[norm]
    longest_first = sorted(by_norm.items(), key=lambda item: len(item[0]), reverse=True)
    for key, label in longest_first:
        if norm.startswith(key):
            return label
    # Why the whole answer here: a chatty model may put the label on a later line ("Sure!\nLabel: x").
    whole = answer.lower()
    for key, label in longest_first:
        if key in whole:
            return label
    return None


def match_labels(answers: Sequence[str], labels: Sequence[str]) -> list[str]:
    """`match_label` for each answer; an unmatched answer is kept as is, so every metric counts it wrong."""
    return [matched if (matched := match_label(a, labels)) is not None else a for a in answers]


def score_labels_by_loglik(
    model: Any,
    tokenizer: Any,
    prompts_messages: Sequence[Sequence[Message]],
    labels: Sequence[str],
    batch_size: int,
) -> list[str]:
    """For each prompt, the label with the highest total log-likelihood as the assistant's answer."""
    if not labels:
        raise ValueError("score_labels_by_loglik needs at least one label; set the label set in the prompt style")
    scores = label_logliks(model, tokenizer, prompts_messages, labels, batch_size)
    return [labels[max(range(len(labels)), key=row.__getitem__)] for row in scores]


def label_logliks(
    model: Any,
    tokenizer: Any,
    prompts_messages: Sequence[Sequence[Message]],
    labels: Sequence[str],
    batch_size: int,
) -> list[list[float]]:
    """Total log-likelihood of each label's answer turn (label + end-of-turn tokens): shape (prompts, labels).

    Ending the answer with the end-of-turn tokens makes a label that is a prefix of another ("play" vs
    "play_music") compete fairly: "play" must also predict that the answer stops there.
    """
    import torch

    pairs = [(p, label) for p in prompts_messages for label in labels]
    sequences = [_prompt_and_answer_ids(tokenizer, p, label) for p, label in pairs]
    totals: list[float] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(sequences), max(1, batch_size)):
                totals.extend(_answer_logliks(model, sequences[start : start + max(1, batch_size)]))
    finally:
        model.train(was_training)
    n = len(labels)
    return [totals[i * n : (i + 1) * n] for i in range(len(prompts_messages))]


def _prompt_and_answer_ids(tokenizer: Any, messages: Sequence[Message], label: str) -> tuple[list[int], list[int]]:
    """Token ids of the chat prompt (with generation prompt) and of the answer turn that follows it."""
    from tunesmith.evaluate.generate import chat_text

    prompt = chat_text(tokenizer, messages, add_generation_prompt=True)
    full = chat_text(tokenizer, [*messages, Message("assistant", label)], add_generation_prompt=False)
    # Why the fallback: a template may render the final assistant turn differently from the generation prompt
    # (e.g. strip reasoning); then score the label followed by the end-of-sequence token.
    answer = full[len(prompt) :] if full.startswith(prompt) else label + (tokenizer.eos_token or "")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return list(prompt_ids), list(answer_ids)


def _answer_logliks(model: Any, sequences: list[tuple[list[int], list[int]]]) -> list[float]:
    """Sum of log p(answer token | preceding tokens) per (prompt, answer) sequence, right-padded as one batch."""
    import torch

    device = _model_device(model)
    lengths = [len(p) + len(a) for p, a in sequences]
    width = max(lengths)
    input_ids = torch.zeros((len(sequences), width), dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    target_mask = torch.zeros_like(input_ids, dtype=torch.bool)
    for row, (prompt_ids, answer_ids) in enumerate(sequences):
        ids = prompt_ids + answer_ids
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        target_mask[row, len(prompt_ids) : len(ids)] = True
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (batch, seq, vocab)
    # Token t is predicted by position t-1. Keep only answer positions before the softmax: with a 49k vocabulary
    # the full (batch, seq, vocab) log-probabilities would dwarf everything else.
    keep = target_mask[:, 1:].to(logits.device)  # (batch, seq-1)
    logprobs = torch.log_softmax(logits[:, :-1][keep].float(), dim=-1)  # (n_answer_tokens, vocab)
    picked = logprobs.gather(-1, input_ids[:, 1:][keep].unsqueeze(-1)).squeeze(-1)  # (n_answer_tokens,)
    row_of = torch.arange(len(sequences), device=logits.device)[:, None].expand_as(keep)[keep]
    totals = torch.zeros(len(sequences), device=logits.device).index_add_(0, row_of, picked)
    return totals.tolist()


def _model_device(model: Any) -> torch.device:
    """The device of the model's first parameter (where inputs must go)."""
    return next(model.parameters()).device
