"""`tunesmith run cfg.yaml`: the whole path in one command, each stage skipped when nothing it depends on changed.

    tunesmith run examples/support_intents.yaml                 # runs/support_intents/
    tunesmith run examples/support_intents.yaml --force train   # redo training and everything after it

The stages (`recipes.stages`) run in order. Each writes its artifacts into the run folder and a record,
`stages/<stage>.json`: status, input hash, output hash, timings. A stage's input hash covers the config fields it
reads, the sha256 of the data files, and the output hashes of every stage before it; its output hash is the
content hash of the artifacts it produces. A stage is skipped when its last record is complete, its input hash is
unchanged and its artifacts still hash to the recorded output hash. So after a config edit only the stages that
read the edited fields rerun, and the later ones rerun only if an earlier output actually changed. A stage that
crashed (record `running` or `failed`) with unchanged inputs continues: training resumes from its newest
checkpoint. A stage whose inputs changed starts afresh: its old artifacts (checkpoints included) are removed.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tunesmith.config import Config, config_hash, config_to_dict
from tunesmith.core.digest import canonical_hash
from tunesmith.core.errors import ConfigError, Problem
from tunesmith.data.load import file_sha256
from tunesmith.recipes.pipeline_view import PipelineView
from tunesmith.recipes.stages import STAGE_NAMES, STAGES, SearchEntry, Stage, StageContext, data_files

RECORDS_DIR = "stages"
RECORD_VERSION = 1
COMPLETE = ("done", "skipped")


@dataclass
class PipelineResult:
    run_dir: Path
    records: dict[str, dict[str, Any]]
    """Stage name -> its record as written to stages/<stage>.json."""
    seconds: float

    def statuses(self) -> dict[str, str]:
        return {name: record["status"] for name, record in self.records.items()}


def default_run_path(cfg: Config, config_path: Path | None) -> Path:
    """`<output_dir>/<run.run_id>`, else `<output_dir>/<config file stem>`: a rerun of the same file finds its
    folder (a timestamped id would start from scratch every time)."""
    name = cfg.run.run_id or (config_path.stem if config_path is not None else "pipeline")
    return Path(cfg.run.output_dir) / name


def check_force(force: Iterable[str]) -> str | None:
    """The earliest forced stage (`all` = the first), or None; an unknown name fails with the known ones."""
    names = list(force)
    unknown = [n for n in names if n not in STAGE_NAMES and n != "all"]
    if unknown:
        raise ConfigError([Problem("--force", None, f"unknown stage {unknown[0]!r}",
                                   f"one of: all, {', '.join(STAGE_NAMES)}")])
    if "all" in names:
        return STAGE_NAMES[0]
    return min(names, key=STAGE_NAMES.index) if names else None


def run_pipeline(cfg: Config, run_path: Path | None = None, force: Iterable[str] = (),
                 search: SearchEntry | None = None, view: PipelineView | None = None) -> PipelineResult:
    """Run every stage in order into `run_path` (reopened if it exists); `force` reruns a stage and all after it."""
    from tunesmith.recipes.common import console
    from tunesmith.recipes.pipeline_view import make_view
    from tunesmith.track.run_dir import RunDir

    first_forced = check_force(force)
    run_path = Path(run_path) if run_path is not None else default_run_path(cfg, None)
    out = console()
    previous = _read(run_path / "manifest.json") or {}
    files = data_files(cfg)
    data_hashes = {key: file_sha256(path) for key, path in files.items()}
    run = RunDir.create(run_path.parent, config_to_dict(cfg), run_id=run_path.name,
                        data_sha256={str(path): data_hashes[key] for key, path in files.items()},
                        digest=config_hash(cfg), seed=cfg.run.seed, device=previous.get("device"))
    view = view or make_view(list(STAGE_NAMES), out)
    ctx = StageContext(cfg, run, out, view, search)
    started = time.perf_counter()
    outputs: dict[str, str] = {}
    records: dict[str, dict[str, Any]] = {}
    forcing = False
    with view:
        for stage in STAGES:
            forcing = forcing or stage.name == first_forced
            extra = {"data_sha256": data_hashes} if stage.name == "inspect" else _extra_inputs(stage, cfg)
            record = run_stage(stage, ctx, outputs, extra, forced=forcing)
            records[stage.name] = record
            outputs[stage.name] = record["output_hash"]
    seconds = time.perf_counter() - started
    device = str(ctx.runtime()[0]) if ctx._runtime is not None else previous.get("device")
    run.finish(device=device, recipe="pipeline",
               stages={name: {"status": r["status"], "seconds": r["seconds"]} for name, r in records.items()})
    return PipelineResult(Path(run.path), records, seconds)


def run_stage(stage: Stage, ctx: StageContext, outputs: dict[str, str], extra: dict[str, Any],
              forced: bool = False) -> dict[str, Any]:
    """Skip, resume or (re)run one stage and return its record (also written to stages/<name>.json)."""
    root = Path(ctx.run.path)
    cfg_dict = config_to_dict(ctx.cfg)
    inputs = {"config": {f: _field(cfg_dict, f) for f in stage.reads(cfg_dict)}, "upstream": dict(outputs),
              "extra": extra, "version": RECORD_VERSION}
    input_hash = canonical_hash(inputs)
    previous = _read(root / RECORDS_DIR / f"{stage.name}.json")
    record: dict[str, Any] = {"stage": stage.name, "input_hash": input_hash, "inputs": inputs, "seconds": 0.0,
                              "started_at": _now()}
    off = stage.off(ctx)
    if off is not None:
        _remove(root, stage.produces + stage.writes)  # a stage turned off leaves no stale artifacts behind
        record.update(status="skipped", reason="off", note=off, outputs={}, output_hash=canonical_hash(["off"]))
        return _finish(ctx, stage, record, off)
    hashes = {name: tree_hash(root / name) for name in stage.produces}
    if previous is not None and not forced and _up_to_date(previous, input_hash, hashes):
        record.update(status="skipped", reason="up to date", note="up to date", outputs=hashes,
                      output_hash=previous["output_hash"], last_run_seconds=previous.get("last_run_seconds"))
        return _finish(ctx, stage, record, "up to date")
    resuming = previous is not None and not forced and previous.get("status") in ("running", "failed") \
        and previous.get("input_hash") == input_hash
    if not resuming:
        _remove(root, stage.produces + stage.writes)
    record.update(status="running", reason="resumed" if resuming else ("forced" if forced else "inputs changed"))
    _write_record(ctx, stage.name, record)
    ctx.view.stage_started(stage.name)
    clock = time.perf_counter()
    try:
        note = stage.run(ctx)
    except BaseException as exc:  # a crash or Ctrl-C: the record says so, and the next run continues here
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - clock)
        _write_record(ctx, stage.name, record)
        ctx.view.stage_finished(stage.name, "failed", record["seconds"], type(exc).__name__)
        raise
    hashes = {name: tree_hash(root / name) for name in stage.produces}
    seconds = round(time.perf_counter() - clock, 3)
    record.update(status="done", note=note, outputs=hashes, output_hash=canonical_hash(hashes), seconds=seconds,
                  last_run_seconds=seconds)
    return _finish(ctx, stage, record, note)


def _up_to_date(previous: dict[str, Any], input_hash: str, hashes: dict[str, str | None]) -> bool:
    """Complete last time, same inputs, and its artifacts still hash as recorded (none deleted or edited)."""
    return (previous.get("status") in COMPLETE and previous.get("reason") != "off"
            and previous.get("input_hash") == input_hash and previous.get("outputs") == hashes)


def _finish(ctx: StageContext, stage: Stage, record: dict[str, Any], note: str) -> dict[str, Any]:
    _write_record(ctx, stage.name, record)
    ctx.view.stage_finished(stage.name, record["status"], record["seconds"], note)
    return record


def _extra_inputs(stage: Stage, cfg: Config) -> dict[str, Any]:
    """Files a stage reads besides the run folder: the vetting allow-list."""
    if stage.name == "vet" and cfg.vet.allow_list:
        path = Path(cfg.vet.allow_list)
        return {"allow_list": tree_hash(path)}
    return {}


def tree_hash(path: Path) -> str | None:
    """sha256 of a file, or of a folder's (relative path, file sha256) pairs; None when it does not exist."""
    if path.is_file():
        return file_sha256(path)
    if not path.is_dir():
        return None
    entries = [(str(p.relative_to(path)), file_sha256(p)) for p in sorted(path.rglob("*")) if p.is_file()]
    return canonical_hash(entries)


def _field(cfg_dict: dict[str, Any], dotted: str) -> Any:
    value: Any = cfg_dict
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _remove(root: Path, names: Iterable[str]) -> None:
    for name in names:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def _write_record(ctx: StageContext, name: str, record: dict[str, Any]) -> None:
    ctx.run.write_json(f"{RECORDS_DIR}/{name}.json", record)


def _read(path: Path) -> dict[str, Any] | None:
    import json

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
