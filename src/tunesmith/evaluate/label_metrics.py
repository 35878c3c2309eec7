"""Metrics for label tasks: accuracy, precision / recall / F1 (macro and micro), per-class table, confusion matrix.

Answers and references are compared after `normalize_answer` and mapped onto the label set (`ctx["labels"]`,
else the references' labels). A prediction outside the set is a miss for its reference's class and a false
positive for no class, as scikit-learn counts it when given `labels=`; a *reference* outside the set is an
error: the model was never offered that label, so no score for it would mean anything.

Per-example stats for P/R/F1 are one-hot (tp, fp, fn) counts per class, shape (n, 3 x labels); summed, they
are the confusion counts scikit-learn divides, so the scores equal `sklearn.metrics.precision_recall_fscore_support`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tunesmith.core.errors import EvaluationError
from tunesmith.evaluate.metrics import mean_of_first, normalize_answer, register

OUTSIDE = "(other)"  # the confusion matrix's column for answers that name no label


def label_set(references: Sequence[str], labels: Sequence[str] | None) -> list[str]:
    """The labels to score over: the given set, else the distinct references in sorted order."""
    return list(labels) if labels else sorted(set(references))


def canonical_labels(
    predictions: Sequence[str], references: Sequence[str], labels: Sequence[str]
) -> tuple[list[str | None], list[str]]:
    """(predicted label or None when outside the set, reference label); a reference outside the set raises."""
    canonical = {normalize_answer(label): label for label in labels}
    y_true = [canonical.get(normalize_answer(r)) for r in references]
    unknown = sorted({r for r, t in zip(references, y_true, strict=True) if t is None})
    if unknown:
        raise EvaluationError(
            f"reference label(s) {', '.join(map(repr, unknown[:10]))} are not in the label set "
            f"({', '.join(labels)}); the label set comes from the training split, so add training examples "
            "of those labels or drop the records that carry them"
        )
    return [canonical.get(normalize_answer(p)) for p in predictions], [t for t in y_true if t is not None]


def _hits(predictions: list[str], references: list[str], **ctx: Any) -> list[list[float]]:
    """Share of predictions equal to the reference after `normalize_answer` (0-1)."""
    if ctx.get("labels"):
        canonical_labels(predictions, references, ctx["labels"])  # refuse references outside the label set
    pairs = zip(predictions, references, strict=True)
    return [[float(normalize_answer(p) == normalize_answer(r)), 1.0] for p, r in pairs]


accuracy = register("accuracy", True, mean_of_first)(_hits)


def confusion_stats(predictions: list[str], references: list[str], **ctx: Any) -> np.ndarray:
    """Per example: one-hot true-positive, false-positive and false-negative counts per label, (n, 3 x labels)."""
    labels = label_set(references, ctx.get("labels"))
    index = {label: i for i, label in enumerate(labels)}
    y_pred, y_true = canonical_labels(predictions, references, labels)
    n_labels = len(labels)
    stats = np.zeros((len(references), 3 * n_labels))
    for row, (p, t) in enumerate(zip(y_pred, y_true, strict=True)):
        if p == t:
            stats[row, index[t]] = 1  # tp
            continue
        if p is not None:
            stats[row, n_labels + index[p]] = 1  # fp for the class it named
        stats[row, 2 * n_labels + index[t]] = 1  # fn for the class it missed
    return stats


def _split(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp, fp, fn = np.split(np.asarray(sums, dtype=np.float64), 3)
    return tp, fp, fn


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den is 0 (scikit-learn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _per_class_prf(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tp, fp, fn = _split(sums)
    return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)


def _micro(sums: np.ndarray) -> tuple[float, float, float]:
    tp, fp, fn = (float(x.sum()) for x in _split(sums))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return precision, recall, f1


register("macro_precision", True, lambda s: float(_per_class_prf(s)[0].mean()))(confusion_stats)
register("macro_recall", True, lambda s: float(_per_class_prf(s)[1].mean()))(confusion_stats)
register("macro_f1", True, lambda s: float(_per_class_prf(s)[2].mean()))(confusion_stats)
register("micro_precision", True, lambda s: _micro(s)[0])(confusion_stats)
register("micro_recall", True, lambda s: _micro(s)[1])(confusion_stats)
register("micro_f1", True, lambda s: _micro(s)[2])(confusion_stats)


def per_class(predictions: Sequence[str], references: Sequence[str], labels: Sequence[str] | None = None) -> dict:
    """`{label: {precision, recall, f1, support}}` (scikit-learn's classification report, our label mapping)."""
    names = label_set(references, labels)
    sums = confusion_stats(list(predictions), list(references), labels=names).sum(axis=0)
    precision, recall, f1 = _per_class_prf(sums)
    tp, _, fn = _split(sums)
    return {
        label: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(tp[i] + fn[i]),
        }
        for i, label in enumerate(names)
    }


def confusion_matrix(
    predictions: Sequence[str], references: Sequence[str], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Rows: true label; columns: predicted label, then `(other)` for answers naming no label.

    `{"labels": [...], "columns": [..., "(other)"], "matrix": [[count, ...], ...]}`; without the last column
    this is `sklearn.metrics.confusion_matrix(y_true, y_pred, labels=labels)`.
    """
    names = label_set(references, labels)
    y_pred, y_true = canonical_labels(predictions, references, names)
    index = {label: i for i, label in enumerate(names)}
    matrix = [[0] * (len(names) + 1) for _ in names]
    for p, t in zip(y_pred, y_true, strict=True):
        matrix[index[t]][index[p] if p is not None else len(names)] += 1
    return {"labels": names, "columns": [*names, OUTSIDE], "matrix": matrix}
