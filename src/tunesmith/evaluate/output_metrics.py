"""Descriptive statistics of the answers themselves: length and refusals.

Length figures have no better direction (`higher_is_better=None`): a tuned model that answers in 3 words where
the references use 30 is as suspect as one that rambles; `length_ratio` near 1 is what to look for.
A refusal is an answer that opens (first 200 characters) with one of the stock phrases below; the list is short
on purpose: it is meant to catch a tuned model that learned to decline, not to classify every hedge.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from tunesmith.evaluate.metrics import mean_of_first, register

REFUSAL_PHRASES: tuple[str, ...] = (
    "i'm sorry",
    "i am sorry",
    "sorry, but",
    "i cannot",
    "i can't",
    "i can not",
    "i won't",
    "i will not",
    "i'm unable",
    "i am unable",
    "i'm not able",
    "i am not able",
    "as an ai",
    "as a language model",
    "i don't have access",
    "i do not have access",
    "i must decline",
    "i'm afraid i",
)
_REFUSAL = re.compile("|".join(re.escape(p) for p in REFUSAL_PHRASES))


def is_refusal(answer: str) -> bool:
    """Whether the answer opens with a stock refusal (case-insensitive, curly apostrophes folded)."""
    head = answer[:200].lower().replace("\u2019", "'")
    return _REFUSAL.search(head) is not None


def word_count(text: str) -> int:
    return len(text.split())


@register("refusal_rate", False, mean_of_first)
def refusal_rate(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Share of answers that open with a stock refusal ("I'm sorry", "I cannot", "As an AI", ...; 0-1)."""
    return [[float(is_refusal(p)), 1.0] for p in predictions]


@register("mean_length", None, mean_of_first)
def mean_length(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Mean answer length in whitespace-separated words."""
    return [[float(word_count(p)), 1.0] for p in predictions]


def _ratio(sums: np.ndarray) -> float:
    return float(sums[0] / sums[1]) if sums[1] else 0.0


@register("length_ratio", None, _ratio)
def length_ratio(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Total answer words over total reference words (1 = as long as the references)."""
    return [[float(word_count(p)), float(word_count(r))] for p, r in zip(predictions, references, strict=True)]


def length_summary(texts: list[str]) -> dict[str, float]:
    """Mean, median, 95th percentile and max length in words, and the share of empty answers."""
    if not texts:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0.0, "empty_rate": 0.0}
    words = np.array([word_count(t) for t in texts], dtype=np.float64)
    return {
        "mean": float(words.mean()),
        "median": float(np.median(words)),
        "p95": float(np.percentile(words, 95)),
        "max": float(words.max()),
        "empty_rate": float((words == 0).mean()),
    }
