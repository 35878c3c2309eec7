"""Loss curves from metrics.jsonl rows, the overfitting verdict, and the train/val/test gap table."""

from __future__ import annotations

import pytest

from tunesmith.evaluate.generalisation import generalisation_section, loss_curves, overfitting, split_gaps

ROWS = [
    {"step": 5, "epoch": 0.1, "loss": 2.0, "lr": 1e-3},
    {"step": 5, "val_loss": 1.9},
    {"step": 10, "loss": 1.2},
    {"step": 10, "val_loss": 1.3},
    {"step": 15, "loss": 0.7},
    {"step": 15, "val_loss": 1.25},
    {"step": 20, "loss": 0.3},
    {"step": 20, "val_loss": 1.5},
    {"step": 20, "val_loss": 1.6},  # a resumed run logged step 20 again: the last value wins
]


def test_loss_curves_split_train_and_val_rows_in_step_order() -> None:
    curves = loss_curves(list(reversed(ROWS)) + [{"note": "no step"}])
    assert curves["train"] == [[5, 2.0], [10, 1.2], [15, 0.7], [20, 0.3]]
    assert curves["val"] == [[5, 1.9], [10, 1.3], [15, 1.25], [20, 1.5]]  # reversed input: first 20 row is last


def test_overfitting_is_flagged_at_the_step_where_val_loss_turned() -> None:
    verdict = overfitting(loss_curves(ROWS))
    assert verdict["flag"] is True and verdict["turned_at_step"] == 15
    assert verdict["best_val_loss"] == 1.25 and verdict["final_val_loss"] == 1.6
    assert verdict["rise"] == pytest.approx(1.6 / 1.25 - 1)
    assert "step 15" in verdict["reason"]


def test_no_flag_while_val_loss_keeps_falling_or_within_tolerance() -> None:
    falling = {"val": [[1, 2.0], [2, 1.5], [3, 1.2]]}
    assert overfitting(falling)["flag"] is False and overfitting(falling)["turned_at_step"] is None
    flat = {"val": [[1, 2.0], [2, 1.0], [3, 1.01]]}  # +1%: noise
    assert overfitting(flat)["flag"] is False


def test_too_few_val_points_say_which_setting_gives_more() -> None:
    verdict = overfitting({"val": [[51, 0.06]]})
    assert verdict["flag"] is None and "train.eval_every_steps" in verdict["reason"]


def test_split_gaps_and_their_direction() -> None:
    table = split_gaps(
        {"train": {"accuracy": 0.95, "loss": 0.1}, "val": {"accuracy": 0.9}, "test": {"accuracy": 0.8, "loss": 0.4}},
        {"accuracy": True, "loss": False},
    )
    assert table["accuracy"]["gap_train_test"] == pytest.approx(0.15)
    assert table["accuracy"]["gap_train_val"] == pytest.approx(0.05)
    assert table["accuracy"]["worse_on_test"] is True
    assert table["loss"]["gap_train_test"] == pytest.approx(-0.3) and table["loss"]["worse_on_test"] is True
    assert table["loss"]["gap_train_val"] is None


def test_generalisation_section_bundles_everything() -> None:
    section = generalisation_section({"test": {"accuracy": 0.8}}, {"test": 10}, ROWS, {"accuracy": True})
    assert section["splits"] == {"test": 10} and section["overfitting"]["flag"] is True
    assert section["metrics"]["accuracy"]["test"] == 0.8 and len(section["curves"]["val"]) == 4
