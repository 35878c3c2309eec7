"""Weights & Biases offline: the offline run folder holds the run, its params, per-step history and artifacts."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tunesmith.track.mirror import mirror_run

pytest.importorskip("wandb")

BLOCK = 32768  # the .wandb file is a LevelDB-style log: 32 KiB blocks of records with 7-byte headers
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[bytes]:
    """The protobuf records of a `.wandb` file (W&B ships no reader for it any more)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, parts, records = 7, b"", []
    while pos + 7 <= len(data):
        left = BLOCK - pos % BLOCK
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (length == 0 and kind == 0):
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            parts = chunk
        elif kind == MIDDLE:
            parts += chunk
        elif kind == LAST:
            records.append(parts + chunk)
    return records


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def test_offline_run_holds_params_metrics_artifacts(fake_run, monkeypatch, tmp_path):
    from wandb.proto import wandb_internal_pb2 as pb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))  # artifact staging stays in tmp
    assert mirror_run(fake_run, ["wandb"]) == ["wandb"]
    import wandb

    wandb.teardown()  # run.finish() returns before wandb-core has flushed the offline .wandb log; teardown waits
    offline = list((fake_run.path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1
    log = offline[0] / f"run-{fake_run.run_id}.wandb"
    assert log.is_file()
    history, config_keys, artifacts, tags = [], set(), {}, []
    for blob in read_records(log):
        record = pb.Record()
        record.ParseFromString(blob)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(item): item.value_json for item in record.history.item})
        elif kind == "config":
            config_keys.update(_key(u) for u in record.config.update)
        elif kind == "artifact":
            artifacts[record.artifact.name] = record.artifact.type
        elif kind == "run":
            tags.extend(record.run.tags)
    assert [(h["step"], float(h["loss"])) for h in history] == [("1", 2.0), ("2", 1.5)]
    assert all("note" not in h for h in history)
    assert {"train.learning_rate", "eval.robustness"} <= config_keys
    assert artifacts[f"{fake_run.run_id}-adapter"] == "model"
    assert artifacts[f"{fake_run.run_id}-eval_report.json"] == "report"
    assert f"run_id:{fake_run.run_id}" in tags and any(t.startswith("data_hash:") for t in tags)
