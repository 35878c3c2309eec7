"""Load test of `tunesmith serve` on loopback: concurrency levels x N requests against the batching server and
against the same server with batching off (max batch 1, one request at a time: the peer), on the tiny model
(default), a model source, or a run folder's adapter.

    OMP_NUM_THREADS=1 python bench/serve_load.py                      # tiny model, 200 requests x 1 2 4 8 16
    OMP_NUM_THREADS=1 python bench/serve_load.py --run runs/<id> --requests 20 --max-tokens 8

5% of the requests are malformed (bad type) or overlong (prompt over the context) and must be answered 400; a
quarter stream and must end with `data: [DONE]`. Pass: every request ends 200 or an explicit 4xx/429/503, no
connection error, no 5xx, every stream complete, /metrics request counts equal the client's, and the process's
resident memory grows < 10% from after a warm-up to after every level (the server runs in this process, next to
the small loopback client; RSS is sampled every 0.2 s). Prints a table, then ONE JSON line of figures.
Bounded: at most `--requests` per level and `--timeout` seconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

PROMPTS = [
    "Play some jazz music from the seventies.",
    "Book a table for two tonight.",
    "Will it rain in Paris?",
    "Add this song to my playlist please.",
    "Find the movie schedule for the nearest cinema.",
]
STATUSES = ("200", "400", "404", "422", "429", "503", "500")


def rss_bytes() -> int:
    """This process's resident set now (Linux /proc), else its peak so far."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class RssSampler:
    """Samples RSS every `period` s in a thread; `peak` is the largest sample since start."""

    def __init__(self, period: float = 0.2):
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(period,), daemon=True)
        self._thread.start()

    def _loop(self, period: float) -> None:
        while not self._stop.wait(period):
            self.peak = max(self.peak, rss_bytes())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def start_server(engine: Any, batch: int, queue: int) -> tuple[Any, Any, threading.Thread, str]:
    import uvicorn

    from tunesmith.serve.app import create_app
    from tunesmith.serve.settings import ServeSettings

    app = create_app(engine, ServeSettings(max_batch_size=batch, max_queue=queue, monitors=()))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return app, server, thread, f"http://127.0.0.1:{port}"


def request_body(i: int, model: str, max_tokens: int, context: int) -> tuple[dict[str, Any], int]:
    """(body, expected status): 2 in 40 (5%) are malformed or overlong, a quarter stream."""
    if i % 40 == 7:
        return {"model": model, "prompt": "hi", "max_tokens": "lots"}, 400
    if i % 40 == 27:
        return {"model": model, "prompt": "hi " * (context + 16), "max_tokens": max_tokens}, 400
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "stream": i % 4 == 1}
    if i % 2:
        body["prompt"] = PROMPTS[i % len(PROMPTS)]
        return body, 200
    body["messages"] = [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]
    return body, 200


async def one(client: Any, url: str, body: dict[str, Any], expected: int, out: dict[str, Any]) -> None:
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    started = time.perf_counter()
    try:
        response = await client.post(url + path, json=body)
    except Exception as exc:  # noqa: BLE001 - a connection error is a finding, counted
        out["connection_errors"] += 1
        out["errors"].append(repr(exc))
        return
    latency = time.perf_counter() - started
    out["status"][response.status_code] = out["status"].get(response.status_code, 0) + 1
    if response.status_code != expected and response.status_code not in (429, 503):
        out["unexpected"] += 1
    if response.status_code != 200:
        return
    out["latency"].append(latency)
    if body.get("stream"):
        events = [ln[6:] for ln in response.text.splitlines() if ln.startswith("data: ")]
        out["streams"] += 1
        out["streams_done"] += events[-1:] == ["[DONE]"]
        final = json.loads(events[-2]) if len(events) >= 2 else {}
    else:
        final = response.json()
    out["tokens"] += (final.get("usage") or {}).get("completion_tokens", 0)


async def level(url: str, concurrency: int, bodies: list[tuple[dict[str, Any], int]], timeout: float) -> dict[str, Any]:
    import httpx

    out: dict[str, Any] = {
        "status": {},
        "latency": [],
        "tokens": 0,
        "streams": 0,
        "streams_done": 0,
        "connection_errors": 0,
        "unexpected": 0,
        "errors": [],
    }
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def gated(body: dict[str, Any], expected: int) -> None:
            async with gate:
                await one(client, url, body, expected, out)

        started = time.perf_counter()
        await asyncio.gather(*(gated(body, expected) for body, expected in bodies))
        out["seconds"] = time.perf_counter() - started
    lat = sorted(out["latency"])
    out["p50"] = statistics.median(lat) if lat else float("nan")
    out["p95"] = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
    out["tokens_per_s"] = out["tokens"] / out["seconds"]
    return out


def run_server(engine: Any, model: str, batch: int, args: argparse.Namespace) -> dict[Any, dict[str, Any]]:
    """Warm up, then every concurrency level on a fresh server; key "server" holds metrics and memory checks."""
    context = engine.get(model).context_length
    app, server, thread, url = start_server(engine, batch, queue=max(args.concurrency) * 4)
    warm = [request_body(i, model, args.max_tokens, context) for i in range(1, 21)]
    results: dict[Any, dict[str, Any]] = {"warmup": asyncio.run(level(url, 4, warm, args.timeout))}
    rss_before = rss_bytes()
    sampler = RssSampler()
    for c in args.concurrency:
        bodies = [request_body(i, model, args.max_tokens, context) for i in range(args.requests)]
        results[c] = asyncio.run(level(url, c, bodies, args.timeout))
    sampler.stop()
    rss_after = rss_bytes()
    metrics = app.state.serve.metrics
    served = sum(
        metrics.value("tunesmith_requests_total", {"endpoint": e, "model": m, "status": s})
        for e in ("/v1/completions", "/v1/chat/completions")
        for m in (model, "-")
        for s in STATUSES
    )
    client_seen = sum(sum(r["status"].values()) + r["connection_errors"] for r in results.values())
    results["server"] = {
        "metrics_match": served == client_seen,
        "metrics_total": int(served),
        "client_total": client_seen,
        "mean_batch": metrics.value("tunesmith_batch_size_sum") / max(metrics.value("tunesmith_batch_size_count"), 1),
        "rss_before_mb": rss_before / 2**20,
        "rss_after_mb": rss_after / 2**20,
        "rss_peak_mb": max(sampler.peak, rss_after) / 2**20,
        "rss_growth": (rss_after - rss_before) / rss_before,
        "measured_requests": args.requests * len(args.concurrency),
    }
    server.should_exit = True
    thread.join(30)
    return results


def load_engine(args: argparse.Namespace) -> tuple[Any, str]:
    """(engine, model name the requests ask for): the run's adapter, or the base of a model source."""
    from tunesmith.config.schema import ModelConfig
    from tunesmith.serve.loading import build_engine

    if args.run:
        from tunesmith.config.loader import load_config
        from tunesmith.serve.loading import parse_adapters

        run = Path(args.run)
        adapters = parse_adapters(None, run)
        return build_engine(load_config(run / "config.yaml").model, adapters), adapters[0][0]
    source = args.model
    if source is None:
        from tunesmith.testing.tiny import save_tiny_model

        source = str(save_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    return build_engine(ModelConfig(source=source), []), "base"


def report(args: argparse.Namespace, model: str, runs: dict[str, dict[Any, dict[str, Any]]]) -> dict[str, Any]:
    print(
        f"{'server':<8} {'conc':>4} {'ok':>4} {'4xx':>4} {'429':>4} {'503':>4} {'5xx':>4} {'conn':>4} "
        f"{'p50 s':>7} {'p95 s':>7} {'tok/s':>7}"
    )
    figures: dict[str, Any] = {
        "model": args.run or args.model or "tiny",
        "served_name": model,
        "requests_per_level": args.requests,
        "max_tokens": args.max_tokens,
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    ok = True
    for name, results in runs.items():
        for c in args.concurrency:
            r = results[c]
            st = r["status"]
            fivexx = sum(n for s, n in st.items() if s >= 500 and s != 503)
            four = sum(n for s, n in st.items() if 400 <= s < 500 and s != 429)
            print(
                f"{name:<8} {c:>4} {st.get(200, 0):>4} {four:>4} {st.get(429, 0):>4} {st.get(503, 0):>4} {fivexx:>4} "
                f"{r['connection_errors']:>4} {r['p50']:>7.3f} {r['p95']:>7.3f} {r['tokens_per_s']:>7.1f}"
            )
            ok &= fivexx == 0 and r["connection_errors"] == 0 and r["unexpected"] == 0
            ok &= r["streams_done"] == r["streams"]
            figures[f"{name}_c{c}"] = {
                "completed": st.get(200, 0),
                "failed": sum(st.values()) - st.get(200, 0) + r["connection_errors"],
                "p50_s": round(r["p50"], 4),
                "p95_s": round(r["p95"], 4),
                "tokens_per_s": round(r["tokens_per_s"], 1),
                "status": {str(k): v for k, v in sorted(st.items())},
                "streams_done": f"{r['streams_done']}/{r['streams']}",
            }
        srv = results["server"]
        ok &= srv["metrics_match"] and srv["rss_growth"] < 0.10
        figures[f"{name}_server"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in srv.items()}
    batched, single = runs["batched"], runs["single"]
    figures["tokens_per_s_ratio_batched_vs_single"] = {
        f"c{c}": round(batched[c]["tokens_per_s"] / max(single[c]["tokens_per_s"], 1e-9), 2) for c in args.concurrency
    }
    if 1 in args.concurrency:
        figures["p50_c1_ratio_batched_vs_single"] = round(batched[1]["p50"] / single[1]["p50"], 2)
    if 1 in args.concurrency and 8 in args.concurrency:
        figures["p95_c8_over_p50_c1_batched"] = round(batched[8]["p95"] / batched[1]["p50"], 2)
    figures["pass"] = bool(ok)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--model", help="model source (default: the tiny random test model)")
    parser.add_argument("--run", help="a run folder: serve its base model with its adapter, ask for the adapter")
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="max batch size of the batching server")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    args = parser.parse_args()

    engine, model = load_engine(args)
    runs = {"batched": run_server(engine, model, args.batch, args), "single": run_server(engine, model, 1, args)}
    figures = report(args, model, runs)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
