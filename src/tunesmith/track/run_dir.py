"""The run folder `runs/<run-id>/`: the source of truth every tracker mirrors.

Layout::

    runs/<run-id>/
      config.yaml        the resolved config (a plain dict, as the config loader produced it)
      manifest.json      config hash, data file sha256s, package versions, seed, device, python, platform, times
      metrics.jsonl      one JSON object a line, appended with flush + fsync (survives a kill)
      checkpoints/       written by tunesmith.train.checkpoint
      <name>.json        reports written atomically with `write_json`

Trackers (`Tracker` protocol, `TRACKERS` registry) receive params, metrics and artifacts; the run folder itself
is the default one. An MLflow / W&B / TensorBoard adapter is one file that registers a factory taking the
`RunDir`. This module imports no torch.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from tunesmith.core.digest import canonical_hash
from tunesmith.core.durable import atomic_write_text
from tunesmith.core.registry import Registry

_VERSIONED_PACKAGES = ("torch", "transformers", "peft", "tunesmith")


def new_run_id(config_hash_hex: str, now: datetime | None = None) -> str:
    """`<UTC timestamp>-<8 hex of the config hash>`, e.g. `20250101-120000-1a2b3c4d`: sortable by time."""
    now = now or datetime.now(timezone.utc)
    return f"{now.strftime('%Y%m%d-%H%M%S')}-{config_hash_hex[:8]}"


def package_versions(names: Iterable[str] = _VERSIONED_PACKAGES) -> dict[str, str | None]:
    """Installed versions (None when a package is absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunDir:
    """One run's folder. `RunDir.create` makes it (or reopens it to resume); `RunDir(path)` opens it as is."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @classmethod
    def create(
        cls,
        output_dir: str | Path,
        config: dict[str, Any],
        *,
        run_id: str | None = None,
        data_sha256: dict[str, str] | None = None,
        digest: str | None = None,
        seed: int | None = None,
        device: str | None = None,
    ) -> RunDir:
        """Create `output_dir/<run-id>/` with config.yaml and manifest.json; an existing run is reopened.

        `data_sha256` maps each data file to its sha256 (already computed by the data loader); `digest` is the
        config hash to record, default the hash of `config` (pass one that ignores the run folder's name, so a
        resumed run records the same hash).
        """
        digest = digest or canonical_hash(config)
        run = cls(Path(output_dir) / (run_id or new_run_id(digest)))
        resumed = (run.path / "manifest.json").is_file()
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(config)
        manifest = run.read_json("manifest.json") if resumed else {}
        manifest.update(
            {
                "run_id": run.run_id,
                "config_hash": digest,
                "data_files": dict(data_sha256 or {}),
                "versions": package_versions(),
                "seed": seed,
                "device": device,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "end_time": None,
            }
        )
        manifest.setdefault("start_time", _utc_now())
        if resumed:
            manifest.setdefault("reopened_at", []).append(_utc_now())
        run.write_json("manifest.json", manifest)
        return run

    def write_config(self, config: dict[str, Any]) -> None:
        import yaml

        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def write_json(self, name: str, obj: Any) -> Path:
        """Write `name` (relative to the run folder) atomically as pretty JSON."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
        return target

    def read_json(self, name: str) -> Any:
        with open(self.path / name, encoding="utf-8") as f:
            return json.load(f)

    def append_metrics(self, row: dict[str, Any]) -> None:
        """Append one line to metrics.jsonl and make it durable before returning."""
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        with open(self.metrics_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def reset_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl (a resumed run rewinds it to its checkpoint's rows: no duplicate steps)."""
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))

    def finish(self, **fields: Any) -> None:
        """Stamp the end time (and any extra fields) into manifest.json."""
        manifest = self.read_json("manifest.json") if (self.path / "manifest.json").is_file() else {}
        manifest.update(fields)
        manifest["end_time"] = _utc_now()
        self.write_json("manifest.json", manifest)


@runtime_checkable
class Tracker(Protocol):
    """Where params, metrics and artifacts of a run are mirrored (run folder, MLflow, W&B, TensorBoard)."""

    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None: ...

    def log_artifact(self, path: str | Path) -> None: ...

    def close(self) -> None: ...


TRACKERS: Registry[Callable[[RunDir], Tracker]] = Registry("tracker")


@TRACKERS.register("run_dir")
class RunDirTracker:
    """The default tracker: params.json, metrics.jsonl and artifacts/ in the run folder."""

    def __init__(self, run: RunDir):
        self.run = run

    def log_params(self, params: dict[str, Any]) -> None:
        self.run.write_json("params.json", params)

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.run.append_metrics({"step": step, **metrics})

    def log_artifact(self, path: str | Path) -> None:
        """Copy a file into `artifacts/` unless it already lives inside the run folder."""
        source = Path(path).resolve()
        if self.run.path.resolve() in source.parents:
            return
        target = self.run.path / "artifacts" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)

    def close(self) -> None:
        return None


def make_trackers(names: Iterable[str], run: RunDir) -> list[Tracker]:
    """Trackers by registered name, each bound to the run folder."""
    return [TRACKERS.get(name)(run) for name in names]
