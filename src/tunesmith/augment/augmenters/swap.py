"""EDA random swap: two random words trade places, `max(1, int(rate * words))` times."""

from __future__ import annotations

import random

from tunesmith.augment import ops
from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, perturb_jobs
from tunesmith.config.augment_schema import SwapAugConfig


@AUGMENTERS.register("swap")
class SwapAugmenter:
    chunk_size = 1000

    def __init__(self, config: SwapAugConfig, ctx: AugmentContext):
        self.rate = config.rate
        self.roles, self.fields = ctx.targets(config)

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        return perturb_jobs("swap", jobs, self.op, self.roles, self.fields)

    def op(self, text: str, rng: random.Random) -> str:
        return ops.random_swap(text, rng, self.rate)
