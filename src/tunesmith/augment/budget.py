"""How many augmented records each original should get: the target multiplier or the per-label target.

- `multiplier: m` adds `round((m - 1) * n)` records, spread evenly over the n originals;
- `per_label_target: t` adds `t - n_label` records to each label below t, spread over that label's records
  (labels at or above t get none: originals are never removed);
- both null: no target (every candidate that passes the quality gate is kept, after one round).

Spreading: every record of a group gets `need // size`, and `need % size` of them, chosen by a seeded hash of
their ids (not their position), get one more.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from tunesmith.augment.base import derive_seed
from tunesmith.config.augment_schema import AugmentConfig
from tunesmith.core.errors import ConfigError, Problem
from tunesmith.core.records import LabelRecord, Record


def plan_quotas(records: Sequence[Record], ids: Sequence[str], cfg: AugmentConfig, seed: int) -> list[int] | None:
    """Per record, how many augmented copies it should get; None when there is no target."""
    if cfg.per_label_target is not None:
        groups = _label_groups(records)
        needs = {label: max(0, cfg.per_label_target - len(members)) for label, members in groups.items()}
    elif cfg.multiplier is not None:
        groups = {"": list(range(len(records)))}
        needs = {"": round((cfg.multiplier - 1) * len(records))}
    else:
        return None
    quotas = [0] * len(records)
    for name, members in groups.items():
        if not members:
            continue
        base, extra = divmod(needs[name], len(members))
        ranked = sorted(members, key=lambda i: derive_seed(seed, "quota", ids[i]))
        for rank, index in enumerate(ranked):
            quotas[index] = base + (1 if rank < extra else 0)
    return quotas


def _label_groups(records: Sequence[Record]) -> dict[str, list[int]]:
    if not records or not all(isinstance(r, LabelRecord) for r in records):
        raise ConfigError(
            [
                Problem(
                    "augment.per_label_target",
                    None,
                    "needs text+label records (these records have no labels)",
                    "use augment.multiplier instead",
                )
            ]
        )
    groups: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        groups[record.label].append(index)  # type: ignore[union-attr]
    return dict(sorted(groups.items()))
