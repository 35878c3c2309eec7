"""Record formats: each parsed from a JSONL file, auto-detection, and every problem reported with its field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.core.errors import DataError
from tunesmith.core.records import (
    ChatRecord,
    CompletionRecord,
    LabelRecord,
    Message,
    Origin,
    PairRecord,
    RawRecord,
)
from tunesmith.data.formats import FORMATS, detect_format, parse_records
from tunesmith.data.io import read_raw_records


def _parse_file(tmp_path: Path, rows: list[dict], fmt: str = "auto") -> list:
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return parse_records(read_raw_records(path), fmt)


def test_registry_holds_the_six_formats() -> None:
    assert FORMATS.names() == ["alpaca", "messages", "pairs", "prompt_completion", "sharegpt", "text_label"]


def test_messages_with_text_parts_and_tool_turn(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
            {"role": "tool", "content": "42", "name": "calc", "tool_call_id": "c1"},
            {"role": "assistant", "content": "Hello!"},
        ]
    }
    (record,) = _parse_file(tmp_path, [row])
    assert isinstance(record, ChatRecord)
    assert record.messages == (
        Message("system", "Be brief."),
        Message("user", "Hi\nthere"),
        Message("tool", "42", "calc"),
        Message("assistant", "Hello!"),
    )
    assert record.origin.line == 1


def test_sharegpt_maps_speakers(tmp_path: Path) -> None:
    row = {
        "conversations": [
            {"from": "system", "value": "sys"},
            {"from": "human", "value": "q"},
            {"from": "observation", "value": "obs"},
            {"from": "gpt", "value": "a"},
        ]
    }
    (record,) = _parse_file(tmp_path, [row])
    assert [(m.role, m.content) for m in record.messages] == [
        ("system", "sys"),
        ("user", "q"),
        ("tool", "obs"),
        ("assistant", "a"),
    ]


def test_alpaca_joins_input_only_when_present(tmp_path: Path) -> None:
    rows = [
        {"instruction": "Translate", "input": "hola", "output": "hello"},
        {"instruction": "Say hi", "input": "", "output": "hi"},
    ]
    with_input, without = _parse_file(tmp_path, rows)
    assert isinstance(with_input, CompletionRecord)
    assert with_input.prompt == "Translate\n\nhola" and with_input.completion == "hello"
    assert without.prompt == "Say hi"


def test_prompt_completion(tmp_path: Path) -> None:
    (record,) = _parse_file(tmp_path, [{"prompt": "2+2=", "completion": "4"}])
    assert record == CompletionRecord("2+2=", "4", record.origin)


def test_text_label_aliases_int_labels_and_group(tmp_path: Path) -> None:
    rows = [
        {"sentence": "good", "intent": 1, "group": "a"},
        {"sentence": "bad", "intent": " 0 "},
    ]
    first, second = _parse_file(tmp_path, rows)
    assert isinstance(first, LabelRecord)
    assert (first.text, first.label, first.group) == ("good", "1", "a")
    assert (second.label, second.group) == ("0", None)


@pytest.mark.parametrize("keys", [("source", "target"), ("src", "tgt"), ("input", "target")])
def test_pairs_accepts_aliases(tmp_path: Path, keys: tuple[str, str]) -> None:
    (record,) = _parse_file(tmp_path, [{keys[0]: "bonjour", keys[1]: "hello"}])
    assert isinstance(record, PairRecord)
    assert (record.source, record.target) == ("bonjour", "hello")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"messages": []}, "messages"),
        ({"conversations": []}, "sharegpt"),
        ({"instruction": "a", "input": "b", "output": "c"}, "alpaca"),
        ({"prompt": "a", "completion": "b"}, "prompt_completion"),
        ({"utterance": "a", "category": "b"}, "text_label"),
        ({"input": "a", "target": "b"}, "pairs"),
    ],
)
def test_detect_format(fields: dict, expected: str) -> None:
    raws = [RawRecord(Origin("f.jsonl", 1), fields)]
    assert detect_format(raws) == expected


def test_detect_follows_the_majority() -> None:
    raws = [RawRecord(Origin("f", i), {"prompt": "p", "completion": "c"}) for i in range(3)]
    raws.insert(0, RawRecord(Origin("f", 0), {"text": "t", "label": "l"}))
    assert detect_format(raws) == "prompt_completion"


def test_detect_failure_lists_seen_keys_and_known_formats() -> None:
    raws = [RawRecord(Origin("data/f.jsonl", i), {"question": "q", "answer": "a"}) for i in range(1, 4)]
    with pytest.raises(DataError) as info:
        detect_format(raws)
    text = str(info.value)
    assert "answer (3)" in text and "question (3)" in text
    for name in FORMATS.names():
        assert name in text


def test_all_bad_records_are_listed_with_line_and_field(tmp_path: Path) -> None:
    rows = [
        {"text": "fine", "label": "a"},
        {"text": "", "label": "a"},  # line 2: empty text
        {"text": "no label here", "label": None},  # line 3: bad label
        {"text": "ok", "label": "b"},
        {"text": 5, "label": "c"},  # line 5: text not a string
    ]
    with pytest.raises(DataError) as info:
        _parse_file(tmp_path, rows, "text_label")
    problems = info.value.problems
    assert [(p.where.rsplit(":", 1)[1], p.field) for p in problems] == [
        ("2", "text"),
        ("3", "label"),
        ("5", "text"),
    ]
    assert all(p.where.startswith(str(tmp_path / "d.jsonl")) for p in problems)
    assert all(p.hint for p in problems)
    assert "3 of 5 records" in str(info.value)


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"messages": [{"role": "user", "content": "q"}]}, "messages", "no assistant turn"),
        ({"messages": [{"role": "robot", "content": "q"}]}, "messages[0].role", "unknown role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}]},
            "messages[0].content",
            "unsupported content",
        ),
        (
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]},
            "messages",
            "ends with a 'user' turn",
        ),
        ({"conversations": [{"from": "bot", "value": "x"}]}, "conversations[0].from", "unknown speaker"),
        ({"instruction": "do", "output": ""}, "output", "is empty"),
        ({"prompt": "p", "completion": None}, "completion", "is null"),
        ({"source": "s", "target": ["t"]}, "target", "expected a string, got list"),
    ],
)
def test_problem_names_field(tmp_path: Path, row: dict, field: str, message: str) -> None:
    with pytest.raises(DataError) as info:
        _parse_file(tmp_path, [row])
    (problem,) = info.value.problems
    assert problem.field == field
    assert message in problem.message
    assert problem.where == f"{tmp_path / 'd.jsonl'}:1"


def test_missing_field_lists_the_fields_present(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        _parse_file(tmp_path, [{"prompt": "p", "answer": "a"}], "prompt_completion")
    (problem,) = info.value.problems
    assert problem.field == "completion"
    assert "missing field 'completion' (this record has: answer, prompt)" in problem.message


def test_unknown_explicit_format_suggests_a_name() -> None:
    raws = [RawRecord(Origin("f", 1), {"text": "t", "label": "l"})]
    with pytest.raises(KeyError, match="Did you mean 'alpaca'"):
        parse_records(raws, "alpacca")
