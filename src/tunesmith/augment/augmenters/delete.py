"""EDA random deletion: each word is dropped with probability `rate`; one word always stays."""

from __future__ import annotations

import random

from tunesmith.augment import ops
from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, perturb_jobs
from tunesmith.config.augment_schema import DeleteAugConfig


@AUGMENTERS.register("delete")
class DeleteAugmenter:
    chunk_size = 1000

    def __init__(self, config: DeleteAugConfig, ctx: AugmentContext):
        self.rate = config.rate
        self.roles, self.fields = ctx.targets(config)

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        return perturb_jobs("delete", jobs, self.op, self.roles, self.fields)

    def op(self, text: str, rng: random.Random) -> str:
        return ops.random_delete(text, rng, self.rate)
