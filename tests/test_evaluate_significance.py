"""Paired bootstrap intervals and McNemar's exact test: reference values, seeding, pairing."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.evaluate.metrics import METRICS
from tunesmith.evaluate.significance import bootstrap_interval, mcnemar_exact, paired_bootstrap, resample_counts


@pytest.mark.parametrize(("base_only", "tuned_only", "same"), [(0, 0, 5), (1, 9, 3), (7, 5, 20), (30, 55, 100)])
def test_mcnemar_exact_equals_scipy_binomial_test(base_only: int, tuned_only: int, same: int) -> None:
    from scipy.stats import binomtest

    base = [True] * base_only + [False] * tuned_only + [True] * same + [False] * same
    tuned = [False] * base_only + [True] * tuned_only + [True] * same + [False] * same
    result = mcnemar_exact(base, tuned)
    assert (result["base_only_correct"], result["tuned_only_correct"]) == (base_only, tuned_only)
    assert result["both_correct"] == same and result["both_wrong"] == same
    discordant = base_only + tuned_only
    expected = binomtest(min(base_only, tuned_only), discordant, 0.5).pvalue if discordant else 1.0
    assert result["p_value"] == pytest.approx(expected, rel=1e-12)


def test_mcnemar_handles_thousands_of_discordant_pairs() -> None:
    result = mcnemar_exact([True] * 1500 + [False] * 2500, [False] * 1500 + [True] * 2500)
    assert 0.0 <= result["p_value"] < 1e-30


def test_resample_counts_draw_n_examples_per_row_and_repeat_with_the_seed() -> None:
    counts = resample_counts(7, 600, seed=3)
    assert counts.shape == (600, 7) and (counts.sum(axis=1) == 7).all()
    assert np.array_equal(counts, resample_counts(7, 600, seed=3))
    assert not np.array_equal(counts, resample_counts(7, 600, seed=4))


def _accuracy_stats(hits: list[int]) -> np.ndarray:
    return np.array([[h, 1.0] for h in hits])


def test_paired_bootstrap_interval_brackets_the_delta_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    base = _accuracy_stats(list(rng.random(200) < 0.5))
    tuned = _accuracy_stats(list(rng.random(200) < 0.8))
    accuracy = METRICS.get("accuracy")
    delta = tuned[:, 0].mean() - base[:, 0].mean()
    ci = paired_bootstrap(accuracy, base, tuned, samples=500, confidence=0.9, seed=1)
    assert ci["low"] < delta < ci["high"] and ci["low"] > 0  # 0.5 vs 0.8 on 200 examples: clearly better
    assert ci["better_share"] == 1.0 and ci["samples"] == 500 and ci["confidence"] == 0.9
    assert paired_bootstrap(accuracy, base, tuned, samples=500, confidence=0.9, seed=1) == ci
    assert paired_bootstrap(accuracy, base, tuned, samples=500, confidence=0.9, seed=2) != ci


def test_pairing_makes_the_interval_tighter_than_independent_draws() -> None:
    """Tuned = base plus 5 fixed fixes: the paired delta hardly varies, so its interval is narrow."""
    hits = [1] * 50 + [0] * 50
    base = _accuracy_stats(hits)
    tuned = _accuracy_stats([1] * 55 + [0] * 45)
    ci = paired_bootstrap(METRICS.get("accuracy"), base, tuned, samples=400, seed=0)
    alone = bootstrap_interval(METRICS.get("accuracy"), tuned, samples=400, seed=0)
    assert ci["high"] - ci["low"] < 0.5 * (alone["high"] - alone["low"])


def test_lower_is_better_metrics_count_a_drop_as_better() -> None:
    ter = METRICS.get("ter")
    base = np.array([[4.0, 4.0]] * 20)  # every word wrong
    tuned = np.array([[1.0, 4.0]] * 20)
    assert paired_bootstrap(ter, base, tuned, samples=50)["better_share"] == 1.0


def test_no_resamples_or_mismatched_pairs() -> None:
    stats = _accuracy_stats([1, 0])
    assert paired_bootstrap(METRICS.get("accuracy"), stats, stats, samples=0)["low"] is None
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap(METRICS.get("accuracy"), stats, _accuracy_stats([1]), samples=10)
    with pytest.raises(ValueError, match="paired outcomes"):
        mcnemar_exact([True], [True, False])
