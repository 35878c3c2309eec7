"""Prompting a local causal LM for augmentation: batched, greedy or seeded sampling, replies cleaned.

Prompts are rendered with the tokenizer's chat template, sorted by length, left-padded and generated in batches
(as `tunesmith.evaluate.generate` does for scoring; the evaluation suite imports `augment.ops`, so augmentation
keeps its own copy instead of importing back). Sampling seeds each batch from its candidates' seeds inside
`torch.random.fork_rng`, so the run's global random state is left as it was; a sampled reply therefore depends on
its batch, which is itself fixed by the data, the config and the seed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.config.schema import ModelConfig
from tunesmith.core.records import Message

TOP_P = 0.95
_LEAD_IN = re.compile(
    r"^(sure[,!.]?\s*)?(here is|here's)?\s*(the\s+)?(rewritten text|paraphrase|translation|new example|text|"
    r"example|output|answer)\s*(\([^)]*\))?\s*:\s*",
    re.IGNORECASE,
)
_QUOTES = ('"', "'", "\u201c", "\u201d", "`")


@dataclass
class LanguageModel:
    """A loaded causal LM with its tokenizer, device and autocast dtype."""

    model: Any
    tokenizer: Any
    device: Any
    dtype: Any


def load_language_model(cfg: ModelConfig) -> LanguageModel:
    """Load `cfg.source` as tunesmith loads a base model, on `cfg.device`, in eval mode."""
    from tunesmith.models.device import resolve_precision, select_device
    from tunesmith.models.load import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(cfg)
    device = select_device(cfg.device)
    model.to(device)
    model.eval()
    return LanguageModel(model, tokenizer, device, resolve_precision(device, cfg.precision))


def generate_replies(
    lm: LanguageModel,
    prompts: Sequence[Sequence[Message]],
    max_new_tokens: int,
    batch_size: int,
    temperature: float,
    seeds: Sequence[int],
) -> list[str]:
    """One cleaned reply per prompt conversation, in input order; `seeds` (one per prompt) seed the sampling
    (temperature > 0; 0 decodes greedily)."""
    import torch

    from tunesmith.models.device import autocast_context

    encoded = [lm.tokenizer(_chat_text(lm.tokenizer, m), add_special_tokens=False)["input_ids"] for m in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    replies = [""] * len(encoded)
    with torch.inference_mode(), autocast_context(lm.device, lm.dtype):
        for start in range(0, len(order), max(1, batch_size)):
            rows = order[start : start + max(1, batch_size)]
            batch = [(encoded[i], seeds[i]) for i in rows]
            for i, reply in zip(rows, _generate_batch(lm, batch, max_new_tokens, temperature), strict=True):
                replies[i] = clean_reply(reply)
    return replies


def _chat_text(tokenizer: Any, messages: Sequence[Message]) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the augmentation model's tokenizer has no chat template; use an instruct/chat model")
    conversation = [{"role": m.role, "content": m.content} for m in messages]
    return str(tokenizer.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False))


def _generate_batch(
    lm: LanguageModel, batch: list[tuple[list[int], int]], max_new_tokens: int, temperature: float
) -> list[str]:
    """Decode one batch of (prompt ids, seed), left-padded; the new tokens of each row up to its first eos."""
    import torch

    from tunesmith.augment.base import derive_seed
    from tunesmith.models.load import eos_token_ids

    tokenizer = lm.tokenizer
    eos = eos_token_ids(lm.model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.tensor([[pad_id] * (width - len(ids)) + ids for ids, _ in batch], device=lm.device)
    mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids, _ in batch], device=lm.device)
    if temperature > 0:
        decoding: dict[str, Any] = {"do_sample": True, "temperature": temperature, "top_p": TOP_P, "top_k": None}
    else:  # unset sampling defaults a checkpoint may carry, which would warn under greedy decoding
        decoding = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    devices = [lm.device] if lm.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(derive_seed(0, *(seed for _, seed in batch)))
        output = lm.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            use_cache=True,  # base models are loaded with the cache off (training); decoding needs it
            eos_token_id=eos or None,
            pad_token_id=pad_id,
            **decoding,
        )  # (batch, width + new)
    rows = [_until(row, eos) for row in output[:, width:].tolist()]
    return [text.strip() for text in tokenizer.batch_decode(rows, skip_special_tokens=True)]


def _until(ids: list[int], stop: list[int]) -> list[int]:
    for position, token in enumerate(ids):
        if token in stop:
            return ids[:position]
    return ids


def clean_reply(reply: str) -> str:
    """The reply without a lead-in such as 'Here is the paraphrase:' and without quotes wrapped around it all."""
    text = _LEAD_IN.sub("", reply.strip(), count=1).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES and text.count(text[0]) <= 2:
        text = text[1:-1].strip()
    return text
