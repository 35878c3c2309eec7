"""Typos: a share of words get one keyboard-neighbour substitution, dropped, doubled or transposed letter."""

from __future__ import annotations

import random

from tunesmith.augment import ops
from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, perturb_jobs
from tunesmith.config.augment_schema import CharNoiseAugConfig


@AUGMENTERS.register("char_noise")
class CharNoiseAugmenter:
    chunk_size = 1000

    def __init__(self, config: CharNoiseAugConfig, ctx: AugmentContext):
        self.rate = config.rate
        self.kinds = tuple(config.kinds)
        self.roles, self.fields = ctx.targets(config)

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        return perturb_jobs("char_noise", jobs, self.op, self.roles, self.fields)

    def op(self, text: str, rng: random.Random) -> str:
        return ops.char_noise(text, rng, self.rate, self.kinds)
