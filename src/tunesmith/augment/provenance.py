"""How an augmented record says where it came from.

In memory the tag rides in the record's own `Origin` (records are frozen, and every stage already carries and
prints origins), with a file name no real file can have:

    Origin(file="augment:<augmenter>:<parent id>:<seed>", line=<n>)

- `augmenter`: the registered augmenter (`synonym`, `swap`, `back_translation`, ...);
- `parent id`: the parent record's content id (`tunesmith.vet.view.content_id`: 12 hex digits of its content);
- `seed`: the candidate's own seed, derived from the run seed, augmenter, parent, round and copy; for the word
  and character operators `op(text, random.Random(seed))` replays the copy exactly;
- `line`: the copy's number among the accepted copies of that parent (1, 2, ...).

On disk, `augmented.jsonl` holds rows only (the parsers read it back like any input file), so the same tag is
written line for line to `augment_provenance.jsonl`, with the parent's original `file:line`, the round and, for
synthetic records, the other seed examples shown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from tunesmith.core.records import Origin, Record

AUGMENT_PREFIX = "augment:"


@dataclass(frozen=True)
class AugmentTag:
    """Augmenter, parent record id and seed of one augmented record."""

    augmenter: str
    parent_id: str
    seed: int
    copy: int = 1

    def origin(self) -> Origin:
        return Origin(f"{AUGMENT_PREFIX}{self.augmenter}:{self.parent_id}:{self.seed}", self.copy)

    @classmethod
    def from_origin(cls, origin: Origin) -> AugmentTag | None:
        """The tag an augmented record's origin carries; None for a record read from a file."""
        if not origin.file.startswith(AUGMENT_PREFIX):
            return None
        augmenter, parent_id, seed = origin.file[len(AUGMENT_PREFIX) :].split(":")
        return cls(augmenter, parent_id, int(seed), origin.line)


def tag_record(record: Record, tag: AugmentTag) -> Record:
    """The record with its origin replaced by the tag's synthetic origin."""
    return dataclasses.replace(record, origin=tag.origin())


def augment_tag(record: Record) -> AugmentTag | None:
    return AugmentTag.from_origin(record.origin)


def is_augmented(record: Record) -> bool:
    """Whether a record was made by an augmenter (and so may only ever be in the training split)."""
    return record.origin.file.startswith(AUGMENT_PREFIX)


@dataclass
class ProvenanceRow:
    """One line of augment_provenance.jsonl, describing the same line of augmented.jsonl."""

    line: int
    id: str
    augmenter: str
    parent_id: str
    parent_origin: str
    seed: int
    round: int
    other_parent_ids: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
