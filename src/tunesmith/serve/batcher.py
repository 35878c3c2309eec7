"""Dynamic batching: one worker thread owns the model; requests wait in a bounded queue and are decoded together.

The worker takes the first waiting request, waits `batch_wait_ms` for company, then decodes every waiting
request with the same model and sampling as one batch (up to `max_batch_size`); the rest stay queued in order.
The wait is skipped for a lone request when the server is otherwise quiet (the last batch held one request and
nothing arrived while it ran): no companion is coming then, and waiting would only add latency at concurrency 1.
A full queue refuses at once (`QueueFull`, answered 429) rather than letting callers hang. `close` stops new
work and lets the worker finish everything already accepted.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunesmith.core.errors import TunesmithError
from tunesmith.serve.engine import Engine, Sampling

log = logging.getLogger(__name__)

# called from the worker thread: (token id, None) per token, then (None, finish reason); reason "error: ..." on failure
Emit = Callable[[int | None, str | None], None]


class QueueFull(TunesmithError):
    """The request queue is at its bound; retry later."""


class ShuttingDown(TunesmithError):
    """The server is draining its queue before it stops; no new requests."""


@dataclass
class Job:
    model: str
    prompt_ids: list[int]
    max_new: int
    sampling: Sampling
    emit: Emit
    enqueued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """The bounded queue and its worker thread; `on_batch(size)` is told each batch's size (for /metrics)."""

    def __init__(
        self,
        engine: Engine,
        max_batch_size: int = 8,
        max_queue: int = 64,
        batch_wait_ms: float = 5.0,
        on_batch: Callable[[int], None] | None = None,
    ):
        self.engine = engine
        self.max_batch_size = max(1, max_batch_size)
        self.max_queue = max(1, max_queue)
        self.batch_wait_s = batch_wait_ms / 1000.0
        self.on_batch = on_batch
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._busy = False
        # requests seen around the last batch: its size plus those that arrived while it ran (a load signal)
        self._recent_load = 0
        self._arrived_while_busy = 0
        self._thread = threading.Thread(target=self._run, name="tunesmith-serve-worker", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closing:
                raise ShuttingDown("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"request queue is full ({self.max_queue} waiting); retry later")
            self._queue.append(job)
            if self._busy:
                self._arrived_while_busy += 1
            self._cond.notify()

    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new jobs, finish the queued and running ones, stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                self._decode(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._recent_load = len(batch) + self._arrived_while_busy

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            if self._should_wait():
                self._cond.wait(self.batch_wait_s)  # let concurrent requests join this batch
            first = self._queue[0]
            batch: list[Job] = []
            rest: collections.deque[Job] = collections.deque()
            while self._queue:
                job = self._queue.popleft()
                same = job.model == first.model and job.sampling == first.sampling
                (batch if same and len(batch) < self.max_batch_size else rest).append(job)
            self._queue.extend(rest)
            self._busy = True
            self._arrived_while_busy = 0
            return batch

    def _should_wait(self) -> bool:
        """Wait for companions only when some may come: others are queued, or the last batch showed concurrency."""
        if self._closing or self.batch_wait_s <= 0 or len(self._queue) >= self.max_batch_size:
            return False
        return len(self._queue) > 1 or self._recent_load > 1

    def _decode(self, batch: list[Job]) -> None:
        unfinished = [len(batch)]

        def sink(row: int, token: int | None, reason: str | None) -> None:
            if reason is not None:  # idle as soon as the last row ends, before its caller hears (and sends again)
                with self._cond:
                    unfinished[0] -= 1
                    self._busy = unfinished[0] > 0
            batch[row].emit(token, reason)

        try:
            self.engine.decode(
                batch[0].model, [j.prompt_ids for j in batch], [j.max_new for j in batch], batch[0].sampling, sink
            )
        except Exception as exc:  # noqa: BLE001 - one bad batch must not kill the worker; each caller hears why
            log.exception("batch of %d failed", len(batch))
            for job in batch:
                job.emit(None, f"error: {type(exc).__name__}: {exc}")

    @property
    def worker_alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        return {"queue_depth": self.depth(), "max_queue": self.max_queue, "max_batch_size": self.max_batch_size}
