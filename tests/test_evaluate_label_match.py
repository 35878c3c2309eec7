"""Mapping generated answers to labels, and picking labels by log-likelihood."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tunesmith.core.records import Message
from tunesmith.evaluate.label_match import label_logliks, match_label, match_labels, score_labels_by_loglik


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Any:
    """One intra-op thread: on a shared 2-core machine, 2 threads on this tiny model run up to 40x slower."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


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
        batch, seq = input_ids.shape
        return SimpleNamespace(logits=self.bias.expand(batch, seq, -1).clone())


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
