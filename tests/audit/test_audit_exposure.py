"""Exposure math on known ranks, the 1/ln 2 baseline of never-inserted canaries, canary insertion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Origin, PairRecord
from tunesmith.evaluate.privacy.canaries import (
    canary_kind,
    exposure_from_rank,
    exposure_table,
    fit_skewnorm,
    inserted_records,
    make_canaries,
    sample_exposure,
    sampled_rank,
    skewnorm_exposure,
)


def test_exposure_of_known_ranks() -> None:
    assert exposure_from_rank(1, 10**6) == pytest.approx(math.log2(10**6))  # the most likely secret: 19.93 bits
    assert exposure_from_rank(10**6, 10**6) == 0.0
    assert exposure_from_rank(500_000, 10**6) == pytest.approx(1.0)  # half of R is more likely: one bit
    assert exposure_from_rank(1000, 10**6) == pytest.approx(math.log2(1000))
    with pytest.raises(ValueError, match="rank must be in"):
        exposure_from_rank(0, 10**6)


def test_sampled_rank_counts_strictly_more_likely_candidates() -> None:
    candidates = np.arange(1000, dtype=float)  # log-perplexities 0..999
    assert sampled_rank(250.0, candidates, 10**6) == pytest.approx(1 + (10**6 - 1) * 0.25)
    assert sample_exposure(500.0, candidates, 10**6) == pytest.approx(1.0, abs=1e-5)
    # more likely than every sample: the estimate stops at the sample's resolution, about log2(1001) bits
    assert sample_exposure(-5.0, candidates, 10**6) == pytest.approx(math.log2(1001), abs=0.01)


def test_skewnorm_exposure_recovers_the_tail_of_a_known_distribution() -> None:
    from scipy.stats import skewnorm

    values = skewnorm.rvs(4.0, loc=30, scale=5, size=20000, random_state=np.random.default_rng(0))
    params = fit_skewnorm(values)
    x = skewnorm.ppf(2**-12, 4.0, loc=30, scale=5)  # a canary at 12 bits of the true distribution
    assert skewnorm_exposure(float(x), params, 10**6) == pytest.approx(12.0, abs=0.6)
    x20 = skewnorm.ppf(1e-9, 4.0, loc=30, scale=5)  # far beyond |R|: clamped to log2 |R|
    assert skewnorm_exposure(float(x20), params, 10**6) == pytest.approx(math.log2(10**6))


@pytest.mark.parametrize("method", ["sample", "skewnorm"])
def test_never_inserted_canaries_average_one_over_ln2_bits(method: str) -> None:
    # A reference canary is a random member of R, so its log-perplexity is one more draw from the candidates'
    # distribution: exposure = -log2 U with U uniform, mean 1/ln 2 = 1.4427 and standard deviation 1/ln 2. With 4000
    # canaries the mean's standard error is 0.023 bits; 0.12 is five of them (plus the estimators' small bias).
    rng = np.random.default_rng(7)
    draw = lambda n: 20 + 3 * rng.gamma(3.0, size=n)  # noqa: E731 - a skewed log-perplexity distribution
    canaries = make_canaries([1], 0, 4000, 6, seed=0)
    table = exposure_table(canaries, list(draw(4000)), draw(2000), 6, method)
    assert table["by_repetitions"]["0"]["mean_exposure"] == pytest.approx(1 / math.log(2), abs=0.12)


def test_make_canaries_counts_and_distinct_secrets() -> None:
    canaries = make_canaries([1, 4, 16], 3, 5, 6, seed=1)
    assert [c.repetitions for c in canaries] == [1, 1, 1, 4, 4, 4, 16, 16, 16, 0, 0, 0, 0, 0]
    assert len({c.secret for c in canaries}) == len(canaries)
    assert all(len(c.secret) == 6 and c.secret.isdigit() for c in canaries)
    assert make_canaries([1, 4, 16], 3, 5, 6, seed=1) == canaries  # seeded
    assert make_canaries([1, 4, 16], 3, 5, 6, seed=2) != canaries


def test_inserted_records_repeat_each_canary_and_skip_references() -> None:
    canaries = make_canaries([1, 4, 16], 2, 3, 6, seed=0)
    records = inserted_records(canaries, "my PIN is {secret}", "What is my PIN?", "chat")
    assert len(records) == 2 * (1 + 4 + 16)
    answers = [r.messages[-1].content for r in records if isinstance(r, ChatRecord)]
    for canary in canaries:
        assert answers.count(f"my PIN is {canary.secret}") == canary.repetitions


def test_canaries_take_the_runs_record_kind_except_labels() -> None:
    origin = Origin("f", 1)
    assert canary_kind([PairRecord("a", "b", origin)]) == "pair"
    assert canary_kind([CompletionRecord("a", "b", origin)]) == "completion"
    # label runs: a canary label would join the label set listed in every prompt, so a completion record instead
    assert canary_kind([LabelRecord("a", "x", origin)]) == "completion"
    canary = make_canaries([1], 1, 0, 6, 0)
    (record,) = inserted_records(canary, "my PIN is {secret}", "What is my PIN?", "pair")
    assert isinstance(record, PairRecord) and record.target == f"my PIN is {canary[0].secret}"
