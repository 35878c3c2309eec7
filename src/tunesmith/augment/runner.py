"""Augment the training records: plan quotas, run the augmenters in rounds, gate, vet, tag.

    result = augment_records(splits.train, cfg.augment, seed=cfg.run.seed, heldout=splits.val + splits.test)
    splits.train += result.records          # augmented records only ever join the training split

A round: every record still short of its quota gets jobs (per augmenter, with probability `probability`,
`copies` jobs; at most twice the remaining quota, chosen by a seeded shuffle), the augmenters turn jobs into
candidates, the quality gate screens them, and candidates are accepted in a seeded order until each parent's
quota is met. Records still short go to the next round (up to `max_rounds`). Then the vetting filters run over
originals plus accepted candidates, with the originals allow-listed, and remove or redact candidates only.

Every random draw comes from a seed derived from (run seed + `seed_offset`, augmenter, parent id, round, copy),
so results do not depend on the order of records or on which other augmenters are enabled.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tunesmith.augment.base import AUGMENTERS, AugmentContext, Augmenter, Candidate, Job, derive_seed
from tunesmith.augment.budget import plan_quotas
from tunesmith.augment.progress import ProgressSink
from tunesmith.augment.provenance import AugmentTag, ProvenanceRow, tag_record
from tunesmith.augment.quality import QualityGate
from tunesmith.config.augment_schema import AUGMENTER_BLOCKS, AugmentConfig
from tunesmith.config.schema import ModelConfig
from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.errors import ConfigError, Problem
from tunesmith.core.records import LabelRecord, Record
from tunesmith.vet.view import content_id, record_ids

EXAMPLES_PER_REASON = 3


@dataclass
class AugmentResult:
    """The accepted augmented records (tagged), their provenance rows (same order) and the report."""

    records: list[Record]
    provenance: list[ProvenanceRow]
    report: dict[str, Any]


@dataclass
class _Stats:
    jobs: int = 0
    unchanged: int = 0
    generated: int = 0
    accepted: int = 0
    surplus: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in dataclasses.asdict(self).items() if k != "dropped"}, "dropped": dict(self.dropped)}


def augment_records(
    records: Sequence[Record],
    config: AugmentConfig,
    seed: int = 0,
    heldout: Sequence[Record] = (),
    model_config: ModelConfig | None = None,
    vet_config: VetConfig | None = None,
    progress: ProgressSink | None = None,
) -> AugmentResult:
    """Augmented records for `records` (the training split); `heldout` (validation + test) is never used as a
    parent and nothing near-duplicating it is kept."""
    import tunesmith.augment.augmenters  # noqa: F401  (registers the built-in augmenters)

    start = time.perf_counter()
    records = list(records)
    ids = record_ids(records)
    base_seed = seed + config.seed_offset
    ctx = AugmentContext(config, records, ids, base_seed, model_config or ModelConfig())
    augmenters = _build_augmenters(config, ctx)
    quotas = plan_quotas(records, ids, config, base_seed)
    remaining = list(quotas) if quotas is not None else None
    gate = QualityGate(config.quality, records, ids, heldout)
    stats = {name: _Stats() for name, _ in augmenters}
    examples: dict[str, list[dict[str, str]]] = defaultdict(list)
    accepted: list[Candidate] = []
    rounds = []
    for round_number in range(1, (config.max_rounds if remaining is not None else 1) + 1):
        plan = _plan_jobs(records, ids, config, base_seed, round_number, remaining)
        if not any(plan.values()):
            break
        candidates = _run_augmenters(augmenters, plan, stats, round_number, progress)
        ordered = sorted(candidates, key=lambda c: derive_seed(base_seed, "order", c.augmenter, c.job.seed))
        kept = _accept(ordered, gate.screen(ordered), gate, remaining, stats, examples)
        accepted.extend(kept)
        rounds.append({"round": round_number, "jobs": sum(len(j) for j in plan.values()), "accepted": len(kept)})
    if progress is not None:
        progress.stop()
    vet_report: dict[str, Any] = {}
    if config.quality.vet and vet_config is not None and accepted:
        accepted, vet_report = _vet(records, accepted, vet_config, config, base_seed, heldout, stats)
    result = _tagged(records, accepted)
    result.report = _report(records, quotas, result, stats, examples, rounds, vet_report, base_seed, start)
    return result


def _build_augmenters(config: AugmentConfig, ctx: AugmentContext) -> list[tuple[str, Augmenter]]:
    enabled = [name for name in AUGMENTER_BLOCKS if getattr(config, name).enabled]
    if not enabled:
        hint = "enable one, e.g. --augment.swap.enabled=true"
        raise ConfigError([Problem("augment", None, "no augmenter is enabled", hint)])
    return [(name, AUGMENTERS.get(name)(getattr(config, name), ctx)) for name in enabled]


def _plan_jobs(
    records: list[Record],
    ids: list[str],
    config: AugmentConfig,
    seed: int,
    round_number: int,
    remaining: list[int] | None,
) -> dict[str, list[Job]]:
    """Per augmenter, this round's jobs (parents in record order)."""
    plan: dict[str, list[Job]] = {name: [] for name in AUGMENTER_BLOCKS if getattr(config, name).enabled}
    for index, (record, rid) in enumerate(zip(records, ids, strict=True)):
        need = remaining[index] if remaining is not None else None
        if need == 0:
            continue
        jobs = []
        for name in plan:
            block = getattr(config, name)
            if random.Random(derive_seed(seed, "pick", name, rid, round_number)).random() >= block.probability:
                continue
            for copy in range(block.copies):
                jobs.append(
                    (name, Job(index, record, rid, derive_seed(seed, name, rid, round_number, copy), round_number))
                )
        if need is not None and len(jobs) > 2 * need:  # spare candidates for the gate, not unbounded work
            random.Random(derive_seed(seed, "trim", rid, round_number)).shuffle(jobs)
            jobs = sorted(jobs[: 2 * need], key=lambda j: list(plan).index(j[0]))
        for name, job in jobs:
            plan[name].append(job)
    return plan


def _run_augmenters(
    augmenters: list[tuple[str, Augmenter]],
    plan: dict[str, list[Job]],
    stats: dict[str, _Stats],
    round_number: int,
    progress: ProgressSink | None,
) -> list[Candidate]:
    candidates: list[Candidate] = []
    for name, augmenter in augmenters:
        jobs = plan[name]
        if not jobs:
            continue
        if progress is not None:
            progress.start(f"{name} (round {round_number})", len(jobs))
        stats[name].jobs += len(jobs)
        for first in range(0, len(jobs), augmenter.chunk_size):
            chunk = jobs[first : first + augmenter.chunk_size]
            made = augmenter.augment(chunk)
            stats[name].unchanged += sum(1 for c in made if c is None)
            candidates.extend(c for c in made if c is not None)
            if progress is not None:
                progress.advance(len(chunk))
        stats[name].generated = stats[name].jobs - stats[name].unchanged
    return candidates


def _accept(
    ordered: list[Candidate],
    reasons: list[str | None],
    gate: QualityGate,
    remaining: list[int] | None,
    stats: dict[str, _Stats],
    examples: dict[str, list[dict[str, str]]],
) -> list[Candidate]:
    kept = []
    for candidate, reason in zip(ordered, reasons, strict=True):
        parent = candidate.job.parent_index
        if reason is None and remaining is not None and remaining[parent] == 0:
            stats[candidate.augmenter].surplus += 1
            continue
        reason = reason or gate.accept(candidate)
        if reason is not None:
            stats[candidate.augmenter].dropped[reason] += 1
            if len(examples[reason]) < EXAMPLES_PER_REASON:
                examples[reason].append(_example(candidate))
            continue
        stats[candidate.augmenter].accepted += 1
        if remaining is not None:
            remaining[parent] -= 1
        kept.append(candidate)
    return kept


def _example(candidate: Candidate) -> dict[str, str]:
    from tunesmith.augment.quality import changed_texts

    before, after = changed_texts(candidate.record, candidate.job.parent)
    return {"augmenter": candidate.augmenter, "parent_id": candidate.job.parent_id, "before": before, "after": after}


def _vet(
    records: list[Record],
    accepted: list[Candidate],
    vet_config: VetConfig,
    config: AugmentConfig,
    seed: int,
    heldout: Sequence[Record],
    stats: dict[str, _Stats],
) -> tuple[list[Candidate], dict[str, Any]]:
    """Run the vetting filters over originals + candidates (originals allow-listed); drop or take the changed
    form of the candidates they flag."""
    from tunesmith.vet.runner import vet_records

    skipped = {name: dataclasses.replace(getattr(vet_config, name), enabled=False) for name in config.quality.vet_skip}
    vet_cfg = dataclasses.replace(vet_config, **skipped)
    pool = records + [c.record for c in accepted]
    ids = record_ids(pool)
    result = vet_records(pool, vet_cfg, seed, heldout, allow=ids[: len(records)])
    kept_form = dict(zip(result.kept_ids, result.kept, strict=True))
    removed_by = {e.id: e.filter for e in result.quarantine if e.action == "removed"}
    candidate_ids = ids[len(records) :]
    survivors = []
    for rid, candidate in zip(candidate_ids, accepted, strict=True):
        if rid in kept_form:
            survivors.append(dataclasses.replace(candidate, record=kept_form[rid]))
            continue
        reason = f"vet:{removed_by.get(rid, 'unknown')}"
        stats[candidate.augmenter].accepted -= 1
        stats[candidate.augmenter].dropped[reason] += 1
    candidate_set = set(candidate_ids)
    modified = sum(1 for e in result.quarantine if e.action == "modified" and e.id in candidate_set)
    return survivors, {"removed": len(accepted) - len(survivors), "modified": modified, "skipped": sorted(skipped)}


def _tagged(records: list[Record], accepted: list[Candidate]) -> AugmentResult:
    """Accepted candidates in parent order, each with its provenance origin and row."""
    accepted = sorted(accepted, key=lambda c: (c.job.parent_index, c.job.round, c.augmenter, c.job.seed))
    copies: Counter[int] = Counter()
    tagged, rows = [], []
    for line, candidate in enumerate(accepted, start=1):
        job = candidate.job
        copies[job.parent_index] += 1
        tag = AugmentTag(candidate.augmenter, job.parent_id, job.seed, copies[job.parent_index])
        record = tag_record(candidate.record, tag)
        tagged.append(record)
        rows.append(
            ProvenanceRow(
                line=line,
                id=content_id(record),
                augmenter=candidate.augmenter,
                parent_id=job.parent_id,
                parent_origin=str(records[job.parent_index].origin),
                seed=job.seed,
                round=job.round,
                other_parent_ids=candidate.other_parent_ids,
            )
        )
    return AugmentResult(tagged, rows, {})


def _report(
    records: list[Record],
    quotas: list[int] | None,
    result: AugmentResult,
    stats: dict[str, _Stats],
    examples: dict[str, list[dict[str, str]]],
    rounds: list[dict[str, int]],
    vet_report: dict[str, Any],
    seed: int,
    start: float,
) -> dict[str, Any]:
    seconds = time.perf_counter() - start
    jobs = sum(s.jobs for s in stats.values())
    planned = sum(quotas) if quotas is not None else None
    dropped: Counter[str] = Counter()
    for s in stats.values():
        dropped.update(s.dropped)
    report: dict[str, Any] = {
        "seed": seed,
        "records_in": len(records),
        "planned": planned,
        "added": len(result.records),
        "shortfall": planned - len(result.records) if planned is not None else None,
        "records_out": len(records) + len(result.records),
        "augmenters": {name: s.to_dict() for name, s in stats.items()},
        "dropped": dict(sorted(dropped.items())),
        "rounds": rounds,
        "vet": vet_report,
        "examples": dict(examples),
        "seconds": round(seconds, 3),
        "jobs_per_s": round(jobs / seconds, 1) if seconds > 0 else None,
    }
    if records and all(isinstance(r, LabelRecord) for r in records):
        before = Counter(r.label for r in records if isinstance(r, LabelRecord))
        added = Counter(r.label for r in result.records if isinstance(r, LabelRecord))
        report["labels"] = {label: {"original": before[label], "added": added[label]} for label in sorted(before)}
    return report
