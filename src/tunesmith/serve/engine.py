"""Served models and batched decoding: left-padded prompts, one prefill, then one token per step with the KV cache.

A hand-written loop instead of `model.generate` so each new token can be handed to its request at once (that is
what streams) and a finished row stops counting against its own `max_tokens`. Adapters share one base model: a
peft model holds them all and the batch's adapter is switched on with `set_adapter` (the base runs with the
adapters disabled). Only the batcher's worker thread calls `decode`, so switching adapters needs no lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.models.load import eos_token_ids

BASE_NAME = "base"

# (row index, token id or None when the row finished, finish reason or None)
TokenSink = Callable[[int, int | None, str | None], None]


@dataclass
class ServedModel:
    """One name clients can ask for: the shared model object, which adapter to enable, and its tokenizer."""

    name: str
    model: Any
    tokenizer: Any
    adapter: str | None  # peft adapter name; None runs `model` as is (or with adapters disabled when it is peft)
    context_length: int


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen; requests with equal sampling and model share a batch."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None


class Engine:
    """The served models by name, and `decode` for a batch of prompts on one of them."""

    def __init__(self, models: Sequence[ServedModel], device: str = "cpu"):
        if not models:
            raise ValueError("an engine needs at least one model")
        self.models = {m.name: m for m in models}
        self.device = device

    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str) -> ServedModel:
        return self.models[name]

    def decode(
        self, name: str, prompts: Sequence[Sequence[int]], max_new: Sequence[int], sampling: Sampling, sink: TokenSink
    ) -> None:
        """Generate for every prompt, calling `sink(row, token, None)` per token and `sink(row, None, reason)` at
        the end of each row (reason "stop" on an end token, "length" at its max_new)."""
        import torch

        served = self.models[name]
        with torch.inference_mode(), _adapter_enabled(served):
            self._decode(served, prompts, max_new, sampling, sink)

    def _decode(
        self,
        served: ServedModel,
        prompts: Sequence[Sequence[int]],
        max_new: Sequence[int],
        sampling: Sampling,
        sink: TokenSink,
    ) -> None:
        import torch

        tokenizer, model = served.tokenizer, served.model
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        stop_ids = set(eos_token_ids(model, tokenizer))
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):  # left padding: every row's last prompt token is in the last column
            ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
            mask[row, width - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generator = _generator(sampling, self.device)
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        produced = [0] * len(prompts)
        live = [n > 0 for n in max_new]
        for row, alive in enumerate(live):
            if not alive:
                sink(row, None, "length")
        while any(live):
            step = _next_tokens(out.logits[:, -1, :].float(), sampling, generator)
            for row, token in enumerate(step.tolist()):
                if not live[row]:
                    continue
                if token in stop_ids:
                    live[row] = False
                    sink(row, None, "stop")
                    continue
                sink(row, token, None)
                produced[row] += 1
                if produced[row] >= max_new[row]:
                    live[row] = False
                    sink(row, None, "length")
            if not any(live):
                break
            mask = torch.cat([mask, torch.ones((len(prompts), 1), dtype=mask.dtype, device=mask.device)], dim=1)
            positions = positions[:, -1:] + 1
            out = model(
                input_ids=step.unsqueeze(1),
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **_cache_kwargs(out),
            )


def _cache_kwargs(out: Any) -> dict[str, Any]:
    """The KV cache of the last forward, under the name this model takes (transformers 5: `cache`; older and
    remote-code models: `past_key_values`)."""
    if getattr(out, "cache", None) is not None:
        return {"cache": out.cache}
    return {"past_key_values": out.past_key_values}


def _generator(sampling: Sampling, device: str) -> Any:
    import torch

    if sampling.temperature <= 0 or sampling.seed is None:
        return None
    return torch.Generator(device=device).manual_seed(sampling.seed)


def _next_tokens(logits: Any, sampling: Sampling, generator: Any) -> Any:
    import torch

    if sampling.temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:  # nucleus: keep the smallest set of tokens whose mass reaches top_p
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        outside = sorted_probs.cumsum(-1) - sorted_probs > sampling.top_p
        sorted_probs = sorted_probs.masked_fill(outside, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@contextlib.contextmanager
def _adapter_enabled(served: ServedModel) -> Iterator[None]:
    model = served.model
    if not hasattr(model, "peft_config"):
        yield
        return
    if served.adapter is None:
        with model.disable_adapter():
            yield
        return
    if model.active_adapter != served.adapter:
        model.set_adapter(served.adapter)
    yield
