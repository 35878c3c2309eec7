"""Poisson sampling for DP-SGD, as a `BatchSource` that is a pure function of (secret seed, step).

The accountants (RDP, PRV) assume each optimizer step's batch is drawn by Poisson sampling: every example joins
independently with probability q, so the batch size varies. A shuffled fixed-size batch is a different mechanism
(sampling without replacement) whose epsilon those accountants do not bound; `DPStrategy` therefore replaces the
loop's shuffled batches with this source and refuses any other.

Gradient accumulation: one optimizer step is one Poisson draw (one accountant step). The loop asks for
`grad_accum_steps` micro-batches per step; micro-batch j of a step holds every `grad_accum_steps`-th example of
the draw starting at j, so together they are exactly the draw. Micro-batches carry the raw items (`{"items":
[...]}`), not tensors: the strategy collates them in passes of at most `privacy.max_physical_batch_size` examples,
whatever the draw's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class PoissonBatches:
    """Each step draws every item independently with probability `sample_rate` (seeded by (seed, step))."""

    items: Sequence[Any]
    sample_rate: float
    collate: Callable[[list[Any]], dict[str, Any]]
    seed: int
    grad_accum_steps: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.sample_rate <= 1:
            raise ValueError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        if self.grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {self.grad_accum_steps}")

    def steps_per_epoch(self) -> int:
        """Draws per "epoch": 1 / q, as Opacus counts them (an epoch sees each example once on average)."""
        return max(1, math.ceil(1 / self.sample_rate - 1e-9))

    def num_batches(self) -> int:
        return self.steps_per_epoch() * self.grad_accum_steps

    def sample(self, step: int) -> list[int]:
        """Indices of the items drawn for optimizer step `step` (the same on every machine and every resume)."""
        import numpy as np

        rng = np.random.default_rng([self.seed, step])
        return [int(i) for i in np.flatnonzero(rng.random(len(self.items)) < self.sample_rate)]

    def batch(self, epoch: int, index: int) -> dict[str, Any]:
        if not 0 <= index < self.num_batches():
            raise IndexError(f"batch {index} out of range: an epoch has {self.num_batches()} batches")
        step = epoch * self.steps_per_epoch() + index // self.grad_accum_steps
        part = self.sample(step)[index % self.grad_accum_steps :: self.grad_accum_steps]
        return {"items": [self.items[i] for i in part], "indices": part, "step": step}
