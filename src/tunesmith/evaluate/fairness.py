"""Per-group metrics for label tasks whose records carry a `group` (e.g. a demographic attribute).

For each group: its size and metrics; across groups: the worst group's accuracy and two gap measures,
generalised from binary to several labels by taking each label in turn as the positive class (one vs rest) and
reporting the largest gap:

- demographic parity difference: how much the share of examples *predicted* as a label differs between groups;
- equalised-odds difference: the larger of the true-positive-rate and false-positive-rate gaps between groups.

For two labels both equal fairlearn's `demographic_parity_difference` / `equalized_odds_difference` (tested), so
numbers can be cross-checked with it; computed here with plain counts so fairlearn is not needed at run time.
A rate with no examples to define it (a group with no true examples of a label) is left out of that label's gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunesmith.evaluate.label_metrics import canonical_labels
from tunesmith.evaluate.predict import Predictions, score

MIN_GROUPS = 2


def group_indices(groups: Sequence[str | None]) -> dict[str, list[int]]:
    """Example indices per group, groups in sorted order; examples without a group are left out."""
    found: dict[str, list[int]] = {}
    for i, group in enumerate(groups):
        if group is not None and group != "":
            found.setdefault(str(group), []).append(i)
    return dict(sorted(found.items()))


def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _gap(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return max(defined) - min(defined) if len(defined) >= 2 else None


def parity_and_odds(
    y_pred: Sequence[str | None], y_true: Sequence[str], groups: dict[str, list[int]], labels: Sequence[str]
) -> dict[str, Any]:
    """Per label: selection-rate, TPR and FPR gaps across groups; overall: the largest of each."""
    per_label: dict[str, dict[str, float | None]] = {}
    for label in labels:
        selection, tpr, fpr = [], [], []
        for indices in groups.values():
            positives = [i for i in indices if y_true[i] == label]
            negatives = [i for i in indices if y_true[i] != label]
            selection.append(_rate(sum(y_pred[i] == label for i in indices), len(indices)))
            tpr.append(_rate(sum(y_pred[i] == label for i in positives), len(positives)))
            fpr.append(_rate(sum(y_pred[i] == label for i in negatives), len(negatives)))
        tpr_gap, fpr_gap = _gap(tpr), _gap(fpr)
        odds: list[float] = [g for g in (tpr_gap, fpr_gap) if g is not None]
        per_label[label] = {
            "demographic_parity_difference": _gap(selection),
            "tpr_difference": tpr_gap,
            "fpr_difference": fpr_gap,
            "equalized_odds_difference": max(odds) if odds else None,
        }

    def largest(key: str) -> float | None:
        values: list[float] = [v for row in per_label.values() if (v := row[key]) is not None]
        return max(values) if values else None

    return {
        "demographic_parity_difference": largest("demographic_parity_difference"),
        "equalized_odds_difference": largest("equalized_odds_difference"),
        "per_label": per_label,
    }


def fairness_section(predictions: Predictions, metric_names: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Group metrics, worst group and gaps for a label task with at least two groups; else None."""
    if predictions.kind != "label" or not predictions.groups:
        return None
    groups = group_indices(predictions.groups)
    if len(groups) < MIN_GROUPS:
        return None
    names = list(metric_names or ["accuracy", "macro_f1"])
    per_group = {}
    for group, indices in groups.items():
        values, _ = score(predictions.subset(indices), names)
        per_group[group] = {"n": len(indices), **{k: v for k, v in values.items() if k in names}}
    primary = names[0]
    worst = min(per_group, key=lambda g: (per_group[g][primary], g))
    best = max(per_group, key=lambda g: (per_group[g][primary], g))
    y_pred, y_true = canonical_labels(predictions.predictions, predictions.references, predictions.labels)
    gaps = parity_and_odds(y_pred, y_true, groups, predictions.labels)
    return {
        "metric": primary,
        "groups": per_group,
        "worst_group": worst,
        "worst_group_metric": per_group[worst][primary],
        "best_group_metric": per_group[best][primary],
        "metric_gap": per_group[best][primary] - per_group[worst][primary],
        "ungrouped": len(predictions) - sum(len(v) for v in groups.values()),
        **gaps,
    }
