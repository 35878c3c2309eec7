"""Records back to JSON rows that the format parsers read again (vetted and augmented data are written so).

Completions are written as alpaca rows (`instruction`/`output`, plus `system`), the one format that carries a
system prompt; every other kind uses its own format's field names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tunesmith.core.durable import atomic_write_text
from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Record


def record_to_row(record: Record) -> dict[str, Any]:
    """The JSON object a parser turns back into an equal record (origin aside)."""
    if isinstance(record, ChatRecord):
        turns = []
        for message in record.messages:
            turn: dict[str, Any] = {"role": message.role, "content": message.content}
            if message.name is not None:
                turn["name"] = message.name
            turns.append(turn)
        return {"messages": turns}
    if isinstance(record, CompletionRecord):
        row: dict[str, Any] = {"instruction": record.prompt, "output": record.completion}
        if record.system is not None:
            row["system"] = record.system
        return row
    if isinstance(record, LabelRecord):
        label_row: dict[str, Any] = {"text": record.text, "label": record.label}
        if record.group is not None:
            label_row["group"] = record.group
        return label_row
    return {"source": record.source, "target": record.target}


def write_records_jsonl(path: Path, records: Iterable[Record]) -> Path:
    """Write records as JSONL (atomically: a crash leaves the old file or the new one, never half of it)."""
    lines = [json.dumps(record_to_row(r), ensure_ascii=False) for r in records]
    atomic_write_text(path, "\n".join(lines) + ("\n" if lines else ""))
    return path
