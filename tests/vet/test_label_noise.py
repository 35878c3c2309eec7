"""Confident-learning label noise on crafted intent data with planted label flips."""

from __future__ import annotations

import random

import numpy as np
import pytest
from crafted_intents import LABELS, clean_rows, context

from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.errors import ConfigError
from tunesmith.core.records import CompletionRecord, Origin
from tunesmith.vet.base import VetContext
from tunesmith.vet.filters.label_noise import LabelNoiseFilter, confident_joint_off_diagonal, label_precision
from tunesmith.vet.view import record_ids


def _flipped(n_flips: int, seed: int = 0) -> tuple[list[tuple[str, str]], dict[int, str]]:
    """Clean rows with `n_flips` labels changed to another intent; returns rows and {row: true label}."""
    rows = clean_rows(per_label=40, seed=seed)
    rng = random.Random(seed)
    truth = {}
    for i in rng.sample(range(len(rows)), n_flips):
        text, label = rows[i]
        rows[i] = (text, rng.choice([other for other in LABELS if other != label]))
        truth[i] = label
    return rows, truth


def _run(rows: list[tuple[str, str]], config: VetConfig | None = None) -> tuple[dict, LabelNoiseFilter]:
    config = config or VetConfig()
    ctx = context(rows, config)
    plugin = LabelNoiseFilter(config.label_noise)
    flags = plugin.run(ctx)
    position = {rid: i for i, rid in enumerate(ctx.ids)}
    return {position[f.record_id]: f for f in flags}, plugin


def test_planted_flips_are_caught_with_the_true_label_suggested() -> None:
    rows, truth = _flipped(12)  # 5% of 240
    flagged, plugin = _run(rows)
    caught = set(flagged) & set(truth)
    assert len(caught) >= 10  # of 12 (seeds 0-4 catch 10-12)
    assert len(set(flagged) - set(truth)) <= 2  # clean records flagged: <= ~1%
    for i in caught:
        flag = flagged[i]
        assert flag.details["suggested_label"] == truth[i]
        assert flag.details["suggested_prob"] >= 0.5 and flag.details["given_prob"] <= 0.125
        assert abs(flag.score - (flag.details["suggested_prob"] - flag.details["given_prob"])) < 1e-3  # the margin
        assert flag.action == "remove"
    assert plugin.summary["suspects"] == len(flagged)
    assert plugin.summary["untrusted_labels"] == []


def test_clean_data_is_left_alone() -> None:
    flagged, plugin = _run(clean_rows(per_label=40, seed=3))
    assert len(flagged) <= 1
    assert plugin.summary["out_of_sample_accuracy"] > 0.95


def test_action_flag_keeps_the_records() -> None:
    config = VetConfig()
    config.label_noise.action = "flag"
    rows, truth = _flipped(6, seed=1)
    flagged, _ = _run(rows, config)
    assert flagged and all(flag.action == "flag" for flag in flagged.values())


def test_labels_with_too_few_records_are_skipped_and_named() -> None:
    rows, truth = _flipped(6, seed=2)
    rows += [("Order a pizza with extra cheese.", "order_food"), ("Get me sushi delivered.", "order_food")]
    flagged, plugin = _run(rows)
    assert plugin.summary["skipped_labels"]["labels"] == ["order_food"]
    assert plugin.summary["skipped_labels"]["records"] == 2
    assert not {len(rows) - 2, len(rows) - 1} & set(flagged)
    assert len(set(flagged) & set(truth)) >= 5


def test_non_label_data_is_reported_not_checked() -> None:
    records = [CompletionRecord(f"question {i}", f"answer {i}", Origin("c.jsonl", i + 1)) for i in range(30)]
    plugin = LabelNoiseFilter(VetConfig().label_noise)
    assert plugin.run(VetContext(record_ids(records), list(records), VetConfig())) == []
    assert plugin.summary == {"skipped": "not label data"}


def test_one_label_only_is_skipped() -> None:
    flagged, plugin = _run([(f"Play song number {i}", "play_music") for i in range(20)])
    assert flagged == {} and "fewer than two labels" in plugin.summary["skipped"]


def test_untrustworthy_suggestions_are_not_flagged() -> None:
    # label 0 predicted for 10 records labelled 0, 10 labelled 1 softly (p_1 = 0.3) and 5 labelled 1 flatly
    probabilities = np.array([[0.9, 0.1]] * 10 + [[0.7, 0.3]] * 10 + [[0.95, 0.05]] * 5 + [[0.1, 0.9]] * 10)
    targets = np.array([0] * 10 + [1] * 10 + [1] * 5 + [1] * 10)
    precision = label_precision(probabilities, targets, 0.5, 0.1)
    assert precision[0] == 0.5  # the soft disagreements count against it, the flat ones (suspects) do not
    assert precision[1] == 1.0
    # confident joint: t_0 = 0.9, so only the five p_0 = 0.95 rows count as label-0 records labelled 1
    assert len(confident_joint_off_diagonal(probabilities, targets)) == 5


def test_bad_settings_are_reported_together() -> None:
    config = VetConfig()
    config.label_noise.folds = 1
    config.label_noise.min_confidence = 1.5
    config.label_noise.max_given_probability = -0.1
    with pytest.raises(ConfigError) as error:
        LabelNoiseFilter(config.label_noise)
    assert [p.where for p in error.value.problems] == [
        "vet.label_noise.folds",
        "vet.label_noise.min_confidence",
        "vet.label_noise.max_given_probability",
    ]
