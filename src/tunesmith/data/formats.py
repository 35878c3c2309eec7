"""Record formats: each turns a `RawRecord` into a typed `Record`, or into the list of problems that stop it.

Formats (register a new one with `FORMATS.register(name)(DataFormat(...))` in this module or a plug-in module):

- `messages`: OpenAI chat, `{"messages": [{"role": "user", "content": "..."}, ...]}`
- `sharegpt`: `{"conversations": [{"from": "human", "value": "..."}, ...]}`
- `alpaca`: `{"instruction": ..., "input": ..., "output": ...}`
- `prompt_completion`: `{"prompt": ..., "completion": ...}`
- `text_label`: `{"text": ..., "label": ...}` (aliases: sentence/utterance; intent/category/class),
  optional `group`
- `pairs`: `{"source": ..., "target": ...}` (aliases: src/tgt, input/target)

`parse_records` checks every record and raises one `DataError` listing all problems; `validate_records` returns
them instead (for `tunesmith data inspect`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.errors import DataError, Problem
from tunesmith.core.records import (
    ROLES,
    ChatRecord,
    CompletionRecord,
    LabelRecord,
    Message,
    PairRecord,
    RawRecord,
    Record,
)
from tunesmith.core.registry import Registry

DETECT_SAMPLE = 20
TEXT_KEYS = ("text", "sentence", "utterance")
LABEL_KEYS = ("label", "intent", "category", "class")
PAIR_KEYS = (("source", "target"), ("src", "tgt"), ("input", "target"))
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}

Parser = Callable[[RawRecord], "Record | list[Problem]"]


@dataclass(frozen=True)
class DataFormat:
    """A record format: its parser, the key sets that identify it, and an example for error messages."""

    name: str
    parse: Parser
    signatures: tuple[frozenset[str], ...]
    """A record looks like this format when its keys include every key of one of these sets."""
    example: str
    priority: int = 100
    """Breaks ties in auto-detection: lower wins (alpaca before pairs for instruction/input/output)."""

    def matches(self, keys: set[str] | frozenset[str]) -> bool:
        return any(signature <= keys for signature in self.signatures)


FORMATS: Registry[DataFormat] = Registry("data format")


@dataclass
class ValidationResult:
    """Records that parsed, the format used, and every problem found (empty when all records are fine)."""

    format: str | None
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class _Fields:
    """Typed access to one raw record's fields, collecting a `Problem` for each bad or missing one."""

    def __init__(self, raw: RawRecord):
        self.raw = raw
        self.where = str(raw.origin)
        self.problems: list[Problem] = []

    def add(self, field_name: str | None, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.where, field_name, message, hint))

    def missing(self, key: str, hint: str) -> None:
        present = ", ".join(sorted(self.raw.fields)) or "none"
        self.add(key, f"missing field {key!r} (this record has: {present})", hint)

    def string(self, key: str, hint: str, *, required: bool = True, allow_empty: bool = False) -> str | None:
        """The field's text; None (with a problem when required) if absent, not a string, or blank."""
        value = self.raw.fields.get(key)
        if value is None:
            if required and key in self.raw.fields:
                self.add(key, "is null", hint)
            elif required:
                self.missing(key, hint)
            return None
        if not isinstance(value, str):
            self.add(key, f"expected a string, got {type(value).__name__} {_short(value)}", hint)
            return None
        if not value.strip() and not allow_empty:
            if required:
                self.add(key, "is empty", hint)
            return None
        return value

    def first_key(self, keys: tuple[str, ...]) -> str | None:
        """The first of these keys with a value; else the first one present (so a null is reported as such)."""
        with_value = next((key for key in keys if self.raw.fields.get(key) is not None), None)
        return with_value or next((key for key in keys if key in self.raw.fields), None)


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _register(data_format: DataFormat) -> DataFormat:
    return FORMATS.register(data_format.name)(data_format)


# --- chats -------------------------------------------------------------------------------------------------------


def _content_text(content: object) -> str | None:
    """A message's content as text: a string, or a list of `{type: text, text}` parts joined by newlines."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        else:
            return None
    return "\n".join(parts)


def _check_chat(f: _Fields, key: str, messages: list[Message]) -> None:
    """The rules every conversation must satisfy so training and evaluation can find the answer."""
    if not any(m.role == "assistant" and m.content.strip() for m in messages):
        f.add(key, "no assistant turn with content", "add at least one assistant reply: that is what is learned")
    elif messages[-1].role != "assistant":
        f.add(
            key,
            f"the conversation ends with a {messages[-1].role!r} turn",
            "end each conversation with the assistant reply to learn; drop trailing turns",
        )


def _chat_turns(f: _Fields, key: str) -> list[object] | None:
    turns = f.raw.fields.get(key)
    if turns is None:
        f.missing(key, f"add a {key!r} list of turns")
        return None
    if not isinstance(turns, list) or not turns:
        f.add(key, f"expected a non-empty list of turns, got {_short(turns)}", f"make {key!r} a list of objects")
        return None
    return turns


def _chat_record(f: _Fields, key: str, messages: list[Message]) -> Record | list[Problem]:
    """The chat record once every turn parsed, after the whole-conversation checks; else every problem."""
    if not f.problems:
        _check_chat(f, key, messages)
    return f.problems or ChatRecord(tuple(messages), f.raw.origin)


def _parse_messages(raw: RawRecord) -> Record | list[Problem]:
    f = _Fields(raw)
    turns = _chat_turns(f, "messages")
    if turns is None:
        return f.problems
    messages = []
    for i, turn in enumerate(turns):
        at = f"messages[{i}]"
        if not isinstance(turn, dict):
            f.add(
                at, f"expected an object, got {_short(turn)}", 'write each turn as {"role": ..., "content": ...}'
            )
            continue
        role = turn.get("role")
        if role not in ROLES:
            f.add(f"{at}.role", f"unknown role {_short(role)}", f"use one of: {', '.join(ROLES)}")
            continue
        content = _content_text(turn.get("content"))
        if content is None:
            hint = 'content must be a string or a list of {"type": "text", "text": ...} parts'
            f.add(f"{at}.content", f"unsupported content {_short(turn.get('content'))}", hint)
            continue
        if role in ("user", "assistant") and not content.strip():
            f.add(f"{at}.content", f"empty {role} turn", "remove the turn or fill in its text")
        name = turn.get("name")
        messages.append(Message(str(role), content, name if isinstance(name, str) else None))
    return _chat_record(f, "messages", messages)


def _parse_sharegpt(raw: RawRecord) -> Record | list[Problem]:
    f = _Fields(raw)
    turns = _chat_turns(f, "conversations")
    if turns is None:
        return f.problems
    system = f.string("system", "", required=False)
    messages = [Message("system", system)] if system else []
    for i, turn in enumerate(turns):
        at = f"conversations[{i}]"
        if not isinstance(turn, dict):
            f.add(at, f"expected an object, got {_short(turn)}", 'write each turn as {"from": ..., "value": ...}')
            continue
        speaker = turn.get("from", turn.get("role"))
        role = SHAREGPT_ROLES.get(str(speaker).lower()) if speaker is not None else None
        if role is None:
            f.add(f"{at}.from", f"unknown speaker {_short(speaker)}", f"use one of: {', '.join(SHAREGPT_ROLES)}")
            continue
        value = _content_text(turn.get("value", turn.get("content")))
        if value is None:
            f.add(
                f"{at}.value",
                f"expected a string, got {_short(turn.get('value'))}",
                "put the turn's text in 'value'",
            )
            continue
        if role in ("user", "assistant") and not value.strip():
            f.add(f"{at}.value", f"empty {speaker} turn", "remove the turn or fill in its text")
        messages.append(Message(role, value))
    return _chat_record(f, "conversations", messages)


# --- prompt -> answer --------------------------------------------------------------------------------------------


def _parse_alpaca(raw: RawRecord) -> Record | list[Problem]:
    f = _Fields(raw)
    instruction = f.string("instruction", "add the task description in 'instruction'")
    extra = f.string(
        "input", "'input' is optional; when present it must be a string", required=False, allow_empty=True
    )
    output = f.string("output", "add the answer to learn in 'output'")
    system = f.string("system", "'system' is optional; when present it must be a string", required=False)
    if f.problems or instruction is None or output is None:
        return f.problems
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    return CompletionRecord(prompt, output, raw.origin, system=system)


def _parse_prompt_completion(raw: RawRecord) -> Record | list[Problem]:
    f = _Fields(raw)
    prompt = f.string("prompt", "add the model input in 'prompt'")
    completion = f.string("completion", "add the answer to learn in 'completion'")
    if f.problems or prompt is None or completion is None:
        return f.problems
    return CompletionRecord(prompt, completion, raw.origin)


def _label_text(f: _Fields, key: str) -> str | None:
    """A label as text: strings are stripped (a stray space would make a new class), integers become strings."""
    value = f.raw.fields.get(key)
    if isinstance(value, float) and value.is_integer():  # 3.0 from a numeric CSV/Parquet column
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    f.add(key, f"expected a non-empty string or integer label, got {_short(value)}", "give every record a label")
    return None


def _parse_text_label(raw: RawRecord) -> Record | list[Problem]:
    f = _Fields(raw)
    text_key = f.first_key(TEXT_KEYS) or "text"
    label_key = f.first_key(LABEL_KEYS)
    text = f.string(text_key, "add the input text in 'text'")
    if label_key is None:
        f.missing("label", f"add the class in 'label' (also accepted: {', '.join(LABEL_KEYS[1:])})")
        label = None
    else:
        label = _label_text(f, label_key)
    group_value = raw.fields.get("group")
    group = None if group_value is None or str(group_value).strip() == "" else str(group_value).strip()
    if f.problems or text is None or label is None:
        return f.problems
    return LabelRecord(text, label, raw.origin, group=group)


def _parse_pairs(raw: RawRecord) -> Record | list[Problem]:
    f = _Fields(raw)
    keys = next((pair for pair in PAIR_KEYS if pair[0] in raw.fields), PAIR_KEYS[0])
    source = f.string(keys[0], f"add the input text in {keys[0]!r}")
    target = f.string(keys[1], f"add the expected output in {keys[1]!r}")
    if f.problems or source is None or target is None:
        return f.problems
    return PairRecord(source, target, raw.origin)


def _signatures(*key_sets: tuple[str, ...]) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(keys) for keys in key_sets)


_register(DataFormat("messages", _parse_messages, _signatures(("messages",)), '{"messages": [...]}', 10))
_register(DataFormat("sharegpt", _parse_sharegpt, _signatures(("conversations",)), '{"conversations": [...]}', 20))
_register(
    DataFormat("alpaca", _parse_alpaca, _signatures(("instruction", "output")), '{"instruction", "output"}', 30)
)
_register(
    DataFormat(
        "prompt_completion",
        _parse_prompt_completion,
        _signatures(("prompt", "completion")),
        '{"prompt", "completion"}',
        40,
    )
)
_register(
    DataFormat(
        "text_label",
        _parse_text_label,
        _signatures(*((t, lab) for t in TEXT_KEYS for lab in LABEL_KEYS)),
        '{"text", "label"}',
        50,
    )
)
_register(DataFormat("pairs", _parse_pairs, _signatures(*PAIR_KEYS), '{"source", "target"}', 60))


# --- detection and whole-file parsing ----------------------------------------------------------------------------


def detect_format(raws: list[RawRecord]) -> str:
    """The format most of the first records match (ties: the more specific format); `DataError` if none does."""
    sample = raws[:DETECT_SAMPLE]
    if not sample:
        raise DataError([Problem("data", None, "no records to detect the format from", "add records to the file")])
    scores = Counter(
        name for raw in sample for name, data_format in FORMATS.items() if data_format.matches(set(raw.fields))
    )
    if scores:
        return min(scores, key=lambda name: (-scores[name], FORMATS.get(name).priority))
    seen = Counter(key for raw in sample for key in raw.fields)
    keys = ", ".join(f"{key} ({count})" for key, count in sorted(seen.items()))
    known = "; ".join(f"{name}: {fmt.example}" for name, fmt in FORMATS.items())
    where = sample[0].origin.file
    message = f"cannot tell the format: the first {len(sample)} records have keys {keys or 'none'}"
    hint = f"rename the fields to one known format, or set data.format explicitly. Known formats: {known}"
    raise DataError([Problem(where, None, message, hint)], title=f"unknown data format in {Path(where).name}")


def validate_records(raws: list[RawRecord], fmt: str = "auto") -> ValidationResult:
    """Parse every record with one format; collects (does not raise) problems in the records."""
    name = detect_format(raws) if fmt == "auto" else fmt
    parse = FORMATS.get(name).parse
    result = ValidationResult(format=name)
    for raw in raws:
        parsed = parse(raw)
        if isinstance(parsed, list):
            result.problems.extend(parsed)
        else:
            result.records.append(parsed)
    return result


def parse_records(raws: list[RawRecord], fmt: str = "auto") -> list[Record]:
    """Typed records for every raw record; one `DataError` listing every problem in every record otherwise."""
    result = validate_records(raws, fmt)
    if result.problems:
        files = sorted({raw.origin.file for raw in raws})
        bad = len({p.where for p in result.problems})
        title = f"{bad} of {len(raws)} records in {', '.join(files)} are not valid {result.format} records"
        raise DataError(result.problems, title=title)
    return result.records
