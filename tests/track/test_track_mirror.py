"""Shared tracker helpers: flat params, numeric metrics, tags, replay of a run folder, missing-package errors."""

from __future__ import annotations

import sys

import pytest

from tunesmith.core.errors import DependencyError
from tunesmith.track.mirror import (
    data_hash,
    flatten_params,
    mirror_into,
    mirror_run,
    numeric_metrics,
    require,
    run_tags,
)
from tunesmith.track.run_dir import TRACKERS


class Recorder:
    def __init__(self, run=None):
        self.params: dict = {}
        self.metrics: list = []
        self.artifacts: list = []
        self.closed = False

    def log_params(self, params):
        self.params.update(params)

    def log_metrics(self, step, metrics):
        self.metrics.append((step, metrics))

    def log_artifact(self, path):
        self.artifacts.append(path.name)

    def close(self):
        self.closed = True


def test_flatten_and_numeric():
    assert flatten_params({"a": {"b": 1, "c": {"d": None}}, "e": [1, 2]}) == {"a.b": 1, "a.c.d": None, "e": "[1, 2]"}
    assert numeric_metrics({"loss": 1, "x": "s", "ok": True, "nan": float("nan"), "lr": 0.5}) == {"loss": 1.0,
                                                                                                    "lr": 0.5}


def test_tags_name_data_hash_and_seed(fake_run):
    tags = run_tags(fake_run)
    assert tags["tunesmith.run_id"] == fake_run.run_id and tags["tunesmith.seed"] == "0"
    assert tags["tunesmith.data_hash"] == data_hash(fake_run.read_json("manifest.json"))
    assert len(tags["tunesmith.data_hash"]) == 16 and tags["tunesmith.device"] == "cpu"
    assert data_hash({}) is None


def test_mirror_replays_the_run_folder(fake_run):
    recorder = Recorder()
    mirror_into(recorder, fake_run)
    assert recorder.params["train.learning_rate"] == 0.001 and recorder.params["eval.robustness"] == "['case']"
    assert [step for step, _ in recorder.metrics] == [1, 2]
    assert recorder.artifacts == ["adapter", "eval_report.json", "train_report.json", "config.yaml", "manifest.json"]


def test_mirror_run_skips_run_dir_and_closes(fake_run, monkeypatch):
    made: list[Recorder] = []

    def factory(run):
        made.append(Recorder(run))
        return made[-1]

    monkeypatch.setitem(TRACKERS._items, "recorder", factory)
    assert mirror_run(fake_run, ["run_dir", "recorder"]) == ["recorder"]
    assert len(made) == 1 and made[0].closed and made[0].metrics


@pytest.mark.parametrize("tracker", ["mlflow", "wandb", "tensorboard"])
def test_missing_package_names_the_extra(fake_run, monkeypatch, tracker):
    monkeypatch.setitem(sys.modules, tracker, None)  # what an uninstalled package looks like to an import
    with pytest.raises(DependencyError, match=rf"tunesmith\[{tracker}\]"):
        TRACKERS.get(tracker)(fake_run)
    with pytest.raises(DependencyError, match="pip install"):
        require(tracker, tracker)
