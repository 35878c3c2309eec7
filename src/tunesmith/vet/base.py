"""What a vetting filter is: a registered plug-in that reads the live records and returns flags.

    @FILTERS.register("quality")
    class QualityFilter:
        statistical = False                   # rules: not capped by `vet.max_flag_share`
        def __init__(self, config: QualityFilterConfig): ...
        def run(self, ctx: VetContext) -> list[Flag]: ...
        summary: dict                         # optional: filter-specific figures for vet_report.json

The runner (`vet.runner`) applies the flags in `FILTER_ORDER`, so each filter sees the records the earlier ones
kept (and their redacted text); it alone decides what is removed, honours the allow-list and writes the
quarantine. The block of `VetConfig` named like the filter is passed to its constructor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.records import Record
from tunesmith.core.registry import Registry
from tunesmith.vet.view import full_text, label_of, prompt_text, response_text

if TYPE_CHECKING:
    import numpy as np

    from tunesmith.vet.perplexity import TextScorer

# cheap rules first (so statistics are not skewed by junk), PII before dedup (redacted copies are copies),
# statistics last, on clean, unique records; poison before label_noise, because a backdoor's records (one
# label, other labels' content) bias the label-noise classifier (bench/vet_poison.py: flips caught 45 -> 48)
FILTER_ORDER = ("quality", "pii", "dedup", "contamination", "outliers", "poison", "label_noise")

Action = Literal["remove", "modify", "flag"]


@dataclass
class Flag:
    """One filter's verdict on one record."""

    record_id: str
    reason: str
    """Human sentence: what was found, e.g. 'near-duplicate of 3f2a9c1b0d4e (Jaccard 0.91)'."""
    score: float
    """Strength of the evidence; higher is surer. Statistical filters are capped by keeping the top scores."""
    action: Action = "remove"
    replacement: Record | None = None
    """For `modify`: the changed record (e.g. with PII redacted)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Filter-specific facts, e.g. `kept_id`, `suggested_label`, `entities`, `trigger`."""


class VetFilter(Protocol):
    statistical: bool

    def run(self, ctx: VetContext) -> list[Flag]: ...


FILTERS: Registry[type] = Registry("vetting filter")


@dataclass
class VetContext:
    """The live records (after earlier filters) and what filters share: config, seed, eval data, embeddings."""

    ids: list[str]
    records: list[Record]
    config: VetConfig
    seed: int = 0
    eval_ids: list[str] = field(default_factory=list)
    eval_records: list[Record] = field(default_factory=list)
    model_scorer: TextScorer | None = None
    """Base-model text scorer (`vet.perplexity.causal_lm_scorer`), set by the recipe for `outliers.perplexity`."""
    _embeddings: Any = None

    def texts(self) -> list[str]:
        return [full_text(r) for r in self.records]

    def prompts(self) -> list[str]:
        return [prompt_text(r) for r in self.records]

    def responses(self) -> list[str]:
        return [response_text(r) for r in self.records]

    def labels(self) -> list[str | None]:
        return [label_of(r) for r in self.records]

    def embeddings(self) -> np.ndarray:
        """L2-normalised embeddings of the live records' full text (`vet.embedding` backend), computed once."""
        if self._embeddings is None:
            from tunesmith.vet.embed import embed_texts

            self._embeddings = embed_texts(self.texts(), self.config.embedding, self.seed)
        return self._embeddings

    def budget(self) -> int:
        """Most records a statistical filter may remove: `max_flag_share` of the live records."""
        return int(self.config.max_flag_share * len(self.records))
