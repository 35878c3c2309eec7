"""MLflow with a temporary SQLite store: params, per-step metrics, tags and artifacts read back with MlflowClient."""

from __future__ import annotations

import pytest

from tunesmith.track.mirror import mirror_run

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")


@pytest.mark.slow  # creating the SQLite schema (MLflow's migrations) takes ~10 s
def test_sqlite_store_reads_back(fake_run):
    from mlflow import MlflowClient

    assert mirror_run(fake_run, ["mlflow"]) == ["mlflow"]
    db = fake_run.path.parent / "mlflow.db"
    assert db.is_file()  # default store: beside the run folders
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("tunesmith")
    [found] = client.search_runs([experiment.experiment_id])
    assert found.info.run_name == fake_run.run_id and found.info.status == "FINISHED"
    assert found.data.params["train.learning_rate"] == "0.001" and found.data.params["run.seed"] == "0"
    assert found.data.tags["tunesmith.run_id"] == fake_run.run_id and "tunesmith.data_hash" in found.data.tags
    history = client.get_metric_history(found.info.run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(1, 2.0), (2, 1.5)]
    assert "note" not in found.data.metrics
    listed = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"adapter", "eval_report.json", "train_report.json", "config.yaml", "manifest.json"} <= listed
    assert (fake_run.path.parent / "mlflow-artifacts").is_dir()

    # mirroring the same folder again reopens the same MLflow run instead of making a twin
    mirror_run(fake_run, ["mlflow"])
    assert len(client.search_runs([experiment.experiment_id])) == 1
