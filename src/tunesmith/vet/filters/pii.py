"""Personal data: detect it in every free-text field (labels excluded), then redact, pseudonymize, remove or flag.

- `redact` (default): each detection becomes a typed placeholder such as `<EMAIL>`; the record is kept, changed.
  Detection is repeated on the redacted text until nothing new is found (at most `MAX_REDACT_ROUNDS`), so vetting
  vetted data changes nothing: placeholders match no pattern, and a name model that saw only part of a name
  the first time gets a second look.
- `pseudonymize`: each detection becomes a fake value, the same fake for the same value across the whole run
  (`Pseudonymizer` seeded by the run's seed). One pass: a fake name would otherwise be replaced again.
- `remove` quarantines the record; `flag` only reports it.

Not statistical: every detection acts, no budget. `summary` holds counts per entity type and the number of
records with personal data. Engines and entity types: `tunesmith.vet.pii_detect`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tunesmith.config.vet_schema import PiiFilterConfig
from tunesmith.core.errors import ConfigError, Problem
from tunesmith.core.records import Record
from tunesmith.vet.base import FILTERS, Flag, VetContext
from tunesmith.vet.pii_detect import PiiSpan, check_entities, detect_pii, redact
from tunesmith.vet.pii_pseudonyms import Pseudonymizer
from tunesmith.vet.view import map_text

MAX_REDACT_ROUNDS = 3


@FILTERS.register("pii")
class PiiFilter:
    statistical = False

    def __init__(self, config: PiiFilterConfig):
        self.config = config
        self.entities = list(check_entities(config.entities, config.engine))
        if not 0.0 <= config.min_score <= 1.0:
            problem = Problem("vet.pii.min_score", None, f"{config.min_score} is outside [0, 1]", "e.g. 0.5")
            raise ConfigError([problem])
        self.summary: dict[str, Any] = {}

    def run(self, ctx: VetContext) -> list[Flag]:
        pseudonyms = Pseudonymizer(ctx.seed)
        totals: Counter[str] = Counter()
        flags = []
        for record_id, record in zip(ctx.ids, ctx.records, strict=True):
            changed, found, score = self._scan(record, pseudonyms)
            if not found:
                continue
            totals.update(found)
            flags.append(self._flag(record_id, changed, found, score))
        self.summary = {
            "engine": self.config.engine,
            "entities": dict(sorted(totals.items())),
            "records_with_pii": len(flags),
        }
        return flags

    def _scan(self, record: Record, pseudonyms: Pseudonymizer) -> tuple[Record, Counter[str], float]:
        """The record with every text field changed per `action`, the entity counts, the surest detection."""
        found: Counter[str] = Counter()
        best = 0.0

        def change(text: str) -> str:
            nonlocal best
            for _ in range(MAX_REDACT_ROUNDS if self.config.action == "redact" else 1):
                spans = self._detect(text)
                if not spans:
                    break
                found.update(s.entity for s in spans)
                best = max(best, *(s.score for s in spans))
                if self.config.action == "redact":
                    text = redact(text, spans)
                elif self.config.action == "pseudonymize":
                    text = redact(text, spans, "pseudonymize", pseudonyms)
            return text

        return map_text(record, change), found, best

    def _detect(self, text: str) -> list[PiiSpan]:
        return detect_pii(text, self.config.engine, self.entities, self.config.min_score)

    def _flag(self, record_id: str, changed: Record, found: Counter[str], score: float) -> Flag:
        listed = ", ".join(f"{n} {entity}" for entity, n in sorted(found.items()))
        details: dict[str, Any] = {"entities": dict(sorted(found.items()))}
        action = self.config.action
        if action in ("redact", "pseudonymize"):
            verb = "redacted" if action == "redact" else "pseudonymized"
            return Flag(record_id, f"personal data {verb}: {listed}", score, "modify", changed, details)
        if action == "remove":
            return Flag(record_id, f"personal data: {listed}", score, "remove", details=details)
        return Flag(record_id, f"personal data (flag only): {listed}", score, "flag", details=details)
