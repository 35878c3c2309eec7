"""Serve fixtures: the tiny model with two random LoRA adapters, an engine over them, an app factory."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _random_lora(base_dir: Path, out: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("serve-adapters")
    return [
        ("alpha", _random_lora(tiny_model_dir, root / "alpha", 1)),
        ("beta", _random_lora(tiny_model_dir, root / "beta", 2)),
    ]


@pytest.fixture(scope="session")
def serve_engine(tiny_model_dir: Path, tiny_adapters: list[tuple[str, Path]]) -> Any:
    from tunesmith.config.schema import ModelConfig
    from tunesmith.serve.loading import build_engine

    return build_engine(ModelConfig(source=str(tiny_model_dir)), tiny_adapters)


@pytest.fixture()
def make_app(serve_engine: Any) -> Callable[..., Any]:
    """`make_app(**settings)` -> a FastAPI app over the shared engine (monitors from `monitors=`/`training=`)."""
    from tunesmith.serve.app import create_app
    from tunesmith.serve.loading import make_monitors
    from tunesmith.serve.settings import ServeSettings

    def build(training: tuple[list[str], list[str]] = ([], []), **fields: Any) -> Any:
        settings = ServeSettings(**fields)
        monitors, alerts = make_monitors(settings, training[0], training[1], serve_engine.get("base").tokenizer)
        return create_app(serve_engine, settings, monitors, alerts)

    return build


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def live_server(make_app: Callable[..., Any]) -> Iterator[Callable[..., str]]:
    """`live_server(**settings)` -> base URL of a real uvicorn on a free loopback port (stopped after the test)."""
    import uvicorn

    servers: list[tuple[Any, threading.Thread]] = []

    def start(**fields: Any) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(make_app(**fields), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


class ScriptedEngine:
    """An Engine stand-in that answers every prompt with a fixed text (tokenised by the tiny tokenizer), optionally
    holding each batch until `release` is set: lets tests craft outputs and fill the queue deterministically."""

    def __init__(self, tokenizer: Any, answer: str = "ok", hold: bool = False):
        from tunesmith.serve.engine import Engine, ServedModel

        self.inner = Engine([ServedModel("base", None, tokenizer, None, 1024)])
        self.models = self.inner.models
        self.device = "cpu"
        self.answer = answer
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.started = threading.Event()
        self.batches: list[int] = []

    def names(self) -> list[str]:
        return self.inner.names()

    def get(self, name: str) -> Any:
        return self.inner.get(name)

    def decode(self, name: str, prompts: Any, max_new: Any, sampling: Any, sink: Any) -> None:
        self.started.set()
        self.release.wait(30)
        self.batches.append(len(prompts))
        ids = self.models[name].tokenizer(self.answer, add_special_tokens=False)["input_ids"]
        for row, limit in enumerate(max_new):
            for token in ids[:limit]:
                sink(row, token, None)
            sink(row, None, "length" if len(ids) > limit else "stop")


@pytest.fixture()
def scripted_app(serve_engine: Any) -> Callable[..., tuple[Any, ScriptedEngine]]:
    """`scripted_app(answer, hold=False, training=..., **settings)` -> (app, engine) answering `answer` always."""
    from tunesmith.serve.app import create_app
    from tunesmith.serve.loading import make_monitors
    from tunesmith.serve.settings import ServeSettings

    def build(
        answer: str = "ok", hold: bool = False, training: tuple[list[str], list[str]] = ([], []), **fields: Any
    ) -> tuple[Any, ScriptedEngine]:
        tokenizer = serve_engine.get("base").tokenizer
        engine = ScriptedEngine(tokenizer, answer, hold)
        settings = ServeSettings(**fields)
        monitors, alerts = make_monitors(settings, training[0], training[1], tokenizer)
        return create_app(engine, settings, monitors, alerts), engine  # type: ignore[arg-type]

    return build
