"""Mapping generated answers to labels, and picking labels by log-likelihood."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tunesmith.core.records import Message
from tunesmith.evaluate.generate import chat_text
from tunesmith.evaluate.label_match import (
    _shared_prompt_logliks,
    label_logliks,
    match_label,
    match_labels,
    score_labels_by_loglik,
)

LABELS = ["play", "play_music", "get_weather", "book_restaurant"]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("get_weather", "get_weather"),  # exact
        ("  Get_Weather.\n", "get_weather"),  # normalised exact
        ("play_music please", "play_music"),  # starts with: longest label wins over "play"
        ("play it", "play"),  # starts with the short label only
        ("I think the answer is book_restaurant.", "book_restaurant"),  # contained
        ("Sure!\nLabel: get_weather", "get_weather"),  # contained on a later line
        ("maybe play_music or play", "play_music"),  # contained: longest wins
        ("no idea", None),
        ("", None),
    ],
)
def test_match_label(answer: str, expected: str | None) -> None:
    assert match_label(answer, LABELS) == expected


def test_match_labels_keeps_unmatched_answers_verbatim() -> None:
    assert match_labels(["PLAY_MUSIC", "dunno"], LABELS) == ["play_music", "dunno"]


class FavouringStub:
    """A 'model' whose next-token logits boost a fixed set of token ids at every position."""

    def __init__(self, vocab_size: int, favoured: set[int], boost: float = 8.0):
        import torch

        self.bias = torch.zeros(vocab_size)
        self.bias[list(favoured)] = boost
        self.training = False
        self._param = torch.nn.Parameter(torch.zeros(1))

    def parameters(self) -> Any:
        return iter([self._param])

    def eval(self) -> FavouringStub:
        return self

    def train(self, mode: bool = True) -> FavouringStub:
        self.training = mode
        return self

    def __call__(self, input_ids: Any, attention_mask: Any = None, **_: Any) -> SimpleNamespace:
        from transformers import DynamicCache

        batch, seq = input_ids.shape
        # An empty cache: the stub ignores it, but scoring needs a cache object to repeat per label.
        return SimpleNamespace(logits=self.bias.expand(batch, seq, -1).clone(), cache=DynamicCache())


PROMPTS = [
    [Message("user", "What is the weather like in Paris tomorrow?")],
    [Message("system", "You are a helpful assistant."), Message("user", "Play some jazz music.")],
]


@pytest.mark.parametrize("favoured_label", ["get_weather", "book_restaurant"])
def test_loglik_picks_the_label_the_model_favours(tiny_tokenizer: Any, favoured_label: str) -> None:
    favoured = set(tiny_tokenizer(favoured_label + "<|im_end|>\n", add_special_tokens=False)["input_ids"])
    stub = FavouringStub(len(tiny_tokenizer), favoured)
    picks = score_labels_by_loglik(stub, tiny_tokenizer, PROMPTS, LABELS, batch_size=3)
    assert picks == [favoured_label, favoured_label]


def test_loglik_is_the_same_batched_or_alone_and_matches_hf_loss(tiny_model: Any, tiny_tokenizer: Any) -> None:
    import torch

    labels = ["get_weather", "play_music"]
    tiny_model.train()
    batched = label_logliks(tiny_model, tiny_tokenizer, PROMPTS, labels, batch_size=4)
    alone = label_logliks(tiny_model, tiny_tokenizer, PROMPTS, labels, batch_size=1)
    assert tiny_model.training  # scoring switched to eval mode and back
    assert torch.allclose(torch.tensor(batched), torch.tensor(alone), atol=1e-4)

    # Reference: HF's own mean loss over the answer turn, times its token count, negated.
    prompt = tiny_tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in PROMPTS[0]], add_generation_prompt=True, tokenize=False
    )
    prompt_ids = tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tiny_tokenizer("get_weather<|im_end|>\n", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids])
    target = ids.clone()
    target[0, : len(prompt_ids)] = -100
    with torch.no_grad():
        tiny_model.eval()
        hf_loss = tiny_model(input_ids=ids, labels=target).loss.item()
    assert batched[0][0] == pytest.approx(-hf_loss * len(answer_ids), rel=1e-4)


def test_loglik_needs_labels(tiny_tokenizer: Any) -> None:
    stub = FavouringStub(len(tiny_tokenizer), set())
    with pytest.raises(ValueError, match="at least one label"):
        score_labels_by_loglik(stub, tiny_tokenizer, PROMPTS, [], batch_size=2)


def test_loglik_without_a_cache_says_what_is_needed(tiny_tokenizer: Any) -> None:
    class NoCache(FavouringStub):
        def __call__(self, input_ids: Any, attention_mask: Any = None, **_: Any) -> SimpleNamespace:
            return SimpleNamespace(logits=super().__call__(input_ids).logits, cache=None)

    with pytest.raises(ValueError, match="returns `cache`"):
        label_logliks(NoCache(len(tiny_tokenizer), set()), tiny_tokenizer, PROMPTS, LABELS, batch_size=2)


# The per-(prompt, label) implementation the shared-prompt scoring replaced: one full right-padded sequence per
# pair. Kept here as the reference the fast path must reproduce.


def _reference_pair_logliks(model: Any, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
    """Sum of log p(answer token | preceding tokens) per (prompt ids, answer ids), one full sequence each."""
    import torch

    totals = []
    model.eval()
    with torch.inference_mode():
        for prompt_ids, answer_ids in pairs:
            ids = torch.tensor([prompt_ids + answer_ids])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)  # (seq-1, vocab)
            picked = logprobs.gather(-1, ids[0, 1:, None]).squeeze(-1)[len(prompt_ids) - 1 :]
            totals.append(float(picked.sum()))
    return totals


def _reference_label_logliks(
    model: Any, tokenizer: Any, prompts: list[list[Message]], labels: list[str]
) -> list[list[float]]:
    """The old `label_logliks`: prompt text with generation prompt, answer = the rest of the rendered turn."""
    rows = []
    for messages in prompts:
        prompt = chat_text(tokenizer, messages, add_generation_prompt=True)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        pairs = []
        for label in labels:
            full = chat_text(tokenizer, [*messages, Message("assistant", label)], add_generation_prompt=False)
            answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
            pairs.append((prompt_ids, answer_ids))
        rows.append(_reference_pair_logliks(model, pairs))
    return rows


# Prompts of clearly different token lengths; labels of different token lengths, two of them prefixes of others.
VARIED_PROMPTS = [
    [Message("user", "Hi")],
    [Message("system", "You classify requests."), Message("user", "Book a table for four at an Italian place.")],
    [Message("user", "What is the weather like in Paris tomorrow, and will it rain in the afternoon or not?")],
    [Message("user", "Play some jazz.")],
]
VARIED_LABELS = ["play", "play_music", "p", "get_weather", "book_restaurant_for_a_large_group"]


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_shared_prompt_scoring_equals_one_sequence_per_pair(
    tiny_model: Any, tiny_tokenizer: Any, batch_size: int
) -> None:
    import torch

    lengths = {len(tiny_tokenizer(chat_text(tiny_tokenizer, p, True))["input_ids"]) for p in VARIED_PROMPTS}
    assert len(lengths) == len(VARIED_PROMPTS)  # the padding cases are really exercised
    tiny_model.config.use_cache = False  # as after gradient-checkpointed training: scoring must still cache
    reference = _reference_label_logliks(tiny_model, tiny_tokenizer, VARIED_PROMPTS, VARIED_LABELS)
    fast = label_logliks(tiny_model, tiny_tokenizer, VARIED_PROMPTS, VARIED_LABELS, batch_size=batch_size)
    assert torch.allclose(torch.tensor(fast), torch.tensor(reference), atol=1e-4, rtol=0)
    picks = score_labels_by_loglik(tiny_model, tiny_tokenizer, VARIED_PROMPTS, VARIED_LABELS, batch_size)
    assert picks == [VARIED_LABELS[max(range(len(row)), key=row.__getitem__)] for row in reference]


def test_shared_prompt_scoring_handles_one_token_answers(tiny_model: Any) -> None:
    """Answers of one token need no continuation pass; mixed with longer ones they must still line up."""
    import torch

    prompts = [[5, 6, 7, 8, 9, 10], [11, 12]]
    for answers in ([[20], [21]], [[20], [21, 22, 23], [24, 25]]):
        batch = [(p, answers) for p in prompts]
        with torch.inference_mode():
            fast = _shared_prompt_logliks(tiny_model.eval(), batch)
        reference = [_reference_pair_logliks(tiny_model, [(p, a) for a in answers]) for p in prompts]
        assert torch.allclose(torch.tensor(fast), torch.tensor(reference), atol=1e-4, rtol=0)


def test_loglik_runs_under_bf16_autocast(tiny_model: Any, tiny_tokenizer: Any) -> None:
    import torch

    reference = _reference_label_logliks(tiny_model, tiny_tokenizer, VARIED_PROMPTS[:2], VARIED_LABELS)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = label_logliks(tiny_model, tiny_tokenizer, VARIED_PROMPTS[:2], VARIED_LABELS, batch_size=2)
    # bf16 carries ~3 significant digits; the point is that it runs and stays close, not bit equality.
    assert torch.allclose(torch.tensor(scores), torch.tensor(reference), atol=0.5, rtol=0.02)
