"""Metric registry: each metric is a name, a direction and `compute(predictions, references, **ctx) -> float`.

A new metric is one file: build a `Metric` (or decorate a function with `@metric(...)`) and it is registered under
its name; `METRICS.get(name)` fails with the known names and a did-you-mean. Scales follow the library that
defines the metric: accuracy and F1 are fractions in [0, 1], chrF and BLEU are sacrebleu's 0-100 scores.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tunesmith.core.registry import Registry

ComputeFn = Callable[..., float]


@dataclass(frozen=True)
class Metric:
    """A named score over parallel lists of predictions and references."""

    name: str
    higher_is_better: bool
    fn: ComputeFn
    description: str = ""

    def compute(self, predictions: Sequence[str], references: Sequence[str], **ctx: Any) -> float:
        """Score `predictions` against `references` (same length, non-empty); `ctx` carries e.g. `labels`."""
        check_parallel(predictions, references, self.name)
        return float(self.fn(list(predictions), list(references), **ctx))


METRICS: Registry[Metric] = Registry[Metric]("metric")

# Quantities an evaluation reports that are not computed from strings (so they are not registered metrics),
# with their direction, so comparison tables can colour a change as better or worse.
DERIVED_DIRECTIONS: dict[str, bool] = {
    "loss": False,
    "perplexity": False,
    "loglik_accuracy": True,
    "unmatched_rate": False,
}


def metric(name: str, higher_is_better: bool = True) -> Callable[[ComputeFn], Metric]:
    """Decorator: wrap `fn(predictions, references, **ctx) -> float` as a `Metric` and register it."""

    def wrap(fn: ComputeFn) -> Metric:
        doc = (fn.__doc__ or "").strip().splitlines()
        return METRICS.register(name)(Metric(name, higher_is_better, fn, doc[0] if doc else ""))

    return wrap


def higher_is_better(name: str) -> bool:
    """Direction of a registered metric or a derived quantity (loss, perplexity, ...); unknown names: True."""
    if name in METRICS:
        return METRICS.get(name).higher_is_better
    return DERIVED_DIRECTIONS.get(name, True)


def check_parallel(predictions: Sequence[str], references: Sequence[str], name: str) -> None:
    """Refuse mismatched or empty inputs: a score over nothing would be a silent 0 or NaN in the report."""
    if len(predictions) != len(references):
        raise ValueError(
            f"metric {name!r}: {len(predictions)} predictions but {len(references)} references; "
            "pass one prediction per reference"
        )
    if not references:
        raise ValueError(f"metric {name!r}: no examples to score; check that the test split is not empty")


_TRAILING = string.punctuation + " \t"


def normalize_answer(text: str) -> str:
    """First line, stripped, lower-cased, trailing punctuation removed: `" Positive.\\nbecause"` -> `positive`.

    Why first line: instruction models often add an explanation after the answer line.
    """
    stripped = text.strip()
    first = stripped.splitlines()[0] if stripped else ""
    return first.strip().lower().rstrip(_TRAILING).strip()


@metric("accuracy", higher_is_better=True)
def accuracy(predictions: list[str], references: list[str], **ctx: Any) -> float:
    """Share of predictions equal to the reference after `normalize_answer` (0-1)."""
    hits = sum(normalize_answer(p) == normalize_answer(r) for p, r in zip(predictions, references, strict=True))
    return hits / len(references)


@metric("exact_match", higher_is_better=True)
def exact_match(predictions: list[str], references: list[str], **ctx: Any) -> float:
    """Share of predictions identical to the reference up to surrounding whitespace (0-1)."""
    return sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)) / len(references)


_OUTSIDE = "\x00<outside label set>"


@metric("macro_f1", higher_is_better=True)
def macro_f1(predictions: list[str], references: list[str], **ctx: Any) -> float:
    """Macro-averaged F1 over the label set (`ctx["labels"]`, else the references' labels); 0-1.

    A prediction outside the label set counts as a miss for its reference's class and a hit for no class.
    """
    from sklearn.metrics import f1_score

    labels = list(ctx.get("labels") or sorted(set(references)))
    canonical = {normalize_answer(label): label for label in labels}
    y_true = [canonical.get(normalize_answer(r), r) for r in references]
    y_pred = [canonical.get(normalize_answer(p), _OUTSIDE) for p in predictions]
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


@metric("chrf", higher_is_better=True)
def chrf(predictions: list[str], references: list[str], **ctx: Any) -> float:
    """Corpus chrF (sacrebleu, 0-100): character n-gram F-score, robust for short and morphologically rich text."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(predictions, [references]).score)


@metric("bleu", higher_is_better=True)
def bleu(predictions: list[str], references: list[str], **ctx: Any) -> float:
    """Corpus BLEU (sacrebleu, 0-100, default 13a tokenisation)."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(predictions, [references]).score)


_DEFAULTS: dict[str, list[str]] = {
    "label": ["accuracy", "macro_f1"],
    "pair": ["chrf", "bleu"],
    "completion": ["chrf"],
    "chat": ["chrf"],
}


def default_metrics(kind: str) -> list[str]:
    """Metric names used when the config names none, by record kind (`label`, `pair`, `completion`, `chat`)."""
    try:
        return list(_DEFAULTS[kind])
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; expected one of {', '.join(sorted(_DEFAULTS))}") from None
