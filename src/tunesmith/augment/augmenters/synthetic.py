"""Synthetic examples, self-instruct style (Wang et al. 2023): the LLM writes new examples from seed examples.

Each job's parent record and `seed_examples - 1` others (of the same label, for label data) are shown; the model
writes one new input of the same kind. Label records keep the parent's label (the quality gate's label-drift
check then drops texts a classifier trained on the originals places elsewhere). Other records get their answer in
a second step: the seed examples as a few-shot conversation, then the new input (chats: the first user turn and
its answer, after the parent's system message).
"""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict

from tunesmith.augment.base import AUGMENTERS, AugmentContext, Candidate, Job, derive_seed
from tunesmith.augment.generation import generate_replies
from tunesmith.config.augment_schema import SyntheticAugConfig
from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Message, PairRecord, Record

WHAT = {
    "completion": "instructions given to an assistant",
    "pair": "source texts",
    "chat": "user messages sent to an assistant",
}


def example_io(record: Record) -> tuple[str, str] | None:
    """(input, output) of a record as a seed example; None for a chat without a first user/assistant exchange."""
    if isinstance(record, LabelRecord):
        return record.text, record.label
    if isinstance(record, CompletionRecord):
        return record.prompt, record.completion
    if isinstance(record, PairRecord):
        return record.source, record.target
    turns = [m for m in record.messages if m.role != "system"]
    if len(turns) >= 2 and turns[0].role == "user" and turns[1].role == "assistant":
        return turns[0].content, turns[1].content
    return None


@AUGMENTERS.register("synthetic")
class SyntheticAugmenter:
    def __init__(self, config: SyntheticAugConfig, ctx: AugmentContext):
        self.config = config
        self.ctx = ctx
        self.chunk_size = config.batch_size * 2
        self.lm = ctx.language_model(config.model)
        self.pools: dict[str | None, list[int]] = defaultdict(list)
        for index, record in enumerate(ctx.records):
            if example_io(record) is not None:
                self.pools[record.label if isinstance(record, LabelRecord) else None].append(index)

    def augment(self, jobs: list[Job]) -> list[Candidate | None]:
        c = self.config
        shown = [self._examples(job) for job in jobs]
        prompts = [
            [Message("user", self._prompt(job.parent, examples))] for job, examples in zip(jobs, shown, strict=True)
        ]
        seeds = [derive_seed(job.seed, "input") for job in jobs]
        inputs = generate_replies(self.lm, prompts, c.max_new_tokens, c.batch_size, c.temperature, seeds)
        outputs = self._answers(jobs, shown, inputs)
        out: list[Candidate | None] = []
        for job, examples, new_input, new_output in zip(jobs, shown, inputs, outputs, strict=True):
            if not new_input.strip() or not new_output.strip():
                out.append(None)
                continue
            record = _new_record(job.parent, new_input, new_output)
            others = [self.ctx.ids[i] for i in examples if i != job.parent_index]
            out.append(Candidate(record, "synthetic", job, other_parent_ids=others))
        return out

    def _examples(self, job: Job) -> list[int]:
        """The parent and up to `seed_examples - 1` other records of its pool, in a seeded order."""
        rng = random.Random(job.seed)
        label = job.parent.label if isinstance(job.parent, LabelRecord) else None
        others = [i for i in self.pools[label] if i != job.parent_index]
        chosen = [job.parent_index, *rng.sample(others, min(len(others), self.config.seed_examples - 1))]
        rng.shuffle(chosen)
        return chosen

    def _prompt(self, parent: Record, examples: list[int]) -> str:
        texts = [example_io(self.ctx.records[i]) for i in examples]
        block = "\n\n".join(f"Example {n}:\n{io[0]}" for n, io in enumerate(texts, start=1) if io)
        if isinstance(parent, LabelRecord):
            what, clause = f'texts labelled "{parent.label}"', f', with the label "{parent.label}"'
        else:
            what, clause = WHAT[parent.kind], ""
        return self.config.prompt.format(what=what, examples=block, label_clause=clause)

    def _answers(self, jobs: list[Job], shown: list[list[int]], inputs: list[str]) -> list[str]:
        """Label records keep the parent's label; others are answered few-shot from the seed examples."""
        c = self.config
        todo = [n for n, job in enumerate(jobs) if not isinstance(job.parent, LabelRecord) and inputs[n].strip()]
        answers = [job.parent.label if isinstance(job.parent, LabelRecord) else "" for job in jobs]
        prompts = [self._few_shot(jobs[n].parent, shown[n], inputs[n]) for n in todo]
        seeds = [derive_seed(jobs[n].seed, "output") for n in todo]
        for n, reply in zip(
            todo, generate_replies(self.lm, prompts, c.max_new_tokens, c.batch_size, c.temperature, seeds), strict=True
        ):
            answers[n] = reply
        return answers

    def _few_shot(self, parent: Record, examples: list[int], new_input: str) -> list[Message]:
        messages = [m for m in parent.messages if m.role == "system"][:1] if isinstance(parent, ChatRecord) else []
        for index in examples:
            io = example_io(self.ctx.records[index])
            if io:
                messages += [Message("user", io[0]), Message("assistant", io[1])]
        return [*messages, Message("user", new_input)]


def _new_record(parent: Record, new_input: str, new_output: str) -> Record:
    """A record of the parent's kind (origin and metadata carried over; the runner retags the origin)."""
    if isinstance(parent, LabelRecord):
        return dataclasses.replace(parent, text=new_input)
    if isinstance(parent, CompletionRecord):
        return dataclasses.replace(parent, prompt=new_input, completion=new_output)
    if isinstance(parent, PairRecord):
        return dataclasses.replace(parent, source=new_input, target=new_output)
    system = [m for m in parent.messages if m.role == "system"][:1]
    turns = (*system, Message("user", new_input), Message("assistant", new_output))
    return dataclasses.replace(parent, messages=turns)
