"""Read data files into `RawRecord`s: JSONL (plain or gzip), JSON, CSV/TSV and Parquet.

Every record keeps its origin: the 1-based physical line for JSONL and CSV (for CSV, the line where the record
starts, since quoted fields may span lines) and the 1-based record index for JSON and Parquet.

`scan_raw_records` never raises on bad content: it returns the good rows and every problem found, which is what
`tunesmith data inspect` shows. `read_raw_records` raises one `DataError` listing all problems at once.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.errors import DataError, DependencyError, Problem
from tunesmith.core.records import Origin, RawRecord

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
UTF8_BOM = b"\xef\xbb\xbf"

# File name suffix (after removing a trailing .gz) -> reader kind.
EXTENSIONS: dict[str, str] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

JSONL_HINT = "each line must be one JSON object; check for a trailing comma or an unescaped quote"
OBJECT_HINT = 'each record must be a JSON object such as {"text": "...", "label": "..."}'


class Latin1FallbackWarning(UserWarning):
    """A data file was not valid UTF-8 and was decoded as Latin-1 instead."""


@dataclass
class ReadResult:
    """The rows that could be read and every problem met on the way."""

    records: list[RawRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_raw_records(path: str | Path) -> list[RawRecord]:
    """All rows of a data file; raises one `DataError` naming every bad line if any row is unreadable."""
    result = scan_raw_records(path)
    if result.problems:
        raise DataError(result.problems, title=f"cannot read {path}")
    return result.records


def scan_raw_records(path: str | Path) -> ReadResult:
    """Read what can be read from a data file; problems (missing file, bad lines, ...) are returned, not raised."""
    where = str(path)
    path = Path(path)
    if not path.exists():
        return _fail(where, "file not found", "check the path (relative paths start at the current folder)")
    if not path.is_file():
        return _fail(where, "not a file", "pass a data file, not a folder")
    kind = reader_kind(path)
    if kind is None:
        known = ", ".join(sorted(EXTENSIONS))
        return _fail(where, f"unknown file type {path.suffix!r}", f"use one of {known} (optionally .gz)")
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:  # also catches gzip files whose name lacks .gz
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            return _fail(where, f"gzip data is corrupt: {exc}", "re-create or re-download the file")
    if not data.strip():
        return _fail(where, "file is empty", "add records to the file, one per line for JSONL")
    if kind == "parquet" or data[:4] == PARQUET_MAGIC:
        return _read_parquet(data, where)
    text = decode_text(data, where)
    if kind == "jsonl":
        result = _read_jsonl(text, where)
    elif kind == "json":
        result = _read_json(text, where)
    else:
        result = _read_csv(text, where, delimiter="\t" if kind == "tsv" else ",")
    if not result.records and not result.problems:
        return _fail(where, "file has no records", "add records to the file, one per line for JSONL")
    return result


def reader_kind(path: Path) -> str | None:
    """Which reader a file name calls for (`jsonl`, `json`, `csv`, `tsv`, `parquet`), or None if unknown."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[: -len(".gz")]
    return EXTENSIONS.get(Path(name).suffix)


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 (BOM removed); falls back to Latin-1, which never fails, with a warning saying how to convert."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        warnings.warn(
            f"{where}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); read it as Latin-1. "
            f"If characters look wrong, convert the file to UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {where} > fixed{Path(where).suffix}`.",
            Latin1FallbackWarning,
            stacklevel=3,
        )
        return data.decode("latin-1")


def _fail(where: str, message: str, hint: str) -> ReadResult:
    return ReadResult(problems=[Problem(where=where, field=None, message=message, hint=hint)])


def _object_problem(where: str, value: object) -> Problem:
    return Problem(where, None, f"expected a JSON object, got {type(value).__name__}", OBJECT_HINT)


def _read_jsonl(text: str, where: str) -> ReadResult:
    result = ReadResult()
    # Split on "\n" only: str.splitlines would also split on U+2028 etc., which are legal inside JSON strings.
    lines = text.split("\n")
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("[") and _looks_like_json_document(text):
        return _read_json(text, where)  # a JSON array saved as .jsonl: read it rather than fail every line
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        at = f"{where}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            result.problems.append(
                Problem(at, None, f"not valid JSON: {exc.msg} (column {exc.colno})", JSONL_HINT)
            )
            continue
        if not isinstance(value, dict):
            result.problems.append(_object_problem(at, value))
            continue
        result.records.append(RawRecord(Origin(where, number), value))
    return result


def _looks_like_json_document(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except json.JSONDecodeError:
        return False


def _read_json(text: str, where: str) -> ReadResult:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several objects one after another: that is JSONL under a .json name
            lines = _read_jsonl(text, where)
            if not lines.problems:
                return lines
        at = f"{where}:{exc.lineno}"
        hint = "the file must be one JSON document: a list of objects, or an object holding one such list"
        return _fail(at, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", hint)
    rows = _json_rows(value)
    if isinstance(rows, Problem):
        return ReadResult(problems=[Problem(where, rows.field, rows.message, rows.hint)])
    result = ReadResult()
    for index, row in enumerate(rows, start=1):
        at = f"{where}:{index}"
        if isinstance(row, dict):
            result.records.append(RawRecord(Origin(where, index), row))
        else:
            result.problems.append(_object_problem(at, row))
    if not rows:
        result.problems.append(Problem(where, None, "the list of records is empty", "add records to the list"))
    return result


def _json_rows(value: object) -> list[object] | Problem:
    """The list of records in a JSON document: the document itself or its one list-valued key."""
    if isinstance(value, list):
        return value
    hint = 'use a list of objects, or an object with one list-valued key such as {"data": [...]}'
    if not isinstance(value, dict):
        return Problem("", None, f"expected a list of records, got {type(value).__name__}", hint)
    lists = [key for key, item in value.items() if isinstance(item, list)]
    if len(lists) == 1:
        return value[lists[0]]
    if not lists:
        return Problem("", None, f"no list of records found (keys: {', '.join(map(str, value)) or 'none'})", hint)
    return Problem(
        "", None, f"several list-valued keys ({', '.join(lists)}); cannot tell which holds the records", hint
    )


def _read_csv(text: str, where: str, delimiter: str) -> ReadResult:
    # Raise the per-field limit (default 128 KiB): long documents in one cell are legitimate training data.
    csv.field_size_limit(2**31 - 1)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    result = ReadResult()
    header: list[str] | None = None
    last_line = 0
    try:
        for row in reader:
            start, last_line = last_line + 1, reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                result.problems.extend(_header_problems(header, f"{where}:{start}"))
                continue
            at = f"{where}:{start}"
            if len(row) != len(header):
                message = f"row has {len(row)} fields but the header has {len(header)}"
                hint = "quote fields that contain the delimiter or line breaks, and double quotes inside quotes"
                result.problems.append(Problem(at, None, message, hint))
                continue
            result.records.append(RawRecord(Origin(where, start), dict(zip(header, row, strict=True))))
    except csv.Error as exc:
        at = f"{where}:{reader.line_num}"
        result.problems.append(
            Problem(at, None, f"CSV error: {exc}", "check for an unclosed quote near this line")
        )
    if header is not None and not result.records and not result.problems:
        result.problems.append(Problem(where, None, "only a header row, no records", "add rows below the header"))
    return result


def _header_problems(header: list[str], at: str) -> list[Problem]:
    problems = []
    if any(not name for name in header):
        problems.append(Problem(at, None, "the header row has an empty column name", "name every column"))
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        problems.append(Problem(at, None, f"duplicate column names: {', '.join(duplicates)}", "rename them"))
    return problems


def _read_parquet(data: bytes, where: str) -> ReadResult:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DependencyError(f"reading {where} needs pyarrow: pip install pyarrow") from exc
    try:
        rows = pq.read_table(pa.BufferReader(data)).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        return _fail(where, f"cannot read Parquet: {exc}", "check that the file is a complete Parquet file")
    records = [RawRecord(Origin(where, index), row) for index, row in enumerate(rows, start=1)]
    if not records:
        return _fail(where, "the Parquet file has no rows", "add rows to the file")
    return ReadResult(records=records)
