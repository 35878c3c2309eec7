"""Pluggable translators for back-translation: a seq2seq model (MarianMT, NLLB) or a prompted chat LM.

    translator = Seq2SeqTranslator.load("models/opus-mt-en-de", device)
    translator.translate(["Book a table for two."], "en", "de", seed=0)   # ['Buchen Sie einen Tisch für zwei.']

A `Translator` is anything with that `translate` method. MarianMT models translate one fixed direction, so
back-translation takes two (`forward_model`, `backward_model`); a many-to-many NLLB model can serve both when
the languages are NLLB codes (`eng_Latn`, `deu_Latn`): the source code is set on the tokenizer and the target
code is forced as the first generated token.

Placeholders never pass through a translator: `split_protected` cuts a text around them and only the pieces
between are translated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tunesmith.augment.ops import PLACEHOLDER
from tunesmith.core.errors import ModelLoadError
from tunesmith.core.records import Message

_HAS_WORD = re.compile(r"[^\W\d_]", re.UNICODE)


class Translator(Protocol):
    def translate(self, texts: Sequence[str], source: str, target: str, seed: int) -> list[str]: ...


@dataclass
class Seq2SeqTranslator:
    """An encoder-decoder translation model (`AutoModelForSeq2SeqLM`) and its tokenizer."""

    model: Any
    tokenizer: Any
    device: Any
    batch_size: int = 16
    max_new_tokens: int = 256
    temperature: float = 0.0

    @classmethod
    def load(cls, source: str, device: Any = "cpu", **settings: Any) -> Seq2SeqTranslator:
        """From a local folder (or a hub id, which needs the network); never runs remote code."""
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        where = str(Path(source).expanduser()) if Path(source).expanduser().exists() else source
        try:
            tokenizer = AutoTokenizer.from_pretrained(where)
            model = AutoModelForSeq2SeqLM.from_pretrained(where)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"cannot load the translation model {source!r}: {exc}\n"
                "  fix: set augment.back_translation.forward_model/backward_model to a local MarianMT or NLLB "
                "folder (save_pretrained output), or use augment.back_translation.translator=llm"
            ) from exc
        model.to(device)
        model.eval()
        return cls(model, tokenizer, model.device, **settings)

    def translate(self, texts: Sequence[str], source: str, target: str, seed: int) -> list[str]:
        import torch

        from tunesmith.augment.base import derive_seed

        extra: dict[str, Any] = {}
        if "_" in target:  # NLLB-style language codes
            self.tokenizer.src_lang = source
            extra["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(target)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[str] = [""] * len(texts)
        devices = [self.device] if self.device.type == "cuda" else []
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in rows], return_tensors="pt", padding=True, truncation=True)
            batch = {key: value.to(self.device) for key, value in batch.items()}
            sampling = {"do_sample": True, "temperature": self.temperature, "top_p": 0.95, "top_k": None}
            with torch.random.fork_rng(devices=devices), torch.inference_mode():
                torch.manual_seed(derive_seed(seed, start))
                output = self.model.generate(
                    **batch,
                    max_new_tokens=self.max_new_tokens,
                    num_beams=1,
                    **(sampling if self.temperature > 0 else {"do_sample": False}),
                    **extra,
                )
            for i, text in zip(rows, self.tokenizer.batch_decode(output, skip_special_tokens=True), strict=True):
                results[i] = text.strip()
        return results


@dataclass
class LlmTranslator:
    """A chat LM asked to translate with `prompt` (`{text}`, `{source}`, `{target}` filled in)."""

    lm: Any
    prompt: str
    batch_size: int = 16
    max_new_tokens: int = 256
    temperature: float = 0.0

    def translate(self, texts: Sequence[str], source: str, target: str, seed: int) -> list[str]:
        from tunesmith.augment.base import derive_seed
        from tunesmith.augment.generation import generate_replies

        prompts = [[Message("user", self.prompt.format(text=t, source=source, target=target))] for t in texts]
        seeds = [derive_seed(seed, i) for i in range(len(texts))]
        return generate_replies(self.lm, prompts, self.max_new_tokens, self.batch_size, self.temperature, seeds)


def split_protected(text: str) -> list[tuple[bool, str]]:
    """The text as (translatable, piece) in order: placeholders, whitespace and word-less pieces are not
    translatable; joining the pieces gives the text back."""
    pieces: list[tuple[bool, str]] = []
    end = 0
    for match in PLACEHOLDER.finditer(text):
        pieces.extend(_split_piece(text[end : match.start()]))
        pieces.append((False, match.group()))
        end = match.end()
    pieces.extend(_split_piece(text[end:]))
    return pieces


def _split_piece(piece: str) -> list[tuple[bool, str]]:
    """Leading and trailing whitespace stay outside the translated middle."""
    if not piece:
        return []
    middle = piece.strip()
    if not middle or not _HAS_WORD.search(middle):
        return [(False, piece)]
    start = piece.index(middle)
    parts = [(False, piece[:start]), (True, middle), (False, piece[start + len(middle) :])]
    return [p for p in parts if p[1]]


def round_trip(
    texts: Sequence[str], forward: Translator, backward: Translator, source: str, pivot: str, seed: int
) -> list[str]:
    """Each text translated to `pivot` and back, placeholders kept in place."""
    split = [split_protected(t) for t in texts]
    pieces = [piece for parts in split for ok, piece in parts if ok]
    if not pieces:
        return list(texts)
    there = forward.translate(pieces, source, pivot, seed)
    back = iter(backward.translate(there, pivot, source, seed + 1))
    return ["".join(next(back) if ok else piece for ok, piece in parts) for parts in split]
