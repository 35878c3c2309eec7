"""The chat playground: one prompt answered by the base model and by a run's tuned adapter, side by side.

It reuses the serving engine (`serve.loading.build_engine`): one copy of the base weights with the run's adapter
on top, switched off for the base answer, greedy decoding with the KV cache. The engine of the last run asked
about stays loaded, so a conversation does not reload the model on every turn.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.config import load_config
from tunesmith.core.errors import TunesmithError
from tunesmith.core.records import PromptStyle

MAX_NEW_TOKENS_CAP = 512


MAX_EARLIER_TURNS = 6


@dataclass
class Exchange:
    """One earlier turn of the playground: the user's message and each model's answer."""

    user: str
    base: str
    tuned: str


def _eval_report(run_path: Path) -> dict[str, Any]:
    try:
        report = json.loads((run_path / "eval_report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def is_label_run(run_path: Path) -> bool:
    report = _eval_report(run_path)
    return report.get("kind") == "label" and bool(report.get("labels"))


def training_style(run_path: Path, cfg: Any) -> PromptStyle | None:
    """For a label run, how its training phrased a text (label prompt + label set), so a typed text is asked the
    way the tuned model learned it; None for other runs."""
    if not is_label_run(run_path):
        return None
    labels = tuple(_eval_report(run_path)["labels"])
    return PromptStyle(system=cfg.encode.system_prompt, label_prompt=cfg.encode.label_prompt, labels=labels)


class Playground:
    """Answers chat turns for one run at a time (the engine is cached; requests are serialised)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: tuple[Path, Any, Any] | None = None  # (run folder, engine, config)

    def _engine(self, run_path: Path) -> tuple[Any, Any]:
        from tunesmith.models.device import select_device
        from tunesmith.serve.loading import build_engine, parse_adapters

        if self._loaded is not None and self._loaded[0] == run_path:
            return self._loaded[1], self._loaded[2]
        if not (run_path / "adapter").is_dir():
            raise TunesmithError(f"run {run_path.name} has no adapter yet; wait until its training finishes")
        cfg = load_config(run_path / "config.yaml")
        self._loaded = None  # free the previous run's model before loading the next
        engine = build_engine(cfg.model, parse_adapters(None, run_path), str(select_device(cfg.model.device)))
        self._loaded = (run_path, engine, cfg)
        return engine, cfg

    def answer(self, run_path: Path, message: str, earlier: list[Exchange] | None = None, max_new_tokens: int = 64,
               as_trained: bool = True) -> dict[str, Any]:
        """{"base": text, "tuned": text, "prompt": the user turn as sent}: `message` answered by both models, each
        seeing the earlier exchanges with its own answers (the last MAX_EARLIER_TURNS of them)."""
        from tunesmith.serve.engine import BASE_NAME, Sampling

        if not message.strip():
            raise TunesmithError("send a message: it is empty")
        max_new = max(1, min(int(max_new_tokens), MAX_NEW_TOKENS_CAP))
        with self._lock:
            engine, cfg = self._engine(run_path)
            style = training_style(run_path, cfg) if as_trained else None
            answers = {}
            for side, name in (("base", BASE_NAME), ("tuned", run_path.name)):
                messages = conversation(cfg.encode.system_prompt, style, (earlier or [])[-MAX_EARLIER_TURNS:],
                                        message, side)
                served = engine.get(name)
                text = served.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                ids = served.tokenizer(text, add_special_tokens=False)["input_ids"]
                tokens: list[int] = []

                def sink(row: int, token: int | None, reason: str | None, into: list[int] = tokens) -> None:
                    if token is not None:
                        into.append(token)

                engine.decode(name, [ids], [max_new], Sampling(), sink)
                answers[side] = served.tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return {**answers, "prompt": messages[-1]["content"]}


def conversation(system: str | None, style: PromptStyle | None, earlier: list[Exchange], message: str,
                 side: str) -> list[dict[str, str]]:
    """The chat one side sees: system prompt, earlier exchanges with that side's answers, the new message; user
    turns phrased as in training for label runs (`core.records.to_messages`' wording of a label record)."""

    def phrase(text: str) -> str:
        return style.label_prompt.format(text=text, labels=", ".join(style.labels)) if style else text

    messages = [{"role": "system", "content": system}] if system else []
    for exchange in earlier:
        messages.append({"role": "user", "content": phrase(exchange.user)})
        messages.append({"role": "assistant", "content": exchange.base if side == "base" else exchange.tuned})
    messages.append({"role": "user", "content": phrase(message)})
    return messages
