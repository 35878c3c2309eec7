"""The FastAPI app: OpenAI-compatible routes over the batcher, monitors on every answer, /health and /metrics.

Validation (model name, types, prompt + max_tokens within the context) happens before a request is queued, so a
bad request is answered 4xx in milliseconds whatever the load. Errors use OpenAI's `{"error": {...}}` body.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tunesmith.serve.batcher import Batcher, Job, QueueFull, ShuttingDown
from tunesmith.serve.engine import Engine, Sampling, ServedModel
from tunesmith.serve.metrics import ServeMetrics
from tunesmith.serve.monitors.base import AlertLog, Exchange, Monitor
from tunesmith.serve.monitors.checks import redact_pii
from tunesmith.serve.protocol import (
    ChatRequest,
    CompletionRequest,
    TextAssembler,
    chat_body,
    chat_chunk,
    completion_body,
    error_body,
    new_id,
    usage,
)
from tunesmith.serve.settings import ServeSettings


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.headers = status, message, param, code, headers


@dataclass
class Prepared:
    """A validated request, ready to queue."""

    endpoint: str
    served: ServedModel
    prompt_text: str
    prompt_ids: list[int]
    max_new: int
    sampling: Sampling
    stop: list[str]


@dataclass
class ServeState:
    engine: Engine
    batcher: Batcher
    settings: ServeSettings
    monitors: Sequence[Monitor]
    alerts: AlertLog
    metrics: ServeMetrics


def create_app(
    engine: Engine, settings: ServeSettings, monitors: Sequence[Monitor] = (), alert_log: AlertLog | None = None
) -> FastAPI:
    metrics = ServeMetrics()
    batcher = Batcher(
        engine, settings.max_batch_size, settings.max_queue, settings.batch_wait_ms, on_batch=metrics.batch_size.observe
    )
    state = ServeState(engine, batcher, settings, monitors, alert_log or AlertLog(None), metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(batcher.close)  # uvicorn waited for open requests; finish whatever is queued

    app = FastAPI(title="tunesmith", lifespan=lifespan)
    app.state.serve = state
    _add_error_handlers(app, state)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok" if batcher.worker_alive else "stopped", "models": engine.names(), **batcher.stats()}

    @app.get("/metrics")
    async def prometheus() -> Response:
        gauges: dict[str, float] = {}
        for monitor in monitors:
            gauges.update(monitor.gauges())
        body, content_type = metrics.render(batcher.depth(), gauges)
        return Response(body, media_type=content_type)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        now = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": now, "owned_by": "tunesmith"} for name in engine.names()
            ],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest) -> Response | dict[str, Any]:
        return await _answer(state, _prepare_chat(state, body), body.stream, chat=True)

    @app.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest) -> Response | dict[str, Any]:
        return await _answer(state, _prepare_completion(state, body), body.stream, chat=False)

    return app


def _add_error_handlers(app: FastAPI, state: ServeState) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        state.metrics.requests.labels(request.url.path, "-", str(exc.status)).inc()
        return JSONResponse(
            error_body(exc.message, _error_kind(exc.status), exc.param, exc.code), exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        state.metrics.requests.labels(request.url.path, "-", "400").inc()
        first = exc.errors()[0].get("loc", ()) if exc.errors() else ()
        param = ".".join(str(p) for p in first if p != "body") or None
        return JSONResponse(error_body("invalid request: " + "; ".join(problems), param=param), 400)


def _error_kind(status: int) -> str:
    return {404: "not_found_error", 429: "rate_limit_error", 503: "service_unavailable"}.get(
        status, "invalid_request_error" if status < 500 else "server_error"
    )


def _model(state: ServeState, name: str) -> ServedModel:
    if name not in state.engine.models:
        known = ", ".join(state.engine.names())
        raise ApiError(404, f"unknown model {name!r}; served models: {known}", "model", "model_not_found")
    return state.engine.get(name)


def _prepare_chat(state: ServeState, body: ChatRequest) -> Prepared:
    served = _model(state, body.model)
    tokenizer = served.tokenizer
    if not getattr(tokenizer, "chat_template", None):
        raise ApiError(400, f"model {body.model!r} has no chat template; use /v1/completions", "messages")
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # noqa: BLE001 - templates raise anything (jinja errors on unsupported roles)
        raise ApiError(400, f"the chat template rejected these messages: {exc}", "messages") from exc
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prompt = "\n".join(m["content"] for m in messages if m["role"] == "user")
    return _finish_prepare(state, "/v1/chat/completions", served, prompt, ids, body.wanted_tokens(), body)


def _prepare_completion(state: ServeState, body: CompletionRequest) -> Prepared:
    served = _model(state, body.model)
    try:
        text = body.prompt_text()
    except ValueError as exc:
        raise ApiError(400, str(exc), "prompt") from exc
    ids = served.tokenizer(text, add_special_tokens=True)["input_ids"]
    return _finish_prepare(state, "/v1/completions", served, text, ids, body.wanted_tokens(), body)


def _finish_prepare(
    state: ServeState,
    endpoint: str,
    served: ServedModel,
    prompt: str,
    ids: list[int],
    wanted: int | None,
    body: ChatRequest | CompletionRequest,
) -> Prepared:
    settings = state.settings
    max_new = settings.default_max_tokens if wanted is None else wanted
    if max_new > settings.max_tokens_cap:
        raise ApiError(
            400, f"max_tokens {max_new} is over this server's limit of {settings.max_tokens_cap}", "max_tokens"
        )
    if not ids:
        raise ApiError(400, "the prompt is empty (no tokens); send some text", "prompt")
    if wanted is None:  # unspecified: fit what the context leaves
        max_new = min(max_new, served.context_length - len(ids))
    if len(ids) + max_new > served.context_length:
        raise ApiError(
            400,
            f"prompt ({len(ids)} tokens) + max_tokens ({max_new}) = {len(ids) + max_new} is over "
            f"the context length of {served.context_length}; shorten the prompt or lower max_tokens",
            "max_tokens",
            "context_length_exceeded",
        )
    sampling = Sampling(body.temperature or 0.0, body.top_p or 1.0, body.seed)
    return Prepared(endpoint, served, prompt, list(ids), max_new, sampling, body.stop_strings())


async def _answer(state: ServeState, prep: Prepared, stream: bool, chat: bool) -> Response | dict[str, Any]:
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[int | None, str | None]] = asyncio.Queue()

    def emit(token: int | None, reason: str | None) -> None:
        loop.call_soon_threadsafe(events.put_nowait, (token, reason))

    started = time.perf_counter()
    try:
        state.batcher.submit(Job(prep.served.name, prep.prompt_ids, prep.max_new, prep.sampling, emit))
    except QueueFull as exc:
        retry = str(state.settings.retry_after_s)
        raise ApiError(429, str(exc), code="queue_full", headers={"Retry-After": retry}) from exc
    except ShuttingDown as exc:
        raise ApiError(503, str(exc), code="shutting_down", headers={"Retry-After": "5"}) from exc
    rid = new_id("chatcmpl" if chat else "cmpl")
    if stream:
        return StreamingResponse(
            _stream(state, prep, events, rid, chat, started),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )
    assembler = TextAssembler(prep.served.tokenizer, prep.stop)
    reason = await _drain(events, assembler)
    if reason.startswith("error"):
        state.metrics.requests.labels(prep.endpoint, prep.served.name, "500").inc()
        return JSONResponse(error_body(f"generation failed ({reason[7:]})", "server_error"), 500)
    text = _after_monitors(state, prep, rid, assembler.text, len(assembler.ids), reason, started)
    make = chat_body if chat else completion_body
    return make(rid, prep.served.name, text, reason, len(prep.prompt_ids), len(assembler.ids))


async def _drain(events: asyncio.Queue[tuple[int | None, str | None]], assembler: TextAssembler) -> str:
    while True:
        token, reason = await events.get()
        if token is not None:
            assembler.push(token)
            continue
        assembler.finish()
        if reason and reason.startswith("error"):
            return reason
        return "stop" if assembler.stopped else (reason or "stop")


async def _stream(
    state: ServeState,
    prep: Prepared,
    events: asyncio.Queue[tuple[int | None, str | None]],
    rid: str,
    chat: bool,
    started: float,
) -> AsyncIterator[str]:
    name = prep.served.name
    buffered = state.settings.redact_pii  # redaction needs the whole answer before any of it leaves
    assembler = TextAssembler(prep.served.tokenizer, prep.stop)

    def piece(text: str, finish: str | None = None) -> dict[str, Any]:
        if chat:
            return chat_chunk(rid, name, {"content": text} if text or finish is None else {}, finish)
        return completion_body(rid, name, text, finish)

    if chat:
        yield _sse(chat_chunk(rid, name, {"role": "assistant", "content": ""}, None))
    while True:
        token, reason = await events.get()
        if token is None:
            break
        delta = assembler.push(token)
        if delta and not buffered:
            yield _sse(piece(delta))
    tail = assembler.finish()
    if reason and reason.startswith("error"):
        state.metrics.requests.labels(prep.endpoint, name, "500").inc()
        yield _sse(error_body(f"generation failed ({reason[7:]})", "server_error"))
        yield "data: [DONE]\n\n"
        return
    finish = "stop" if assembler.stopped else (reason or "stop")
    text = _after_monitors(state, prep, rid, assembler.text, len(assembler.ids), finish, started)
    rest = text if buffered else tail
    if rest:
        yield _sse(piece(rest))
    yield _sse({**piece("", finish), "usage": usage(len(prep.prompt_ids), len(assembler.ids))})
    yield "data: [DONE]\n\n"


def _sse(payload: dict[str, Any]) -> str:
    """One server-sent event carrying `payload` as JSON."""
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def _after_monitors(
    state: ServeState, prep: Prepared, rid: str, text: str, completion_tokens: int, finish: str, started: float
) -> str:
    """Run the monitors, count the request, and return the text that may leave (redacted when configured)."""
    latency = time.perf_counter() - started
    exchange = Exchange(
        rid, prep.served.name, prep.prompt_text, text, len(prep.prompt_ids), completion_tokens, latency, finish
    )
    alerts = []
    for monitor in state.monitors:
        alerts.extend(monitor.observe(exchange))
    state.alerts.write(alerts)
    metrics = state.metrics
    for alert in alerts:
        metrics.alerts.labels(alert.monitor, alert.kind).inc()
    metrics.requests.labels(prep.endpoint, prep.served.name, "200").inc()
    metrics.prompt_tokens.labels(prep.served.name).inc(len(prep.prompt_ids))
    metrics.completion_tokens.labels(prep.served.name).inc(completion_tokens)
    metrics.latency.labels(prep.endpoint).observe(latency)
    if state.settings.redact_pii:
        text, count = redact_pii(text)
        metrics.redactions.inc(count)
    return text
