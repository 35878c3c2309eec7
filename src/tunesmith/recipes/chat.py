"""`tunesmith chat [--adapter DIR] [-m MESSAGE]`: talk to the base or tuned model with its chat template."""

from __future__ import annotations

from pathlib import Path

from tunesmith.config import Config
from tunesmith.core.records import Message
from tunesmith.recipes.common import console, setup_runtime


def chat_loop(cfg: Config, adapter_dir: Path | None, messages: list[str] | None, max_new_tokens: int) -> None:
    """With `messages`, answer each in one conversation and return; otherwise read prompts until EOF or /quit."""
    from tunesmith.evaluate.generate import generate_answers
    from tunesmith.models.device import autocast_context
    from tunesmith.models.export import load_tuned, load_tuned_tokenizer
    from tunesmith.models.load import load_model_and_tokenizer

    out = console()
    device, dtype = setup_runtime(cfg)
    if adapter_dir is not None:
        model, tokenizer = load_tuned(cfg.model, adapter_dir), load_tuned_tokenizer(cfg.model, adapter_dir)
    else:
        model, tokenizer = load_model_and_tokenizer(cfg.model)
    model.to(device).eval()
    history: list[Message] = [Message("system", cfg.encode.system_prompt)] if cfg.encode.system_prompt else []
    prompts = iter(messages) if messages else _read_prompts(out)
    for prompt in prompts:
        history.append(Message("user", prompt))
        with autocast_context(device, dtype):
            answer = generate_answers(model, tokenizer, [history], max_new_tokens, 1, device)[0]
        history.append(Message("assistant", answer))
        out.print(f"[bold cyan]assistant[/] {answer}" if not messages else answer, markup=not messages)


def _read_prompts(out):  # type: ignore[no-untyped-def]
    out.print("chatting; an empty line or /quit ends it")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            return
        if not line or line == "/quit":
            return
        yield line
