"""Train / validation / test splits that are reproducible, stratified by label and free of prompt leakage.

How a split is made:
1. Records whose prompt side is identical after normalisation (lower case, whitespace collapsed) form one group,
   and so do near-duplicate prompts (Jaccard of word 3-grams >= `near_threshold`, 0.8 by default, through
   `data.neardup`; chains of near-duplicates join one group). A group always lands in one split, so the test set
   never holds a copy or a near-copy of a training prompt.
2. A group is named by its smallest normalised prompt, and groups are ordered by a hash of (seed, that name).
   The split therefore depends only on the seed and the records' content, not on the order of lines in the file.
3. Per stratum (the label, for labelled records when `stratify`; otherwise one stratum) the test and validation
   sizes are allocated by the largest-remainder method, so each label's share is within one record of exact and
   the totals match `round(n * fraction)`; groups are then taken in hash order until each quota is filled.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tunesmith.core.errors import ConfigError, Problem
from tunesmith.core.records import ChatRecord, CompletionRecord, LabelRecord, Record
from tunesmith.data.neardup import DEFAULT_THRESHOLD, NearDupIndex, near_duplicate_components

_SPACES = re.compile(r"\s+")


@dataclass
class Splits:
    """The three splits; each keeps the input order of its records."""

    train: list[Record] = field(default_factory=list)
    val: list[Record] = field(default_factory=list)
    test: list[Record] = field(default_factory=list)
    grouped_duplicates: int = 0
    """Records of the split file kept in one split with an earlier record (same or near-duplicate prompt)."""

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


class TrainEvalOverlapWarning(UserWarning):
    """The training file holds prompts that also appear in the evaluation file."""


def normalise_text(text: str) -> str:
    """Lower case with runs of whitespace collapsed to one space: what counts as 'the same prompt'."""
    return _SPACES.sub(" ", text).strip().lower()


def prompt_key(record: Record) -> str:
    """The normalised prompt side of a record (for chats: every non-assistant turn)."""
    if isinstance(record, LabelRecord):
        text = record.text
    elif isinstance(record, CompletionRecord):
        text = record.prompt
    elif isinstance(record, ChatRecord):
        text = "\n".join(m.content for m in record.messages if m.role != "assistant")
    else:
        text = record.source
    return normalise_text(text)


def prompt_groups(records: list[Record], near_threshold: float | None = DEFAULT_THRESHOLD) -> dict[str, list[int]]:
    """Record indices grouped by prompt: identical normalised prompts, plus near-duplicates unless
    `near_threshold` is None. Each group is keyed by its smallest normalised prompt (order-independent)."""
    keys = [prompt_key(record) for record in records]
    distinct = sorted(set(keys))
    if near_threshold is None or len(distinct) < 2:
        name_of = {key: key for key in distinct}
    else:
        # sorted input: each component's root is its smallest key, whatever the order of the records
        roots = near_duplicate_components(distinct, threshold=near_threshold)
        name_of = {key: distinct[root] for key, root in zip(distinct, roots, strict=True)}
    groups: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        groups[name_of[key]].append(index)
    return groups


def split_records(
    records: list[Record],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: bool = True,
    near_threshold: float | None = DEFAULT_THRESHOLD,
) -> Splits:
    """Deterministic grouped (and, for labels, stratified) split into train/val/test.

    `near_threshold`: Jaccard (word 3-grams) at which two prompts are kept in one split; None groups only
    identical normalised prompts.
    """
    _check_fractions(val_fraction, test_fraction)
    groups = prompt_groups(records, near_threshold)
    strata: dict[str, list[str]] = defaultdict(list)
    for key, members in groups.items():
        strata[_stratum([records[i] for i in members], stratify)].append(key)
    sizes = {name: sum(len(groups[key]) for key in keys) for name, keys in strata.items()}
    test_quota = _allocate(sizes, test_fraction, {name: 0 for name in sizes})
    val_quota = _allocate(sizes, val_fraction, test_quota)
    assignment: dict[int, str] = {}
    for name, keys in strata.items():
        quotas = {"test": test_quota[name], "val": val_quota[name]}
        filled = {"test": 0, "val": 0}
        for key in sorted(keys, key=lambda k: _group_order(seed, k)):
            target = next((s for s in ("test", "val") if filled[s] < quotas[s]), "train")
            if target != "train":
                filled[target] += len(groups[key])
            for index in groups[key]:
                assignment[index] = target
    splits = Splits(grouped_duplicates=len(records) - len(groups))
    for index, record in enumerate(records):
        getattr(splits, assignment[index]).append(record)
    return splits


def split_with_eval_file(
    train_records: list[Record],
    eval_records: list[Record],
    val_fraction: float,
    seed: int,
    stratify: bool = True,
    near_threshold: float | None = DEFAULT_THRESHOLD,
) -> tuple[Splits, int]:
    """The eval file is the test split; the train file is split into train/val only.

    Returns the splits and how many training records repeat or nearly repeat (Jaccard >= `near_threshold`) the
    prompt of an eval record (a leak that inflates test scores); a warning is emitted when that count is not
    zero. Those records are kept: removing them silently would change the training set behind the user's back.
    """
    splits = split_records(train_records, val_fraction, 0.0, seed, stratify, near_threshold)
    splits.test = list(eval_records)
    overlap = _eval_overlap(train_records, eval_records, near_threshold)
    if overlap:
        warnings.warn(
            f"{overlap} training record(s) repeat (or nearly repeat) a prompt of the eval file, so test scores "
            "will be too optimistic; "
            "remove them from the train file (or run the contamination filter) for a fair evaluation.",
            TrainEvalOverlapWarning,
            stacklevel=2,
        )
    return splits, overlap


def _eval_overlap(train_records: list[Record], eval_records: list[Record], near_threshold: float | None) -> int:
    """Training records whose normalised prompt equals (or near-duplicates) an eval record's."""
    eval_keys = {prompt_key(record) for record in eval_records}
    train_keys = [prompt_key(record) for record in train_records]
    if near_threshold is None or not eval_keys:
        return sum(1 for key in train_keys if key in eval_keys)
    hits = NearDupIndex(sorted(eval_keys), threshold=near_threshold).query_many(train_keys)
    return sum(1 for key, found in zip(train_keys, hits, strict=True) if key in eval_keys or found)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    problems = [
        Problem(f"data.{name}", name, f"must be in [0, 1), got {value}", "use e.g. 0.1")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction))
        if not 0.0 <= value < 1.0
    ]
    if not problems and val_fraction + test_fraction >= 1.0:
        message = f"val_fraction + test_fraction = {val_fraction + test_fraction:g} leaves nothing to train on"
        problems.append(
            Problem("data.val_fraction", "val_fraction", message, "keep the sum below 1, e.g. 0.1 + 0.3")
        )
    if problems:
        raise ConfigError(problems)


def _stratum(members: list[Record], stratify: bool) -> str:
    """The group's label (the most common one, if its copies disagree), or '' when not stratifying."""
    labels = [r.label for r in members if isinstance(r, LabelRecord)]
    if not stratify or not labels:
        return ""
    counts = Counter(labels)
    return min(counts, key=lambda label: (-counts[label], label))


def _group_order(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def _allocate(sizes: dict[str, int], fraction: float, taken: dict[str, int]) -> dict[str, int]:
    """Largest-remainder allocation of round(total * fraction) records over strata.

    Each stratum keeps at least one record for training when it has any records left, so no label is unseen
    in training (its share then drops by one record).
    """
    exact = {name: size * fraction for name, size in sizes.items()}
    quota = {name: math.floor(value) for name, value in exact.items()}
    remaining = round(sum(sizes.values()) * fraction) - sum(quota.values())
    by_remainder = sorted(sizes, key=lambda name: (-(exact[name] - quota[name]), name))
    for name in by_remainder[: max(remaining, 0)]:
        quota[name] += 1
    for name in sizes:
        room = sizes[name] - taken[name] - 1  # leave one record for training
        quota[name] = max(0, min(quota[name], room))
    return quota
