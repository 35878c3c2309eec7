"""LLM paraphrase: a local chat model (the base by default) rewrites each chosen text in other words."""

from __future__ import annotations

from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, derive_seed
from tunesmith.augment.generation import generate_replies
from tunesmith.augment.slots import replace_slots, slot_texts
from tunesmith.config.augment_schema import ParaphraseAugConfig
from tunesmith.core.records import Message


@AUGMENTERS.register("paraphrase")
class ParaphraseAugmenter:
    def __init__(self, config: ParaphraseAugConfig, ctx: AugmentContext):
        self.config = config
        self.roles, self.fields = ctx.targets(config)
        self.chunk_size = config.batch_size * 4
        self.lm = ctx.language_model(config.model)

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        c = self.config
        slots = [slot_texts(job.parent, self.roles, self.fields) for job in jobs]
        prompts = [[Message("user", c.prompt.format(text=text))] for job_slots in slots for _, text in job_slots]
        seeds = [derive_seed(job.seed, key) for job, job_slots in zip(jobs, slots, strict=True) for key, _ in job_slots]
        replies = iter(generate_replies(self.lm, prompts, c.max_new_tokens, c.batch_size, c.temperature, seeds))
        out: list[Candidate | None] = []
        for job, job_slots in zip(jobs, slots, strict=True):
            changed = {key: next(replies) for key, _ in job_slots}
            record = replace_slots(job.parent, changed)
            empty = any(not text.strip() for text in changed.values())
            out.append(None if empty or record == job.parent else Candidate(record, "paraphrase", job))
        return out
