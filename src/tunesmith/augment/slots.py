"""Which texts of a record an augmenter may change ("slots"), and putting changed texts back.

Chat records: the content of each turn whose role is in `roles` (user turns by default), so roles, their order,
names and the assistant answers stay exact. Other records: `input` is the text / prompt / source and `output`
the completion / target. Labels and system prompts of completion records are never slots.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from tunesmith.core.records import ChatRecord, Message, Record

SlotKey = str | int
"""A field name (`text`, `prompt`, `completion`, `source`, `target`) or a chat message index."""

_FIELD_SLOTS: dict[str, dict[str, str]] = {
    "label": {"input": "text"},
    "completion": {"input": "prompt", "output": "completion"},
    "pair": {"input": "source", "output": "target"},
}


def slot_texts(record: Record, roles: Sequence[str], fields: Sequence[str]) -> list[tuple[SlotKey, str]]:
    """The (slot, text) pairs an augmenter may change, in record order; empty texts are left out."""
    if isinstance(record, ChatRecord):
        return [(i, m.content) for i, m in enumerate(record.messages) if m.role in roles and m.content.strip()]
    names = _FIELD_SLOTS[record.kind]
    chosen = [names[f] for f in ("input", "output") if f in fields and f in names]
    return [(name, text) for name in chosen if (text := getattr(record, name)).strip()]


def replace_slots(record: Record, texts: dict[SlotKey, str]) -> Record:
    """The record with the given slots' texts replaced (a new frozen record; the original is untouched)."""
    if not texts:
        return record
    if isinstance(record, ChatRecord):
        messages = tuple(Message(m.role, texts.get(i, m.content), m.name) for i, m in enumerate(record.messages))
        return dataclasses.replace(record, messages=messages)
    changes: dict[str, Any] = {str(key): text for key, text in texts.items()}
    return dataclasses.replace(record, **changes)


def map_slots(record: Record, change: Callable[[str], str], roles: Sequence[str], fields: Sequence[str]) -> Record:
    """The record with `change` applied to each of its slots' texts, in record order."""
    return replace_slots(record, {key: change(text) for key, text in slot_texts(record, roles, fields)})


def changed_text(record: Record, roles: Sequence[str], fields: Sequence[str]) -> str:
    """The slots' texts joined by newlines: what length and language checks look at."""
    return "\n".join(text for _, text in slot_texts(record, roles, fields))
