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
from tunesmith.evaluate.generate import map_in_length_batches
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

    Each prompt is run once and every label's answer is scored from a copy of its KV cache, so the cost is
    (prompts + prompts x answer tokens) rather than prompts x labels full sequences. `batch_size` counts
    prompts; each continuation step then holds `batch_size x len(labels)` rows of a few tokens.
    """

    encoded = [_prompt_and_answer_ids(tokenizer, p, labels) for p in prompts_messages]
    lengths = [len(prompt) for prompt, _ in encoded]
    return map_in_length_batches(model, encoded, lengths, batch_size, lambda rows: _shared_prompt_logliks(model, rows))


def _prompt_and_answer_ids(
    tokenizer: Any, messages: Sequence[Message], labels: Sequence[str]
) -> tuple[list[int], list[list[int]]]:
    """Token ids of the chat prompt (with generation prompt) and of each label's answer turn that follows it."""
    from tunesmith.evaluate.generate import chat_text

    prompt = chat_text(tokenizer, messages, add_generation_prompt=True)
    answers: list[list[int]] = []
    for label in labels:
        full = chat_text(tokenizer, [*messages, Message("assistant", label)], add_generation_prompt=False)
        # Why the fallback: a template may render the final assistant turn differently from the generation
        # prompt (e.g. strip reasoning); then score the label followed by the end-of-sequence token.
        answer = full[len(prompt) :] if full.startswith(prompt) else label + (tokenizer.eos_token or "")
        answers.append(list(tokenizer(answer, add_special_tokens=False)["input_ids"]))
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"]), answers


def _shared_prompt_logliks(model: Any, batch: list[tuple[list[int], list[list[int]]]]) -> list[list[float]]:
    """Sum of log p(answer token | prompt, earlier answer tokens) for every (prompt, answer) in the batch.

    The prompts run once, left-padded so that every prompt ends in the last column: its last logits predict
    each answer's first token. The cache is then repeated once per answer and the answers' remaining tokens
    run as one right-padded continuation batch, rows in (prompt, answer) order.
    """
    import torch

    device = _model_device(model)
    n_answers = len(batch[0][1])
    prompt_ids, prompt_mask = _left_pad([p for p, _ in batch])  # (batch, prompt)
    prompt_pos = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    extra = {"logits_to_keep": 1} if _accepts_logits_to_keep(model) else {}
    out = model(
        input_ids=prompt_ids.to(device),
        attention_mask=prompt_mask.to(device),
        position_ids=prompt_pos.to(device),
        use_cache=True,  # Why explicit: a tuned model's config may say use_cache=False (gradient checkpointing).
        **extra,
    )
    # Why `cache`: transformers 5 renamed `past_key_values` (kwarg and output field) to `cache`.
    cache = getattr(out, "cache", None)
    if cache is None:
        raise ValueError(
            f"{type(model).__name__} returned no KV cache with use_cache=True; label log-likelihood scoring "
            "needs a causal LM that returns `cache` (any transformers 5 AutoModelForCausalLM does)"
        )
    answers = [a for _, row in batch for a in row]
    first_logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (batch, vocab)
    first_logprobs = first_logprobs.repeat_interleave(n_answers, dim=0)  # (batch x answers, vocab)
    totals = torch.zeros(len(answers), device=first_logprobs.device)
    has_answer = torch.tensor([len(a) > 0 for a in answers], device=totals.device)
    first_ids = torch.tensor([a[0] if a else 0 for a in answers], device=totals.device)
    totals += torch.where(has_answer, first_logprobs.gather(-1, first_ids[:, None]).squeeze(-1), 0.0)
    width = max(len(a) for a in answers) - 1
    if width > 0:
        cache.batch_repeat_interleave(n_answers)
        totals += _continuation_logliks(model, cache, answers, prompt_mask.repeat_interleave(n_answers, 0), width)
    flat = totals.tolist()
    return [flat[i * n_answers : (i + 1) * n_answers] for i in range(len(batch))]


def _continuation_logliks(
    model: Any, cache: Any, answers: list[list[int]], prompt_mask: torch.Tensor, width: int
) -> torch.Tensor:
    """Log-likelihood of answer tokens 2.. per row, feeding tokens ..n-1 after the row's cached prompt.

    `prompt_mask` is the left-padded prompt mask repeated per answer: (rows, prompt); the result is (rows,).
    """
    import torch

    device = _model_device(model)
    rows = len(answers)
    inputs = torch.zeros((rows, width), dtype=torch.long)
    targets = torch.zeros((rows, width), dtype=torch.long)
    keep = torch.zeros((rows, width), dtype=torch.bool)
    for row, answer in enumerate(answers):
        n = len(answer) - 1
        if n > 0:
            inputs[row, :n] = torch.tensor(answer[:-1])
            targets[row, :n] = torch.tensor(answer[1:])
            keep[row, :n] = True
    # Right-padded continuation: pad slots come after every real token, so causality keeps them unseen.
    mask = torch.cat([prompt_mask, torch.ones_like(inputs)], dim=1)  # (rows, prompt + width)
    positions = prompt_mask.sum(-1, keepdim=True) + torch.arange(width)  # (rows, width)
    logits = model(
        input_ids=inputs.to(device),
        attention_mask=mask.to(device),
        position_ids=positions.to(device),
        cache=cache,
        use_cache=True,
    ).logits  # (rows, width, vocab)
    # Keep only answer positions before the softmax: the full (rows, width, vocab) log-probs would dwarf the rest.
    keep = keep.to(logits.device)
    logprobs = torch.log_softmax(logits[keep].float(), dim=-1)  # (n_kept, vocab)
    picked = logprobs.gather(-1, targets.to(logits.device)[keep][:, None]).squeeze(-1)  # (n_kept,)
    row_of = torch.arange(rows, device=logits.device)[:, None].expand_as(keep)[keep]
    return torch.zeros(rows, device=logits.device).index_add_(0, row_of, picked)


def _left_pad(ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (with id 0, masked out) token ids and their attention mask, both (rows, longest)."""
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.zeros((len(ids), width), dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    for row, x in enumerate(ids):
        if x:
            input_ids[row, width - len(x) :] = torch.tensor(x)
            mask[row, width - len(x) :] = 1
    return input_ids, mask


def _accepts_logits_to_keep(model: Any) -> bool:
    """Whether the (base) model's forward takes `logits_to_keep`: then the prompt pass skips the vocab
    projection for all but the last position, as `generate` does."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def _model_device(model: Any) -> torch.device:
    """The device of the model's first parameter (where inputs must go)."""
    return next(model.parameters()).device
