"""Membership inference: which records was the model trained on?

Members are a seeded sample of the training split and non-members a seeded sample of the held-out (validation and
test) records, both chosen before training and stored in the run folder, so the audit after training (or a later
`tunesmith audit`) scores exactly the same records.

Each attack turns the target tokens' log-probabilities (what training put its loss on) into a score, higher
meaning "member":
- `loss` (Yeom et al. 2018): the mean log-probability (minus the loss).
- `reference` (Carlini et al. 2021/2022, Mireshghallah et al. 2022): tuned minus base-model mean log-probability,
  the base model as reference, so records that are easy for any model stop looking like members.
- `min_k` (Shi et al. 2024, Min-K% Prob): the mean of the lowest k% token log-probabilities.
- `zlib` (Carlini et al. 2021): minus the log-perplexity divided by the zlib-compressed length of the scored text.
Each is reported with its ROC AUC and its TPR at 1% FPR (scikit-learn's `roc_auc_score` / `roc_curve`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from tunesmith.core.records import Record


def choose_members(train: Sequence[Record], heldout: Sequence[Record], members: int, non_members: int,
                   seed: int) -> tuple[list[Record], list[Record]]:
    """Seeded samples without replacement (capped at what each pool holds), in pool order."""
    rng = np.random.default_rng([seed, 0x3E3B])
    chosen_in = sorted(rng.permutation(len(train))[:members].tolist())
    chosen_out = sorted(rng.permutation(len(heldout))[:non_members].tolist())
    return [train[i] for i in chosen_in], [heldout[i] for i in chosen_out]


def loss_score(logprobs: np.ndarray) -> float:
    return float(np.mean(logprobs))


def min_k_score(logprobs: np.ndarray, fraction: float) -> float:
    """Mean of the ceil(fraction * n) lowest token log-probabilities."""
    k = max(1, math.ceil(fraction * len(logprobs)))
    return float(np.mean(np.sort(logprobs)[:k]))


def zlib_score(logprobs: np.ndarray, text: str) -> float:
    """Minus (log-perplexity / zlib entropy): log-perplexity = mean negative log-prob, entropy = compressed bytes."""
    entropy = len(zlib.compress(text.encode("utf-8")))
    return float(np.mean(logprobs)) / entropy  # mean log-prob = minus the log-perplexity


def attack_scores(attack: str, tuned: list[np.ndarray], base: list[np.ndarray] | None, texts: list[str],
                  min_k_fraction: float) -> list[float]:
    """One score per record for `attack` (higher = more likely a member)."""
    if attack == "loss":
        return [loss_score(lp) for lp in tuned]
    if attack == "reference":
        if base is None:
            raise ValueError("the reference attack needs the base model's log-probabilities")
        return [loss_score(t) - loss_score(b) for t, b in zip(tuned, base, strict=True)]
    if attack == "min_k":
        return [min_k_score(lp, min_k_fraction) for lp in tuned]
    if attack == "zlib":
        return [zlib_score(lp, text) for lp, text in zip(tuned, texts, strict=True)]
    raise ValueError(f"unknown attack {attack!r}; known: loss, reference, min_k, zlib")


def roc_summary(member_scores: Sequence[float], non_member_scores: Sequence[float],
                max_fpr: float = 0.01) -> dict[str, float]:
    """ROC AUC and the highest TPR whose FPR is at most `max_fpr` (members are the positive class)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    labels = np.r_[np.ones(len(member_scores)), np.zeros(len(non_member_scores))]
    scores = np.r_[np.asarray(member_scores, dtype=np.float64), np.asarray(non_member_scores, dtype=np.float64)]
    fpr, tpr, _ = roc_curve(labels, scores)
    return {"auc": float(roc_auc_score(labels, scores)), "tpr_at_1pct_fpr": float(np.max(tpr[fpr <= max_fpr]))}


def membership_report(attacks: list[str], member_lp: dict[str, list[np.ndarray]],
                      non_member_lp: dict[str, list[np.ndarray]], member_texts: list[str],
                      non_member_texts: list[str], min_k_fraction: float) -> dict[str, Any]:
    """Scores and ROC figures per attack; `*_lp` map "tuned" (and "base", for the reference attack) to log-probs."""
    report: dict[str, Any] = {"members": len(member_texts), "non_members": len(non_member_texts), "attacks": {}}
    if not member_texts or not non_member_texts:
        return report
    for attack in attacks:
        inside = attack_scores(attack, member_lp["tuned"], member_lp.get("base"), member_texts, min_k_fraction)
        outside = attack_scores(attack, non_member_lp["tuned"], non_member_lp.get("base"), non_member_texts,
                                min_k_fraction)
        figures = roc_summary(inside, outside)
        report["attacks"][attack] = {**{k: round(v, 4) for k, v in figures.items()},
                                     "member_scores": [round(s, 6) for s in inside],
                                     "non_member_scores": [round(s, 6) for s in outside]}
    return report
