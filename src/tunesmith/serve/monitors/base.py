"""Monitor plug-ins: each sees every finished exchange and may return alerts.

Alerts are appended as JSON lines to `<run>/monitor/alerts.jsonl` (ship them anywhere) and counted on /metrics as
`tunesmith_monitor_alerts_total{monitor, kind}`. A monitor is a class registered in `MONITORS`, built from the
serve settings and the training texts, with `observe(exchange) -> list[Alert]`; `gauges()` may expose figures.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tunesmith.core.registry import Registry
from tunesmith.serve.settings import ServeSettings


@dataclass(frozen=True)
class Exchange:
    """One answered request, as the monitors see it."""

    request_id: str
    model: str
    prompt: str
    output: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str


@dataclass(frozen=True)
class Alert:
    monitor: str
    kind: str
    message: str
    request_id: str | None = None
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


@dataclass
class MonitorContext:
    """What monitors are built from: the settings, the training texts, and a tokenizer's length function."""

    settings: ServeSettings
    training_texts: Sequence[str] = ()
    training_prompts: Sequence[str] = ()
    token_count: Callable[[str], int] = lambda text: len(text.split())


class Monitor(Protocol):
    name: str

    def observe(self, exchange: Exchange) -> list[Alert]: ...

    def gauges(self) -> dict[str, float]: ...


MONITORS: Registry[Callable[[MonitorContext], Monitor]] = Registry("monitor")


class AlertLog:
    """Append-only JSON lines file (thread-safe); also keeps the last alerts in memory for tests and /health."""

    def __init__(self, path: Path | None, keep: int = 1000):
        self.path = path
        self.keep = keep
        self.recent: list[Alert] = []
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        with self._lock:
            self.recent.extend(alerts)
            del self.recent[: -self.keep]
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as f:
                    for alert in alerts:
                        f.write(json.dumps(asdict(alert), ensure_ascii=False, default=str) + "\n")


def build_monitors(ctx: MonitorContext) -> list[Monitor]:
    import tunesmith.serve.monitors.checks  # noqa: F401 - registers the built-in monitors

    return [MONITORS.get(name)(ctx) for name in ctx.settings.monitors]


def read_alerts(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash; the rest still counts
    return rows
