"""The `audit:` section: leakage audits of a training run (`tunesmith audit runs/<id>`, or a stage of `train`).

Three measurements, each from the literature:
- canary exposure (Carlini et al. 2019, "The Secret Sharer"): random secrets such as "my PIN is 492817" are
  inserted into the training split 1, 4 and 16 times; exposure in bits says how much more likely the tuned model
  finds an inserted secret than random ones. Never-inserted reference canaries average about 1/ln 2 = 1.44 bits.
- membership inference: training records (members) and held-out records (non-members), chosen before training,
  scored by the loss, reference-model (base model), min-k% probability and zlib-ratio attacks; AUC and TPR at 1%
  FPR.
- an empirical lower bound on epsilon from each attack's TPR/FPR with Clopper-Pearson bounds (Jagielski et al.
  2020, Nasr et al. 2021), checked against the epsilon a DP run claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tunesmith.config.rules import need_into
from tunesmith.core.errors import Problem

ATTACK_NAMES = ("loss", "reference", "min_k", "zlib")


@dataclass
class AuditConfig:
    """Leakage audits: canaries inserted before training, membership inference and empirical epsilon after it."""

    enabled: bool | None = None
    """Run the audit in `tunesmith train`; null: on for `train.strategy: dp` runs, off otherwise (canaries are
    inserted into the training data, so the adapter learns them)."""
    canary_repetitions: list[int] = field(default_factory=lambda: [1, 4, 16])
    """How many copies of each inserted canary go into the training split, one group of canaries per count."""
    canaries_per_repetition: int = 4
    """Distinct canaries (secrets) inserted for each repetition count; 0 inserts none (membership audit only)."""
    reference_canaries: int = 32
    """Canaries made the same way but never inserted: the baseline (about 1.44 bits) and the audit's non-members."""
    canary_template: str = "my PIN is {secret}"
    """The canary sentence, learned as an assistant answer; `{secret}` is replaced by the random digits."""
    canary_prompt: str = "What is my PIN?"
    """The user turn (prompt, source) that each canary record answers."""
    secret_digits: int = 6
    """Digits of each secret; the secret space R has 10**digits members (6: |R| = 10^6)."""
    exposure_samples: int = 2000
    """Candidate secrets sampled from R to estimate each canary's rank (R is too large to score exhaustively)."""
    exposure_method: Literal["sample", "skewnorm"] = "sample"
    """Headline exposure estimate: `sample` ranks the canary among the sampled candidates (resolves up to about
    log2(samples) bits); `skewnorm` extrapolates a skew-normal fitted to them (Carlini et al. sec. 4.3). Both are
    reported."""
    members: int = 100
    """Training records scored as members by the membership attacks (fewer when the split is smaller)."""
    non_members: int = 100
    """Held-out (validation and test) records scored as non-members."""
    attacks: list[str] = field(default_factory=lambda: list(ATTACK_NAMES))
    """Membership attacks: `loss`, `reference` (tuned minus base-model loss), `min_k` (min-k% prob), `zlib`."""
    min_k_fraction: float = 0.2
    """Share of lowest-probability tokens the `min_k` attack averages."""
    confidence: float = 0.95
    """Confidence of the empirical epsilon lower bound, jointly over every threshold and audit (Bonferroni)."""
    batch_size: int = 32
    """Sequences per scoring batch."""
    seed: int | None = None
    """Seed for the secrets, candidates and member choice; null: `run.seed`."""


def audit_problems(cfg: AuditConfig) -> list[Problem]:
    """Every bound or cross-field rule `cfg` breaks, each naming the field (`audit.<field>`)."""
    problems: list[Problem] = []
    need = need_into(problems, "audit")

    reps = cfg.canary_repetitions
    need(all(r >= 1 for r in reps) and len(set(reps)) == len(reps), "canary_repetitions", reps,
         "distinct positive integers", "e.g. [1, 4, 16]")
    need(cfg.canaries_per_repetition >= 0, "canaries_per_repetition", cfg.canaries_per_repetition, "0 or more")
    need(cfg.reference_canaries >= 0, "reference_canaries", cfg.reference_canaries, "0 or more")
    need(cfg.canary_template.count("{secret}") == 1, "canary_template", cfg.canary_template,
         "text with `{secret}` exactly once", 'e.g. "my PIN is {secret}"')
    need(1 <= cfg.secret_digits <= 12, "secret_digits", cfg.secret_digits, "between 1 and 12")
    need(cfg.exposure_samples >= 10, "exposure_samples", cfg.exposure_samples, "at least 10", "typical: 2000")
    need(cfg.members >= 0 and cfg.non_members >= 0, "members", (cfg.members, cfg.non_members), "0 or more each")
    unknown = [a for a in cfg.attacks if a not in ATTACK_NAMES]
    need(not unknown, "attacks", unknown, f"names from {list(ATTACK_NAMES)}")
    need(0 < cfg.min_k_fraction <= 1, "min_k_fraction", cfg.min_k_fraction, "a share in (0, 1]", "typical: 0.2")
    need(0 < cfg.confidence < 1, "confidence", cfg.confidence, "a probability in (0, 1)", "typical: 0.95")
    need(cfg.batch_size >= 1, "batch_size", cfg.batch_size, "a positive integer")
    return problems
