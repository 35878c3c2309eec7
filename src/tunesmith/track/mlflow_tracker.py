"""MLflow tracker: one MLflow run per run folder, in a local SQLite store by default.

    pip install tunesmith[mlflow]            # mlflow-skinny 3.17.2 + the SQLite store: logging, no web UI
    tunesmith runs sync <id> --to mlflow     # copy a run folder into the store

The web UI ships only in the full `mlflow` wheel, whose pyarrow<26 requirement clashes with tunesmith's pyarrow,
so browse from a separate environment pointed at the same store:

    pipx run --spec mlflow==3.17.2 mlflow ui --backend-store-uri sqlite:///runs/mlflow.db --workers 1

Default store: `sqlite:///<output dir>/mlflow.db`, artifacts in `<output dir>/mlflow-artifacts/` (the output
dir is the folder holding the run folders). `track.mlflow_uri` points elsewhere, e.g. a tracking server.
The MLflow run is named after the run id, and a second tracker on the same run folder reopens that MLflow run
rather than making a twin, so mirroring twice (or resuming) adds to one MLflow run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.track.mirror import numeric_metrics, require, run_tags, track_settings
from tunesmith.track.run_dir import TRACKERS, RunDir

MLFLOW_PARAM_LIMIT = 100  # params per log_batch call that MLflow accepts
MLFLOW_VALUE_LIMIT = 6000  # longest param value MLflow stores


def default_uri(run: RunDir) -> str:
    return f"sqlite:///{(run.path.parent / 'mlflow.db').resolve()}"


@TRACKERS.register("mlflow")
class MlflowTracker:
    """Mirror params, per-step metrics, artifacts and tags of a run folder into MLflow."""

    def __init__(self, run: RunDir, uri: str | None = None, experiment: str | None = None):
        require("mlflow", "mlflow")
        from mlflow import MlflowClient

        settings = track_settings(run)
        self.run = run
        self.uri = uri or settings.get("mlflow_uri") or default_uri(run)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment(experiment or settings.get("mlflow_experiment") or "tunesmith")
        self.run_id = self._open_run()

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        artifacts = "file://" + str((self.run.path.parent / "mlflow-artifacts").resolve())
        if not self.uri.startswith("sqlite:"):  # a server or folder store decides where artifacts go
            return str(self.client.create_experiment(name))
        return str(self.client.create_experiment(name, artifact_location=artifacts))

    def _open_run(self) -> str:
        existing = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.`tunesmith.run_id` = '{self.run.run_id}'", max_results=1
        )
        if existing:
            self.client.update_run(existing[0].info.run_id, status="RUNNING")
            return str(existing[0].info.run_id)
        created = self.client.create_run(self.experiment_id, run_name=self.run.run_id, tags=run_tags(self.run))
        return str(created.info.run_id)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        logged = self.client.get_run(self.run_id).data.params
        fresh = [Param(k, str(v)[:MLFLOW_VALUE_LIMIT]) for k, v in params.items() if k not in logged]
        for start in range(0, len(fresh), MLFLOW_PARAM_LIMIT):  # params are write-once in MLflow: skip logged ones
            self.client.log_batch(self.run_id, params=fresh[start : start + MLFLOW_PARAM_LIMIT])

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(k, v, now, step) for k, v in numeric_metrics(metrics).items()]
        if rows:
            self.client.log_batch(self.run_id, metrics=rows)

    def log_artifact(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path=path.name)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path))

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED")
