"""Reading data files: every container format, encodings, and bad input reported line by line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tunesmith.core.errors import DataError
from tunesmith.data.io import Latin1FallbackWarning, read_raw_records, scan_raw_records

ROWS = [{"text": "hello there", "label": "greet"}, {"text": "bye now", "label": "leave"}]


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def _fields(path: Path) -> list[dict]:
    return [raw.fields for raw in read_raw_records(path)]


def test_jsonl_lines_are_physical_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n" + json.dumps(ROWS[0]) + "\n\n   \n" + json.dumps(ROWS[1]) + "\n")
    raws = read_raw_records(path)
    assert [raw.fields for raw in raws] == ROWS
    assert [raw.origin.line for raw in raws] == [2, 5]
    assert raws[0].origin.file == str(path)


def test_gzip_named_and_misnamed(tmp_path: Path) -> None:
    named = tmp_path / "d.jsonl.gz"
    named.write_bytes(gzip.compress(_jsonl(ROWS).encode()))
    misnamed = tmp_path / "e.jsonl"  # gzip bytes without .gz: found by the magic bytes
    misnamed.write_bytes(gzip.compress(_jsonl(ROWS).encode()))
    assert _fields(named) == ROWS
    assert _fields(misnamed) == ROWS


def test_json_list_and_wrapped_list(tmp_path: Path) -> None:
    plain = tmp_path / "a.json"
    plain.write_text(json.dumps(ROWS, indent=2))
    wrapped = tmp_path / "b.json"
    wrapped.write_text(json.dumps({"version": 1, "data": ROWS}))
    assert _fields(plain) == ROWS
    raws = read_raw_records(wrapped)
    assert [raw.fields for raw in raws] == ROWS
    assert [raw.origin.line for raw in raws] == [1, 2]  # record index for JSON


def test_json_with_two_lists_is_ambiguous(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"train": ROWS, "test": ROWS}))
    with pytest.raises(DataError, match="several list-valued keys"):
        read_raw_records(path)


def test_csv_quoted_multiline_gets_start_line_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    text = 'text,label\r\n"line one\r\nline two",a\r\nsecond,b\r\n'
    path.write_bytes(text.encode())
    raws = read_raw_records(path)
    assert [raw.fields for raw in raws] == [
        {"text": "line one\r\nline two", "label": "a"},
        {"text": "second", "label": "b"},
    ]
    assert [raw.origin.line for raw in raws] == [2, 4]


def test_csv_row_with_wrong_field_count(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\nok,a\ntoo,many,fields\nfine,b\nshort\n")
    with pytest.raises(DataError) as info:
        read_raw_records(path)
    assert [p.where for p in info.value.problems] == [f"{path}:3", f"{path}:5"]
    assert "header has 2" in str(info.value)


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    raws = read_raw_records(path)
    assert [raw.fields for raw in raws] == ROWS
    assert [raw.origin.line for raw in raws] == [1, 2]


def test_bom_and_crlf_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + _jsonl(ROWS).replace("\n", "\r\n").encode())
    assert _fields(path) == ROWS


def test_latin1_fallback_warns_with_file_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes("text,label\ncaf\xe9 au lait,drink\n".encode("latin-1"))
    with pytest.warns(Latin1FallbackWarning) as record:
        raws = read_raw_records(path)
    assert raws[0].fields["text"] == "café au lait"
    message = str(record[0].message)
    assert str(path) in message and "Latin-1" in message and "iconv" in message


def test_utf8_is_not_mistaken_for_latin1(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "café ✓", "label": "x"}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert _fields(path)[0]["text"] == "café ✓"
    assert not [w for w in recwarn if issubclass(w.category, Latin1FallbackWarning)]


def test_every_bad_jsonl_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(ROWS[0]), '{"text": "a",}', json.dumps(ROWS[1]), "[1, 2]", '{"text": "unclosed}', ""]
    path.write_text("\n".join(lines))
    with pytest.raises(DataError) as info:
        read_raw_records(path)
    problems = info.value.problems
    assert [p.where for p in problems] == [f"{path}:2", f"{path}:4", f"{path}:5"]
    assert "trailing comma" in (problems[0].hint or "")
    assert "expected a JSON object, got list" in problems[1].message
    assert f"{path}:5" in str(info.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "file not found"),
        ("empty.jsonl", "", "file is empty"),
        ("blank.jsonl", "\n \n", "file is empty"),
        ("data.xlsx", "x", "unknown file type"),
        ("header.csv", "text,label\n", "only a header row"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        read_raw_records(path)
    assert str(path) in str(info.value)
    assert info.value.problems[0].hint


def test_scan_keeps_good_rows_next_to_problems(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\nnot json\n")
    result = scan_raw_records(path)
    assert [raw.fields for raw in result.records] == [ROWS[0]]
    assert [p.where for p in result.problems] == [f"{path}:2"]


def test_json_and_jsonl_content_under_each_others_names(tmp_path: Path) -> None:
    lines_as_json = tmp_path / "a.json"
    lines_as_json.write_text(_jsonl(ROWS))
    array_as_jsonl = tmp_path / "b.jsonl"
    array_as_jsonl.write_text(json.dumps(ROWS, indent=1))
    assert _fields(lines_as_json) == ROWS
    assert _fields(array_as_jsonl) == ROWS


def test_bom_does_not_leak_into_csv_header(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"\xef\xbb\xbftext,label\r\nhi,a\r\n")
    assert _fields(path) == [{"text": "hi", "label": "a"}]
