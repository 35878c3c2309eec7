"""`tunesmith ui`: the web app (FastAPI, server-rendered Jinja2 pages, a small local chart script).

    from tunesmith.web.app import create_app
    app = create_app(Workspace("."), token=None)      # what `tunesmith ui` serves with uvicorn

Security, applied to every request by one middleware: an access token when one is set (header
`X-Tunesmith-Token` or `Authorization: Bearer`, the `tunesmith_token` cookie, or `?token=` which also sets the
cookie), a Host allow-list when bound to localhost (a DNS-rebinding page cannot talk to it), same-origin POSTs
only (a page on another site cannot start a run), and a Content-Security-Policy that allows no asset from
anywhere but this server.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tunesmith.web.workspace import Workspace

TOKEN_COOKIE = "tunesmith_token"
TOKEN_HEADER = "x-tunesmith-token"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_HERE = Path(__file__).parent
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'self'")


def create_app(ws: Workspace, token: str | None = None, allowed_hosts: frozenset[str] | None = None) -> Any:
    """The app over workspace `ws`. `allowed_hosts`: Host header names accepted (None accepts any)."""
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles
    from fastapi.templating import Jinja2Templates

    from tunesmith.web import routes_data, routes_runs
    from tunesmith.web.playground import Playground
    from tunesmith.web.worker import reconcile

    ws.ensure()
    reconcile(ws)  # workers that ended while no UI watched: interrupted / failed / finished
    app = FastAPI(title="tunesmith", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ws = ws
    app.state.templates = Jinja2Templates(directory=str(_HERE / "templates"))
    app.state.templates.env.filters["fmt"] = format_number
    app.state.playground = Playground()
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    _add_guard(app, token, allowed_hosts)
    _add_error_pages(app)
    app.include_router(routes_runs.router)
    app.include_router(routes_data.router)
    return app


def format_number(value: Any, signed: bool = False) -> str:
    """Numbers in tables: 4 significant digits, `-` for missing."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-" if value is None else str(value)
    text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return text


def _supplied_token(request: Any) -> tuple[str, bool]:
    """(token the request carries, whether it came in the query string)."""
    header = request.headers.get(TOKEN_HEADER) or ""
    auth = request.headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        header = header or auth[7:].strip()
    if header:
        return header, False
    cookie = request.cookies.get(TOKEN_COOKIE)
    if cookie:
        return cookie, False
    query = request.query_params.get("token") or ""
    return query, bool(query)


def _host_name(value: str) -> str:
    return (urlsplit(f"//{value}").hostname or "").lower()


def _add_guard(app: Any, token: str | None, allowed_hosts: frozenset[str] | None) -> None:
    from fastapi.responses import PlainTextResponse

    @app.middleware("http")
    async def guard(request: Any, call_next: Any) -> Any:
        host = request.headers.get("host", "")
        if allowed_hosts is not None and _host_name(host) not in allowed_hosts:
            return PlainTextResponse(f"host {host!r} not allowed", status_code=403)
        from_query = False
        if token is not None:
            supplied, from_query = _supplied_token(request)
            if not secrets.compare_digest(supplied.encode(), token.encode()):
                return PlainTextResponse(
                    "401: this tunesmith UI needs its access token (printed when it started): open the URL with "
                    "?token=... or send the X-Tunesmith-Token header", status_code=401)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin") or request.headers.get("referer")
            if origin and urlsplit(origin).netloc != host:
                return PlainTextResponse("403: cross-origin request refused", status_code=403)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if from_query and token is not None:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response


def _add_error_pages(app: Any) -> None:
    from fastapi import Request
    from fastapi.responses import JSONResponse

    from tunesmith.core.errors import TunesmithError
    from tunesmith.web.workspace import UnsafePathError, UploadTooLargeError

    @app.exception_handler(TunesmithError)
    async def tunesmith_error(request: Request, exc: TunesmithError) -> Any:
        status = 404 if isinstance(exc, UnsafePathError) else 413 if isinstance(exc, UploadTooLargeError) else 400
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(exc)}, status_code=status)
        templates = request.app.state.templates
        return templates.TemplateResponse(request, "error.html", {"message": str(exc)}, status_code=status)
