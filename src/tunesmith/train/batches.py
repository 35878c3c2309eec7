"""Micro-batches as a pure function of (seed, epoch, index), so a resumed run can jump to the exact batch.

No DataLoader workers and no iterator state to checkpoint: the order of epoch `e` is a permutation drawn from a
generator seeded with `(seed, e)`, and batch `i` of that epoch is collated on demand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class BatchSource(Protocol):
    """What the loop reads batches from. A strategy may replace it (e.g. DP-SGD's Poisson sampling)."""

    def num_batches(self) -> int:
        """Micro-batches per epoch."""
        ...

    def batch(self, epoch: int, index: int) -> dict[str, Any]:
        """Micro-batch `index` of `epoch`, collated."""
        ...


@dataclass
class EpochBatches:
    """Fixed-size micro-batches over `items`, reshuffled each epoch from (seed, epoch)."""

    items: Sequence[Any]
    batch_size: int
    collate: Callable[[list[Any]], dict[str, Any]]
    seed: int = 0
    shuffle: bool = True
    _orders: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def num_batches(self) -> int:
        return math.ceil(len(self.items) / self.batch_size)  # the last batch may be smaller

    def order(self, epoch: int) -> list[int]:
        """The item order of `epoch`: the same on every machine and every resume."""
        if epoch not in self._orders:
            import numpy as np

            if self.shuffle:
                rng = np.random.default_rng([self.seed, epoch])
                self._orders[epoch] = [int(i) for i in rng.permutation(len(self.items))]
            else:
                self._orders[epoch] = list(range(len(self.items)))
        return self._orders[epoch]

    def batch_indices(self, epoch: int, index: int) -> list[int]:
        if not 0 <= index < self.num_batches():
            raise IndexError(f"batch {index} out of range: an epoch has {self.num_batches()} batches")
        start = index * self.batch_size
        return self.order(epoch)[start : start + self.batch_size]

    def batch(self, epoch: int, index: int) -> dict[str, Any]:
        return self.collate([self.items[i] for i in self.batch_indices(epoch, index)])
