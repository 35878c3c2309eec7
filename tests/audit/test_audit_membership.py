"""Membership attacks' scores and ROC figures against independent computations on synthetic scores."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from tunesmith.core.records import LabelRecord, Origin
from tunesmith.evaluate.privacy.membership import (
    attack_scores,
    choose_members,
    membership_report,
    min_k_score,
    roc_summary,
    zlib_score,
)


def _tpr_at_fpr_brute_force(members: np.ndarray, outsiders: np.ndarray, max_fpr: float) -> float:
    best = 0.0
    for threshold in np.r_[np.inf, np.unique(np.r_[members, outsiders])]:
        if np.mean(outsiders >= threshold) <= max_fpr:
            best = max(best, float(np.mean(members >= threshold)))
    return best


@pytest.mark.parametrize("shift", [0.0, 0.5, 2.0])
def test_roc_summary_matches_mann_whitney_and_a_threshold_sweep(shift: float) -> None:
    rng = np.random.default_rng(3)
    members, outsiders = rng.normal(shift, 1, 300), rng.normal(0, 1, 400)
    figures = roc_summary(members, outsiders)
    u = mannwhitneyu(members, outsiders).statistic  # AUC = U / (n_members * n_outsiders)
    assert figures["auc"] == pytest.approx(u / (300 * 400), abs=1e-12)
    assert figures["tpr_at_1pct_fpr"] == pytest.approx(_tpr_at_fpr_brute_force(members, outsiders, 0.01))


def test_roc_summary_with_ties_and_perfect_separation() -> None:
    assert roc_summary([1, 1, 1], [1, 1, 1])["auc"] == 0.5
    perfect = roc_summary([5, 6, 7], [1, 2, 3])
    assert perfect == {"auc": 1.0, "tpr_at_1pct_fpr": 1.0}


def test_attack_scores_by_hand() -> None:
    tuned = [np.log(np.array([0.5, 0.25, 0.125, 1.0]))]
    base = [np.log(np.array([0.25, 0.25, 0.125, 0.5]))]
    text = ["get_weather"]
    assert attack_scores("loss", tuned, None, text, 0.2)[0] == pytest.approx(np.mean(np.log([0.5, 0.25, 0.125, 1])))
    assert attack_scores("reference", tuned, base, text, 0.2)[0] == pytest.approx(np.log(2) / 2)  # 2 tokens x2
    assert min_k_score(tuned[0], 0.5) == pytest.approx(np.mean(np.log([0.125, 0.25])))  # the two lowest of four
    assert min_k_score(tuned[0], 0.01) == pytest.approx(np.log(0.125))  # at least one token
    assert zlib_score(tuned[0], "get_weather") == pytest.approx(np.mean(tuned[0]) / len(zlib.compress(b"get_weather")))
    with pytest.raises(ValueError, match="base model"):
        attack_scores("reference", tuned, None, text, 0.2)


def test_members_and_non_members_are_seeded_disjoint_samples() -> None:
    train = [LabelRecord(f"t{i}", "a", Origin("f", i)) for i in range(50)]
    heldout = [LabelRecord(f"h{i}", "a", Origin("f", 100 + i)) for i in range(10)]
    members, outsiders = choose_members(train, heldout, 20, 30, seed=0)
    assert len(members) == 20 and len(outsiders) == 10  # capped at the held-out pool
    assert set(map(id, members)) <= set(map(id, train)) and set(map(id, outsiders)) <= set(map(id, heldout))
    assert choose_members(train, heldout, 20, 30, seed=0) == (members, outsiders)
    assert choose_members(train, heldout, 20, 30, seed=1)[0] != members


def test_membership_report_separates_shifted_log_probs() -> None:
    rng = np.random.default_rng(0)
    def draws(mean: float) -> list[np.ndarray]:
        return [rng.normal(mean, 0.3, 8) for _ in range(50)]

    inside = {"tuned": draws(-1), "base": draws(-2)}  # members: more likely under the tuned model than the base
    outside = {"tuned": draws(-2), "base": draws(-2)}
    report = membership_report(["loss", "reference", "min_k", "zlib"], inside, outside, ["x"] * 50, ["x"] * 50, 0.2)
    assert set(report["attacks"]) == {"loss", "reference", "min_k", "zlib"}
    assert all(a["auc"] > 0.95 for a in report["attacks"].values())
