"""Records -> token ids and labels through the tokenizer's own chat template, with loss only on what the model
must learn: the content of each assistant turn plus the token that closes it (so the model learns to stop).

How the loss mask is found, for any template:
1. Render the whole conversation to text once.
2. For each assistant turn i, render `messages[:i]` with the generation prompt and `messages[:i+1]` without it.
   When both are prefixes of the whole text, the characters between their ends are exactly what the model
   writes for that turn (never the generation prompt such as `<|im_start|>assistant\\n`); trailing whitespace
   after the end-of-turn token is cut off, since it is template layout, not an answer.
3. When a template renders earlier turns differently from the last one (so prefixes do not agree), fall back to
   finding the assistant content in the text, extended by the end-of-turn token if it follows directly.
4. Tokenise the whole text once with character offsets; a token gets a label when it starts inside a span.
   Slow tokenizers (no offsets) are tokenised span by span instead.

Labels are aligned with `input_ids` (not shifted); the loss shifts them. Truncation keeps the start (the
prompt) and cuts the end; an example left without any target token is dropped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from jinja2 import TemplateError

from tunesmith.core.errors import DataError, Problem
from tunesmith.core.records import Message, Origin, PromptStyle, Record, to_messages

IGNORE_INDEX = -100
OverlongPolicy = Literal["truncate", "drop", "error"]
log = logging.getLogger(__name__)

# Used only when a tokenizer has no chat template (base models). ChatML layout; the end marker is the tokenizer's
# eos token when it has one, so a model tuned on it stops generating by itself.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + END + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class EncodedExample:
    """One record as token ids; `labels` is -100 where no loss is taken."""

    input_ids: list[int]
    labels: list[int]
    origin: Origin
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class EncodeReport:
    """Counts for the data report: every record is kept, truncated or dropped, and why."""

    total: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    dropped_reasons: dict[str, int] = field(default_factory=dict)
    kept_tokens: int = 0
    target_tokens: int = 0
    longest_tokens: int = 0

    def drop(self, reason: str) -> None:
        self.dropped += 1
        self.dropped_reasons[reason] = self.dropped_reasons.get(reason, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "kept": self.kept,
            "truncated": self.truncated,
            "dropped": self.dropped,
            "dropped_reasons": dict(self.dropped_reasons),
            "kept_tokens": self.kept_tokens,
            "target_tokens": self.target_tokens,
            "longest_tokens": self.longest_tokens,
        }


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a tokenizer without a chat template the documented ChatML-like fallback; True when it was added.

    The template is stored on the tokenizer, so a saved adapter folder carries it and generation uses the same
    layout the model was trained on.
    """
    if getattr(tokenizer, "chat_template", None):
        return False
    end = tokenizer.eos_token or "<|im_end|>"
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE.replace("END", repr(end))
    log.warning(
        "tokenizer has no chat template; using a ChatML-like fallback (turns end with %r). "
        "Prompts at inference time must use the same template (it is saved with the tokenizer).",
        end,
    )
    return True


def message_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Messages as the dicts chat templates expect (`name` only for tool turns, where templates use it)."""
    out: list[dict[str, str]] = []
    for m in messages:
        d = {"role": m.role, "content": m.content}
        if m.name and m.role == "tool":
            d["name"] = m.name
        out.append(d)
    return out


def _render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans `[start, end)` the loss goes on (see module doc)."""
    text = _render(tokenizer, messages, add_generation_prompt=False)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True) if i else ""
        full = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if i and text.startswith(full) and full.startswith(prompt) and len(prompt) >= cursor:
            answer = full[len(prompt) :]
            start, end = len(prompt), len(prompt) + len(answer.rstrip())
        else:
            start, end = _find_content(tokenizer, text, message["content"], cursor)
        if end > start:
            spans.append((start, end))
        cursor = max(cursor, end)
    return text, spans


def _find_content(tokenizer: Any, text: str, content: str, cursor: int) -> tuple[int, int]:
    """Fallback: the assistant content located in the rendered text, plus the end-of-turn token right after it."""
    start = text.find(content, cursor) if content else -1
    if start < 0:
        log.warning("assistant turn not found in the rendered template; it gets no loss")
        return cursor, cursor
    end = start + len(content)
    end_token = tokenizer.eos_token
    if end_token and text.startswith(end_token, end):
        end += len(end_token)
    return start, end


def tokenize_with_spans(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[bool]]:
    """Token ids of `text` and, per token, whether it starts inside one of `spans`."""
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"])
        in_span = [any(a <= s < b for a, b in spans) for s, _ in enc["offset_mapping"]]
        return ids, in_span
    return _tokenize_pieces(tokenizer, text, spans)


def _tokenize_pieces(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[bool]]:
    """No offsets (slow tokenizers): tokenise the pieces between span borders separately; borders are turn
    borders, where templates put special tokens or newlines, so this matches whole-text tokenisation there."""
    ids: list[int] = []
    in_span: list[bool] = []
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for a, b in spans:
        pieces += [(text[pos:a], False), (text[a:b], True)]
        pos = b
    pieces.append((text[pos:], False))
    for piece, flag in pieces:
        if piece:
            piece_ids = list(tokenizer(piece, add_special_tokens=False)["input_ids"])
            ids += piece_ids
            in_span += [flag] * len(piece_ids)
    return ids, in_span


def _too_long_problem(origin: Origin, length: int, max_seq_length: int) -> Problem:
    return Problem(
        where=str(origin),
        field=None,
        message=f"{length} tokens, longer than max_seq_length={max_seq_length}",
        hint="raise encode.max_seq_length, or set encode.overlong to 'truncate' or 'drop'",
    )


def encode_record(
    record: Record,
    tokenizer: Any,
    style: PromptStyle,
    max_seq_length: int,
    overlong: OverlongPolicy = "truncate",
    train_on_prompt: bool = False,
) -> EncodedExample | None:
    """One record as ids + labels; None when it is dropped (over-long with `drop`, or no target token left).

    Raises DataError for an over-long record with `overlong="error"`.
    """
    example, reason = _encode_one(record, tokenizer, style, max_seq_length, overlong, train_on_prompt)
    if reason == "overlong_error":
        length = len(_full_ids(record, tokenizer, style))
        raise DataError([_too_long_problem(record.origin, length, max_seq_length)], title="over-long records")
    return example


def _full_ids(record: Record, tokenizer: Any, style: PromptStyle) -> list[int]:
    ensure_chat_template(tokenizer)
    text = _render(tokenizer, message_dicts(to_messages(record, style)), add_generation_prompt=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _encode_one(
    record: Record,
    tokenizer: Any,
    style: PromptStyle,
    max_seq_length: int,
    overlong: OverlongPolicy,
    train_on_prompt: bool,
) -> tuple[EncodedExample | None, str | None]:
    """The example (or None) and, when not kept as-is, why: `truncated`, `overlong`, `overlong_error`, ..."""
    if overlong not in ("truncate", "drop", "error"):
        raise ValueError(f"overlong must be 'truncate', 'drop' or 'error', got {overlong!r}")
    ensure_chat_template(tokenizer)
    try:
        text, spans = assistant_spans(tokenizer, message_dicts(to_messages(record, style)))
    except TemplateError as exc:  # templates reject some role orders (e.g. two user turns in a row)
        problem = Problem(
            str(record.origin),
            "messages",
            f"the chat template rejected it: {exc}",
            hint="fix the turn order of this record, or drop it",
        )
        raise DataError([problem], title="records the chat template cannot render") from None
    if not spans:
        return None, "no_target"
    ids, in_span = tokenize_with_spans(tokenizer, text, spans)
    labels = [t if (train_on_prompt or flag) else IGNORE_INDEX for t, flag in zip(ids, in_span, strict=True)]
    truncated = len(ids) > max_seq_length
    if truncated:
        if overlong == "error":
            return None, "overlong_error"
        if overlong == "drop":
            return None, "overlong"
        ids, labels = ids[:max_seq_length], labels[:max_seq_length]
    # The label at position 0 is never predicted (the loss shifts), so it does not count as a target.
    if all(label == IGNORE_INDEX for label in labels[1:]):
        return None, "no_target_after_truncation" if truncated else "no_target"
    example = EncodedExample(input_ids=ids, labels=labels, origin=record.origin, truncated=truncated)
    return example, "truncated" if truncated else None


def encode_records(
    records: Iterable[Record],
    tokenizer: Any,
    style: PromptStyle,
    max_seq_length: int,
    overlong: OverlongPolicy = "truncate",
    train_on_prompt: bool = False,
) -> tuple[list[EncodedExample], EncodeReport]:
    """Encode every record; returns the kept examples and the counts.

    With `overlong="error"` every over-long record is collected first, then one DataError lists them all
    (origin, token length and the fix).
    """
    report = EncodeReport()
    examples: list[EncodedExample] = []
    too_long: list[Problem] = []
    for record in records:
        report.total += 1
        example, reason = _encode_one(record, tokenizer, style, max_seq_length, overlong, train_on_prompt)
        if reason == "overlong_error":
            length = len(_full_ids(record, tokenizer, style))
            too_long.append(_too_long_problem(record.origin, length, max_seq_length))
            continue
        if example is None:
            report.drop(reason or "unknown")
            continue
        examples.append(example)
        report.kept += 1
        report.truncated += int(example.truncated)
        report.kept_tokens += len(example)
        report.target_tokens += sum(1 for label in example.labels[1:] if label != IGNORE_INDEX)
        report.longest_tokens = max(report.longest_tokens, len(example))
    if too_long:
        raise DataError(too_long, title=f"records longer than max_seq_length={max_seq_length}")
    return examples, report
