"""The HTTP API on the tiny model: models, chat and text completions (plain and streamed), adapters, errors."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

CHAT = {"model": "base", "messages": [{"role": "user", "content": "Play some jazz music."}], "max_tokens": 6}


def sse_events(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def test_models_list_base_and_each_adapter(make_app: Any) -> None:
    with TestClient(make_app()) as client:
        ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
        assert ids == ["base", "alpha", "beta"]
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["models"] == ids


def test_chat_completion_body_and_usage(make_app: Any) -> None:
    with TestClient(make_app()) as client:
        body = client.post("/v1/chat/completions", json=CHAT).json()
    assert body["object"] == "chat.completion" and body["model"] == "base"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert (
        usage["completion_tokens"] <= 6 and usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    )


def test_streams_end_with_done_and_match_the_plain_answer(make_app: Any) -> None:
    with TestClient(make_app()) as client:
        plain = client.post("/v1/completions", json={"model": "alpha", "prompt": "Book a table", "max_tokens": 8})
        streamed = client.post(
            "/v1/completions", json={"model": "alpha", "prompt": "Book a table", "max_tokens": 8, "stream": True}
        )
        chat = client.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == plain.json()["choices"][0]["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == plain.json()["choices"][0]["finish_reason"]
    chat_events = sse_events(chat.text)
    assert chat_events[-1] == "[DONE]"
    assert json.loads(chat_events[0])["choices"][0]["delta"]["role"] == "assistant"


def test_the_model_field_picks_the_adapter(make_app: Any) -> None:
    request = {"prompt": "Play some jazz music from the seventies.", "max_tokens": 12}
    with TestClient(make_app()) as client:
        answers = {
            name: client.post("/v1/completions", json={**request, "model": name}).json()
            for name in ("base", "alpha", "beta", "alpha")
        }
    texts = {name: body["choices"][0]["text"] for name, body in answers.items()}
    assert all(body["model"] == name for name, body in answers.items())
    assert len({texts["base"], texts["alpha"], texts["beta"]}) == 3  # random LoRAs: three different models


def test_batched_decoding_equals_one_at_a_time(serve_engine: Any) -> None:
    from tunesmith.serve.engine import Sampling

    tokenizer = serve_engine.get("alpha").tokenizer
    prompts = [tokenizer(t)["input_ids"] for t in ("Hi", "Book a table for two tonight please", "Play jazz")]

    def run(batch: list[list[int]]) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in batch]
        serve_engine.decode(
            "alpha",
            batch,
            [7] * len(batch),
            Sampling(),
            lambda row, tok, _: out[row].append(tok) if tok is not None else None,
        )
        return out

    assert run(prompts) == [run([p])[0] for p in prompts]  # left padding and positions are right


@pytest.mark.parametrize(
    ("path", "payload", "status", "needle"),
    [
        ("/v1/completions", {"model": "gamma", "prompt": "hi"}, 404, "unknown model 'gamma'"),
        ("/v1/completions", {"model": "base", "prompt": "hi", "max_tokens": "many"}, 400, "max_tokens"),
        ("/v1/completions", {"model": "base", "prompt": "hi", "max_tokens": 1024}, 400, "context length of 1024"),
        ("/v1/completions", {"model": "base", "prompt": "hi", "n": 2}, 400, "n:"),
        ("/v1/completions", {"model": "base", "prompt": ["a", "b"]}, 400, "one prompt"),
        ("/v1/completions", {"model": "base", "prompt": "hi", "temperature": 9}, 400, "temperature"),
        ("/v1/chat/completions", {"model": "base", "messages": []}, 400, "messages"),
        ("/v1/chat/completions", {"model": "base", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
        ("/v1/chat/completions", {"model": "base"}, 400, "messages: Field required"),
    ],
)
def test_bad_requests_get_fast_clear_4xx(make_app: Any, path: str, payload: dict, status: int, needle: str) -> None:
    with TestClient(make_app()) as client:
        started = time.perf_counter()
        response = client.post(path, json=payload)
        elapsed = time.perf_counter() - started
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]
    assert elapsed < 0.1


def test_metrics_count_requests_tokens_and_errors(make_app: Any) -> None:
    app = make_app()
    with TestClient(app) as client:
        for _ in range(3):
            client.post("/v1/completions", json={"model": "beta", "prompt": "hi", "max_tokens": 4})
        client.post("/v1/completions", json={"model": "nope", "prompt": "hi"})
        text = client.get("/metrics").text
    metrics = app.state.serve.metrics
    assert (
        metrics.value("tunesmith_requests_total", {"endpoint": "/v1/completions", "model": "beta", "status": "200"})
        == 3
    )
    assert (
        metrics.value("tunesmith_requests_total", {"endpoint": "/v1/completions", "model": "-", "status": "404"}) == 1
    )
    assert 0 < metrics.value("tunesmith_completion_tokens_total", {"model": "beta"}) <= 12
    assert "tunesmith_batch_size_count" in text and "tunesmith_queue_depth 0.0" in text
