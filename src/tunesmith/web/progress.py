"""What the run page shows live, read from the run folder only (so CLI runs show the same way).

Stages are read off the artifacts each one leaves (vet/vet_report.json, data_report.json, metrics.jsonl, ...),
curves off metrics.jsonl, and the total step count off the newest checkpoint's state.json, or, before the first
checkpoint, off the `epoch` the loop logs with each step (steps per epoch = step / epoch).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from tunesmith.evaluate.run_report import read_metric_rows
from tunesmith.web.worker import LOG_FILE, SUBMITTED_CONFIG, read_exit_code, read_worker, run_state

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RESUMABLE = {"stopped", "interrupted", "failed"}


def run_config_raw(path: Path) -> dict[str, Any]:
    """The run's config as a plain mapping: config.yaml (resolved) or else the form's submitted YAML."""
    for name in ("config.yaml", SUBMITTED_CONFIG):
        try:
            data = yaml.safe_load((path / name).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def stages(path: Path, state: str, raw: dict[str, Any]) -> list[dict[str, str]]:
    """[{name, status}] with status done | running | waiting | skipped | stopped; `raw` is `run_config_raw`."""
    trained = (path / "train_report.json").is_file()
    training = (path / "metrics.jsonl").is_file()
    evaluate = not trained or (path / "eval_report.json").is_file() or state == "running"
    plan = [
        ("vet", _section(raw, "vet").get("enabled", True), (path / "vet" / "vet_report.json").is_file()),
        ("split + encode", True, (path / "data_report.json").is_file()),
        ("base model eval", _section(raw, "eval").get("compare_base", True) and evaluate, training or trained),
        ("train", True, trained),
        ("tuned model eval", evaluate, (path / "eval_report.json").is_file()),
        ("report.html", _section(raw, "eval").get("report_html", True) and evaluate,
         (path / "report.html").is_file()),
    ]
    # a later stage's artifact means the earlier stages ran (an older run may lack an earlier report file)
    later_done = [any(done for _, on, done in plan[i + 1:] if on) for i in range(len(plan))]
    out, current_found = [], False
    for (name, enabled, done), after in zip(plan, later_done, strict=True):
        done = done or after
        if not enabled:
            status = "skipped"
        elif done:
            status = "done"
        elif not current_found:
            current_found = True
            status = "running" if state == "running" else ("waiting" if state == "finished" else state)
        else:
            status = "waiting"
        out.append({"name": name, "status": status})
    return out


def _total_steps(path: Path, rows: list[dict[str, Any]], raw: dict[str, Any]) -> int | None:
    checkpoints = sorted((path / "checkpoints").glob("step-*/state.json")) if (path / "checkpoints").is_dir() else []
    for state_file in reversed(checkpoints):
        try:
            total = json.loads(state_file.read_text(encoding="utf-8")).get("meta", {}).get("total_steps")
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(total, int):
            return total
    train = _section(raw, "train")
    if isinstance(train.get("max_steps"), int):
        return int(train["max_steps"])
    logged = [r for r in rows if isinstance(r.get("epoch"), (int, float)) and r["epoch"] > 0 and "step" in r]
    if not logged:
        return None
    per_epoch = round(logged[-1]["step"] / logged[-1]["epoch"])
    return max(1, math.ceil(float(train.get("epochs", 1.0)) * per_epoch))


def training_progress(path: Path, raw: dict[str, Any]) -> dict[str, Any]:
    """Curves (loss, val_loss, lr by step), the latest step, tokens/s and the training ETA."""
    rows = read_metric_rows(path)
    loss = [[r["step"], r["loss"]] for r in rows if isinstance(r.get("loss"), (int, float))]
    val = [[r["step"], r["val_loss"]] for r in rows if isinstance(r.get("val_loss"), (int, float))]
    lr = [[r["step"], r["lr"]] for r in rows if isinstance(r.get("lr"), (int, float))]
    steps = [r for r in rows if isinstance(r.get("tokens_per_s"), (int, float))]
    last = steps[-1] if steps else {}
    step = int(last.get("step", 0))
    total = _total_steps(path, rows, raw) if rows else None
    eta = None
    if step and total and isinstance(last.get("elapsed_s"), (int, float)) and total >= step:
        eta = (total - step) * float(last["elapsed_s"]) / step
    return {"loss": loss, "val_loss": val, "lr": lr, "step": step, "total_steps": total,
            "tokens_per_s": last.get("tokens_per_s"), "eta_s": eta, "elapsed_s": last.get("elapsed_s")}


def log_tail(path: Path, lines: int = 80) -> str:
    log = path / LOG_FILE
    if not log.is_file():
        return ""
    with open(log, "rb") as f:
        f.seek(max(0, log.stat().st_size - 64_000))
        text = f.read().decode("utf-8", errors="replace")
    # rich progress bars redraw with carriage returns: keep what the line finally showed
    cleaned = [_ANSI.sub("", line).rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(cleaned[-lines:])


def run_status(path: Path) -> dict[str, Any]:
    """Everything the run page polls: state, stages, training progress, log tail, what the buttons may do."""
    state = run_state(path)
    info = read_worker(path) or {}
    raw = run_config_raw(path)  # polled every few seconds: the YAML is parsed once per poll
    return {
        "run_id": path.name,
        "state": state,
        "stages": stages(path, state, raw),
        "training": training_progress(path, raw),
        "log": log_tail(path),
        "exit_code": read_exit_code(path),
        "ui_run": bool(info),
        "can_stop": state == "running" and bool(info),
        # a CLI run that never stamped its end may still be running in a terminal: resume it there, not here
        "can_resume": bool(info) and state in RESUMABLE,
        "has_report": (path / "report.html").is_file(),
    }
