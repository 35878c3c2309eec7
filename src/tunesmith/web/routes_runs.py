"""Pages and JSON endpoints for runs: list, new-run form, live run page, stop/resume, report, compare, chat."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tunesmith.config import Config
from tunesmith.config.loader import config_hash
from tunesmith.core.errors import ConfigError, Problem, TunesmithError
from tunesmith.track.listing import RunSummary, format_duration, format_key_metric, format_started, summarise_run
from tunesmith.track.run_dir import new_run_id
from tunesmith.web import config_form
from tunesmith.web.app import format_number
from tunesmith.web.config_form import config_changes_yaml
from tunesmith.web.progress import run_config_raw, run_status
from tunesmith.web.workspace import RUNS_DIR, UnsafePathError, Workspace, check_name

router = APIRouter()
FIXED_FIELDS = {"run.output_dir": RUNS_DIR}  # UI runs always live in the workspace's runs/
OPEN_SECTIONS = {"run", "model", "data", "encode", "adapter", "train"}


def _ws(request: Request) -> Workspace:
    return request.app.state.ws  # type: ignore[no-any-return]


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status)  # type: ignore[no-any-return]


def run_rows(ws: Workspace) -> list[dict[str, Any]]:
    """Every run folder (CLI or UI) with its state and key figures, newest first."""
    from tunesmith.web.worker import WORKER_FILE, read_worker, run_state

    if not ws.runs_dir.is_dir():
        return []
    rows = []
    for path in ws.runs_dir.iterdir():
        if not path.is_dir() or not ((path / "manifest.json").is_file() or (path / WORKER_FILE).is_file()):
            continue
        s: RunSummary = summarise_run(path)
        started = s.started or (read_worker(path) or {}).get("started")
        rows.append({"id": s.run_id, "state": run_state(path), "started": format_started(started),
                     "sort": started or "",
                     "duration": format_duration(s.duration_s), "steps": s.steps if s.steps is not None else "-",
                     "train_loss": format_number(s.train_loss), "val_loss": format_number(s.val_loss),
                     "key_metric": format_key_metric(s),
                     "evaluated": (path / "eval_report.json").is_file(), "adapter": (path / "adapter").is_dir()})
    return sorted(rows, key=lambda r: (r["sort"], r["id"]), reverse=True)


@router.get("/")
def home() -> Response:
    return RedirectResponse("/runs", status_code=303)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> Response:
    rows = run_rows(_ws(request))
    return _page(request, "runs.html", {"rows": rows, "any_running": any(r["state"] == "running" for r in rows)})


@router.get("/api/runs")
def runs_api(request: Request) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "sort"} for r in run_rows(_ws(request))]


def _form_context(ws: Workspace, cfg: Config, yaml_text: str, preset: str | None,
                  problems: list[Any] | None = None, message: str | None = None) -> dict[str, Any]:
    return {"sections": config_form.form_sections(), "values": config_form.form_values(cfg), "fixed": FIXED_FIELDS,
            "yaml_text": yaml_text, "presets": list(ws.presets()), "preset": preset, "problems": problems or [],
            "message": message, "open_sections": OPEN_SECTIONS, "data_files": ws.data_files()}


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request, preset: str | None = None, data: str | None = None) -> Response:
    ws = _ws(request)
    yaml_text = "{}\n"
    if preset:
        presets = ws.presets()
        if preset not in presets:
            raise UnsafePathError(f"no preset {preset!r}; presets are the YAML files in configs/ and examples/")
        yaml_text = presets[preset].read_text(encoding="utf-8")
    cfg = config_form.load_yaml_text(yaml_text)
    if data:
        from tunesmith.web.routes_data import train_file_value

        cfg.data.train_file = train_file_value(ws, data)
        yaml_text = config_form.config_changes_yaml(cfg)
    return _page(request, "new_run.html", _form_context(ws, cfg, yaml_text, preset))


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    return parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)


@router.post("/runs/new", response_class=HTMLResponse)
async def submit_run(request: Request) -> Response:
    """Validate the form (or its YAML view) with the CLI's loader, then start the run in a worker."""
    from tunesmith.web.worker import start_run

    ws = _ws(request)
    pairs = await _form_pairs(request)
    fields = dict(pairs)
    use_yaml = fields.get("_mode") == "yaml"
    yaml_text = fields.get("_yaml", "") if use_yaml else config_form.raw_to_yaml(config_form.form_to_raw(pairs))
    try:
        cfg = config_form.load_yaml_text(yaml_text.replace("\r\n", "\n"))
    except ConfigError as exc:
        context = _form_context(ws, Config(), yaml_text, fields.get("_preset"), problems=exc.problems)
        if not use_yaml:  # show what was typed, so the user fixes the named fields in place
            context["values"].update({name: value for name, value in pairs if name in context["values"]})
        return _page(request, "new_run.html", context, status=400)
    run_id = cfg.run.run_id or new_run_id(config_hash(cfg))
    try:
        check_name(run_id, "run id")
        start_run(ws, run_id, config_changes_yaml(cfg))  # canonical YAML: what the run folder keeps
    except UnsafePathError as exc:  # a taken or malformed run id: fix it in the form
        problem = Problem("run.run_id", None, str(exc), "leave it empty for a fresh `<time>-<hash>` id")
        context = _form_context(ws, cfg, yaml_text, fields.get("_preset"), problems=[problem])
        return _page(request, "new_run.html", context, status=400)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


@router.post("/api/config/yaml")
async def form_to_yaml(request: Request) -> JSONResponse:
    """The YAML view of the current form (only the changed fields) and the loader's verdict on it."""
    yaml_text = config_form.raw_to_yaml(config_form.form_to_raw(await _form_pairs(request)))
    return JSONResponse({"yaml": yaml_text, "problems": _problems_of(yaml_text)})


@router.post("/api/config/fields")
async def yaml_to_fields(request: Request) -> JSONResponse:
    """YAML text -> the value of every form input (the other direction of the YAML view)."""
    yaml_text = (await request.body()).decode("utf-8")
    try:
        cfg = config_form.load_yaml_text(yaml_text)
    except ConfigError as exc:
        return JSONResponse({"problems": [p.render().strip() for p in exc.problems]}, status_code=400)
    return JSONResponse({"values": config_form.form_values(cfg), "problems": []})


def _problems_of(yaml_text: str) -> list[str]:
    try:
        config_form.load_yaml_text(yaml_text)
    except ConfigError as exc:
        return [p.render().strip() for p in exc.problems]
    return []


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str) -> Response:
    path = _ws(request).run_path(run_id)
    status = run_status(path)
    return _page(request, "run.html", {"run_id": run_id, "status": status,
                                       "config_text": config_form.raw_to_yaml(run_config_raw(path))})


@router.get("/api/runs/{run_id}/status")
def status_api(request: Request, run_id: str) -> dict[str, Any]:
    return run_status(_ws(request).run_path(run_id))


@router.post("/api/runs/{run_id}/stop")
def stop_api(request: Request, run_id: str) -> dict[str, Any]:
    from tunesmith.web.worker import stop_run

    stop_run(_ws(request), run_id)
    return run_status(_ws(request).run_path(run_id))


@router.post("/api/runs/{run_id}/resume")
def resume_api(request: Request, run_id: str) -> dict[str, Any]:
    from tunesmith.web.worker import resume_run

    resume_run(_ws(request), run_id)
    return run_status(_ws(request).run_path(run_id))


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
def report_page(request: Request, run_id: str) -> Response:
    path = _ws(request).run_path(run_id)
    return _page(request, "report.html", {"run_id": run_id, "has_report": (path / "report.html").is_file(),
                                          "can_render": (path / "eval_report.json").is_file()})


@router.get("/runs/{run_id}/report.html", response_class=HTMLResponse)
def report_file(request: Request, run_id: str) -> Response:
    report = _ws(request).run_path(run_id) / "report.html"
    if not report.is_file():
        raise UnsafePathError(f"run {run_id} has no report.html yet")
    return HTMLResponse(report.read_text(encoding="utf-8"))


@router.post("/runs/{run_id}/report")
def render_report(request: Request, run_id: str) -> Response:
    """Re-render report.html from the run folder (`tunesmith report runs/<id>`), e.g. after review marks."""
    from tunesmith.evaluate.run_report import render_run_report

    render_run_report(_ws(request).run_path(run_id))
    return RedirectResponse(f"/runs/{run_id}/report", status_code=303)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, a: str | None = None, b: str | None = None) -> Response:
    """Two runs' tuned metrics side by side: the code path of `tunesmith compare`."""
    from tunesmith.evaluate.run_report import compare_runs

    ws = _ws(request)
    evaluated = [r["id"] for r in run_rows(ws) if r["evaluated"]]
    comparison = None
    if a and b:
        comparison = compare_runs(ws.run_path(a), ws.run_path(b))
    return _page(request, "compare.html", {"runs": evaluated, "a": a, "b": b, "comparison": comparison})


@router.get("/chat", response_class=HTMLResponse)
def chat_page(request: Request, run: str | None = None) -> Response:
    from tunesmith.web.playground import is_label_run

    ws = _ws(request)
    tuned = [r["id"] for r in run_rows(ws) if r["adapter"]]
    chosen = run or (tuned[0] if tuned else None)
    label_run = chosen is not None and is_label_run(ws.run_path(chosen))
    return _page(request, "chat.html", {"runs": tuned, "run": chosen, "label_run": label_run})


@router.post("/api/chat")
async def chat_api(request: Request) -> dict[str, Any]:
    """{run, message, earlier?: [{user, base, tuned}], max_new_tokens?, as_trained?} -> {base, tuned, prompt}."""
    import asyncio

    from tunesmith.web.playground import Exchange

    body = await request.json()
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        raise TunesmithError("send JSON {\"run\": RUN_ID, \"message\": TEXT}")
    path = _ws(request).run_path(str(body.get("run", "")))
    try:
        earlier = [Exchange(str(e["user"]), str(e["base"]), str(e["tuned"])) for e in body.get("earlier") or []]
    except (KeyError, TypeError) as exc:
        raise TunesmithError("`earlier` must be a list of {user, base, tuned}") from exc
    playground = request.app.state.playground
    max_new = int(body.get("max_new_tokens") or 64)
    as_trained = bool(body.get("as_trained", True))
    # generation is CPU-bound: off the event loop, so the other pages keep answering
    return await asyncio.to_thread(  # type: ignore[no-any-return]
        playground.answer, path, body["message"], earlier, max_new, as_trained)
