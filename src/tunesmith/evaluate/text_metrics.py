"""Metrics for generated text: exact and normalised match, BLEU / chrF / TER (sacrebleu), ROUGE-1/2/L (rouge-score).

The sacrebleu metrics use its own per-sentence sufficient statistics (n-gram match counts, edit counts) and its own
formula over their sum, so the corpus score is exactly `sacrebleu.corpus_*` and a bootstrap resample costs one
sum per resample. ROUGE follows the usual reporting convention (HF `evaluate`'s default aggregation): the mean
of per-example F-measures, with the Porter stemmer. rouge-score tokenises ASCII letters and digits only, so ROUGE
is meaningful for English-like text; use chrF for other scripts.
"""

from __future__ import annotations

import functools
import re
import string
from typing import Any

import numpy as np

from tunesmith.evaluate.metrics import mean_of_first, register


@register("exact_match", True, mean_of_first)
def exact_match(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Share of predictions identical to the reference up to surrounding whitespace (0-1)."""
    return [[float(p.strip() == r.strip()), 1.0] for p, r in zip(predictions, references, strict=True)]


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_text(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


@register("normalized_match", True, mean_of_first)
def normalized_match(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Share of predictions equal to the reference after SQuAD normalisation (case, punctuation, articles; 0-1)."""
    return [[float(normalize_text(p) == normalize_text(r)), 1.0] for p, r in zip(predictions, references, strict=True)]


def _sacrebleu(name: str) -> Any:
    """A fresh sacrebleu metric object with its defaults (fresh: the objects cache the last references)."""
    from sacrebleu.metrics import BLEU, CHRF, TER

    return {"bleu": BLEU, "chrf": CHRF, "ter": TER}[name]()


def _sacrebleu_stats(name: str, predictions: list[str], references: list[str]) -> list[list[float]]:
    return [list(map(float, row)) for row in _sacrebleu(name)._extract_corpus_statistics(predictions, [references])]


def _sacrebleu_score(name: str, sums: np.ndarray) -> float:
    # Why ints: sacrebleu's formulas take counts; they are whole numbers summed as floats here.
    counts = [int(round(x)) for x in sums] if name != "ter" else [float(x) for x in sums]
    return float(_sacrebleu(name)._compute_score_from_stats(counts).score)


@register("bleu", True, functools.partial(_sacrebleu_score, "bleu"))
def bleu(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Corpus BLEU (sacrebleu, 0-100, default 13a tokenisation)."""
    return _sacrebleu_stats("bleu", predictions, references)


@register("chrf", True, functools.partial(_sacrebleu_score, "chrf"))
def chrf(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Corpus chrF (sacrebleu, 0-100): character n-gram F-score, robust for short and morphologically rich text."""
    return _sacrebleu_stats("chrf", predictions, references)


@register("ter", False, functools.partial(_sacrebleu_score, "ter"))
def ter(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Corpus TER (sacrebleu, 0-100+): edits per reference word, lower is better."""
    return _sacrebleu_stats("ter", predictions, references)


@functools.cache
def _rouge_scorer(rouge_type: str) -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer([rouge_type], use_stemmer=True)


def _rouge(rouge_type: str, predictions: list[str], references: list[str]) -> list[list[float]]:
    scorer = _rouge_scorer(rouge_type)
    return [[scorer.score(r, p)[rouge_type].fmeasure, 1.0] for p, r in zip(predictions, references, strict=True)]


@register("rouge_1", True, mean_of_first)
def rouge_1(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Mean ROUGE-1 F-measure (unigram overlap, Porter-stemmed; rouge-score; 0-1)."""
    return _rouge("rouge1", predictions, references)


@register("rouge_2", True, mean_of_first)
def rouge_2(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Mean ROUGE-2 F-measure (bigram overlap, Porter-stemmed; rouge-score; 0-1)."""
    return _rouge("rouge2", predictions, references)


@register("rouge_l", True, mean_of_first)
def rouge_l(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Mean ROUGE-L F-measure (longest common subsequence, Porter-stemmed; rouge-score; 0-1)."""
    return _rouge("rougeL", predictions, references)
