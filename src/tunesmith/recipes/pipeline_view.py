"""What `tunesmith run` shows while it works: a rich live view on a terminal, plain lines everywhere else.

The live view is a stage table (status and duration of each stage), a bar for the current stage (training:
optimizer steps, fed by the loop's log rows) and the last metrics (loss, val loss, tokens/s). Without a terminal,
or with `CI=true`, the same events are printed as one line each, so logs stay readable.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Protocol

STATUS_STYLE = {"pending": "dim", "running": "bold cyan", "done": "green", "skipped": "yellow", "failed": "bold red"}


class PipelineView(Protocol):
    """The events a pipeline run reports; `metrics` rows come from the training loop (via `ViewTracker`)."""

    def __enter__(self) -> PipelineView: ...

    def __exit__(self, *exc: object) -> None: ...

    def stage_started(self, name: str) -> None: ...

    def stage_finished(self, name: str, status: str, seconds: float, note: str) -> None: ...

    def progress(self, completed: int, total: int | None) -> None: ...

    def metrics(self, row: dict[str, Any]) -> None: ...


def live_view_wanted() -> bool:
    """A live view needs a terminal; CI logs get plain lines."""
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false")
    return sys.stdout.isatty() and not ci


def make_view(stages: list[str], out: Any) -> PipelineView:
    return RichLiveView(stages, out) if live_view_wanted() else PlainView(stages, out)


def metrics_text(row: dict[str, Any]) -> str:
    """`step 40  loss 1.234  val loss 1.301  412 tok/s` from the newest values seen."""
    parts = []
    if row.get("step") is not None:
        parts.append(f"step {row['step']}")
    if row.get("loss") is not None:
        parts.append(f"loss {row['loss']:.4f}")
    if row.get("val_loss") is not None:
        parts.append(f"val loss {row['val_loss']:.4f}")
    if row.get("tokens_per_s") is not None:
        parts.append(f"{row['tokens_per_s']:.0f} tok/s")
    return "  ".join(parts)


class _ViewState:
    """Stage statuses, durations and the newest metrics; both views render from it."""

    def __init__(self, stages: list[str]):
        self.status = {name: "pending" for name in stages}
        self.seconds: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.current: str | None = None
        self.started = time.perf_counter()
        self.last: dict[str, Any] = {}

    def update_metrics(self, row: dict[str, Any]) -> None:
        self.last.update({k: v for k, v in row.items() if v is not None})


class PlainView:
    """One line per event: `[train] running`, `[train] done in 41.2s (...)`, `[train] step 40  loss ...`."""

    def __init__(self, stages: list[str], out: Any):
        self.state = _ViewState(stages)
        self.out = out

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def stage_started(self, name: str) -> None:
        self.state.current = name
        self.state.status[name] = "running"
        self.out.print(f"[{name}] running", markup=False, highlight=False)

    def stage_finished(self, name: str, status: str, seconds: float, note: str) -> None:
        self.state.status[name] = status
        took = f" in {seconds:.1f}s" if status != "skipped" else ""
        self.out.print(f"[{name}] {status}{took}" + (f" ({note})" if note else ""), markup=False, highlight=False)

    def progress(self, completed: int, total: int | None) -> None:
        return None  # the metrics lines already carry the step

    def metrics(self, row: dict[str, Any]) -> None:
        self.state.update_metrics(row)
        text = metrics_text(row)
        if text and self.state.current:
            self.out.print(f"[{self.state.current}] {text}", markup=False, highlight=False)


class RichLiveView:
    """rich.live.Live: stage table + current stage's bar + last metrics, redrawn four times a second.

    The recipes print through the same console, so their tables and lines scroll above the view, and their own
    progress displays (vetting status, augmentation bars, the loop's step bar) nest inside it.
    """

    def __init__(self, stages: list[str], out: Any):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.state = _ViewState(stages)
        self.out = out
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=out)
        self.task: Any = None
        self.live: Any = None
        self._saved_console: Any = None

    def __enter__(self) -> RichLiveView:
        import rich
        from rich.live import Live

        # The training loop draws its bar on rich's global console; making that console ours nests the bar in this
        # view instead of letting two displays overwrite each other's lines.
        self._saved_console = rich._console
        rich._console = self.out
        self.live = Live(get_renderable=self._render, console=self.out, refresh_per_second=4, transient=False)
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        import rich

        if self.live is not None:
            self.live.stop()
        rich._console = self._saved_console

    def stage_started(self, name: str) -> None:
        self.state.current = name
        self.state.status[name] = "running"
        self.state.started = time.perf_counter()
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(name, total=None)

    def stage_finished(self, name: str, status: str, seconds: float, note: str) -> None:
        self.state.status[name] = status
        self.state.seconds[name] = seconds
        self.state.notes[name] = note
        if self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        self.state.current = None

    def progress(self, completed: int, total: int | None) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=completed, total=total)

    def metrics(self, row: dict[str, Any]) -> None:
        self.state.update_metrics(row)

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title="tunesmith run", expand=False)
        for column in ("stage", "status", "time", "note"):
            table.add_column(column, justify="right" if column == "time" else "left")
        for name, status in self.state.status.items():
            if status == "running":
                seconds: float | None = time.perf_counter() - self.state.started
            else:
                seconds = self.state.seconds.get(name)
            took = f"{seconds:.1f}s" if seconds is not None and status != "skipped" else ""
            table.add_row(name, Text(status, style=STATUS_STYLE.get(status, "")), took, self.state.notes.get(name, ""))
        parts: list[Any] = [table]
        if self.task is not None:
            parts.append(self.bar)
        text = metrics_text(self.state.last)
        if text:
            parts.append(Text(f"last metrics: {text}", style="dim"))
        return Group(*parts)


class ViewTracker:
    """A loop tracker that forwards each log row to the view: step progress (total derived from the epoch
    fraction, or `max_steps`) and the last loss / val loss / tokens per second."""

    def __init__(self, view: PipelineView, epochs: float, max_steps: int | None):
        self.view = view
        self.epochs = epochs
        self.max_steps = max_steps

    def log_params(self, params: dict[str, Any]) -> None:
        return None

    def log_metrics(self, step: int, metrics: dict[str, Any]) -> None:
        self.view.metrics({"step": step, **metrics})
        self.view.progress(step, self._total(step, metrics.get("epoch")))

    def _total(self, step: int, epoch: float | None) -> int | None:
        if self.max_steps is not None:
            return self.max_steps
        if not epoch:
            return None
        per_epoch = max(1, round(step / epoch))
        return max(step, math.ceil(self.epochs * per_epoch))

    def log_artifact(self, path: Any) -> None:
        return None

    def close(self) -> None:
        return None
