"""Loss masks, truncation policies and the fallback template of encode/chat.py, on the tiny ChatML tokenizer."""

from __future__ import annotations

import logging

import pytest

from tunesmith.core.errors import DataError
from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Message, Origin, PromptStyle
from tunesmith.encode.chat import IGNORE_INDEX, encode_record, encode_records, ensure_chat_template

STYLE = PromptStyle(system="You are a helpful assistant.")


def chat(line: int = 1) -> ChatRecord:
    return ChatRecord(
        (
            Message("user", "Play some jazz music."),
            Message("assistant", "play_music"),
            Message("user", "What is the weather like in Paris?"),
            Message("assistant", "get_weather"),
        ),
        Origin("data.jsonl", line),
    )


def learned_text(tokenizer, example) -> str:
    pairs = zip(example.input_ids, example.labels, strict=True)
    return tokenizer.decode([t for t, label in pairs if label != IGNORE_INDEX])


def test_loss_mask_is_exactly_assistant_contents_and_end_tokens(tiny_tokenizer) -> None:
    example = encode_record(chat(), tiny_tokenizer, STYLE, max_seq_length=512)
    assert example is not None
    assert learned_text(tiny_tokenizer, example) == "play_music<|im_end|>get_weather<|im_end|>"
    # the whole conversation is rendered by the tokenizer's own template
    expected = tiny_tokenizer.apply_chat_template(
        [{"role": "system", "content": STYLE.system}]
        + [{"role": m.role, "content": m.content} for m in chat().messages],
        tokenize=False,
    )
    assert tiny_tokenizer.decode(example.input_ids) == expected
    # labels equal input ids wherever they are set (aligned, not shifted)
    assert all(label in (IGNORE_INDEX, t) for t, label in zip(example.input_ids, example.labels, strict=True))
    # the generation prompt is not learned: the token before each answer is "\n" of "assistant\n", masked
    first = next(i for i, label in enumerate(example.labels) if label != IGNORE_INDEX)
    assert tiny_tokenizer.decode(example.input_ids[:first]).endswith("<|im_start|>assistant\n")


def test_completion_record_learns_only_the_completion(tiny_tokenizer) -> None:
    record = CompletionRecord("Translate to French: hello world.", "bonjour le monde", Origin("d.jsonl", 4))
    example = encode_record(record, tiny_tokenizer, PromptStyle(), max_seq_length=512)
    assert learned_text(tiny_tokenizer, example) == "bonjour le monde<|im_end|>"
    assert example.origin == Origin("d.jsonl", 4)
    assert not example.truncated


def test_train_on_prompt_labels_every_token(tiny_tokenizer) -> None:
    example = encode_record(chat(), tiny_tokenizer, STYLE, max_seq_length=512, train_on_prompt=True)
    assert example.labels == example.input_ids


def _long_record(line: int) -> LabelRecord:
    return LabelRecord("Play some jazz music from the seventies. " * 6, "play_music", Origin("data.jsonl", line))


def test_truncate_keeps_start_and_drops_when_no_target_is_left(tiny_tokenizer) -> None:
    full = encode_record(chat(), tiny_tokenizer, STYLE, max_seq_length=10_000)
    answer_end = max(i for i, label in enumerate(full.labels) if label != IGNORE_INDEX)
    # cut just before the last end token: the first answer survives, the example is kept and marked truncated
    cut = encode_record(chat(), tiny_tokenizer, STYLE, max_seq_length=answer_end, overlong="truncate")
    assert cut.truncated and cut.input_ids == full.input_ids[:answer_end]
    assert learned_text(tiny_tokenizer, cut).startswith("play_music<|im_end|>")
    # cut inside the prompt: nothing left to learn -> dropped and counted
    examples, report = encode_records([chat(1), chat(2)], tiny_tokenizer, STYLE, max_seq_length=12)
    assert examples == []
    assert report.dropped == 2 and report.dropped_reasons == {"no_target_after_truncation": 2}


def test_policies_count_truncated_and_dropped(tiny_tokenizer) -> None:
    records = [chat(1), _long_record(2), chat(3), _long_record(4)]
    short = len(encode_record(chat(), tiny_tokenizer, STYLE, 10_000))
    long = len(encode_record(_long_record(2), tiny_tokenizer, STYLE, 10_000))
    assert long > short + 5
    limit = long - 3
    kept, report = encode_records(records, tiny_tokenizer, STYLE, limit, overlong="truncate")
    assert (report.total, report.kept, report.truncated, report.dropped) == (4, 4, 2, 0)
    assert all(len(e) <= limit for e in kept)
    assert [e.truncated for e in kept] == [False, True, False, True]
    kept, report = encode_records(records, tiny_tokenizer, STYLE, limit, overlong="drop")
    assert (report.kept, report.dropped, report.dropped_reasons) == (2, 2, {"overlong": 2})
    assert [e.origin.line for e in kept] == [1, 3]


def test_error_policy_lists_every_overlong_record(tiny_tokenizer) -> None:
    records = [chat(1), _long_record(2), chat(3), _long_record(7)]
    long = len(encode_record(_long_record(2), tiny_tokenizer, STYLE, 10_000))
    with pytest.raises(DataError) as info:
        encode_records(records, tiny_tokenizer, STYLE, long - 3, overlong="error")
    message = str(info.value)
    assert [p.where for p in info.value.problems] == ["data.jsonl:2", "data.jsonl:7"]
    assert f"{long} tokens" in message and "max_seq_length" in message and "truncate" in message


def test_tokenizer_without_template_gets_fallback(tiny_model_dir, caplog) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = None
    with caplog.at_level(logging.WARNING):
        example = encode_record(chat(), tokenizer, STYLE, max_seq_length=512)
    assert "no chat template" in caplog.text
    assert learned_text(tokenizer, example) == "play_music<|im_end|>get_weather<|im_end|>"
    assert ensure_chat_template(tokenizer) is False  # stored on the tokenizer, added once


def test_fallback_when_template_renders_history_differently(tiny_model_dir) -> None:
    """A template that drops earlier answers' text (like reasoning templates) breaks prefix rendering."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% else %}{{ '\n' }}{% endif %}"
    )
    example = encode_record(chat(), tokenizer, STYLE, max_seq_length=512)
    assert learned_text(tokenizer, example) == "play_music<|im_end|>get_weather<|im_end|>"


class _NoOffsets:
    """A tokenizer without offset mapping (like a slow tokenizer), delegating everything else."""

    is_fast = False

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def __call__(self, text: str, **kwargs):
        kwargs.pop("return_offsets_mapping", None)
        return self.inner(text, **kwargs)


def test_tokenizer_without_offsets_gives_the_same_example(tiny_tokenizer) -> None:
    fast = encode_record(chat(), tiny_tokenizer, STYLE, max_seq_length=512)
    slow = encode_record(chat(), _NoOffsets(tiny_tokenizer), STYLE, max_seq_length=512)
    assert slow == fast
