"""Is the tuned model really better? Paired bootstrap intervals for each metric's delta and McNemar's exact test.

Both are *paired*: base and tuned answered the same test examples, so each resample draws the same examples
for both models, and the interval is for the difference on one draw (much tighter than two separate intervals,
because the examples' difficulty cancels). Resampling works on the metrics' per-example statistics
(`Metric.resampled`), so a corpus metric like BLEU is recombined from resampled n-gram counts, as sacrebleu's
own paired bootstrap does. Seeded: the same seed gives the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunesmith.evaluate.metrics import Metric

_CHUNK = 250  # resamples drawn at once: a (chunk, n) count matrix stays small for any test split


def resample_counts(n: int, samples: int, seed: int) -> np.ndarray:
    """(samples, n) float matrix: row b counts how often each of n examples is drawn in resample b."""
    rng = np.random.default_rng(seed)
    chunks = [
        rng.multinomial(n, np.full(n, 1.0 / n), size=min(_CHUNK, samples - start)).astype(np.float64)
        for start in range(0, samples, _CHUNK)
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, n))


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def paired_bootstrap(
    metric: Metric,
    base_stats: np.ndarray,
    tuned_stats: np.ndarray,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile interval for `metric(tuned) - metric(base)` over paired resamples of the examples.

    Returns `{"low", "high", "confidence", "samples", "better_share"}`; `better_share` is the share of
    resamples in which tuned beats base in the metric's own direction (None for descriptive metrics).
    """
    if base_stats.shape[0] != tuned_stats.shape[0]:
        raise ValueError(f"paired bootstrap needs the same examples: {base_stats.shape[0]} vs {tuned_stats.shape[0]}")
    if samples <= 0 or base_stats.shape[0] == 0:
        return {"low": None, "high": None, "confidence": confidence, "samples": 0, "better_share": None}
    deltas = []
    for start in range(0, samples, _CHUNK):
        # Why chunked and re-seeded per chunk from one stream: memory stays (chunk, n) for any split size.
        counts = resample_counts(base_stats.shape[0], min(_CHUNK, samples - start), seed + start)
        deltas.append(metric.resampled(tuned_stats, counts) - metric.resampled(base_stats, counts))
    delta = np.concatenate(deltas)
    low, high = _interval(delta, confidence)
    better = None
    if metric.higher_is_better is not None:
        better = float(np.mean(delta > 0 if metric.higher_is_better else delta < 0))
    return {"low": low, "high": high, "confidence": confidence, "samples": int(samples), "better_share": better}


def bootstrap_interval(
    metric: Metric, stats: np.ndarray, samples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Percentile interval for one model's metric (used when there is no base model to pair with)."""
    if samples <= 0 or stats.shape[0] == 0:
        return {"low": None, "high": None, "confidence": confidence, "samples": 0}
    values = np.concatenate(
        [
            metric.resampled(stats, resample_counts(stats.shape[0], min(_CHUNK, samples - start), seed + start))
            for start in range(0, samples, _CHUNK)
        ]
    )
    low, high = _interval(values, confidence)
    return {"low": low, "high": high, "confidence": confidence, "samples": int(samples)}


def mcnemar_exact(base_correct: Sequence[bool], tuned_correct: Sequence[bool]) -> dict[str, Any]:
    """McNemar's exact test on paired right/wrong outcomes (two-sided binomial test on the discordant pairs).

    Only the examples where exactly one model is right carry information: under "no difference" each such
    example is equally likely to favour either model, so the count favouring tuned is Binomial(b + c, 1/2).
    """
    if len(base_correct) != len(tuned_correct):
        raise ValueError(f"McNemar needs paired outcomes: {len(base_correct)} vs {len(tuned_correct)}")
    pairs = list(zip(map(bool, base_correct), map(bool, tuned_correct), strict=True))
    base_only = sum(b and not t for b, t in pairs)
    tuned_only = sum(t and not b for b, t in pairs)
    discordant = base_only + tuned_only
    if discordant == 0:
        p_value = 1.0
    else:
        tail = sum(math.comb(discordant, i) for i in range(min(base_only, tuned_only) + 1))
        # exact integer arithmetic, then one division: no underflow for thousands of discordant pairs
        p_value = min(1.0, 2 * tail / 2**discordant)
    return {
        "test": "mcnemar_exact",
        "base_only_correct": base_only,
        "tuned_only_correct": tuned_only,
        "both_correct": sum(b and t for b, t in pairs),
        "both_wrong": sum(not b and not t for b, t in pairs),
        "p_value": float(p_value),
    }
