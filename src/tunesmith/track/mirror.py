"""What every external tracker needs from the run folder: flat params, numeric metrics, tags, artifacts.

The run folder is the record; `mirror_run` replays a finished (or interrupted) run folder into any trackers, so
a run trained with only `run_dir` can be copied into MLflow, W&B or TensorBoard afterwards:

    mirror_run(RunDir("runs/20250101-120000-1a2b3c4d"), ["mlflow"])

Imports no torch and no tracker package: those are imported by the tracker that needs them.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tunesmith.core.errors import DependencyError
from tunesmith.track.run_dir import RunDir, Tracker, make_trackers

# files and folders of a run folder worth copying to a tracker, in this order (absent ones are skipped)
ARTIFACTS = ("adapter", "eval_report.json", "train_report.json", "report.html", "config.yaml", "manifest.json")


def require(module: str, extra: str) -> Any:
    """Import an optional tracker package or raise a `DependencyError` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"the {extra} tracker needs the `{module}` package ({exc}): `pip install tunesmith[{extra}]`"
        ) from None


def flatten_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"train": {"lr": 1}}` -> `{"train.lr": 1}`; lists become their string form (trackers want scalars)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = str(list(value))
        else:
            flat[name] = value
    return flat


def numeric_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Only finite numbers (trackers reject strings and NaN); booleans are dropped too."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[name] = float(value)
    return out


def data_hash(manifest: Mapping[str, Any]) -> str | None:
    """One short hash over the sha256 of every data file the run read (None when it recorded none)."""
    files = manifest.get("data_files") or {}
    if not files:
        return None
    joined = "\n".join(f"{sha}" for _, sha in sorted(files.items()))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


def git_commit(cwd: str | Path | None = None) -> str | None:
    """HEAD of the git repository the command runs in, or None outside one (or without git)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def run_tags(run: RunDir) -> dict[str, str]:
    """Tags every tracker records: run id, config hash, data hash, seed, device and the git commit if any."""
    manifest = run.read_json("manifest.json") if (run.path / "manifest.json").is_file() else {}
    tags = {
        "tunesmith.run_id": run.run_id,
        "tunesmith.config_hash": manifest.get("config_hash"),
        "tunesmith.data_hash": data_hash(manifest),
        "tunesmith.seed": manifest.get("seed"),
        "tunesmith.device": manifest.get("device"),
        "tunesmith.git_commit": git_commit(),
    }
    return {k: str(v) for k, v in tags.items() if v is not None}


def track_settings(run: RunDir) -> dict[str, Any]:
    """The run's `track:` section from its config.yaml (empty when the config has none)."""
    return dict(run_config(run).get("track") or {})


def run_config(run: RunDir) -> dict[str, Any]:
    """The run's config.yaml as a plain dict (empty when the folder has none)."""
    import yaml

    path = run.path / "config.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def artifact_paths(run: RunDir) -> list[Path]:
    return [run.path / name for name in ARTIFACTS if (run.path / name).exists()]


def mirror_into(tracker: Tracker, run: RunDir) -> None:
    """Replay the run folder into one tracker: params, every metrics.jsonl row, then the artifacts."""
    tracker.log_params(flatten_params(run_config(run)))
    for row in run.read_metrics():
        if "step" in row:
            tracker.log_metrics(int(row["step"]), {k: v for k, v in row.items() if k != "step"})
    for path in artifact_paths(run):
        tracker.log_artifact(path)


def mirror_run(run: RunDir, names: Iterable[str]) -> list[str]:
    """Copy a run folder into the named trackers (`run_dir` is skipped: it is the source); returns their names."""
    names = [n for n in names if n != "run_dir"]
    trackers = make_trackers(names, run)
    try:
        for tracker in trackers:
            mirror_into(tracker, run)
    finally:
        for tracker in trackers:
            tracker.close()
    return names
