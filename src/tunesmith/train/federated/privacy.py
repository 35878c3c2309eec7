"""Privacy accounting of federated DP: one Gaussian mechanism per round, composed with opacus' RDP accountant.

What is protected is a whole client (user-level DP): each round releases the clients' clipped updates (norm at
most C = `clipping_norm`) with Gaussian noise of standard deviation sigma * C (`noise_multiplier` sigma).

- `central` (Flower's client-side fixed clipping + server noise, McMahan et al. 2018): the server adds
  N(0, (sigma * C)^2) to the sum of the clipped updates (std sigma * C / n on the mean); adding or removing one
  client moves the sum by at most C, so each round is a Gaussian mechanism with noise multiplier sigma.
- `local` (Flower's `LocalDpMod`): each client adds N(0, (sigma * C)^2) to its own update, so the server never
  sees it clean. A client's release is compared across two datasets of that client, whose clipped updates can
  differ by 2C: the accounted noise multiplier is sigma / 2.

Clients are sampled as a fixed-size subset, not by Poisson sampling, so no amplification by subsampling is
claimed: every round is accounted with sample rate 1 (conservative, and exact when every client trains each
round). The report uses the keys of the DP strategy's `privacy_report.json`.
"""

from __future__ import annotations

from typing import Any


class RoundAccountant:
    """Counts DP releases (rounds) and converts them to (epsilon, delta) with opacus' RDP accountant."""

    accountant_name = "rdp"

    def __init__(self, noise_multiplier: float, clipping_norm: float, delta: float, mode: str) -> None:
        self.noise_multiplier = noise_multiplier
        self.clipping_norm = clipping_norm
        self.delta = delta
        self.mode = mode
        self.rounds = 0

    @property
    def accounted_noise_multiplier(self) -> float:
        """Noise std over the sensitivity of one release (sigma, or sigma / 2 for local DP)."""
        return self.noise_multiplier / 2 if self.mode == "local" else self.noise_multiplier

    def step(self) -> None:
        """One more round was released."""
        self.rounds += 1

    def epsilon(self) -> float:
        """Epsilon spent so far at `delta` (0 before the first round)."""
        if self.rounds == 0:
            return 0.0
        from opacus.accountants import RDPAccountant

        accountant = RDPAccountant()
        accountant.history = [(self.accounted_noise_multiplier, 1.0, self.rounds)]
        return float(accountant.get_epsilon(delta=self.delta))

    def report(self) -> dict[str, Any]:
        """privacy_report.json: the DP strategy's keys, with the unit (a client) and mode stated."""
        return {
            "epsilon": self.epsilon(), "delta": self.delta, "noise_multiplier": self.noise_multiplier,
            "sample_rate": 1.0, "steps": self.rounds, "accountant": self.accountant_name,
            "max_grad_norm": self.clipping_norm, "target_epsilon": None, "unit": "client", "mode": self.mode,
            "accounted_noise_multiplier": self.accounted_noise_multiplier,
        }


def local_dp_epsilon_argument(noise_multiplier: float, delta: float) -> float:
    """The `epsilon` to give Flower's `LocalDpMod` (sensitivity C) so its noise std is noise_multiplier * C.

    `LocalDpMod` sets std = sensitivity * sqrt(2 ln(1.25 / delta)) / epsilon (the classic Gaussian mechanism);
    that per-round epsilon is only its calibration knob, the reported epsilon comes from `RoundAccountant`.
    """
    import math

    return math.sqrt(2 * math.log(1.25 / delta)) / noise_multiplier
