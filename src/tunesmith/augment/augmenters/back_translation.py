"""Back-translation: each chosen text is translated into a pivot language and back.

The translator is pluggable (`augment.back_translation.translator`): `seq2seq` loads MarianMT/NLLB models
(`forward_model`, `backward_model`: folders or hub ids), `llm` prompts a chat model (`llm_model`, or the base).
Placeholders are cut out before translation and put back after (`translate.split_protected`).
"""

from __future__ import annotations

from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, derive_seed
from tunesmith.augment.slots import replace_slots, slot_texts
from tunesmith.augment.translate import LlmTranslator, Seq2SeqTranslator, Translator, round_trip
from tunesmith.config.augment_schema import BackTranslationAugConfig


@AUGMENTERS.register("back_translation")
class BackTranslationAugmenter:
    def __init__(self, config: BackTranslationAugConfig, ctx: AugmentContext):
        self.config = config
        self.ctx = ctx
        self.roles, self.fields = ctx.targets(config)
        self.chunk_size = config.batch_size * 4
        self.forward, self.backward = self._translators()

    def _translators(self) -> tuple[Translator, Translator]:
        c = self.config
        settings = {"batch_size": c.batch_size, "max_new_tokens": c.max_new_tokens, "temperature": c.temperature}
        if c.translator == "llm":
            lm = self.ctx.language_model(c.llm_model)
            translator = LlmTranslator(lm, c.translate_prompt, **settings)  # type: ignore[arg-type]
            return translator, translator
        from tunesmith.models.device import select_device

        device = select_device(self.ctx.model_config.device)

        def load(source: str) -> Translator:
            return self.ctx.cached(f"seq2seq:{source}", lambda: Seq2SeqTranslator.load(source, device, **settings))  # type: ignore[no-any-return]

        forward = load(str(c.forward_model))
        return forward, load(c.backward_model) if c.backward_model else forward

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        slots = [slot_texts(job.parent, self.roles, self.fields) for job in jobs]
        texts = [text for job_slots in slots for _, text in job_slots]
        seed = derive_seed(self.ctx.seed, "back_translation", *(job.seed for job in jobs))
        c = self.config
        translated = iter(round_trip(texts, self.forward, self.backward, c.source_language, c.pivot_language, seed))
        out: list[Candidate | None] = []
        for job, job_slots in zip(jobs, slots, strict=True):
            changed = {key: next(translated) for key, _ in job_slots}
            record = replace_slots(job.parent, changed)
            out.append(Candidate(record, "back_translation", job) if record != job.parent else None)
        return out
