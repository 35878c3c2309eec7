"""What `tunesmith serve` and `tunesmith monitor` run."""

from __future__ import annotations

import collections
from pathlib import Path

from tunesmith.core.errors import TunesmithError
from tunesmith.serve.monitors.base import read_alerts
from tunesmith.serve.settings import ServeSettings


def serve_run(run_dir: Path, adapters: list[str] | None, host: str, port: int, settings: ServeSettings) -> None:
    """Load the run's base model and adapters, then serve until Ctrl-C / SIGTERM (in-flight requests finish)."""
    import uvicorn

    from tunesmith.serve.app import create_app
    from tunesmith.serve.loading import load_run

    engine, monitors, alerts = load_run(run_dir, adapters, settings)
    app = create_app(engine, settings, monitors, alerts)
    print(f"serving {', '.join(engine.names())} on http://{host}:{port}/v1  (alerts: {alerts.path})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=60)


def read_canaries(values: list[str] | None, files: list[str] | None) -> list[str]:
    canaries = list(values or [])
    for name in files or []:
        path = Path(name)
        if not path.is_file():
            raise TunesmithError(f"canary file not found: {path}")
        canaries.extend(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return canaries


def monitor_summary(run_dir: Path, last: int = 5) -> str:
    """Alert counts per monitor and kind, the time span, and the latest alerts, from `<run>/monitor/alerts.jsonl`."""
    path = run_dir / "monitor" / "alerts.jsonl"
    if not run_dir.is_dir():
        raise TunesmithError(f"{run_dir} is not a folder; pass runs/<id>")
    rows = read_alerts(path)
    if not rows:
        return f"no alerts in {path}" + ("" if path.is_file() else " (no file: no alert raised yet, or never served)")
    counts = collections.Counter((str(r.get("monitor")), str(r.get("kind"))) for r in rows)
    lines = [f"{len(rows)} alert(s) in {path}", f"{'monitor':<10} {'kind':<28} {'count':>6}"]
    lines += [f"{m:<10} {k:<28} {n:>6}" for (m, k), n in sorted(counts.items())]
    lines.append(f"latest {min(last, len(rows))}:")
    lines += [f"  [{r.get('monitor')}/{r.get('kind')}] {r.get('model')}: {r.get('message')}" for r in rows[-last:]]
    return "\n".join(lines)
