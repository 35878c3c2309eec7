"""Progress reporting for augmentation: a small interface the runner calls, and a rich progress bar.

The runner calls `start(description, total)` once per augmenter and round, `advance(n)` after each chunk of jobs,
and `stop()` at the end; the rich bar shows done/total, records/s and the elapsed time.
"""

from __future__ import annotations

from typing import Any, Protocol


class ProgressSink(Protocol):
    def start(self, description: str, total: int) -> None: ...

    def advance(self, count: int) -> None: ...

    def stop(self) -> None: ...


class RichProgress:
    """A rich progress bar, one line per augmenter and round, with a records/s column."""

    def __init__(self, console: Any = None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self._task: Any = None
        self._started = False

    def start(self, description: str, total: int) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        self._task = self._progress.add_task(description, total=total, rate="")

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)
        task = self._progress.tasks[-1]
        speed = task.finished_speed or task.speed
        self._progress.update(self._task, rate=f"{speed:,.0f} records/s" if speed else "")

    def stop(self) -> None:
        if self._started:
            for task in self._progress.tasks:  # a finished task's final speed: done / elapsed
                if task.elapsed:
                    self._progress.update(task.id, rate=f"{task.completed / task.elapsed:,.0f} records/s")
            self._progress.stop()
            self._started = False
