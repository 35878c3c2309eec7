"""`tunesmith runs`: the run folders under an output dir, their status and key metrics, read from the folders.

    list_runs("runs")              -> [RunSummary, ...] newest first
    find_run("runs", "2025010")    -> the run folder for an id, a unique id prefix or a path (did-you-mean if not)
    final_metrics(path)            -> the numbers a rerun must reproduce (timings excluded)

Nothing here imports torch; the tables are rich renderables the CLI prints.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tunesmith.core.errors import TunesmithError
from tunesmith.track.mirror import flatten_params, run_config
from tunesmith.track.run_dir import RunDir

TIMING_FIELDS = {"elapsed_s", "tokens_per_s", "resumed_from_step"}  # differ between identical runs


class UnknownRunError(TunesmithError):
    """No run folder matches the id the user gave."""


@dataclass
class RunSummary:
    run_id: str
    path: Path
    status: str
    started: str | None
    duration_s: float | None
    steps: int | None
    train_loss: float | None
    val_loss: float | None
    primary_metric: str | None
    tuned: float | None
    delta: float | None


def read_json_or_none(path: Path) -> Any:
    """The parsed JSON file, or None when it is missing or unreadable (a run killed mid-write)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def is_run_folder(path: Path) -> bool:
    return path.is_dir() and (path / "manifest.json").is_file()


def _duration(manifest: dict[str, Any]) -> float | None:
    start, end = manifest.get("start_time"), manifest.get("end_time")
    if not start or not end:
        return None
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def run_status(path: Path, manifest: dict[str, Any]) -> str:
    """`finished` (end time stamped), `unfinished` (started, never stamped: running, killed or crashed)."""
    if manifest.get("status"):
        return str(manifest["status"])
    return "finished" if manifest.get("end_time") else "unfinished"


def summarise_run(path: Path) -> RunSummary:
    manifest = read_json_or_none(path / "manifest.json") or {}
    train = read_json_or_none(path / "train_report.json") or {}
    report = read_json_or_none(path / "eval_report.json") or {}
    primary = report.get("primary_metric")
    row = (report.get("metrics") or {}).get(primary) or {}
    return RunSummary(
        run_id=path.name,
        path=path,
        status=run_status(path, manifest),
        started=manifest.get("start_time"),
        duration_s=_duration(manifest),
        steps=train.get("steps"),
        train_loss=train.get("train_loss"),
        val_loss=train.get("val_loss"),
        primary_metric=primary,
        tuned=row.get("tuned"),
        delta=row.get("delta"),
    )


def list_runs(output_dir: str | Path) -> list[RunSummary]:
    """Every run folder directly under `output_dir`, newest first (run ids start with their UTC time)."""
    root = Path(output_dir)
    if not root.is_dir():
        raise UnknownRunError(f"no run folder {root}; pass --output-dir (the run.output_dir of your config)")
    folders = sorted((p for p in root.iterdir() if is_run_folder(p)), key=lambda p: p.name, reverse=True)
    return [summarise_run(p) for p in folders]


def find_run(output_dir: str | Path, ref: str) -> Path:
    """The run folder for a path, an exact id or a unique id prefix; a clear error with close ids otherwise."""
    as_path = Path(ref)
    if is_run_folder(as_path):
        return as_path
    root = Path(output_dir)
    ids = sorted(p.name for p in root.iterdir() if is_run_folder(p)) if root.is_dir() else []
    name = as_path.name
    if name in ids:
        return root / name
    prefixed = [i for i in ids if i.startswith(name)]
    if len(prefixed) == 1:
        return root / prefixed[0]
    if len(prefixed) > 1:
        raise UnknownRunError(f"run id {name!r} is ambiguous in {root}: {', '.join(prefixed[:5])}; give more of it")
    close = difflib.get_close_matches(name, ids, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    known = f" ({len(ids)} runs there; list them with `tunesmith runs --output-dir {root}`)"
    raise UnknownRunError(f"no run {name!r} in {root}.{hint}{known}")


def final_metrics(path: Path) -> dict[str, float]:
    """train_report.json's numbers and every evaluated metric (`eval.<name>.base|tuned`), timings left out."""
    values: dict[str, float] = {}
    for key, value in (read_json_or_none(path / "train_report.json") or {}).items():
        if key not in TIMING_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
            values[f"train.{key}"] = float(value)
    for name, row in ((read_json_or_none(path / "eval_report.json") or {}).get("metrics") or {}).items():
        for side in ("base", "tuned"):
            if isinstance(row.get(side), (int, float)):
                values[f"eval.{name}.{side}"] = float(row[side])
    return values


def compare_final(a: Path, b: Path) -> list[tuple[str, float | None, float | None]]:
    """(name, value in a, value in b) for every final metric; equal rows are included, missing sides are None."""
    left, right = final_metrics(a), final_metrics(b)
    return [(name, left.get(name), right.get(name)) for name in sorted(set(left) | set(right))]


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_started(iso: str | None) -> str:
    """`2025-01-01T12:00:00+00:00` -> `2025-01-01 12:00` (UTC; the run id carries the seconds)."""
    return iso[:16].replace("T", " ") if iso else "-"


def format_key_metric(s: RunSummary) -> str:
    if s.primary_metric is None or s.tuned is None:
        return "-"
    delta = "" if s.delta is None else f" ({s.delta:+.3f})"
    return f"{s.primary_metric} {s.tuned:.3f}{delta}"


def runs_table(summaries: list[RunSummary], title: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("run id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("started (UTC)")
    table.add_column("duration", justify="right", no_wrap=True)
    table.add_column("steps", justify="right")
    table.add_column("train loss", justify="right")
    table.add_column("val loss", justify="right")
    table.add_column("key metric: tuned (vs base)")
    for s in summaries:
        loss = [f"{v:.4g}" if v is not None else "-" for v in (s.train_loss, s.val_loss)]
        table.add_row(s.run_id, s.status, format_started(s.started), format_duration(s.duration_s), _fmt(s.steps),
                      *loss, format_key_metric(s))
    return table


def config_changes(path: Path) -> dict[str, Any]:
    """The config fields of a run that differ from today's defaults (what makes this run this run)."""
    from tunesmith.config import Config, config_to_dict

    defaults = flatten_params(config_to_dict(Config()))
    return {k: v for k, v in flatten_params(run_config(RunDir(path))).items() if defaults.get(k, object()) != v}


def run_detail(path: Path) -> list[Any]:
    """Rich renderables for `tunesmith runs show`: manifest, config changes, final metrics."""
    from rich.table import Table
    from rich.text import Text

    manifest = read_json_or_none(path / "manifest.json") or {}
    summary = summarise_run(path)
    head = Table(title=f"run {path.name} ({summary.status}, {format_duration(summary.duration_s)})", show_header=False)
    head.add_column("field")
    head.add_column("value")
    for key in ("start_time", "end_time", "config_hash", "seed", "device", "python", "platform"):
        head.add_row(key, _fmt(manifest.get(key)))
    for name, version in (manifest.get("versions") or {}).items():
        head.add_row(f"version {name}", _fmt(version))
    for file, sha in (manifest.get("data_files") or {}).items():
        head.add_row("data", Text(f"{file} sha256 {str(sha)[:16]}"))
    config = Table(title="config (fields that differ from the defaults)")
    config.add_column("field")
    config.add_column("value")
    for key, value in config_changes(path).items():
        config.add_row(key, Text(_fmt(value)))  # Text: a value like "[a, b]" is not rich markup
    metrics = Table(title="final metrics")
    metrics.add_column("metric")
    metrics.add_column("value", justify="right")
    for key, value in final_metrics(path).items():
        metrics.add_row(key, _fmt(value))
    return [head, config, metrics]
