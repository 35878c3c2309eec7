"""Dynamic batching, the bounded queue (429 + Retry-After), and draining on shutdown."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx

from tunesmith.serve.batcher import Batcher, Job, QueueFull, ShuttingDown
from tunesmith.serve.engine import Sampling


def _job(done: list[str], name: str = "base") -> Job:
    return Job(name, [1, 2], 3, Sampling(), lambda tok, reason: done.append(reason) if reason else None)


def test_queue_full_refuses_and_close_drains(scripted_app: Any) -> None:
    _, engine = scripted_app(hold=True)
    batcher = Batcher(engine, max_batch_size=2, max_queue=2, batch_wait_ms=0)
    done: list[str] = []
    batcher.submit(_job(done))
    assert engine.started.wait(5)  # the worker holds the first batch
    batcher.submit(_job(done))
    batcher.submit(_job(done))
    try:
        batcher.submit(_job(done))
        raise AssertionError("a full queue must refuse")
    except QueueFull:
        pass
    engine.release.set()
    batcher.close(timeout=10)
    assert len(done) == 3 and engine.batches == [1, 2]  # the two queued jobs shared one batch
    try:
        batcher.submit(_job(done))
        raise AssertionError("a closed batcher must refuse")
    except ShuttingDown:
        pass


def test_http_429_with_retry_after_when_the_queue_is_full(scripted_app: Any) -> None:
    import uvicorn

    app, engine = scripted_app(hold=True, max_queue=1, max_batch_size=1, batch_wait_ms=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}/v1/completions"
    results: list[int] = []

    def post() -> None:
        results.append(httpx.post(url, json={"model": "base", "prompt": "hi", "max_tokens": 2}, timeout=30).status_code)

    first = threading.Thread(target=post)
    first.start()
    assert engine.started.wait(5)
    second = threading.Thread(target=post)
    second.start()
    deadline = time.monotonic() + 5
    while app.state.serve.batcher.depth() < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    refused = httpx.post(url, json={"model": "base", "prompt": "hi", "max_tokens": 2}, timeout=5)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1" and "queue is full" in refused.json()["error"]["message"]
    engine.release.set()
    first.join(10)
    second.join(10)
    server.should_exit = True  # graceful: in-flight requests were answered before this
    thread.join(10)
    assert sorted(results) == [200, 200]
    assert not app.state.serve.batcher.worker_alive


def test_concurrent_requests_are_batched(make_app: Any) -> None:
    from fastapi.testclient import TestClient

    app = make_app(batch_wait_ms=50)
    with TestClient(app) as client:
        threads = [
            threading.Thread(
                target=client.post,
                args=("/v1/completions",),
                kwargs={"json": {"model": "base", "prompt": f"Play song {i}", "max_tokens": 4}},
            )
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    metrics = app.state.serve.metrics
    batches = metrics.value("tunesmith_batch_size_count")
    assert metrics.value("tunesmith_batch_size_sum") == 4 and batches < 4


def test_a_lone_request_skips_the_batch_wait(scripted_app: Any) -> None:
    _, engine = scripted_app()
    batcher = Batcher(engine, max_batch_size=4, max_queue=4, batch_wait_ms=2000)
    done: list[str] = []
    started = time.perf_counter()
    batcher.submit(_job(done))
    assert engine.started.wait(5)
    assert time.perf_counter() - started < 1.0  # not held for the 2 s companion wait
    batcher.close(timeout=10)
    assert done == ["stop"]


def test_the_batch_wait_still_gathers_companions_under_load(scripted_app: Any) -> None:
    _, engine = scripted_app(hold=True)
    batcher = Batcher(engine, max_batch_size=4, max_queue=4, batch_wait_ms=600)
    done: list[str] = []
    batcher.submit(_job(done))
    assert engine.started.wait(5)  # a lone first request runs at once
    batcher.submit(_job(done))  # arrives while the first runs: the server is under load
    engine.release.set()
    deadline = time.monotonic() + 5
    while not done and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.1)  # well inside the 600 ms wait the worker now grants the queued request
    batcher.submit(_job(done))
    batcher.close(timeout=10)
    assert len(done) == 3 and engine.batches == [1, 2]
