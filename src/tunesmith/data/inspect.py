"""`tunesmith data inspect FILE`: what a data file holds and everything wrong with it, without raising.

report = inspect_file("train.jsonl", tokenizer=tokenizer, max_seq_length=512)
rich.print(render_inspect_report(report))
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.errors import DataError, Problem
from tunesmith.core.records import LabelRecord, PromptStyle, Record, to_messages
from tunesmith.data.formats import validate_records
from tunesmith.data.io import scan_raw_records
from tunesmith.data.load import labels_of

HISTOGRAM_BINS = 10
BAR_WIDTH = 40


@dataclass(frozen=True)
class HistogramBin:
    """Token lengths from `low` to `high` inclusive, and how many examples fall there."""

    low: int
    high: int
    count: int


@dataclass
class InspectReport:
    """Everything `data inspect` shows; `problems` lists every bad record (never truncated here)."""

    path: str
    format: str | None
    records_read: int
    records_valid: int
    kind_counts: dict[str, int] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    token_lengths: list[int] | None = None
    """Chat-templated length of each valid record, in file order (only with a tokenizer)."""
    histogram: list[HistogramBin] | None = None
    max_seq_length: int | None = None
    over_max_seq_length: int | None = None
    """How many valid records are longer than `max_seq_length` tokens."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def inspect_file(
    path: str | Path,
    fmt: str = "auto",
    tokenizer: Any | None = None,
    max_seq_length: int | None = None,
    style: PromptStyle | None = None,
) -> InspectReport:
    """Read, detect and validate a file, collecting every problem; token lengths when a tokenizer is given."""
    scan = scan_raw_records(path)
    report = InspectReport(str(path), None, len(scan.records), 0, problems=list(scan.problems))
    if not scan.records:
        return report
    try:
        result = validate_records(scan.records, fmt)
    except DataError as exc:  # format not recognisable: the detection problem is the report
        report.problems.extend(exc.problems)
        return report
    records = result.records
    report.format = result.format
    report.records_valid = len(records)
    report.problems.extend(result.problems)
    report.kind_counts = dict(sorted(Counter(r.kind for r in records).items()))
    report.label_counts = dict(sorted(Counter(r.label for r in records if isinstance(r, LabelRecord)).items()))
    if tokenizer is not None and records:
        style = style or PromptStyle(labels=labels_of(records))
        report.token_lengths = [templated_length(tokenizer, record, style) for record in records]
        report.histogram = token_histogram(report.token_lengths)
        if max_seq_length is not None:
            report.max_seq_length = max_seq_length
            report.over_max_seq_length = sum(1 for n in report.token_lengths if n > max_seq_length)
    return report


def templated_length(tokenizer: Any, record: Record, style: PromptStyle) -> int:
    """Tokens in the record's whole conversation after the tokenizer's chat template."""
    messages = [{"role": m.role, "content": m.content} for m in to_messages(record, style)]
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):  # some versions return a BatchEncoding regardless
        ids = ids["input_ids"]
    return len(ids)


def token_histogram(lengths: list[int], num_bins: int = HISTOGRAM_BINS) -> list[HistogramBin]:
    """Equal-width integer bins from the shortest to the longest length (fewer bins if the range is small)."""
    if not lengths:
        return []
    low, high = min(lengths), max(lengths)
    width = max(1, math.ceil((high - low + 1) / num_bins))
    counts = Counter((n - low) // width for n in lengths)
    bins = math.ceil((high - low + 1) / width)
    return [HistogramBin(low + i * width, low + (i + 1) * width - 1, counts.get(i, 0)) for i in range(bins)]


def render_inspect_report(report: InspectReport, max_problems: int = 30) -> Any:
    """A rich renderable: summary table, label counts, token-length histogram and the problems."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    summary = Table(title="data file", show_header=False)
    summary.add_row("file", report.path)
    summary.add_row("format", report.format or "unknown")
    summary.add_row("records read", str(report.records_read))
    summary.add_row("valid records", str(report.records_valid))
    summary.add_row("kinds", ", ".join(f"{k}: {n}" for k, n in report.kind_counts.items()) or "-")
    summary.add_row("problems", str(len(report.problems)))
    if report.over_max_seq_length is not None:
        summary.add_row(f"longer than {report.max_seq_length} tokens", str(report.over_max_seq_length))
    parts: list[Any] = [summary]
    if report.label_counts:
        labels = Table(title="labels")
        labels.add_column("label")
        labels.add_column("count", justify="right")
        labels.add_column("share", justify="right")
        total = sum(report.label_counts.values())
        for label, count in report.label_counts.items():
            labels.add_row(label, str(count), f"{count / total:.1%}")
        parts.append(labels)
    if report.histogram:
        parts.append(Text(histogram_text(report.histogram)))
    if report.problems:
        shown = "\n".join(p.render() for p in report.problems[:max_problems])
        more = len(report.problems) - max_problems
        tail = f"\n  ... and {more} more" if more > 0 else ""
        parts.append(Text(f"problems ({len(report.problems)}):\n{shown}{tail}", style="red"))
    return Group(*parts)


def histogram_text(histogram: list[HistogramBin], bar_width: int = BAR_WIDTH) -> str:
    """Plain-text bars, one line per bin: `  12-15 | ######### 9`."""
    peak = max((b.count for b in histogram), default=0) or 1
    span = max(len(f"{b.low}-{b.high}") for b in histogram)
    lines = ["token lengths (chat-templated):"]
    for b in histogram:
        bar = "#" * math.ceil(b.count / peak * bar_width) if b.count else ""
        lines.append(f"  {f'{b.low}-{b.high}':>{span}} | {bar} {b.count}")
    return "\n".join(lines)
