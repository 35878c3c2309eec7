"""The pipeline's view: live on a terminal, plain lines in CI, and the training progress fed by the loop's rows."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from tunesmith.recipes.pipeline_view import PlainView, RichLiveView, ViewTracker, live_view_wanted, metrics_text


def test_ci_gets_plain_lines(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert live_view_wanted() is False


def test_plain_view_prints_one_line_per_event() -> None:
    out = Console(file=io.StringIO(), width=200)
    with PlainView(["split", "train"], out) as view:
        view.stage_finished("split", "skipped", 0.0, "up to date")
        view.stage_started("train")
        view.metrics({"step": 5, "loss": 1.23456, "tokens_per_s": 812.4})
        view.stage_finished("train", "done", 41.25, "50 steps")
    assert out.file.getvalue().splitlines() == [  # type: ignore[attr-defined]
        "[split] skipped (up to date)", "[train] running", "[train] step 5  loss 1.2346  812 tok/s",
        "[train] done in 41.2s (50 steps)",
    ]


def test_live_view_shows_statuses_progress_and_last_metrics() -> None:
    import rich

    out = Console(file=io.StringIO(), force_terminal=True, width=120)
    before = rich.get_console()
    with RichLiveView(["vet", "train", "evaluate"], out) as view:
        assert rich.get_console() is out  # the loop's own bar nests in this view instead of fighting it
        view.stage_finished("vet", "done", 2.0, "kept 446 of 450")
        view.stage_started("train")
        tracker = ViewTracker(view, epochs=2.0, max_steps=None)
        tracker.log_metrics(5, {"epoch": 0.5, "loss": 0.9, "tokens_per_s": 300.0})
        tracker.log_metrics(6, {"val_loss": 1.1})
        assert view.bar.tasks[0].total == 20 and view.bar.tasks[0].completed == 6  # 10 steps an epoch, 2 epochs
        view.live.refresh()
        view.stage_finished("train", "failed", 3.0, "RuntimeError")
    assert rich.get_console() is before
    text = out.file.getvalue()  # type: ignore[attr-defined]
    for expected in ("vet", "kept 446 of 450", "failed", "RuntimeError", "pending",
                     "step 6  loss 0.9000  val loss 1.1000  300 tok/s"):
        assert expected in text, expected


@pytest.mark.parametrize(("epochs", "max_steps", "step", "epoch", "total"), [
    (1.0, None, 5, 0.25, 20), (0.5, None, 3, 0.1, 15), (3.0, 7, 5, 0.5, 7), (1.0, None, 5, None, None),
])
def test_progress_total_from_the_epoch_fraction(epochs, max_steps, step, epoch, total) -> None:
    seen: list[tuple[int, int | None]] = []

    class Recorder:
        def metrics(self, row):
            return None

        def progress(self, completed, total):
            seen.append((completed, total))

    ViewTracker(Recorder(), epochs, max_steps).log_metrics(step, {"epoch": epoch})  # type: ignore[arg-type]
    assert seen == [(step, total)]


def test_metrics_text_skips_missing_values() -> None:
    assert metrics_text({"val_loss": 0.5}) == "val loss 0.5000"
    assert metrics_text({}) == ""
