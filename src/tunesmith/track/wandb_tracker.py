"""Weights & Biases tracker, offline by default: works without an account or network.

    pip install tunesmith[wandb]
    wandb sync runs/<id>/wandb/offline-run-*      # upload later, once logged in

The W&B run id is the run folder's id, so mirroring the same folder again resumes that W&B run. Offline files
land in `<run folder>/wandb/`; `track.wandb_mode: online` (or `WANDB_MODE=online`) logs live instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tunesmith.track.mirror import numeric_metrics, require, run_tags, track_settings
from tunesmith.track.run_dir import TRACKERS, RunDir

WANDB_TAG_LIMIT = 64  # longest tag W&B accepts


@TRACKERS.register("wandb")
class WandbTracker:
    """Mirror params (as the W&B config), per-step metrics, tags and artifacts of a run folder into W&B."""

    def __init__(self, run: RunDir, project: str | None = None, mode: str | None = None):
        wandb = require("wandb", "wandb")
        settings = track_settings(run)
        self.run = run
        tags = run_tags(run)
        self.wandb_run = wandb.init(
            project=project or settings.get("wandb_project") or "tunesmith",
            name=run.run_id,
            id=run.run_id,
            resume="allow",
            dir=str(run.path),
            mode=mode or os.environ.get("WANDB_MODE") or settings.get("wandb_mode") or "offline",
            tags=[f"{k.removeprefix('tunesmith.')}:{v}"[:WANDB_TAG_LIMIT] for k, v in tags.items()],
            config={"tunesmith_tags": tags},
            settings=wandb.Settings(console="off", silent=True),
            reinit="create_new",
        )

    @property
    def offline_dir(self) -> Path:
        """The folder this W&B run writes into (`<run folder>/wandb/offline-run-...` in offline mode)."""
        return Path(self.wandb_run.dir).parent

    def log_params(self, params: dict[str, Any]) -> None:
        self.wandb_run.config.update(params, allow_val_change=True)

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        values = numeric_metrics(metrics)
        if values:
            self.wandb_run.log({**values, "step": step}, step=step)

    def log_artifact(self, path: str | Path) -> None:
        import wandb

        path = Path(path)
        kind = "model" if path.is_dir() else "report"
        name = f"{self.run.run_id}-{path.name}".replace("/", "-")
        artifact = wandb.Artifact(name=name, type=kind)
        if path.is_dir():
            artifact.add_dir(str(path))
        else:
            artifact.add_file(str(path))
        self.wandb_run.log_artifact(artifact)

    def close(self) -> None:
        self.wandb_run.finish()
