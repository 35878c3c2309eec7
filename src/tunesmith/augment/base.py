"""What an augmenter is: a registered plug-in that turns jobs (a parent record and a seed) into candidates.

    @AUGMENTERS.register("swap")
    class SwapAugmenter:
        chunk_size = 1000                      # jobs per call (the progress bar advances per call)
        def __init__(self, config: SwapAugConfig, ctx: AugmentContext): ...
        def augment(self, jobs: list[Job]) -> list[Candidate | None]: ...   # one per job, None: no change

The name is the `augment:` config block's name. Augmenters only propose: the runner (`augment.runner`) decides
how many jobs each record gets, sends every candidate through the quality gate and keeps what the budget needs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

from tunesmith.augment.slots import map_slots
from tunesmith.config.augment_schema import AugmentConfig
from tunesmith.config.schema import ModelConfig
from tunesmith.core.records import Record
from tunesmith.core.registry import Registry

if TYPE_CHECKING:
    from tunesmith.augment.generation import LanguageModel


@dataclass(frozen=True)
class Job:
    """Make one candidate from `parent`, drawing every random choice from `seed`."""

    parent_index: int
    parent: Record
    parent_id: str
    seed: int
    round: int = 1


@dataclass
class Candidate:
    """An augmented record before the quality gate."""

    record: Record
    augmenter: str
    job: Job
    other_parent_ids: list[str] = field(default_factory=list)
    """Synthetic records: the other examples shown besides the parent."""


class Augmenter(Protocol):
    chunk_size: int

    def augment(self, jobs: list[Job]) -> list[Candidate | None]: ...


AUGMENTERS: Registry[type] = Registry("augmenter")


def derive_seed(base_seed: int, *parts: object) -> int:
    """A 63-bit seed from the run seed and any identifying parts; independent of processing order."""
    text = ":".join(str(p) for p in (base_seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


@dataclass
class AugmentContext:
    """What augmenters share: the config, the originals (ids, labels), the seed and loaded models."""

    config: AugmentConfig
    records: list[Record]
    ids: list[str]
    seed: int
    model_config: ModelConfig = field(default_factory=ModelConfig)
    _models: dict[str, Any] = field(default_factory=dict)

    def targets(self, block: Any) -> tuple[list[str], list[str]]:
        """(roles, fields) an augmenter block changes: its own, else the `augment:` defaults."""
        roles = block.roles if getattr(block, "roles", None) is not None else self.config.roles
        fields = block.fields if getattr(block, "fields", None) is not None else self.config.fields
        return list(roles), list(fields)

    def language_model(self, source: str | None) -> LanguageModel:
        """A causal LM for prompting (`source` or the run's `model.source`), loaded once per source."""
        from tunesmith.augment.generation import load_language_model

        cfg = replace(self.model_config, source=source) if source else self.model_config
        if cfg.source not in self._models:
            self._models[cfg.source] = load_language_model(cfg)
        return self._models[cfg.source]  # type: ignore[no-any-return]

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """Any other shared object (a translator, a tagger), built on first use."""
        if key not in self._models:
            self._models[key] = build()
        return self._models[key]


TextOp = Callable[[str, random.Random], str]


def perturb_jobs(
    name: str, jobs: Sequence[Job], op: TextOp, roles: list[str], fields: list[str]
) -> list[Candidate | None]:
    """Apply a text operator to every slot of each job's parent, one `random.Random(job.seed)` per job."""
    out: list[Candidate | None] = []
    for job in jobs:
        rng = random.Random(job.seed)
        record = map_slots(job.parent, lambda text, rng=rng: op(text, rng), roles, fields)  # type: ignore[misc]
        out.append(Candidate(record, name, job) if record != job.parent else None)
    return out
