"""Generalisation: the same metrics on train, val and test, the gaps between them, the loss curves, overfitting.

The curves come from the run's `metrics.jsonl` (rows with `loss` from the training loop's log window, rows with
`val_loss` from each validation pass). Overfitting is flagged when validation loss, after reaching its minimum,
ends clearly above it: that minimum's step is where val loss "turned", the step to stop at (or to keep the
checkpoint of) next time. It needs val loss at several steps: `train.eval_every_steps`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MIN_VAL_POINTS = 3
RISE_TOLERANCE = 0.02  # a final val loss within 2% of its minimum is noise, not overfitting
GAP_TOLERANCE = 0.05  # a train/test gap under 5% of the train value is not worth a warning


def loss_curves(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[list[float]]]:
    """`{"train": [[step, loss], ...], "val": [[step, val_loss], ...]}` from metrics.jsonl rows, step order.

    A resumed run rewinds metrics.jsonl, but a row repeated at one step keeps only its last value.
    """
    curves: dict[str, dict[float, float]] = {"train": {}, "val": {}}
    for row in rows:
        step = row.get("step")
        if not isinstance(step, (int, float)):
            continue
        if isinstance(row.get("loss"), (int, float)):
            curves["train"][step] = float(row["loss"])
        if isinstance(row.get("val_loss"), (int, float)):
            curves["val"][step] = float(row["val_loss"])
    return {name: [[s, v] for s, v in sorted(points.items())] for name, points in curves.items()}


def overfitting(curves: Mapping[str, Sequence[Sequence[float]]], tolerance: float = RISE_TOLERANCE) -> dict:
    """Did validation loss turn upward? `{"flag": bool | None, "turned_at_step", "best_val_loss", ...}`.

    `flag` is None (unknown) with fewer than 3 validation points, with the setting that would give more.
    """
    val = list(curves.get("val") or [])
    if len(val) < MIN_VAL_POINTS:
        return {
            "flag": None,
            "reason": f"validation loss was logged at {len(val)} step(s); set train.eval_every_steps to a few "
            "times per epoch to see where it turns",
        }
    best_step, best = min(val, key=lambda point: (point[1], point[0]))
    final_step, final = val[-1]
    rise = (final - best) / best if best > 0 else 0.0
    flag = best_step < final_step and rise > tolerance
    train = list(curves.get("train") or [])
    reason = (
        f"val loss was lowest ({best:.4f}) at step {int(best_step)} and ended {rise:.1%} higher ({final:.4f}) at "
        f"step {int(final_step)}: stop near step {int(best_step)} or train on more data"
        if flag
        else f"val loss ended within {tolerance:.0%} of its lowest ({best:.4f}, step {int(best_step)})"
    )
    return {
        "flag": flag,
        "turned_at_step": int(best_step) if flag else None,
        "best_step": int(best_step),
        "best_val_loss": best,
        "final_val_loss": final,
        "final_train_loss": train[-1][1] if train else None,
        "rise": rise,
        "reason": reason,
    }


def split_gaps(split_metrics: Mapping[str, Mapping[str, float]], directions: Mapping[str, bool | None]) -> dict:
    """Per metric: its value on each split, and `train - test` / `train - val` gaps.

    `split_metrics` is `{"train": {...}, "val": {...}, "test": {...}}` (any subset). A gap in the metric's good
    direction (train better than test) is the usual generalisation gap; `worse_on_test` marks one in that
    direction larger than 5% of the train value.
    """
    names: list[str] = []
    for values in split_metrics.values():
        names += [n for n in values if n not in names]
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        row: dict[str, Any] = {split: values.get(name) for split, values in split_metrics.items()}
        train, test, val = row.get("train"), row.get("test"), row.get("val")
        row["gap_train_test"] = train - test if train is not None and test is not None else None
        row["gap_train_val"] = train - val if train is not None and val is not None else None
        direction = directions.get(name)
        row["worse_on_test"] = None
        if train is not None and test is not None and direction is not None:
            gap = train - test
            row["worse_on_test"] = (gap > 0) == direction and abs(gap) > GAP_TOLERANCE * max(abs(train), 1e-12)
        table[name] = row
    return table


def generalisation_section(
    split_metrics: Mapping[str, Mapping[str, float]],
    split_sizes: Mapping[str, int],
    rows: Sequence[Mapping[str, Any]],
    directions: Mapping[str, bool | None],
) -> dict[str, Any]:
    """The report's generalisation block: split table, gaps, loss curves and the overfitting verdict."""
    curves = loss_curves(rows)
    return {
        "splits": dict(split_sizes),
        "metrics": split_gaps(split_metrics, directions),
        "curves": curves,
        "overfitting": overfitting(curves),
    }
