"""The vetting contract with the real filters at their defaults: nothing lost, idempotent, wired into the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.cli.main import main
from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.records import LabelRecord, Origin
from tunesmith.data.load import load_records
from tunesmith.vet.runner import vet_records

TOPICS = {
    "weather": ["will it rain in {c} tomorrow", "how hot is it in {c} today", "is there snow forecast for {c}",
                "what is the weather like in {c} this weekend", "do I need an umbrella in {c}"],
    "music": ["play some jazz by {n}", "put on the new album from {n}", "add {n} to my running playlist",
              "shuffle songs by {n}", "I want to hear {n} live recordings"],
    "booking": ["book a table for {k} in {c}", "reserve a room in {c} for {k} nights",
                "find a restaurant in {c} for {k} people", "get me a hotel near {c} station",
                "schedule a dinner for {k} at a place in {c}"],
}
CITIES = ["Paris", "Lisbon", "Oslo", "Denver", "Kyoto", "Cairo", "Quito", "Perth"]
NAMES = ["Miles Davis", "Nina Simone", "Bjork", "Fela Kuti", "Joni Mitchell", "Ravi Shankar"]


def _clean_rows() -> list[dict[str, str]]:
    """90 distinct utterances, 30 per intent (no two are near-duplicates)."""
    rows = []
    for label, templates in TOPICS.items():
        for template in templates:
            for i in range(6):
                text = template.format(c=CITIES[i], n=NAMES[i], k=i + 2)
                rows.append({"text": text, "label": label})
    return rows


def _dirty_rows() -> list[dict[str, str]]:
    rows = _clean_rows()
    rows[3] = {"text": "will it rain in Oslo tomorrow, mail me at jane.doe@corp.com", "label": "weather"}
    rows.append(dict(rows[10]))  # exact copy
    rows.append({"text": "?", "label": "music"})  # too short
    rows.append({"text": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "label": "booking"})
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _records(rows: list[dict[str, str]]) -> list[LabelRecord]:
    return [LabelRecord(r["text"], r["label"], Origin("d.jsonl", i + 1)) for i, r in enumerate(rows)]


def test_defaults_catch_the_planted_problems_and_lose_nothing() -> None:
    records = _records(_dirty_rows())
    result = vet_records(records, VetConfig(), seed=0)
    removed = [e for e in result.quarantine if e.action == "removed"]
    assert len(result.kept) + len(removed) == len(records)
    by_filter = {e.filter for e in result.quarantine}
    assert {"pii", "dedup", "quality"} <= by_filter
    redacted = next(e for e in result.quarantine if e.filter == "pii")
    assert "<EMAIL>" in redacted.modified["text"] and "jane.doe" not in redacted.modified["text"]
    assert len(removed) <= 6, [(e.filter, e.reason) for e in removed]  # the planted 3 plus little else


def test_vetting_vetted_data_changes_nothing() -> None:
    first = vet_records(_records(_dirty_rows()), VetConfig(), seed=0)
    second = vet_records(first.kept, VetConfig(), seed=0)
    assert second.quarantine == []
    assert [r.text for r in second.kept] == [r.text for r in first.kept]


def test_vet_cli_writes_the_three_files_and_dry_run_writes_no_kept(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", _dirty_rows())
    out = tmp_path / "vetted"
    assert main(["vet", f"--data.train_file={data}", f"--out={out}"]) == 0
    kept, _, _ = load_records(out / "kept.jsonl", "auto")
    report = json.loads((out / "vet_report.json").read_text())
    quarantined = (out / "quarantine.jsonl").read_text().splitlines()
    assert report["records_kept"] == len(kept) and report["records_in"] == len(_dirty_rows())
    assert report["removed"] == sum(json.loads(line)["action"] == "removed" for line in quarantined)
    dry = tmp_path / "dry"
    assert main(["vet", f"--data.train_file={data}", f"--out={dry}", "--dry-run"]) == 0
    assert not (dry / "kept.jsonl").exists() and (dry / "vet_report.json").exists()


def test_vet_cli_bad_block_field_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "d.jsonl", _clean_rows())
    assert main(["vet", f"--data.train_file={data}", "--vet.dedup.near_treshold=0.5"]) == 2
    err = capsys.readouterr().err
    assert "vet.dedup.near_treshold" in err and "did you mean vet.dedup.near_threshold" in err


def test_vet_cli_missing_allow_list_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "d.jsonl", _clean_rows())
    assert main(["vet", f"--data.train_file={data}", f"--vet.allow_list={tmp_path / 'none.txt'}"]) == 2
    assert "allow-list file" in capsys.readouterr().err
