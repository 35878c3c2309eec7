"""Change the *input* side of a record (what the model reads) and leave the reference answer alone.

Robustness and counterfactual checks rewrite the text of a label record, the prompt of a completion, the
source of a pair or the user turns of a chat, then ask the model again; the reference stays the same, because
a typo or a swapped name must not change the right answer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, PairRecord, Record

TextFn = Callable[[str], str]


def map_input(record: Record, fn: TextFn) -> Record:
    """A copy of `record` with `fn` applied to every input text (user turns of a chat); references untouched."""
    if isinstance(record, LabelRecord):
        return dataclasses.replace(record, text=fn(record.text))
    if isinstance(record, CompletionRecord):
        return dataclasses.replace(record, prompt=fn(record.prompt))
    if isinstance(record, PairRecord):
        return dataclasses.replace(record, source=fn(record.source))
    if isinstance(record, ChatRecord):
        # only user turns up to the last assistant answer: that answer is the reference
        last = max((i for i, m in enumerate(record.messages) if m.role == "assistant"), default=len(record.messages))
        messages = tuple(
            dataclasses.replace(m, content=fn(m.content)) if m.role == "user" and i < last else m
            for i, m in enumerate(record.messages)
        )
        return dataclasses.replace(record, messages=messages)
    raise TypeError(f"unknown record type {type(record).__name__}")


def input_texts(record: Record) -> list[str]:
    """The texts `map_input` would rewrite."""
    seen: list[str] = []
    map_input(record, lambda text: seen.append(text) or text)  # type: ignore[func-returns-value]
    return seen
