"""Empirical lower bounds on epsilon from membership-attack scores, and the check against a run's claimed epsilon.

An (eps, delta)-DP mechanism bounds every membership test: TPR <= e^eps * FPR + delta and, swapping the roles of
"in" and "out", TNR <= e^eps * FNR + delta (Kairouz et al. 2015). So from an attack's TPR and FPR at any
threshold, eps >= log((TPR - delta) / FPR) and eps >= log((TNR - delta) / FNR) (Jagielski et al. 2020, Nasr et
al. 2021). With finitely many trials the rates are estimated, so we use one-sided Clopper-Pearson bounds: the
lower bound for TPR (TNR) and the upper bound for FPR (FNR).

Thresholds are the pooled scores' quantiles at `THRESHOLDS` evenly spaced levels, and the eps bound is the
maximum over them and over both forms. Taking a maximum over many tests inflates the confidence, so each
Clopper-Pearson bound uses alpha / (2 * thresholds * audits) (Bonferroni): the reported bounds hold jointly, at the
stated confidence, over every threshold of every audit in the report.

Caveat: the audits here come from one training run with many members (the setting of Steinke, Nasr and Jagielski
2023), and the members are not chosen by an independent coin per record; treat the bound as an audit figure, not
a proof. It is still the standard falsification test: a bound above the claimed epsilon means the claim (or the
implementation) is wrong.

Group privacy: a canary inserted k times differs from the neighbouring data set in k records, so the claim it is
checked against is (k eps, k e^((k-1) eps) delta) (Dwork and Roth 2014, Lemma 2.2 extended to (eps, delta)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

THRESHOLDS = 33  # levels 0, 1/32, ..., 1: the median (the cut between balanced groups) is one of them


def clopper_pearson_lower(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) lower confidence bound on a binomial proportion (0 when there is no success)."""
    from scipy.stats import beta

    if trials <= 0:
        raise ValueError("trials must be positive")
    if successes <= 0:
        return 0.0
    return float(beta.ppf(alpha, successes, trials - successes + 1))


def clopper_pearson_upper(successes: int, trials: int, alpha: float) -> float:
    """One-sided (1 - alpha) upper confidence bound on a binomial proportion (1 when every trial succeeded)."""
    from scipy.stats import beta

    if trials <= 0:
        raise ValueError("trials must be positive")
    if successes >= trials:
        return 1.0
    return float(beta.ppf(1 - alpha, successes + 1, trials - successes))


@dataclass(frozen=True)
class EpsilonBound:
    """The best (largest) lower bound found, with the threshold and rates that gave it."""

    epsilon: float
    threshold: float | None
    tpr: float
    fpr: float
    form: str  # "tpr/fpr" or "tnr/fnr"
    alpha_per_test: float

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(float(value), 6)

        return {"epsilon_lower_bound": round(self.epsilon, 4), "threshold": rounded(self.threshold),
                "tpr": round(self.tpr, 4), "fpr": round(self.fpr, 4), "form": self.form,
                "alpha_per_test": float(f"{self.alpha_per_test:.3g}")}


def threshold_grid(scores: np.ndarray, count: int = THRESHOLDS) -> np.ndarray:
    """Distinct quantiles of the pooled scores (a member is predicted when its score >= the threshold)."""
    return np.unique(np.quantile(scores, np.linspace(0.0, 1.0, count)))


def epsilon_lower_bound(member_scores: Sequence[float], non_member_scores: Sequence[float], delta: float,
                        confidence: float = 0.95, comparisons: int = 1) -> EpsilonBound:
    """Largest eps lower bound over the threshold grid, both forms; higher scores mean "member".

    `comparisons` is the number of such bounds reported together (audits), for the Bonferroni correction.
    """
    members = np.asarray(member_scores, dtype=np.float64)
    outsiders = np.asarray(non_member_scores, dtype=np.float64)
    if len(members) == 0 or len(outsiders) == 0:
        raise ValueError("need at least one member and one non-member score")
    grid = threshold_grid(np.concatenate([members, outsiders]))
    alpha = (1.0 - confidence) / (2 * len(grid) * max(comparisons, 1))
    best = EpsilonBound(0.0, None, 0.0, 0.0, "none", alpha)
    for threshold in grid:
        true_pos = int(np.sum(members >= threshold))
        false_pos = int(np.sum(outsiders >= threshold))
        tpr_lo = clopper_pearson_lower(true_pos, len(members), alpha)
        fpr_hi = clopper_pearson_upper(false_pos, len(outsiders), alpha)
        for form, (high, low) in (("tpr/fpr", (tpr_lo, fpr_hi)), ("tnr/fnr", (1.0 - fpr_hi, 1.0 - tpr_lo))):
            if high - delta > 0 and low > 0:
                eps = math.log((high - delta) / low)
                if eps > best.epsilon:
                    best = EpsilonBound(eps, float(threshold), true_pos / len(members), false_pos / len(outsiders),
                                        form, alpha)
    return best


def group_claim(epsilon: float, delta: float, group_size: int) -> tuple[float, float]:
    """(eps, delta)-DP for one record implies (k eps, k e^((k-1) eps) delta) for k records."""
    k = group_size
    if k == 1:
        return epsilon, delta
    return k * epsilon, k * math.exp(min((k - 1) * epsilon, 700.0)) * delta


@dataclass(frozen=True)
class Audit:
    """One membership game: scores of records that were trained on (k copies each) and of ones that were not."""

    name: str
    member_scores: list[float]
    non_member_scores: list[float]
    group_size: int = 1


def audit_epsilons(audits: list[Audit], claim: dict[str, Any] | None, confidence: float,
                   default_delta: float = 1e-5) -> dict[str, Any]:
    """Every audit's eps lower bound, next to the claim it must not exceed, and the overall verdict.

    `claim` is the run's privacy_report.json (keys `epsilon`, `delta`, ...) or None. Verdict: FAIL when any
    bound exceeds its (group) claim, PASS when none does, NO_CLAIM for runs without a DP guarantee.
    """
    rows = []
    usable = [a for a in audits if a.member_scores and a.non_member_scores]
    claims = [_claim_for(a, claim, default_delta) for a in usable]
    tested = sum(delta < 1.0 for _, delta in claims)  # the Bonferroni split covers only the bounds computed
    for audit, (claimed_eps, claimed_delta) in zip(usable, claims, strict=True):
        row: dict[str, Any] = {"audit": audit.name, "group_size": audit.group_size,
                               "members": len(audit.member_scores), "non_members": len(audit.non_member_scores),
                               "claimed_epsilon": _finite(claimed_eps), "delta": float(f"{claimed_delta:.3g}")}
        if claimed_delta >= 1.0:  # the group claim says nothing: no bound can contradict it
            rows.append({**row, "epsilon_lower_bound": None, "status": "vacuous"})
            continue
        bound = epsilon_lower_bound(audit.member_scores, audit.non_member_scores, claimed_delta, confidence,
                                    comparisons=tested)
        status = "n/a" if claimed_eps is None else ("FAIL" if bound.epsilon > claimed_eps else "PASS")
        rows.append({**row, **bound.to_dict(), "status": status})
    bounds = [r["epsilon_lower_bound"] for r in rows if r.get("epsilon_lower_bound") is not None]
    verdict = "NO_CLAIM" if claim is None else ("FAIL" if any(r["status"] == "FAIL" for r in rows) else "PASS")
    return {
        "confidence": confidence,
        "claimed": None if claim is None else {k: claim.get(k) for k in ("epsilon", "delta", "noise_multiplier")},
        "max_epsilon_lower_bound": max(bounds) if bounds else None,
        "audits": rows,
        "verdict": verdict,
    }


def _claim_for(audit: Audit, claim: dict[str, Any] | None, default_delta: float) -> tuple[float | None, float]:
    """(epsilon, delta) the audit is checked against: the run's claim, group-adjusted; no claim: (None, default)."""
    if claim is None:
        return None, default_delta
    return group_claim(float(claim["epsilon"]), float(claim["delta"]), audit.group_size)


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)
