"""`data inspect`: never raises on bad records, lists every problem, token-length histogram from the template."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from tunesmith.data.inspect import (
    HistogramBin,
    InspectReport,
    inspect_file,
    render_inspect_report,
    token_histogram,
)

GOOD = [
    {"text": "Play some jazz", "label": "play_music"},
    {"text": "What is the weather like in Paris tomorrow and the day after?", "label": "get_weather"},
    {"text": "Add this song to my playlist please", "label": "add_to_playlist"},
    {"text": "Play music", "label": "play_music"},
]


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _chatml(text: str, label: str, labels: str) -> str:
    """The tiny tokenizer's ChatML rendering, written out by hand as an independent reference."""
    prompt = f"Classify the text into one of: {labels}.\nText: {text}\nAnswer with the label only."
    return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n{label}<|im_end|>\n"


def test_inspect_reports_every_problem_without_raising(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD[0]), "{broken", json.dumps({"text": "no label"}), json.dumps(GOOD[1])]
    report = inspect_file(_write(tmp_path / "d.jsonl", lines))
    assert report.format == "text_label"
    assert (report.records_read, report.records_valid) == (3, 2)
    assert report.kind_counts == {"label": 2}
    assert report.label_counts == {"get_weather": 1, "play_music": 1}
    assert [p.where for p in report.problems] == [f"{tmp_path / 'd.jsonl'}:2", f"{tmp_path / 'd.jsonl'}:3"]
    assert report.problems[1].field == "label"
    assert report.token_lengths is None and report.histogram is None


def test_inspect_unknown_format_and_missing_file(tmp_path: Path) -> None:
    report = inspect_file(_write(tmp_path / "d.jsonl", [json.dumps({"question": "q", "answer": "a"})]))
    assert report.format is None
    assert "cannot tell the format" in report.problems[0].message
    missing = inspect_file(tmp_path / "nope.jsonl")
    assert missing.records_read == 0 and "file not found" in missing.problems[0].message


def test_token_lengths_and_histogram_match_the_chat_template(tmp_path: Path, tiny_tokenizer) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps(row) for row in GOOD])
    labels = ", ".join(sorted({row["label"] for row in GOOD}))
    expected = [
        len(tiny_tokenizer(_chatml(row["text"], row["label"], labels), add_special_tokens=False)["input_ids"])
        for row in GOOD
    ]
    limit = sorted(expected)[1]  # two records at or under the limit, two over
    report = inspect_file(path, tokenizer=tiny_tokenizer, max_seq_length=limit)
    assert report.token_lengths == expected
    assert report.over_max_seq_length == sum(n > limit for n in expected) == 2
    assert report.histogram is not None
    assert sum(b.count for b in report.histogram) == len(GOOD)
    for b in report.histogram:
        assert b.count == sum(b.low <= n <= b.high for n in expected)


def test_histogram_bins_cover_the_range() -> None:
    bins = token_histogram([3, 4, 4, 25], num_bins=3)
    assert bins == [HistogramBin(3, 10, 3), HistogramBin(11, 18, 0), HistogramBin(19, 26, 1)]
    assert token_histogram([7, 7]) == [HistogramBin(7, 7, 2)]
    assert token_histogram([]) == []


def test_render_shows_labels_histogram_and_problems(tmp_path: Path) -> None:
    report = InspectReport(
        path="d.jsonl",
        format="text_label",
        records_read=3,
        records_valid=3,
        kind_counts={"label": 3},
        label_counts={"greet": 2, "leave": 1},
        histogram=[HistogramBin(5, 9, 2), HistogramBin(10, 14, 1)],
    )
    console = Console(record=True, width=120)
    console.print(render_inspect_report(report))
    text = console.export_text()
    assert "greet" in text and "66.7%" in text
    assert "5-9 | " in text and "10-14 | " in text
    report.problems = inspect_file(tmp_path / "missing.jsonl").problems
    console.print(render_inspect_report(report))
    assert "file not found" in console.export_text()
