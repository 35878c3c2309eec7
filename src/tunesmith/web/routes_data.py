"""The data page: upload or pick a file, inspect it (`tunesmith data inspect`), and read a run's vetting
quarantine with the reason for each record."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tunesmith.config import ModelConfig
from tunesmith.core.errors import TunesmithError
from tunesmith.web.workspace import Workspace

router = APIRouter()
QUARANTINE_SHOWN = 200


def _ws(request: Request) -> Workspace:
    return request.app.state.ws  # type: ignore[no-any-return]


@router.post("/api/data/upload")
async def upload(request: Request, name: str) -> dict[str, Any]:
    """The request body is the file (sent by the page's script); `name` its original file name."""
    declared = request.headers.get("content-length")
    ws = _ws(request)
    if declared and declared.isdigit() and int(declared) > ws.max_upload_bytes:
        from tunesmith.web.workspace import UploadTooLargeError

        raise UploadTooLargeError(f"upload of {declared} bytes is over the limit of {ws.max_upload_bytes} bytes")
    path = await ws.save_upload(name, request.stream())
    return {"name": path.name, "bytes": path.stat().st_size}


def bundled_names() -> list[str]:
    from tunesmith.data.bundled import BUNDLED_DATASETS

    return [f"bundled:{name}" for name in BUNDLED_DATASETS.names()]


def data_source(ws: Workspace, choice: str) -> Path:
    """The file behind a data choice: a file in the workspace's data/ or a bundled dataset by registered name
    (prepared on first use); nothing else can be named."""
    if choice in bundled_names():
        from tunesmith.data.bundled import resolve_data_source

        return resolve_data_source(choice)
    return ws.data_file(choice)


def train_file_value(ws: Workspace, choice: str) -> str:
    """What `data.train_file` says for a data choice (relative to the workspace, where the worker runs)."""
    return choice if choice in bundled_names() else f"data/{ws.data_file(choice).name}"


def inspect_report(path: Path, tokenizer_source: str | None, max_seq_length: int) -> dict[str, Any]:
    """`tunesmith data inspect` as a dict: format, counts, token-length histogram, every problem."""
    from tunesmith.data.inspect import inspect_file

    tokenizer = _tokenizer(tokenizer_source) if tokenizer_source else None
    report = inspect_file(path, "auto", tokenizer=tokenizer, max_seq_length=max_seq_length if tokenizer else None)
    out = report.to_dict()
    out["problems"] = [p.render().strip() for p in report.problems]
    top = max((b.count for b in report.histogram or []), default=0)
    out["bars"] = [{"low": b.low, "high": b.high, "count": b.count, "share": b.count / top if top else 0}
                   for b in report.histogram or []]
    out.pop("token_lengths", None)
    return out


@functools.lru_cache(maxsize=2)
def _tokenizer(source: str) -> Any:
    """The tokenizer of a model source, kept for the next inspection (loading one takes seconds)."""
    from tunesmith.models.load import load_tokenizer, resolve_source

    model_cfg = ModelConfig(source=source)
    folder, extra = resolve_source(model_cfg)
    return load_tokenizer(folder, model_cfg, extra)


def quarantine(run_path: Path) -> dict[str, Any] | None:
    """A run's vet/quarantine.jsonl (first entries) and vet_report.json counts; None when it was not vetted."""
    q = run_path / "vet" / "quarantine.jsonl"
    if not q.is_file():
        return None
    entries: list[dict[str, Any]] = []
    total = 0
    for line in q.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        total += 1
        if len(entries) < QUARANTINE_SHOWN:
            row = json.loads(line)
            row["text"] = json.dumps(row.get("original", {}), ensure_ascii=False)[:300]
            entries.append(row)
    try:
        report = json.loads((run_path / "vet" / "vet_report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        report = {}
    return {"entries": entries, "total": total, "report": report}


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, file: str | None = None, tokenizer: str | None = None, max_seq_length: int = 512,
              run: str | None = None) -> Response:
    ws = _ws(request)
    report, error = None, None
    if file:
        if file not in bundled_names():
            ws.data_file(file)  # a name outside data/ is refused (404), not shown as a data problem
        try:
            report = inspect_report(data_source(ws, file), tokenizer or None, max_seq_length)
        except TunesmithError as exc:  # bad records, a missing tokenizer, demo data not prepared
            error = str(exc)
    vetted = [p.name for p in sorted(ws.runs_dir.iterdir(), reverse=True)
              if (p / "vet" / "quarantine.jsonl").is_file()] if ws.runs_dir.is_dir() else []
    chosen_run = run or (vetted[0] if vetted else None)
    q = quarantine(ws.run_path(chosen_run)) if chosen_run else None
    templates = request.app.state.templates
    return templates.TemplateResponse(request, "data.html", {  # type: ignore[no-any-return]
        "files": ws.data_files() + bundled_names(), "file": file, "report": report, "error": error,
        "tokenizer": ModelConfig().source if tokenizer is None else tokenizer, "max_seq_length": max_seq_length,
        "vetted": vetted, "run": chosen_run, "quarantine": q, "max_upload_mb": ws.max_upload_bytes / 2**20})
