"""EDA random insertion: a WordNet synonym of a random word is inserted at a random position."""

from __future__ import annotations

import random

from tunesmith.augment import ops
from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, perturb_jobs
from tunesmith.augment.wordnet import wordnet_lexicon
from tunesmith.config.augment_schema import InsertAugConfig


@AUGMENTERS.register("insert")
class InsertAugmenter:
    chunk_size = 1000

    def __init__(self, config: InsertAugConfig, ctx: AugmentContext):
        self.rate = config.rate
        self.lexicon = wordnet_lexicon()  # fails here, before any work, when WordNet is missing
        self.roles, self.fields = ctx.targets(config)

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        return perturb_jobs("insert", jobs, self.op, self.roles, self.fields)

    def op(self, text: str, rng: random.Random) -> str:
        return ops.random_insert(text, rng, self.rate, self.lexicon)
