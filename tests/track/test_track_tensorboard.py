"""TensorBoard: event files hold every metrics.jsonl scalar at its step, plus params and tags as text."""

from __future__ import annotations

import pytest

from tunesmith.track.mirror import mirror_run

pytest.importorskip("tensorboard")


def test_event_files_hold_the_scalars(fake_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert mirror_run(fake_run, ["tensorboard"]) == ["tensorboard"]
    log_dir = fake_run.path / "tensorboard"
    assert list(log_dir.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss", "lr"}  # the text field `note` is not a scalar
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [(1, 2.0), (2, 1.5)]
    assert [(e.step, e.value) for e in events.Scalars("lr")] == [(1, pytest.approx(0.001)), (2, pytest.approx(5e-4))]
    texts = set(events.Tags()["tensors"])
    assert {"params/text_summary", "tags/text_summary", "artifacts/eval_report.json/text_summary"} <= texts
    params = events.Tensors("params/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| train.learning_rate | 0.001 |" in params
    tags = events.Tensors("tags/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "tunesmith.data_hash" in tags


def test_tensorboard_dir_from_the_config(tmp_path):
    from tunesmith.track.run_dir import RunDir
    from tunesmith.track.tensorboard_tracker import TensorBoardTracker

    run = RunDir.create(tmp_path / "runs", {"track": {"tensorboard_dir": str(tmp_path / "tb")}}, run_id="x")
    tracker = TensorBoardTracker(run)
    tracker.log_metrics(5, {"loss": 1.0})
    tracker.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
