"""Greedy batched generation: bounded, deterministic, and independent of batch neighbours (left padding)."""

from __future__ import annotations

from typing import Any

import pytest

from tunesmith.core.records import Message
from tunesmith.evaluate.generate import generate_answers

SHORT = [Message("user", "Play some jazz")]
LONG = [
    Message("system", "You are a helpful assistant."),
    Message("user", "Book a table for two at an Italian restaurant tonight, and what is the weather in Paris?"),
]
OTHER = [Message("user", "Rate this novel")]


@pytest.fixture()
def talkative_model(tiny_model: Any) -> Any:
    """The tiny model with re-drawn block weights: the freshly initialised one (tied embeddings, small residual
    updates) just repeats the prompt's last token, a newline, which decodes to an empty answer and would make
    every comparison below vacuous."""
    import torch

    torch.manual_seed(1)
    with torch.no_grad():
        for param in tiny_model.model.layers.parameters():
            if param.dim() == 2:
                param.normal_(0.0, 0.5)
    return tiny_model


def test_answers_are_strings_of_bounded_length_and_deterministic(
    talkative_model: Any, tiny_tokenizer: Any
) -> None:
    prompts = [SHORT, LONG, OTHER]
    first = generate_answers(
        talkative_model, tiny_tokenizer, prompts, max_new_tokens=6, batch_size=2, device="cpu"
    )
    again = generate_answers(
        talkative_model, tiny_tokenizer, prompts, max_new_tokens=6, batch_size=2, device="cpu"
    )
    assert first == again
    assert all(isinstance(a, str) and a for a in first)
    longest_token = max(len(tiny_tokenizer.decode([i])) for i in range(len(tiny_tokenizer)))
    assert all(len(a) <= 6 * longest_token for a in first)
    one = generate_answers(talkative_model, tiny_tokenizer, [SHORT], max_new_tokens=1, batch_size=1, device="cpu")
    assert len(one[0]) <= longest_token and first[0].startswith(one[0])


def test_answer_alone_equals_answer_beside_a_longer_prompt(talkative_model: Any, tiny_tokenizer: Any) -> None:
    side = tiny_tokenizer.padding_side
    alone = generate_answers(talkative_model, tiny_tokenizer, [SHORT], 8, batch_size=1, device="cpu")
    batched = generate_answers(talkative_model, tiny_tokenizer, [LONG, SHORT], 8, batch_size=2, device="cpu")
    assert batched[1] == alone[0]
    assert batched[0] != batched[1]  # different prompts, different answers: the model is not constant
    assert tiny_tokenizer.padding_side == side


def test_generation_stops_at_eos(talkative_model: Any, tiny_tokenizer: Any) -> None:
    """Make end-of-turn beat the model's first choice: the answer is then empty, with no special-token text."""
    import torch

    before = generate_answers(talkative_model, tiny_tokenizer, [SHORT], 8, batch_size=1, device="cpu")
    assert before[0]
    text = tiny_tokenizer.apply_chat_template(
        [{"role": "user", "content": SHORT[0].content}], add_generation_prompt=True, tokenize=False
    )
    ids = tiny_tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = talkative_model(input_ids=ids).logits[0, -1]
        first = int(logits.argmax())
        assert logits[first] > 0  # so scaling its row up makes a strictly larger logit
        head = talkative_model.lm_head.weight.detach().clone()  # untie from the input embeddings
        head[tiny_tokenizer.eos_token_id] = 100.0 * head[first]
        talkative_model.lm_head.weight = torch.nn.Parameter(head)
    after = generate_answers(talkative_model, tiny_tokenizer, [SHORT], 8, batch_size=1, device="cpu")
    assert after == [""]
