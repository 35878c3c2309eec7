"""The official `openai` client, unchanged, against a real uvicorn server on loopback."""

from __future__ import annotations

from typing import Any

import pytest


def client_for(url: str) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)


def test_openai_client_round_trip_plain_and_streamed(live_server: Any) -> None:
    client = client_for(live_server())
    assert [m.id for m in client.models.list().data] == ["base", "alpha", "beta"]
    messages = [{"role": "user", "content": "Book a table for two."}]
    plain = client.chat.completions.create(model="alpha", messages=messages, max_tokens=8)
    assert plain.choices[0].message.role == "assistant" and plain.usage is not None
    stream = client.chat.completions.create(model="alpha", messages=messages, max_tokens=8, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert "".join(pieces) == plain.choices[0].message.content
    text = client.completions.create(model="beta", prompt="Play jazz", max_tokens=5)
    assert text.choices[0].finish_reason in ("stop", "length")
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(model="beta", prompt="Play jazz", max_tokens=5, stream=True)
    )
    assert streamed == text.choices[0].text


def test_openai_client_sees_typed_errors(live_server: Any) -> None:
    import openai

    client = client_for(live_server())
    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client.completions.create(model="gamma", prompt="hi", max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="context length"):
        client.completions.create(model="base", prompt="hi", max_tokens=1024)
