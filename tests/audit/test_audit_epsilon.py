"""Clopper-Pearson bounds against scipy's exact binomial interval; the epsilon lower bound and the consistency
check on synthetic attack scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from tunesmith.evaluate.privacy.empirical_epsilon import (
    Audit,
    audit_epsilons,
    clopper_pearson_lower,
    clopper_pearson_upper,
    epsilon_lower_bound,
    group_claim,
)


@pytest.mark.parametrize(("k", "n", "alpha"), [(0, 10, 0.05), (3, 10, 0.05), (10, 10, 0.05), (37, 100, 0.01),
                                              (99, 100, 0.001), (1, 1000, 0.025)])
def test_clopper_pearson_equals_scipy_exact_interval(k: int, n: int, alpha: float) -> None:
    # a two-sided exact interval at level 1 - 2 alpha puts alpha in each tail: its ends are the one-sided bounds
    interval = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    assert clopper_pearson_lower(k, n, alpha) == pytest.approx(interval.low, abs=1e-12)
    assert clopper_pearson_upper(k, n, alpha) == pytest.approx(interval.high, abs=1e-12)


def test_clopper_pearson_closed_forms_at_the_edges() -> None:
    # 0 of n: upper = 1 - alpha^(1/n); n of n: lower = alpha^(1/n)
    assert clopper_pearson_upper(0, 64, 0.05) == pytest.approx(1 - 0.05 ** (1 / 64), rel=1e-10)
    assert clopper_pearson_lower(64, 64, 0.05) == pytest.approx(0.05 ** (1 / 64), rel=1e-10)


def test_perfect_separation_gives_the_closed_form_bound() -> None:
    members, outsiders = np.arange(100, 164, dtype=float), np.arange(0, 64, dtype=float)
    bound = epsilon_lower_bound(members, outsiders, delta=0.0, confidence=0.95)
    # at the median (one of the 33 grid levels, in the gap between the groups) TPR = 64/64 and FPR = 0/64
    alpha = 0.05 / (2 * 33)
    expected = math.log(alpha ** (1 / 64) / (1 - alpha ** (1 / 64)))
    assert bound.epsilon == pytest.approx(expected, rel=1e-9)
    assert bound.tpr == 1.0 and bound.fpr == 0.0


def test_identical_distributions_give_no_bound() -> None:
    rng = np.random.default_rng(0)
    bound = epsilon_lower_bound(rng.normal(size=500), rng.normal(size=500), delta=1e-5)
    assert bound.epsilon < 0.05  # Clopper-Pearson's margin swallows chance differences between equal distributions


def test_bound_never_exceeds_true_epsilon_of_a_randomised_response() -> None:
    # randomised response with eps = 1: a member says "1" with prob e/(1+e), a non-member with 1/(1+e)
    rng = np.random.default_rng(1)
    p = math.e / (1 + math.e)
    bounds = [epsilon_lower_bound((rng.random(2000) < p).astype(float), (rng.random(2000) < 1 - p).astype(float),
                                  delta=0.0).epsilon for _ in range(20)]
    assert max(bounds) <= 1.0  # a valid lower bound
    assert min(bounds) > 0.6  # and a tight one with 2000 trials a side


def test_group_claim() -> None:
    assert group_claim(2.0, 1e-5, 1) == (2.0, 1e-5)
    eps, delta = group_claim(0.5, 1e-5, 4)
    assert eps == 2.0 and delta == pytest.approx(4 * math.exp(1.5) * 1e-5)


def _separated_audit() -> Audit:
    return Audit("separated", list(np.arange(100, 164.0)), list(np.arange(0, 64.0)))


def test_consistency_fails_when_the_bound_exceeds_the_claim() -> None:
    result = audit_epsilons([_separated_audit()], {"epsilon": 0.5, "delta": 1e-5}, confidence=0.95)
    assert result["verdict"] == "FAIL"
    assert result["audits"][0]["epsilon_lower_bound"] > 0.5


def test_consistency_passes_under_a_large_claim_and_without_one() -> None:
    assert audit_epsilons([_separated_audit()], {"epsilon": 8.0, "delta": 1e-5}, 0.95)["verdict"] == "PASS"
    result = audit_epsilons([_separated_audit()], None, 0.95)
    assert result["verdict"] == "NO_CLAIM" and result["max_epsilon_lower_bound"] > 2


def test_repeated_canaries_are_checked_against_the_group_claim() -> None:
    audit = Audit("x16", list(np.arange(100, 164.0)), list(np.arange(0, 64.0)), group_size=16)
    # claimed eps 0.1 for one record is 1.6 for sixteen copies; delta grows to 16 e^1.5 1e-5
    row = audit_epsilons([audit], {"epsilon": 0.1, "delta": 1e-5}, 0.95)["audits"][0]
    assert row["claimed_epsilon"] == pytest.approx(1.6)
    assert row["status"] == ("FAIL" if row["epsilon_lower_bound"] > 1.6 else "PASS")
    huge = audit_epsilons([audit], {"epsilon": 2.0, "delta": 1e-5}, 0.95)["audits"][0]
    assert huge["status"] == "vacuous"  # the group delta exceeds 1: nothing can contradict that claim


def test_bonferroni_makes_more_audits_more_cautious() -> None:
    one = audit_epsilons([_separated_audit()], None, 0.95)["audits"][0]["epsilon_lower_bound"]
    four = audit_epsilons([_separated_audit()] * 4, None, 0.95)["audits"][0]["epsilon_lower_bound"]
    assert four < one
