"""`load_splits`: from a DataConfig to splits and a report (hashes, counts, labels, leakage)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tunesmith.config.schema import DataConfig
from tunesmith.core.errors import DataError
from tunesmith.data.load import labels_of, load_splits
from tunesmith.data.split import TrainEvalOverlapWarning


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _rows(n: int) -> list[dict]:
    return [{"text": f"utterance {i}", "label": "ab"[i % 2]} for i in range(n)]


def test_load_splits_report(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", _rows(40) + [{"text": "UTTERANCE 0", "label": "a"}])
    splits, report = load_splits(DataConfig(train_file=str(path), val_fraction=0.1, test_fraction=0.2), seed=0)
    assert report.format == "text_label"
    assert report.sha256 == {str(path): hashlib.sha256(path.read_bytes()).hexdigest()}
    assert report.counts == splits.counts()
    assert sum(report.counts.values()) == 41
    assert report.grouped_duplicates == 1
    assert report.labels == ["a", "b"]
    assert report.label_counts is not None
    assert sum(report.label_counts["test"].values()) == report.counts["test"]
    assert json.loads(json.dumps(report.to_dict()))["format"] == "text_label"


def test_max_records_cuts_before_parsing(tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", _rows(10) + [{"text": "", "label": "a"}])
    _, report = load_splits(DataConfig(train_file=str(path), max_records=10), seed=0)
    assert (report.records_read, report.records_used) == (11, 10)
    with pytest.raises(DataError, match="1 of 11 records"):
        load_splits(DataConfig(train_file=str(path)), seed=0)


def test_eval_file_becomes_test_split(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", _rows(20))
    evaluation = _write(
        tmp_path / "eval.jsonl", [{"text": "utterance 3", "label": "b"}, {"text": "new", "label": "a"}]
    )
    cfg = DataConfig(train_file=str(train), eval_file=str(evaluation), val_fraction=0.2)
    with pytest.warns(TrainEvalOverlapWarning):
        splits, report = load_splits(cfg, seed=0)
    assert [r.text for r in splits.test] == ["utterance 3", "new"]  # type: ignore[union-attr]
    assert report.eval_overlap == 1
    assert set(report.sha256) == {str(train), str(evaluation)}
    assert report.counts == {"train": 16, "val": 4, "test": 2}


def test_eval_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    train = _write(tmp_path / "train.jsonl", _rows(6))
    evaluation = _write(tmp_path / "eval.jsonl", [{"prompt": "p", "completion": "c"}])
    with pytest.raises(DataError, match="eval records are of kind completion"):
        load_splits(DataConfig(train_file=str(train), eval_file=str(evaluation)), seed=0)


def test_labels_of_is_sorted_unique(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.jsonl",
        [{"text": "x", "label": "z"}, {"text": "y", "label": "a"}, {"text": "w", "label": "z"}],
    )
    splits, _ = load_splits(DataConfig(train_file=str(path), val_fraction=0.0, test_fraction=0.0), seed=0)
    assert labels_of(splits.train) == ("a", "z")
