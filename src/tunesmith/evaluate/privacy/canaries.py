"""Canaries and their exposure (Carlini et al. 2019, "The Secret Sharer", sec. 4).

A canary is the sentence `canary_template` with a random secret from R = all `secret_digits`-digit strings,
learned as the assistant's answer to `canary_prompt`. Some canaries are inserted into the training split
(1, 4, 16 copies ...), the reference canaries never are.

Exposure of a canary = log2 |R| - log2 rank, where rank is the canary's position when all of R is sorted by the
model's log-perplexity (rank 1 = the most likely secret). For |R| = 10^6 scoring every candidate is too slow on a
CPU, so the rank is estimated from `exposure_samples` candidates drawn uniformly from R, two ways:
- `sample`: rank ~ 1 + (|R| - 1) * (share of sampled candidates strictly more likely than the canary). Nearly
  unbiased, but it cannot resolve exposures above about log2(samples) bits (no sampled candidate beats the
  canary: then it reports that resolution, a lower bound).
- `skewnorm` (Carlini et al. sec. 4.3, "approximation by distribution modelling"): fit a skew-normal to the
  candidates' log-perplexities; rank / |R| ~ its CDF at the canary's log-perplexity. This extrapolates into the
  tail, which the 16-copy canaries reach.
Either way exposure is clamped to [0, log2 |R|]. A reference canary's rank is uniform on R, so its exposure is
-log2 of a uniform variable: mean 1 / ln 2 = 1.44 bits (the sanity check in the tests and the report).

`sample` is the default headline: on the tiny model, 1000 reference canaries average 1.35-1.43 bits with it,
but 1.27-1.34 with `skewnorm` (the log-perplexities of digit strings are not quite skew-normal, so the fit is
off in the middle); `skewnorm` is reported beside it for canaries beyond the sample's resolution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tunesmith.core.records import ChatRecord, CompletionRecord, Message, Origin, PairRecord, Record

CANARY_ORIGIN = "audit:canary"


@dataclass(frozen=True)
class Canary:
    """One secret and how many copies of it were inserted (0: a reference canary)."""

    secret: str
    repetitions: int

    def sentence(self, template: str) -> str:
        return template.replace("{secret}", self.secret)


def make_canaries(repetitions: list[int], per_repetition: int, references: int, digits: int,
                  seed: int) -> list[Canary]:
    """Distinct random secrets: `per_repetition` for each repetition count, then the `references` (repetitions 0)."""
    counts = [r for r in repetitions for _ in range(per_repetition)] + [0] * references
    space = 10**digits
    if len(counts) > space // 2:
        raise ValueError(f"{len(counts)} canaries do not fit in a secret space of {space}; use more secret_digits")
    rng = np.random.default_rng([seed, 0xCA4A])
    secrets: list[str] = []
    seen: set[int] = set()
    while len(secrets) < len(counts):
        value = int(rng.integers(0, space))
        if value not in seen:
            seen.add(value)
            secrets.append(f"{value:0{digits}d}")
    return [Canary(secret, count) for secret, count in zip(secrets, counts, strict=True)]


def sample_candidates(n: int, digits: int, seed: int) -> list[str]:
    """`n` secrets drawn uniformly from R (with replacement, as the estimator assumes)."""
    rng = np.random.default_rng([seed, 0x5A3B])
    return [f"{int(v):0{digits}d}" for v in rng.integers(0, 10**digits, size=n)]


def canary_kind(train: list[Record]) -> str:
    """The record kind canaries are written as: the training split's own, except label data.

    Label records learn only their label, and the label set is listed in every prompt, so a canary label would
    change every training prompt; canaries of label runs are completion records (prompt -> sentence) instead.
    """
    kinds = [r.kind for r in train]
    kind = max(set(kinds), key=kinds.count) if kinds else "chat"
    return "completion" if kind == "label" else kind


def canary_record(sentence: str, prompt: str, kind: str, index: int) -> Record:
    """A record of `kind` whose answer (where the loss goes) is `sentence`."""
    origin = Origin(CANARY_ORIGIN, index)
    if kind == "chat":
        return ChatRecord((Message("user", prompt), Message("assistant", sentence)), origin)
    if kind == "pair":
        return PairRecord(prompt, sentence, origin)
    return CompletionRecord(prompt, sentence, origin)


def inserted_records(canaries: list[Canary], template: str, prompt: str, kind: str) -> list[Record]:
    """Every copy of every inserted canary (reference canaries get none), in canary order."""
    records: list[Record] = []
    for canary in canaries:
        for _ in range(canary.repetitions):
            records.append(canary_record(canary.sentence(template), prompt, kind, len(records) + 1))
    return records


def exposure_from_rank(rank: float, space_size: int) -> float:
    """log2 |R| - log2 rank, in bits (rank 1 = most likely of R)."""
    if not 1 <= rank <= space_size:
        raise ValueError(f"rank must be in [1, {space_size}], got {rank}")
    return math.log2(space_size) - math.log2(rank)


def sampled_rank(canary_log_ppl: float, candidate_log_ppl: np.ndarray, space_size: int) -> float:
    """Rank estimated from candidates drawn uniformly from R: 1 + (|R| - 1) * share strictly more likely.

    When no sample is more likely the share is taken as 1 / (samples + 1): the data only say the canary is beyond
    the sample's resolution, so the estimate becomes a lower bound of about log2(samples) bits, not log2 |R|.
    """
    candidates = np.asarray(candidate_log_ppl)
    share = max(float(np.mean(candidates < canary_log_ppl)), 1.0 / (len(candidates) + 1))
    return 1.0 + (space_size - 1) * share


def sample_exposure(canary_log_ppl: float, candidate_log_ppl: np.ndarray, space_size: int) -> float:
    return exposure_from_rank(sampled_rank(canary_log_ppl, candidate_log_ppl, space_size), space_size)


def fit_skewnorm(candidate_log_ppl: np.ndarray) -> tuple[float, float, float]:
    """Skew-normal (shape, location, scale) fitted to the candidates' log-perplexities by maximum likelihood."""
    from scipy.stats import skewnorm

    values = np.asarray(candidate_log_ppl, dtype=np.float64)
    if float(np.std(values)) == 0.0:
        raise ValueError("every candidate has the same log-perplexity; the skew-normal fit needs spread")
    shape, loc, scale = skewnorm.fit(values)
    return float(shape), float(loc), float(scale)


def skewnorm_exposure(canary_log_ppl: float, params: tuple[float, float, float], space_size: int) -> float:
    """-log2 of the fitted CDF at the canary (rank / |R|), clamped to [1 / |R|, 1]."""
    from scipy.stats import skewnorm

    log_cdf = float(skewnorm.logcdf(canary_log_ppl, *params))  # log scale: the tail of a strong canary underflows
    log_share = min(0.0, max(log_cdf, -math.log(space_size)))
    return -log_share / math.log(2)


def exposure_table(canaries: list[Canary], canary_log_ppl: list[float], candidate_log_ppl: np.ndarray,
                   digits: int, method: str) -> dict[str, Any]:
    """Per-canary exposures (both estimates) and the mean per repetition count ("0" = reference canaries)."""
    space = 10**digits
    params = fit_skewnorm(candidate_log_ppl)
    rows = []
    for canary, log_ppl in zip(canaries, canary_log_ppl, strict=True):
        by_sample = sample_exposure(log_ppl, candidate_log_ppl, space)
        by_fit = skewnorm_exposure(log_ppl, params, space)
        rows.append({**asdict(canary), "log_perplexity_bits": round(log_ppl, 4),
                     "exposure_sample": round(by_sample, 4), "exposure_skewnorm": round(by_fit, 4),
                     "exposure": round(by_fit if method == "skewnorm" else by_sample, 4)})
    groups: dict[str, Any] = {}
    for count in sorted({c.repetitions for c in canaries}):
        chosen = [r for r in rows if r["repetitions"] == count]
        groups[str(count)] = {
            "canaries": len(chosen),
            "mean_exposure": round(float(np.mean([r["exposure"] for r in chosen])), 4),
            "mean_exposure_sample": round(float(np.mean([r["exposure_sample"] for r in chosen])), 4),
            "mean_exposure_skewnorm": round(float(np.mean([r["exposure_skewnorm"] for r in chosen])), 4),
        }
    return {
        "secret_space": space,
        "max_exposure_bits": round(math.log2(space), 4),
        "method": method,
        "samples": len(candidate_log_ppl),
        "sample_resolution_bits": round(math.log2(len(candidate_log_ppl)), 4),
        "skewnorm_params": [round(p, 6) for p in params],
        "by_repetitions": groups,
        "canaries": rows,
    }
