"""Typed training records. Every record keeps its origin (file and line) so any later stage can point back to it.

A record of any kind becomes a conversation (`to_messages`) before encoding: the answer the model must learn is
always the final assistant turn (or every assistant turn, for chats), which is where the loss goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Origin:
    """Where a record came from: file path and 1-based line (JSONL/CSV) or record index (JSON/Parquet)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class RawRecord:
    """One row as read from a file, before its format is known."""

    origin: Origin
    fields: dict[str, object]


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    name: str | None = None  # tool name for role == "tool"


@dataclass(frozen=True)
class ChatRecord:
    """A conversation (OpenAI `messages`, sharegpt). Loss goes on every assistant turn."""

    messages: tuple[Message, ...]
    origin: Origin
    kind: Literal["chat"] = "chat"


@dataclass(frozen=True)
class CompletionRecord:
    """A prompt and the completion to learn (alpaca, prompt/completion)."""

    prompt: str
    completion: str
    origin: Origin
    system: str | None = None
    kind: Literal["completion"] = "completion"


@dataclass(frozen=True)
class LabelRecord:
    """A text and its class label; trained generatively (the label is the assistant's answer)."""

    text: str
    label: str
    origin: Origin
    group: str | None = None  # optional group attribute (fairness slices in later stages)
    kind: Literal["label"] = "label"


@dataclass(frozen=True)
class PairRecord:
    """A source text and its target (translation, rewriting, summarisation)."""

    source: str
    target: str
    origin: Origin
    kind: Literal["pair"] = "pair"


Record = ChatRecord | CompletionRecord | LabelRecord | PairRecord


@dataclass(frozen=True)
class PromptStyle:
    """How non-chat records are phrased as a user turn. `{labels}` lists the label set, comma-separated."""

    system: str | None = None
    label_prompt: str = "Classify the text into one of: {labels}.\nText: {text}\nAnswer with the label only."
    pair_prompt: str = "{source}"
    labels: tuple[str, ...] = field(default_factory=tuple)


def to_messages(record: Record, style: PromptStyle) -> list[Message]:
    """The conversation a record stands for; the last message is the assistant answer to learn."""
    head = [Message("system", style.system)] if style.system else []
    if isinstance(record, ChatRecord):
        has_system = any(m.role == "system" for m in record.messages)
        return ([] if has_system else head) + list(record.messages)
    if isinstance(record, CompletionRecord):
        system = [Message("system", record.system)] if record.system else head
        return system + [Message("user", record.prompt), Message("assistant", record.completion)]
    if isinstance(record, LabelRecord):
        prompt = style.label_prompt.format(text=record.text, labels=", ".join(style.labels))
        return head + [Message("user", prompt), Message("assistant", record.label)]
    prompt = style.pair_prompt.format(source=record.source)
    return head + [Message("user", prompt), Message("assistant", record.target)]


def target_of(record: Record) -> str:
    """The reference answer a generated reply is scored against."""
    if isinstance(record, ChatRecord):
        answers = [m.content for m in record.messages if m.role == "assistant"]
        return answers[-1] if answers else ""
    if isinstance(record, CompletionRecord):
        return record.completion
    if isinstance(record, LabelRecord):
        return record.label
    return record.target


def prompt_messages(record: Record, style: PromptStyle) -> list[Message]:
    """The conversation up to (not including) the final assistant answer: what generation starts from."""
    messages = to_messages(record, style)
    while messages and messages[-1].role == "assistant":
        messages = messages[:-1]
    return messages
