"""How filters see a record: its id, its text fields, its prompt side, its response side, its label.

A record id is the first 12 hex digits of the sha256 of its content (kind and fields, not its file position), so
an id in an allow-list still names the same record after lines are added or moved. Exact copies get `-2`, `-3`,
... in file order, so every record has its own id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable

from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Message, PairRecord, Record
from tunesmith.data.rows import record_to_row


def content_id(record: Record) -> str:
    """12 hex digits identifying the record's content (its kind and fields; not its origin)."""
    payload = json.dumps({"kind": record.kind, **record_to_row(record)}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def record_ids(records: list[Record]) -> list[str]:
    """A unique id per record: its content id, with `-N` appended to the N-th exact copy."""
    seen: Counter[str] = Counter()
    ids = []
    for record in records:
        base = content_id(record)
        seen[base] += 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


def prompt_text(record: Record) -> str:
    """The input side: the text of a label record, a prompt, a source, or every non-assistant chat turn."""
    if isinstance(record, LabelRecord):
        return record.text
    if isinstance(record, CompletionRecord):
        return record.prompt
    if isinstance(record, PairRecord):
        return record.source
    return "\n".join(m.content for m in record.messages if m.role not in ("assistant", "system"))


def response_text(record: Record) -> str:
    """The output side: the label, completion, target, or every assistant turn."""
    if isinstance(record, LabelRecord):
        return record.label
    if isinstance(record, CompletionRecord):
        return record.completion
    if isinstance(record, PairRecord):
        return record.target
    return "\n".join(m.content for m in record.messages if m.role == "assistant")


def full_text(record: Record) -> str:
    """Every free-text field joined by newlines (labels excluded: they are categories, not text)."""
    if isinstance(record, LabelRecord):
        return record.text
    if isinstance(record, ChatRecord):
        return "\n".join(m.content for m in record.messages)
    if isinstance(record, CompletionRecord):
        return "\n".join(t for t in (record.system, record.prompt, record.completion) if t)
    return f"{record.source}\n{record.target}"


def label_of(record: Record) -> str | None:
    return record.label if isinstance(record, LabelRecord) else None


def map_text(record: Record, change: Callable[[str], str]) -> Record:
    """The same record with `change` applied to every free-text field (labels and roles untouched)."""
    if isinstance(record, LabelRecord):
        return dataclasses.replace(record, text=change(record.text))
    if isinstance(record, CompletionRecord):
        system = change(record.system) if record.system is not None else None
        return dataclasses.replace(
            record, prompt=change(record.prompt), completion=change(record.completion), system=system
        )
    if isinstance(record, PairRecord):
        return dataclasses.replace(record, source=change(record.source), target=change(record.target))
    messages = tuple(Message(m.role, change(m.content), m.name) for m in record.messages)
    return dataclasses.replace(record, messages=messages)
