"""`tunesmith ui`: serve the web UI over a workspace folder; `--mlflow` also starts MLflow's UI over its store.

    tunesmith ui                                   # http://127.0.0.1:7860, workspace = this folder (runs/, data/)
    tunesmith ui --workspace ~/tuning --port 8080
    tunesmith ui --host 0.0.0.0                    # reachable from other machines: needs the printed token
    tunesmith ui --mlflow                          # plus `mlflow ui` over <workspace>/runs/mlflow.db
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tunesmith.core.errors import DependencyError, TunesmithError

if TYPE_CHECKING:
    from tunesmith.web.workspace import Workspace

DEFAULT_PORT = 7860
MLFLOW_PORT = 5000
MLFLOW_PIN = "mlflow==3.17.2"


def add_ui_parser(verbs: argparse._SubParsersAction) -> None:
    ui = verbs.add_parser("ui", help="web UI: data, new run form, live runs, reports, compare, chat playground")
    ui.add_argument("--workspace", default=".", help="folder holding runs/ and data/ (default: this folder)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=DEFAULT_PORT)
    ui.add_argument("--token", help="access token required on every request (default: generated when --host "
                                    "is not localhost; set TUNESMITH_UI_TOKEN to keep one)")
    ui.add_argument("--max-upload-mb", type=float, default=200.0, help="largest data upload accepted")
    ui.add_argument("--mlflow", action="store_true", help="also start MLflow's UI over the workspace's SQLite store")
    ui.add_argument("--mlflow-port", type=int, default=MLFLOW_PORT)


def is_local(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def resolve_token(host: str, token: str | None) -> str | None:
    """The token to require: the given one, else TUNESMITH_UI_TOKEN, else a new one when not bound locally."""
    token = token or os.environ.get("TUNESMITH_UI_TOKEN") or None
    if token is None and not is_local(host):
        token = secrets.token_urlsafe(24)
    return token


def ui(args: argparse.Namespace, overrides: list[str]) -> int:
    from tunesmith.web.workspace import Workspace

    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise DependencyError("the web UI needs fastapi, uvicorn and jinja2: pip install 'tunesmith[ui]'")
    ws = Workspace(args.workspace, max_upload_bytes=int(args.max_upload_mb * 2**20))
    if not ws.root.is_dir():
        raise TunesmithError(f"workspace {ws.root} is not a folder; create it or pass --workspace DIR")
    token = resolve_token(args.host, args.token)
    mlflow = start_mlflow(ws.runs_dir, args.mlflow_port) if args.mlflow else None
    try:
        serve_ui(ws, args.host, args.port, token)
    finally:
        if mlflow is not None:
            mlflow.terminate()
    return 0


def serve_ui(ws: Workspace, host: str, port: int, token: str | None) -> None:
    import uvicorn

    from tunesmith.web.app import LOCAL_HOSTS, create_app

    os.chdir(ws.root)  # the workers run here too: relative paths in configs mean the same thing to both
    allowed = LOCAL_HOSTS if is_local(host) else None
    app = create_app(ws, token=token, allowed_hosts=allowed)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if not is_local(host):
        print(f"warning: binding {host}: anyone who can reach this machine on port {port} can reach the UI; "
              "it starts training processes and reads your data. Every request must carry the token.",
              file=sys.stderr)
    print(f"tunesmith UI on {url}{'?token=' + token if token else ''}  (workspace {ws.root})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def mlflow_command(runs_dir: Path, port: int) -> list[str]:
    """The documented command: MLflow's UI over the local SQLite store the `mlflow` tracker writes."""
    store = (runs_dir / "mlflow.db").resolve()
    return ["mlflow", "ui", "--workers", "1", "--port", str(port), "--backend-store-uri", f"sqlite:///{store}"]


def mlflow_ui_available() -> bool:
    """Whether this environment's mlflow has the UI's built pages (mlflow-skinny, what `tunesmith[mlflow]`
    installs, records runs and has the server but not the pages)."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    return (root / "server" / "js" / "build" / "index.html").is_file()


def find_mlflow_ui() -> list[str] | None:
    """How to start a full MLflow: this environment's, else an `mlflow` on PATH from another environment (the
    full package pins pyarrow<26, so it usually lives in its own, e.g. installed with pipx)."""
    if mlflow_ui_available():
        return [sys.executable, "-m", "mlflow"]
    found = shutil.which("mlflow")
    ours = Path(sys.executable).parent / "mlflow"
    if found and Path(found).resolve() != ours.resolve():
        return [found]
    return None


def start_mlflow(runs_dir: Path, port: int) -> subprocess.Popen[bytes]:
    command = mlflow_command(runs_dir, port)
    shown = " ".join(command)
    launcher = find_mlflow_ui()
    if launcher is None:
        raise DependencyError(
            "--mlflow needs the full MLflow package (its UI pages); tunesmith's `mlflow` extra installs "
            "mlflow-skinny, which records runs but has no UI, and the full package's pyarrow<26 clashes with "
            f"tunesmith's pyarrow pin. Install it in its own environment: `pipx install {MLFLOW_PIN}`, then "
            f"rerun `tunesmith ui --mlflow`, or start it yourself: {shown}"
        )
    runs_dir.mkdir(parents=True, exist_ok=True)
    print(f"MLflow UI on http://127.0.0.1:{port}/  ({shown})", flush=True)
    return subprocess.Popen([*launcher, *command[1:]])
