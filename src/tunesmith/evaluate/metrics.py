"""Metric registry: each metric is a name, a direction, per-example statistics and how to aggregate them.

Every metric is *decomposable*: `stats(predictions, references, **ctx)` gives one row of numbers per example,
shape (n, k), and `aggregate(row_sum)` turns the column sums into the score. Accuracy is `[hit, 1]` summed then
divided; corpus BLEU is sacrebleu's n-gram match counts summed then combined. That one shape gives, for free,
the corpus score (`compute`), a per-example score (`sample_scores`, for the review table) and a cheap paired
bootstrap (resampling rows is a (B, n) @ (n, k) product; no metric is recomputed from strings B times).

A new metric is one registered `Metric` in a plug-in module (`label_metrics`, `text_metrics`, `output_metrics`);
`METRICS.get(name)` fails with the known names and a did-you-mean. Scales follow the library that defines the
metric: accuracy and F1 are fractions in [0, 1]; chrF, BLEU and TER are sacrebleu's 0-100 scores.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunesmith.core.errors import EvaluationError
from tunesmith.core.registry import Registry

StatsFn = Callable[..., Any]  # (predictions, references, **ctx) -> array-like (n, k)
AggregateFn = Callable[[np.ndarray], float]  # (k,) column sums -> score


@dataclass(frozen=True)
class Metric:
    """A named score over parallel lists of predictions and references, built from per-example statistics.

    `higher_is_better` is None for descriptive figures (answer length) where neither direction is a win.
    """

    name: str
    higher_is_better: bool | None
    stats: StatsFn
    aggregate: AggregateFn
    description: str = ""

    def compute(self, predictions: Sequence[str], references: Sequence[str], **ctx: Any) -> float:
        """Score `predictions` against `references` (same length, non-empty); `ctx` carries e.g. `labels`."""
        return self.aggregate(self.sample_stats(predictions, references, **ctx).sum(axis=0))

    def sample_stats(self, predictions: Sequence[str], references: Sequence[str], **ctx: Any) -> np.ndarray:
        """The per-example statistics, shape (n, k), float64."""
        check_parallel(predictions, references, self.name)
        rows = np.asarray(self.stats(list(predictions), list(references), **ctx), dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] != len(references):
            raise AssertionError(f"metric {self.name!r} returned stats of shape {rows.shape}, not (n, k)")
        return rows

    def sample_scores(self, stats: np.ndarray) -> list[float]:
        """Each example's own score (its stats row aggregated alone): sentence chrF, a 0/1 hit, ..."""
        return [float(self.aggregate(row)) for row in stats]

    def resampled(self, stats: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Scores of B resamples: `counts` (B, n) says how often each example is drawn; returns (B,)."""
        sums = counts @ stats  # (B, k)
        return np.array([self.aggregate(row) for row in sums], dtype=np.float64)


METRICS: Registry[Metric] = Registry[Metric]("metric")

# Quantities an evaluation reports that are not computed from strings (so they are not registered metrics),
# with their direction, so comparison tables can colour a change as better or worse.
DERIVED_DIRECTIONS: dict[str, bool | None] = {
    "loss": False,
    "perplexity": False,
    "loglik_accuracy": True,
    "unmatched_rate": False,
}


def register(name: str, higher_is_better: bool | None, aggregate: AggregateFn) -> Callable[[StatsFn], Metric]:
    """Decorator: the function computes per-example stats; with `aggregate` it becomes a registered `Metric`."""

    def wrap(fn: StatsFn) -> Metric:
        doc = (fn.__doc__ or "").strip().splitlines()
        return METRICS.register(name)(Metric(name, higher_is_better, fn, aggregate, doc[0] if doc else ""))

    return wrap


def mean_of_first(sums: np.ndarray) -> float:
    """Aggregate for stats rows `[value, 1]`: the mean value (0 when nothing was counted)."""
    return float(sums[0] / sums[1]) if sums[1] else 0.0


def higher_is_better(name: str) -> bool | None:
    """Direction of a registered metric or a derived quantity (loss, ...); None: descriptive; unknown: True."""
    if name in METRICS:
        return METRICS.get(name).higher_is_better
    return DERIVED_DIRECTIONS.get(name, True)


def check_parallel(predictions: Sequence[str], references: Sequence[str], name: str) -> None:
    """Refuse mismatched or empty inputs: a score over nothing would be a silent 0 or NaN in the report."""
    if len(predictions) != len(references):
        raise EvaluationError(
            f"metric {name!r}: {len(predictions)} predictions but {len(references)} references; "
            "pass one prediction per reference"
        )
    if not references:
        raise EvaluationError(f"metric {name!r}: no examples to score; check that the test split is not empty")


_TRAILING = string.punctuation + " \t"


def normalize_answer(text: str) -> str:
    """First line, stripped, lower-cased, trailing punctuation removed: `" Positive.\\nbecause"` -> `positive`.

    Why first line: instruction models often add an explanation after the answer line.
    """
    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    return first.strip().lower().rstrip(_TRAILING).strip()


_DEFAULTS: dict[str, list[str]] = {
    "label": ["accuracy", "macro_f1", "macro_precision", "macro_recall", "micro_f1"],
    "pair": [
        "chrf", "bleu", "ter", "rouge_1", "rouge_2", "rouge_l", "exact_match", "normalized_match",
        "length_ratio", "refusal_rate",
    ],
    "completion": ["chrf", "bleu", "rouge_1", "rouge_2", "rouge_l", "normalized_match", "length_ratio", "refusal_rate"],
    "chat": ["chrf", "bleu", "rouge_1", "rouge_2", "rouge_l", "normalized_match", "length_ratio", "refusal_rate"],
}

# The metric each example is scored with in the review table, robustness and counterfactual checks:
# per-example meaningful (a 0/1 hit, sentence chrF), unlike macro-F1 or corpus BLEU.
_PRIMARY: dict[str, str] = {"label": "accuracy", "pair": "chrf", "completion": "chrf", "chat": "chrf"}


def default_metrics(kind: str) -> list[str]:
    """Metric names used when the config names none, by record kind (`label`, `pair`, `completion`, `chat`)."""
    try:
        return list(_DEFAULTS[kind])
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(sorted(_DEFAULTS))}") from None


def primary_metric(kind: str) -> str:
    """The per-example metric for a record kind: `accuracy` for labels, sentence `chrf` for generated text."""
    default_metrics(kind)  # same error for an unknown kind
    return _PRIMARY[kind]
