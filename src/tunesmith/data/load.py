"""From a `DataConfig` to train/val/test splits plus a report of what was read (`data_report.json`)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tunesmith.config.schema import DataConfig
from tunesmith.core.errors import DataError, Problem
from tunesmith.core.records import LabelRecord, Record
from tunesmith.data.bundled import resolve_data_source
from tunesmith.data.formats import validate_records
from tunesmith.data.io import scan_raw_records
from tunesmith.data.split import Splits, split_records, split_with_eval_file


@dataclass
class DataReport:
    """What was loaded: files and their hashes, format, split sizes and label counts, leakage checks."""

    train_file: str
    eval_file: str | None
    sha256: dict[str, str]
    """File path -> sha256 of its bytes, so a run records exactly which data it saw."""
    format: str
    eval_format: str | None
    records_read: int
    """Records in the train file before `max_records`."""
    records_used: int
    counts: dict[str, int]
    label_counts: dict[str, dict[str, int]] | None
    """Split -> label -> count, for labelled data."""
    grouped_duplicates: int
    """Train-file records sharing a normalised prompt with another one; kept in the same split as it."""
    eval_overlap: int | None
    """With an eval file: training records whose normalised prompt also appears in the eval file."""
    labels: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def labels_of(records: list[Record]) -> tuple[str, ...]:
    """Sorted unique labels of the labelled records (empty for other kinds)."""
    return tuple(sorted({r.label for r in records if isinstance(r, LabelRecord)}))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_records(path: Path, fmt: str, max_records: int | None = None) -> tuple[list[Record], str, int]:
    """Read and parse one file: (records, format used, rows in the file).

    Unreadable lines and invalid records are collected together, so one `DataError` lists every problem.
    """
    scan = scan_raw_records(path)
    if not scan.records and scan.problems:
        raise DataError(scan.problems, title=f"cannot read {path}")
    raws = scan.records
    records_read = len(raws) + len(scan.problems)
    if max_records is not None:
        raws = raws[:max_records]  # before parsing: problems past the cut do not block a quick trial
    result = validate_records(raws, fmt)
    problems = sorted([*scan.problems, *result.problems], key=_problem_line)
    if problems:
        bad = len({p.where for p in problems})
        title = f"{bad} of {records_read} records in {path} are not valid {result.format} records"
        raise DataError(problems, title=title)
    return result.records, str(result.format), records_read


def _problem_line(problem: Problem) -> int:
    line = problem.where.rpartition(":")[2]
    return int(line) if line.isdigit() else 0


PrepareHook = Callable[[list[Record], list[Record]], list[Record]]
"""(train-file records, eval-file records) -> the train-file records to split: the vetting stage's seat."""


def load_splits(cfg: DataConfig, seed: int, prepare: PrepareHook | None = None) -> tuple[Splits, DataReport]:
    """Resolve, read, parse, truncate to `max_records`, optionally vet (`prepare`) and split the configured data."""
    train_path = resolve_data_source(cfg.train_file)
    records, fmt, records_read = load_records(train_path, cfg.format, cfg.max_records)
    hashes = {str(train_path): file_sha256(train_path)}
    eval_path, eval_format, overlap = None, None, None
    eval_records: list[Record] = []
    if cfg.eval_file:
        eval_path = resolve_data_source(cfg.eval_file)
        eval_records, eval_format, _ = load_records(eval_path, cfg.format)
        _check_same_kind(records, eval_records, eval_path)
        hashes[str(eval_path)] = file_sha256(eval_path)
    if prepare is not None:
        records = prepare(records, eval_records)
        if not records:
            hint = "every record was quarantined: read the vetting report, or loosen the `vet:` filters"
            raise DataError([Problem(str(train_path), None, "no records left to train on", hint)])
    if cfg.eval_file:
        splits, overlap = split_with_eval_file(records, eval_records, cfg.val_fraction, seed, cfg.stratify)
    else:
        splits = split_records(records, cfg.val_fraction, cfg.test_fraction, seed, cfg.stratify)
    report = DataReport(
        train_file=str(train_path),
        eval_file=str(eval_path) if eval_path else None,
        sha256=hashes,
        format=fmt,
        eval_format=eval_format,
        records_read=records_read,
        records_used=len(records),
        counts=splits.counts(),
        label_counts=_label_counts(splits),
        grouped_duplicates=splits.grouped_duplicates,
        eval_overlap=overlap,
        labels=list(labels_of(records + splits.test)),
    )
    return splits, report


def _check_same_kind(train: list[Record], evaluation: list[Record], eval_path: Path) -> None:
    train_kinds = sorted({r.kind for r in train})
    eval_kinds = sorted({r.kind for r in evaluation})
    if train_kinds != eval_kinds:
        message = (
            f"eval records are of kind {', '.join(eval_kinds)}, train records of kind {', '.join(train_kinds)}"
        )
        hint = "use an eval file in the same format as the train file"
        raise DataError([Problem(str(eval_path), None, message, hint)])


def _label_counts(splits: Splits) -> dict[str, dict[str, int]] | None:
    if not labels_of(splits.train + splits.val + splits.test):
        return None
    return {
        name: dict(sorted(Counter(r.label for r in part if isinstance(r, LabelRecord)).items()))
        for name, part in (("train", splits.train), ("val", splits.val), ("test", splits.test))
    }
