"""The vetting runner's contract, with stand-in filters: nothing lost, allow-list, budget, modify chains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.errors import ConfigError
from tunesmith.core.records import LabelRecord, Origin
from tunesmith.data.load import load_records
from tunesmith.vet import base, runner
from tunesmith.vet.artifacts import write_vet_outputs
from tunesmith.vet.base import Flag, VetContext
from tunesmith.vet.view import map_text, record_ids


def _records(texts: list[str]) -> list[LabelRecord]:
    return [LabelRecord(t, "a" if i % 2 else "b", Origin("d.jsonl", i + 1)) for i, t in enumerate(texts)]


class _DropShort:
    """Rule filter: removes texts under 3 characters."""

    statistical = False

    def __init__(self, config: object):
        self.summary = {"note": "drops short"}

    def run(self, ctx: VetContext) -> list[Flag]:
        return [Flag(rid, "too short", 1.0) for rid, t in zip(ctx.ids, ctx.texts(), strict=True) if len(t) < 3]


class _Upper:
    """Modifying filter: upper-cases texts containing 'x'."""

    statistical = False

    def __init__(self, config: object):
        pass

    def run(self, ctx: VetContext) -> list[Flag]:
        return [
            Flag(rid, "has x", 0.5, "modify", map_text(rec, str.upper))
            for rid, rec in zip(ctx.ids, ctx.records, strict=True)
            if "x" in rec.text
        ]


class _ScoreByLength:
    """Statistical filter: flags every record, score = length (so the budget keeps the longest)."""

    statistical = True

    def __init__(self, config: object):
        pass

    def run(self, ctx: VetContext) -> list[Flag]:
        return [Flag(rid, "long", float(len(t))) for rid, t in zip(ctx.ids, ctx.texts(), strict=True)]


@pytest.fixture()
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> VetConfig:
    monkeypatch.setattr(runner, "FILTER_ORDER", ("quality", "pii", "outliers"))
    registry = base.Registry("vetting filter")
    registry.register("quality")(_DropShort)
    registry.register("pii")(_Upper)
    registry.register("outliers")(_ScoreByLength)
    monkeypatch.setattr(runner, "FILTERS", registry)
    return VetConfig(max_flag_share=0.2)


def test_every_record_is_kept_or_quarantined(stand_ins: VetConfig) -> None:
    records = _records(["ok text", "x marks", "a", "another fine one", "zz", "plain words here", "ten chars!"])
    result = runner.vet_records(records, stand_ins)
    removed = [e.id for e in result.quarantine if e.action == "removed"]
    assert len(result.kept) + len(removed) == len(records)
    assert set(result.kept_ids).isdisjoint(removed)
    assert set(result.kept_ids) | set(removed) == set(record_ids(records))
    short = [e for e in result.quarantine if e.filter == "quality"]
    assert sorted(e.original["text"] for e in short) == ["a", "zz"]
    assert result.report["filters"]["quality"]["note"] == "drops short"


def test_modified_record_is_kept_changed_and_quarantine_keeps_original(stand_ins: VetConfig) -> None:
    records = _records(["x marks the spot", "fine", "also fine"])
    result = runner.vet_records(records, stand_ins)
    entry = next(e for e in result.quarantine if e.action == "modified")
    assert entry.original["text"] == "x marks the spot"
    assert entry.modified == {"text": "X MARKS THE SPOT", "label": "b"}
    assert "X MARKS THE SPOT" in [r.text for r in result.kept]


def test_statistical_filter_is_capped_at_its_budget_keeping_the_surest(stand_ins: VetConfig) -> None:
    records = _records([f"text number {'y' * i}" for i in range(10)])  # budget 0.2 * 10 = 2
    result = runner.vet_records(records, stand_ins)
    figures = result.report["filters"]["outliers"]
    assert figures["removed"] == 2 and figures["over_budget"] == 8
    removed = sorted(e.original["text"] for e in result.quarantine if e.filter == "outliers")
    assert removed == ["text number " + "y" * 8, "text number " + "y" * 9]


def test_allow_list_by_id_or_origin_protects_records(stand_ins: VetConfig, tmp_path: Path) -> None:
    records = _records(["a", "zz", "fine words"])
    ids = record_ids(records)
    allow_file = tmp_path / "allow.txt"
    allow_file.write_text(f"# keep these\n{ids[0]}\nd.jsonl:2  # by origin\n")
    result = runner.vet_records(records, stand_ins, allow=runner.read_allow_list(allow_file))
    assert result.report["filters"]["quality"]["allowed"] == 2
    assert [r.text for r in result.kept] == ["a", "zz", "fine words"]


def test_missing_allow_list_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allow-list file .* not found"):
        runner.read_allow_list(tmp_path / "nope.txt")


def test_buggy_filter_flagging_unknown_id_fails_loudly(stand_ins: VetConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_DropShort, "run", lambda self, ctx: [Flag("not-an-id", "bug", 1.0)])
    with pytest.raises(ValueError, match="unknown record id"):
        runner.vet_records(_records(["a"]), stand_ins)


def test_outputs_round_trip_through_the_loader(stand_ins: VetConfig, tmp_path: Path) -> None:
    records = _records(["x marks", "a", "fine text", "more text"])
    result = runner.vet_records(records, stand_ins)
    paths = write_vet_outputs(result, tmp_path)
    kept, fmt, _ = load_records(paths["kept"], "auto")
    assert fmt == "text_label" and [r.text for r in kept] == [r.text for r in result.kept]
    lines = [json.loads(line) for line in paths["quarantine"].read_text().splitlines()]
    assert {line["action"] for line in lines} == {"removed", "modified"}
    assert all({"id", "origin", "filter", "reason", "score", "original"} <= set(line) for line in lines)
    report = json.loads(paths["report"].read_text())
    assert report["records_in"] == 4 and report["records_kept"] + report["removed"] == 4


def test_dry_run_writes_no_kept_file(stand_ins: VetConfig, tmp_path: Path) -> None:
    result = runner.vet_records(_records(["a", "fine"]), stand_ins)
    paths = write_vet_outputs(result, tmp_path, dry_run=True)
    assert "kept" not in paths and not (tmp_path / "kept.jsonl").exists()
    assert json.loads(paths["report"].read_text())["dry_run"] is True


def test_disabled_filters_are_reported_off(stand_ins: VetConfig) -> None:
    stand_ins.pii.enabled = False
    result = runner.vet_records(_records(["x marks"]), stand_ins)
    assert result.report["filters"]["pii"] == {"enabled": False}
    assert result.kept[0].text == "x marks"
