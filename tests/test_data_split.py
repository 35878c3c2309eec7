"""Splits: deterministic per seed, exact proportions, stratified by label, duplicate prompts never straddle."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tunesmith.core.errors import ConfigError
from tunesmith.core.records import CompletionRecord, LabelRecord, Origin, Record
from tunesmith.data.split import (
    Splits,
    TrainEvalOverlapWarning,
    prompt_key,
    split_records,
    split_with_eval_file,
)

# Uneven label sizes so rounding matters: 37 + 23 + 11 + 5 = 76 records.
LABEL_SIZES = {"a": 37, "b": 23, "c": 11, "d": 5}


def _labelled() -> list[Record]:
    records: list[Record] = []
    for label, size in LABEL_SIZES.items():
        records += [LabelRecord(f"{label} example {i}", label, Origin("f", len(records) + 1)) for i in range(size)]
    return records


def _texts(splits: Splits) -> tuple[list[str], list[str], list[str]]:
    def text(r: Record) -> str:
        return r.text if isinstance(r, LabelRecord) else r.prompt  # type: ignore[union-attr]

    return [text(r) for r in splits.train], [text(r) for r in splits.val], [text(r) for r in splits.test]


def test_same_seed_same_split_and_independent_of_input_order() -> None:
    records = _labelled()
    shuffled = records[:]
    random.Random(1).shuffle(shuffled)
    first = split_records(records, 0.1, 0.3, seed=7)
    again = split_records(records, 0.1, 0.3, seed=7)
    reordered = split_records(shuffled, 0.1, 0.3, seed=7)
    assert _texts(first) == _texts(again)
    assert [sorted(part) for part in _texts(first)] == [sorted(part) for part in _texts(reordered)]


def test_different_seed_changes_the_split() -> None:
    records = _labelled()
    assert set(_texts(split_records(records, 0.1, 0.3, seed=0))[2]) != set(
        _texts(split_records(records, 0.1, 0.3, seed=1))[2]
    )


def test_partition_sizes_match_fractions() -> None:
    records = _labelled()
    splits = split_records(records, 0.1, 0.3, seed=0)
    assert splits.counts() == {"test": round(76 * 0.3), "val": round(76 * 0.1), "train": 76 - 23 - 8}
    all_texts = sorted(t for part in _texts(splits) for t in part)
    assert all_texts == sorted(r.text for r in records)  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stratified_label_shares_within_one_record(seed: int) -> None:
    splits = split_records(_labelled(), 0.1, 0.3, seed=seed)
    for name, fraction in (("test", 0.3), ("val", 0.1)):
        counts = Counter(r.label for r in getattr(splits, name))  # type: ignore[union-attr]
        for label, size in LABEL_SIZES.items():
            assert abs(counts[label] - size * fraction) <= 1, (name, label, counts[label])
    assert set(Counter(r.label for r in splits.train)) == set(LABEL_SIZES)  # type: ignore[union-attr]


def test_unstratified_split_still_has_exact_total() -> None:
    splits = split_records(_labelled(), 0.0, 0.25, seed=3, stratify=False)
    assert splits.counts() == {"train": 57, "val": 0, "test": 19}


def test_near_duplicate_prompts_stay_in_one_split() -> None:
    records: list[Record] = []
    for i in range(30):
        base = f"Question number {i}"
        variants = [base, base.upper(), f"  question   NUMBER {i} "] if i % 3 == 0 else [base]
        records += [CompletionRecord(v, f"answer {i}", Origin("f", len(records) + 1)) for v in variants]
    for seed in range(5):
        splits = split_records(records, 0.2, 0.3, seed=seed)
        where = {}
        for name in ("train", "val", "test"):
            for record in getattr(splits, name):
                assert where.setdefault(prompt_key(record), name) == name, (
                    f"group split across splits (seed {seed})"
                )


def test_bad_fractions_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="leaves nothing to train on"):
        split_records(_labelled(), 0.5, 0.5, seed=0)
    with pytest.raises(ConfigError, match="test_fraction"):
        split_records(_labelled(), 0.1, -0.1, seed=0)


def test_eval_file_is_the_test_split_and_overlap_is_counted() -> None:
    train = _labelled()
    evaluation = [
        LabelRecord("A EXAMPLE 0", "a", Origin("eval", 1)),  # same prompt as a training record, after normalising
        LabelRecord("brand new text", "b", Origin("eval", 2)),
    ]
    with pytest.warns(TrainEvalOverlapWarning, match="1 training record"):
        splits, overlap = split_with_eval_file(train, evaluation, 0.1, seed=0)
    assert overlap == 1
    assert splits.test == evaluation
    assert len(splits.train) + len(splits.val) == len(train)
    assert len(splits.val) == round(len(train) * 0.1)


def test_no_overlap_no_warning(recwarn: pytest.WarningsRecorder) -> None:
    _, overlap = split_with_eval_file(_labelled(), [LabelRecord("unseen", "a", Origin("e", 1))], 0.1, seed=0)
    assert overlap == 0
    assert not [w for w in recwarn if issubclass(w.category, TrainEvalOverlapWarning)]


def _near_duplicate_pairs() -> list[Record]:
    """40 prompts, each with a near-copy (its last word changed: Jaccard of word 3-grams 12/14 = 0.86)."""
    records: list[Record] = []
    for i in range(40):
        prompt = f"please write a short friendly note to customer number {i} about the delayed parcel today"
        for variant in (prompt, prompt.replace("today", "tonight")):
            records.append(CompletionRecord(variant, f"note {i}", Origin("f", len(records) + 1)))
    return records


def _pair_sides(splits: Splits) -> dict[str, set[str]]:
    sides: dict[str, set[str]] = {}
    for name in ("train", "val", "test"):
        for record in getattr(splits, name):
            sides.setdefault(record.completion, set()).add(name)  # type: ignore[union-attr]
    return sides


def test_near_duplicate_prompts_never_straddle_splits() -> None:
    records = _near_duplicate_pairs()
    straddled_without_grouping = 0
    for seed in range(3):
        exact_only = split_records(records, 0.2, 0.3, seed=seed, near_threshold=None)
        straddled_without_grouping += sum(len(s) > 1 for s in _pair_sides(exact_only).values())
        grouped = split_records(records, 0.2, 0.3, seed=seed)
        assert all(len(s) == 1 for s in _pair_sides(grouped).values()), f"a near-duplicate pair straddles (seed {seed})"
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        assert [sorted(p) for p in _texts(split_records(shuffled, 0.2, 0.3, seed=seed))] == [
            sorted(p) for p in _texts(grouped)
        ]
    assert straddled_without_grouping > 0  # the pairs do straddle when only identical prompts are grouped
    assert split_records(records, 0.2, 0.3, seed=0).grouped_duplicates == 40
    assert split_records(records, 0.2, 0.3, seed=0, near_threshold=None).grouped_duplicates == 0


def test_eval_overlap_counts_near_duplicate_prompts() -> None:
    records = _near_duplicate_pairs()
    train, evaluation = records[0::2], records[1:8:2]  # 4 eval prompts, each a near-copy of a training prompt
    with pytest.warns(TrainEvalOverlapWarning, match="4 training record"):
        _, overlap = split_with_eval_file(train, evaluation, 0.1, seed=0)
    assert overlap == 4
    _, exact_overlap = split_with_eval_file(train, evaluation, 0.1, seed=0, near_threshold=None)
    assert exact_overlap == 0
