"""UI runs are CLI runs in a detached worker: stop, crash, reconcile after a UI restart, resume to the end."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from tunesmith.web.progress import run_status
from tunesmith.web.worker import (
    read_exit_code,
    read_worker,
    reconcile,
    resume_run,
    run_state,
    start_run,
    stop_run,
    worker_alive,
)
from tunesmith.web.workspace import Workspace

pytestmark = pytest.mark.integration


def _wait(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("step-*/COMPLETE")) if (run / "checkpoints").is_dir() else []


def test_stop_crash_reconcile_and_resume(tmp_path: Path, tiny_model_dir: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    rows = [{"text": f"{verb} {thing} {i}", "label": label} for i in range(20)
            for verb, thing, label in (("play", "jazz", "music"), ("weather in", "oslo", "weather"))]
    (ws.data_dir / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    yaml_text = (f"model:\n  source: {tiny_model_dir}\n  num_threads: 1\ndata:\n  train_file: data/d.jsonl\n"
                 "vet:\n  enabled: false\nencode:\n  max_seq_length: 64\n"
                 "train:\n  epochs: 40\n  batch_size: 4\n  save_every_steps: 10\n  log_every_steps: 5\n"
                 "eval:\n  compare_base: false\n  robustness: []\n  generalisation_samples: 0\n")
    run = start_run(ws, "w1", yaml_text)
    assert run_state(run) == "running"

    _wait(lambda: len(_checkpoints(run)) >= 1, 120, "a first checkpoint")
    stop_run(ws, "w1")
    assert run_state(run) == "stopped" and run_status(run)["can_resume"]
    assert not worker_alive(read_worker(run))  # the shell and the training process (its whole group) are gone
    assert read_exit_code(run) is None and not (run / "train_report.json").exists()

    # resumed, then killed hard (as if the machine lost it); a UI started afterwards finds it interrupted
    resume_run(ws, "w1")
    _wait(lambda: (run / "metrics.jsonl").is_file() and len(_checkpoints(run)) >= 1, 60, "the resumed worker")
    time.sleep(1.0)
    os.killpg(read_worker(run)["pid"], signal.SIGKILL)  # type: ignore[index]
    _wait(lambda: run_state(run) == "interrupted", 30, "the worker to die")
    assert reconcile(ws) == {"w1": "interrupted"}
    assert read_worker(run)["state"] == "interrupted"  # type: ignore[index]

    resume_run(ws, "w1")
    _wait(lambda: run_state(run) != "running", 300, "the run to finish")
    assert run_state(run) == "finished" and read_exit_code(run) == 0
    report = json.loads((run / "train_report.json").read_text())
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == report["steps"]  # no step logged twice across resumes
    assert report["resumed_from_step"] is not None and report["resumed_from_step"] > 0
    log = (run / "ui_worker.log").read_text()
    assert log.count("(resume,") == 2 and log.count("(start,") == 1
