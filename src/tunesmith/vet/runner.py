"""Run the enabled filters in order and decide every record's fate: kept, kept changed, or quarantined.

The contract: each input record ends up in `kept` or in the quarantine as removed (never both, never neither),
and every change to a kept record is in the quarantine too, with the original, the filter, the reason and a
score. Filters only propose (`Flag`s); this module disposes, after the allow-list and the statistical budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.errors import ConfigError, Problem
from tunesmith.core.records import Record
from tunesmith.data.rows import record_to_row
from tunesmith.vet.base import FILTER_ORDER, FILTERS, Flag, VetContext
from tunesmith.vet.view import record_ids


@dataclass
class QuarantineEntry:
    """One line of quarantine.jsonl."""

    id: str
    origin: str
    filter: str
    action: str
    """`removed` (not trained on), `modified` (trained on in its changed form) or `flagged` (kept as is)."""
    reason: str
    score: float
    original: dict[str, Any]
    """The record as read from the file."""
    modified: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row = {k: v for k, v in self.__dict__.items() if v is not None}
        row["score"] = round(self.score, 6)
        return row


@dataclass
class VetResult:
    kept: list[Record]
    kept_ids: list[str]
    quarantine: list[QuarantineEntry]
    report: dict[str, Any]

    @property
    def removed(self) -> int:
        return sum(1 for entry in self.quarantine if entry.action == "removed")


ProgressHook = Callable[[str, int, int], None]
"""Called as (filter name, filter index, number of filters) before each filter runs."""


def vet_records(
    records: list[Record],
    config: VetConfig,
    seed: int = 0,
    eval_records: Iterable[Record] = (),
    allow: Iterable[str] = (),
    progress: ProgressHook | None = None,
    context_extras: dict[str, Any] | None = None,
) -> VetResult:
    """Vet `records` (the training data) against `config`; `eval_records` are the held-out data, never changed.

    `allow` holds record ids or `file:line` origins no filter may remove or change.
    """
    import tunesmith.vet.filters  # noqa: F401  (registers the built-in filters)

    ids = record_ids(records)
    live: dict[str, Record] = dict(zip(ids, records, strict=True))
    originals = dict(live)
    allowed = _resolve_allowed(set(allow), ids, records)
    eval_list = list(eval_records)
    eval_ids = record_ids(eval_list)
    entries: list[QuarantineEntry] = []
    filters_report: dict[str, Any] = {}
    embeddings = _EmbeddingCache()
    enabled = [name for name in FILTER_ORDER if getattr(config, name).enabled]
    for name in FILTER_ORDER:
        block = getattr(config, name)
        if not block.enabled:
            filters_report[name] = {"enabled": False}
            continue
        if progress:
            progress(name, enabled.index(name), len(enabled))
        ctx = VetContext(
            ids=list(live), records=list(live.values()), config=config, seed=seed,
            eval_ids=eval_ids, eval_records=eval_list, **(context_extras or {}),
        )
        ctx._embeddings = embeddings.rows_for(ctx.ids)
        start = time.perf_counter()
        plugin = FILTERS.get(name)(block)
        flags = _one_per_record(plugin.run(ctx), set(ctx.ids), name)
        flags, over_budget = _apply_budget(flags, ctx.budget()) if plugin.statistical else (flags, 0)
        counts = _apply(flags, name, live, originals, allowed, entries)
        embeddings.remember(ctx.ids, ctx._embeddings, changed_text=counts["modified"] > 0)
        filters_report[name] = {
            **getattr(plugin, "summary", {}),  # first: the runner's own counts below are the authority
            "enabled": True,
            **counts,
            "over_budget": over_budget,
            "seconds": round(time.perf_counter() - start, 3),
        }
    kept_ids = list(live)
    result = VetResult(list(live.values()), kept_ids, entries, {})
    assert len(kept_ids) + result.removed == len(records), "vetting lost or duplicated a record"
    result.report = {
        "records_in": len(records),
        "records_kept": len(kept_ids),
        "removed": result.removed,
        "modified": sum(1 for e in entries if e.action == "modified"),
        "flagged": sum(1 for e in entries if e.action == "flagged"),
        "allowed": sorted(allowed),
        "eval_records": len(eval_list),
        "filters": filters_report,
    }
    return result


class _EmbeddingCache:
    """Embeddings computed by one filter, reused by the next ones for the records still live.

    Removing records only drops rows (the embedding of a record does not depend on which others were removed
    after it was computed); any change of text invalidates the cache.
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._matrix: Any = None

    def rows_for(self, ids: list[str]) -> Any:
        if self._matrix is None or any(rid not in self._index for rid in ids):
            return None
        return self._matrix[[self._index[rid] for rid in ids]]

    def remember(self, ids: list[str], matrix: Any, changed_text: bool) -> None:
        if changed_text:
            self._index, self._matrix = {}, None
        elif matrix is not None:
            self._index, self._matrix = {rid: i for i, rid in enumerate(ids)}, matrix


def _resolve_allowed(allow: set[str], ids: list[str], records: list[Record]) -> set[str]:
    """Allow-list entries may be record ids or `file:line` origins (or a bare line number); return ids."""
    by_origin = {str(record.origin): rid for rid, record in zip(ids, records, strict=True)}
    by_line = {str(record.origin.line): rid for rid, record in zip(ids, records, strict=True)}
    known = set(ids)
    resolved = set()
    for entry in allow:
        rid = entry if entry in known else by_origin.get(entry) or by_line.get(entry)
        if rid:
            resolved.add(rid)
    return resolved


def _one_per_record(flags: list[Flag], live_ids: set[str], name: str) -> list[Flag]:
    """A filter's flags with unknown ids rejected (a plug-in bug) and at most one flag per record (the surest)."""
    best: dict[str, Flag] = {}
    for flag in flags:
        if flag.record_id not in live_ids:
            raise ValueError(f"vetting filter {name!r} flagged unknown record id {flag.record_id!r}")
        if flag.action == "modify" and flag.replacement is None:
            raise ValueError(f"vetting filter {name!r} asked to modify {flag.record_id} without a replacement")
        current = best.get(flag.record_id)
        if current is None or flag.score > current.score:
            best[flag.record_id] = flag
    return list(best.values())


def _apply_budget(flags: list[Flag], budget: int) -> tuple[list[Flag], int]:
    """Keep a statistical filter's `budget` surest removals; the others are reported, not applied."""
    removals = sorted((f for f in flags if f.action == "remove"), key=lambda f: (-f.score, f.record_id))
    others = [f for f in flags if f.action != "remove"]
    return removals[:budget] + others, max(0, len(removals) - budget)


def _apply(
    flags: list[Flag],
    name: str,
    live: dict[str, Record],
    originals: dict[str, Record],
    allowed: set[str],
    entries: list[QuarantineEntry],
) -> dict[str, int]:
    counts = {"removed": 0, "modified": 0, "flagged": 0, "allowed": 0}
    order = {rid: i for i, rid in enumerate(live)}
    for flag in sorted(flags, key=lambda f: order[f.record_id]):
        rid = flag.record_id
        if rid in allowed:
            counts["allowed"] += 1
            continue
        action = {"remove": "removed", "modify": "modified", "flag": "flagged"}[flag.action]
        counts[action] += 1
        entry = QuarantineEntry(
            id=rid,
            origin=str(originals[rid].origin),
            filter=name,
            action=action,
            reason=flag.reason,
            score=float(flag.score),
            original=record_to_row(originals[rid]),
            modified=record_to_row(flag.replacement) if flag.replacement is not None else None,
            details=flag.details,
        )
        if flag.action == "remove" and live[rid] is not originals[rid]:
            entry.modified = record_to_row(live[rid])  # removed in the form an earlier filter left it
        entries.append(entry)
        if flag.action == "remove":
            del live[rid]
        elif flag.action == "modify" and flag.replacement is not None:
            live[rid] = flag.replacement
    return counts


def read_allow_list(path: str | Path) -> set[str]:
    """Record ids (or `file:line` origins), one per line; blank lines and `#` comments ignored."""
    file = Path(path)
    if not file.is_file():
        hint = "write one record id per line (ids are in quarantine.jsonl), or unset vet.allow_list"
        raise ConfigError([Problem("vet.allow_list", None, f"allow-list file {file} not found", hint)])
    entries = set()
    for line in file.read_text(encoding="utf-8").splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.add(entry)
    return entries
