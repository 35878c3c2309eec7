"""The `privacy:` section: DP-SGD (strategy `dp`), its privacy budget and its accountant.

Give either `target_epsilon` (the noise multiplier is calibrated to spend at most that budget over the whole run)
or `noise_multiplier` (the run reports the epsilon it spent). Setting either while `train.strategy` is `plain`
switches the run to `dp`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tunesmith.core.errors import Problem

if TYPE_CHECKING:
    from tunesmith.config.schema import TrainConfig


@dataclass
class PrivacyConfig:
    """Differentially private training (DP-SGD): per-example clipping, Gaussian noise, Poisson sampling."""

    target_epsilon: float | None = None
    """Privacy budget of the whole run; the noise multiplier is calibrated to spend at most this (typical: 1 to 8)."""
    delta: float = 1e-5
    """Probability the epsilon guarantee may fail; keep it well below 1 / number of training examples."""
    noise_multiplier: float | None = None
    """Noise std as a multiple of `max_grad_norm`, given instead of `target_epsilon` (the run reports epsilon)."""
    max_grad_norm: float = 1.0
    """Each example's gradient is clipped to this L2 norm before noise is added (the sensitivity)."""
    accountant: Literal["rdp", "prv"] = "rdp"
    """Privacy accountant (Opacus): `rdp` (Renyi DP, a slightly loose upper bound) or `prv` (tighter, numerical)."""
    max_physical_batch_size: int | None = None
    """Most examples in one forward/backward pass (a bigger Poisson draw is split, bounding memory); default
    `train.batch_size` + 3 x sqrt of it, so a draw, whose size varies, rarely needs an extra pass."""
    secret_seed: int | None = None
    """Seed of the Poisson sampling and the noise; default: drawn from the OS's secure source once per run and kept
    only in the checkpoints. Set it only for reproducible experiments: whoever knows it can remove the noise."""


def resolve_strategy(privacy: PrivacyConfig, train: TrainConfig) -> None:
    """A budget or noise multiplier on a `plain` run means DP-SGD was meant: switch the strategy, and say so."""
    if train.strategy == "plain" and (privacy.target_epsilon is not None or privacy.noise_multiplier is not None):
        train.strategy = "dp"
        print("privacy: target_epsilon / noise_multiplier set, so train.strategy is now 'dp' (DP-SGD)",
              file=sys.stderr)


def privacy_problems(privacy: PrivacyConfig, train: TrainConfig) -> list[Problem]:
    """Every rule the `privacy:` block breaks (only checked for a `dp` run; the loader runs `resolve_strategy`
    first)."""
    if train.strategy != "dp":
        return []
    problems: list[Problem] = []
    eps, sigma = privacy.target_epsilon, privacy.noise_multiplier
    if eps is None and sigma is None:
        problems.append(Problem("privacy.target_epsilon", None, "train.strategy is 'dp' but neither "
                                "privacy.target_epsilon nor privacy.noise_multiplier is set",
                                "set one: --privacy.target_epsilon=8 (calibrates the noise) or "
                                "--privacy.noise_multiplier=1.0 (reports epsilon)"))
    elif eps is not None and sigma is not None:
        problems.append(Problem("privacy.noise_multiplier", None, f"both privacy.target_epsilon ({eps}) and "
                                f"privacy.noise_multiplier ({sigma}) are set",
                                "keep one: target_epsilon calibrates the noise multiplier itself"))
    if eps is not None and not eps > 0:
        problems.append(Problem("privacy.target_epsilon", None, f"got {eps!r}, expected a positive number"))
    if sigma is not None and not sigma >= 0:
        problems.append(Problem("privacy.noise_multiplier", None, f"got {sigma!r}, expected 0 or more",
                                "0 turns the noise off (clipping only, no privacy guarantee)"))
    if not 0 < privacy.delta < 1:
        problems.append(Problem("privacy.delta", None, f"got {privacy.delta!r}, expected a probability in (0, 1)",
                                "typical: 1e-5, below 1 / number of training examples"))
    if not privacy.max_grad_norm > 0:
        problems.append(Problem("privacy.max_grad_norm", None, f"got {privacy.max_grad_norm!r}, expected a "
                                "positive number"))
    cap = privacy.max_physical_batch_size
    if cap is not None and cap < 1:
        problems.append(Problem("privacy.max_physical_batch_size", None, f"got {cap!r}, expected a positive "
                                "integer or null"))
    if train.gradient_checkpointing:
        problems.append(Problem("train.gradient_checkpointing", None, "DP-SGD's per-example gradients are "
                                "captured by hooks that a recomputed forward pass would confuse",
                                "set train.gradient_checkpointing=false for a dp run"))
    return problems
