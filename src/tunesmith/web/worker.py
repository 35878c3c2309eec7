"""Runs started from the UI: the CLI's own `train` command in a detached worker process.

A UI run is a CLI run: the worker executes `python -m tunesmith.cli.main train <cfg> --run.run_id=<id>` (or
`train --resume runs/<id>`) with the workspace as its working folder, so it writes the same run folder through the
same code path. The worker is started in its own session (process group), so closing or restarting the UI does
not kill it, and what the UI knows about it lives in the run folder, not in the UI's memory:

    runs/<id>/ui_config.yaml   the config the form submitted (YAML, only the fields changed from the defaults)
    runs/<id>/ui_worker.json   pid, process start time, command, state (running / stopped), times
    runs/<id>/ui_worker.log    the worker's stdout and stderr
    runs/<id>/ui_worker.rc     the exit code, written by the worker's shell when the command ends

On start the UI reconciles every recorded worker: a dead pid with no finished manifest is `interrupted`
(resumable with `train --resume`, from the last complete checkpoint). Stop sends SIGTERM to the worker's process
group; the run's checkpoints make the resume exact.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunesmith.core.durable import atomic_write_text
from tunesmith.core.errors import TunesmithError
from tunesmith.web.workspace import RUNS_DIR, Workspace

SUBMITTED_CONFIG = "ui_config.yaml"
WORKER_FILE = "ui_worker.json"
LOG_FILE = "ui_worker.log"
RC_FILE = "ui_worker.rc"
# the worker's shell records the command's exit code in the run folder, so a UI started later still knows it
_RECORD_EXIT = '"$@"; echo $? > "$0"'
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # workers this UI process started (polled so they are reaped)


class WorkerError(TunesmithError):
    """A run cannot be started, stopped or resumed in its current state."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_worker(run_path: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_path / WORKER_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _write_worker(run_path: Path, info: dict[str, Any]) -> None:
    atomic_write_text(run_path / WORKER_FILE, json.dumps(info, indent=2) + "\n")


def read_exit_code(run_path: Path) -> int | None:
    try:
        return int((run_path / RC_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): tells a reused pid from our worker."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs (zombies aside): the training process outlives its shell by
    the moments it takes to exit."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def worker_alive(info: dict[str, Any] | None) -> bool:
    """Whether the recorded worker still runs: its shell (the same process, not a reused pid) or, after the
    shell, any process of its group."""
    if not info or not isinstance(info.get("pid"), int):
        return False
    pid = info["pid"]
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return _group_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return _group_alive(pid)
    except PermissionError:
        return True  # exists, owned by someone else: only a reused pid could be, and the start time says
    if _is_zombie(pid):
        return _group_alive(pid)
    recorded, current = info.get("proc_start"), _process_start_time(pid)
    return recorded is None or current is None or recorded == current


def start_run(ws: Workspace, run_id: str, yaml_text: str) -> Path:
    """Create `runs/<run_id>/` with the submitted config and start training it in a worker."""
    path = ws.new_run_path(run_id)
    path.mkdir(parents=True)
    atomic_write_text(path / SUBMITTED_CONFIG, yaml_text)
    _launch(ws, path, _train_command(run_id), "start")
    return path


def _train_command(run_id: str) -> list[str]:
    cfg = f"{RUNS_DIR}/{run_id}/{SUBMITTED_CONFIG}"
    return [sys.executable, "-m", "tunesmith.cli.main", "train", cfg,
            f"--run.output_dir={RUNS_DIR}", f"--run.run_id={run_id}"]


def resume_run(ws: Workspace, run_id: str) -> None:
    """Continue an interrupted or stopped run: `train --resume runs/<id>` (its saved config, last checkpoint).

    A run that stopped before its run folder got a config.yaml (during vetting) is started again instead."""
    path = ws.run_path(run_id)
    if worker_alive(read_worker(path)):
        raise WorkerError(f"run {run_id} is still running")
    manifest = _manifest(path)
    if manifest.get("end_time"):
        raise WorkerError(f"run {run_id} has finished; start a new run to train again")
    if (path / "config.yaml").is_file():
        command = [sys.executable, "-m", "tunesmith.cli.main", "train", "--resume", f"{RUNS_DIR}/{run_id}"]
    elif (path / SUBMITTED_CONFIG).is_file():
        command = _train_command(run_id)
    else:
        raise WorkerError(f"run {run_id} has no config.yaml to resume from")
    _launch(ws, path, command, "resume")


def _launch(ws: Workspace, path: Path, command: list[str], action: str) -> None:
    (path / RC_FILE).unlink(missing_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "120"}
    with open(path / LOG_FILE, "ab") as log:
        log.write(f"\n$ tunesmith {' '.join(command[3:])}   ({action}, {_now()})\n".encode())
        log.flush()
        proc = subprocess.Popen(
            ["/bin/sh", "-c", _RECORD_EXIT, str(path / RC_FILE), *command],
            cwd=ws.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # own process group: survives the UI, and Stop can signal the whole group
        )
    _CHILDREN[proc.pid] = proc
    info = read_worker(path) or {}
    history = list(info.get("history", [])) + [{"action": action, "at": _now(), "pid": proc.pid}]
    _write_worker(path, {"pid": proc.pid, "proc_start": _process_start_time(proc.pid), "command": command,
                         "state": "running", "started": _now(), "history": history})


def stop_run(ws: Workspace, run_id: str, wait_s: float = 10.0) -> None:
    """SIGTERM to the worker's process group; the run keeps its last complete checkpoint for a resume."""
    path = ws.run_path(run_id)
    info = read_worker(path)
    if not worker_alive(info):
        raise WorkerError(f"run {run_id} is not running")
    assert info is not None
    with contextlib.suppress(ProcessLookupError):  # ended on its own in the meantime
        os.killpg(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while worker_alive(info) and time.monotonic() < deadline:
        time.sleep(0.1)
    _write_worker(path, {**info, "state": "stopped", "stopped": _now()})


def _manifest(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def run_state(path: Path) -> str:
    """running | finished | stopped | failed | interrupted (UI runs); finished | unfinished (CLI runs)."""
    info = read_worker(path)
    if worker_alive(info):
        return "running"
    manifest = _manifest(path)
    if manifest.get("end_time"):
        return "finished"
    if info is None:
        return str(manifest.get("status") or "unfinished")
    if info.get("state") == "stopped":
        return "stopped"
    code = read_exit_code(path)
    if code is not None:
        return "finished" if code == 0 else "failed"
    return "interrupted"


def reconcile(ws: Workspace) -> dict[str, str]:
    """Record the outcome of every UI worker that ended while no UI watched it; returns run id -> state."""
    changed: dict[str, str] = {}
    if not ws.runs_dir.is_dir():
        return changed
    for path in sorted(ws.runs_dir.iterdir()):
        info = read_worker(path)
        if info is None or info.get("state") != "running" or worker_alive(info):
            continue
        state = run_state(path)
        _write_worker(path, {**info, "state": state, "reconciled": _now()})
        changed[path.name] = state
    return changed
