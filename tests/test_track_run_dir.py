"""The run folder: config, manifest, durable metrics, atomic JSON, run ids, trackers."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import pytest
import yaml

from tunesmith.core.digest import canonical_hash
from tunesmith.core.registry import UnknownNameError
from tunesmith.track.run_dir import (
    TRACKERS,
    RunDir,
    RunDirTracker,
    Tracker,
    make_trackers,
    new_run_id,
)


def test_config_hash_is_canonical_and_run_id_sorts_by_time():
    assert canonical_hash({"a": 1, "b": [1, 2]}) == canonical_hash({"b": [1, 2], "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": 2})
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert new_run_id("abcdef0123456789", now=when) == "20250304-050607-abcdef01"


def test_create_writes_config_and_manifest(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "hi"}\n')
    config = {"train": {"learning_rate": 0.001}, "run": {"seed": 3}}
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    run = RunDir.create(tmp_path / "runs", config, data_sha256={str(data): digest}, seed=3, device="cpu")
    assert run.path.parent == tmp_path / "runs" and run.run_id.endswith(canonical_hash(config)[:8])
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == config
    manifest = run.read_json("manifest.json")
    assert manifest["config_hash"] == canonical_hash(config) and manifest["seed"] == 3
    assert manifest["data_files"][str(data)] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert {"torch", "transformers", "peft", "tunesmith"} <= set(manifest["versions"])
    assert manifest["versions"]["tunesmith"] is not None
    assert manifest["start_time"] and manifest["end_time"] is None and manifest["python"] and manifest["platform"]
    run.finish(status="ok")
    finished = run.read_json("manifest.json")
    assert finished["end_time"] and finished["status"] == "ok"


def test_reopening_keeps_start_time_and_records_the_reopen(tmp_path):
    first = RunDir.create(tmp_path, {"a": 1}, run_id="r1")
    start = first.read_json("manifest.json")["start_time"]
    again = RunDir.create(tmp_path, {"a": 1}, run_id="r1")
    manifest = again.read_json("manifest.json")
    assert manifest["start_time"] == start and len(manifest["reopened_at"]) == 1


def test_metrics_append_read_reset(tmp_path):
    run = RunDir.create(tmp_path, {}, run_id="m")
    run.append_metrics({"step": 1, "loss": 2.0})
    run.append_metrics({"step": 2, "loss": 1.5})
    assert [r["step"] for r in run.read_metrics()] == [1, 2]
    run.reset_metrics([{"step": 1, "loss": 2.0}])
    assert run.read_metrics() == [{"step": 1, "loss": 2.0}]


def test_write_json_is_atomic_and_leaves_no_temp_files(tmp_path):
    run = RunDir.create(tmp_path, {}, run_id="j")
    run.write_json("reports/eval.json", {"acc": 0.5})
    run.write_json("reports/eval.json", {"acc": 0.75})
    assert json.loads((run.path / "reports" / "eval.json").read_text()) == {"acc": 0.75}
    assert [p.name for p in (run.path / "reports").iterdir()] == ["eval.json"]


def test_run_dir_tracker(tmp_path):
    run = RunDir.create(tmp_path / "runs", {}, run_id="t")
    tracker = TRACKERS.get("run_dir")(run)
    assert isinstance(tracker, Tracker) and isinstance(tracker, RunDirTracker)
    tracker.log_params({"lr": 0.1})
    tracker.log_metrics(3, {"loss": 1.0})
    outside = tmp_path / "adapter.bin"
    outside.write_bytes(b"x")
    tracker.log_artifact(outside)
    tracker.log_artifact(run.path / "config.yaml")  # already in the run folder: not copied
    tracker.close()
    assert run.read_json("params.json") == {"lr": 0.1}
    assert run.read_metrics() == [{"step": 3, "loss": 1.0}]
    assert sorted(p.name for p in (run.path / "artifacts").iterdir()) == ["adapter.bin"]
    assert len(make_trackers(["run_dir"], run)) == 1
    with pytest.raises(UnknownNameError, match="Did you mean 'run_dir'"):
        TRACKERS.get("run_dirr")
