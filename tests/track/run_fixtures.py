"""Fake run folders (config, manifest, metrics, reports, adapter) for the tracker and listing tests."""

from __future__ import annotations

from pathlib import Path

from tunesmith.track.run_dir import RunDir

RUN_ID = "20250101-120000-1a2b3c4d"
METRICS = [{"step": 1, "loss": 2.0, "lr": 0.001}, {"step": 2, "loss": 1.5, "lr": 0.0005, "note": "text is skipped"}]


def make_run(output_dir: Path, run_id: str = RUN_ID, *, finished: bool = True, accuracy: float = 0.75) -> RunDir:
    config = {"run": {"seed": 0}, "train": {"learning_rate": 0.001, "batch_size": 4}, "eval": {"robustness": ["case"]}}
    run = RunDir.create(output_dir, config, run_id=run_id, data_sha256={"train.jsonl": "ab" * 32}, seed=0,
                        device="cpu")
    for row in METRICS:
        run.append_metrics(row)
    run.write_json("train_report.json", {"steps": 2, "train_loss": 1.5, "val_loss": 1.7, "elapsed_s": 3.2})
    run.write_json("eval_report.json", {
        "primary_metric": "accuracy",
        "metrics": {"accuracy": {"base": 0.25, "tuned": accuracy, "delta": accuracy - 0.25}},
    })
    (run.path / "adapter").mkdir(exist_ok=True)
    (run.path / "adapter" / "adapter_config.json").write_text("{}")
    if finished:
        run.finish()
    return run

