"""The contamination filter: training copies of eval records and n-gram overlap; nothing without eval data."""

from __future__ import annotations

import pytest

from tunesmith.config.vet_schema import ContaminationFilterConfig, VetConfig
from tunesmith.core.records import CompletionRecord, LabelRecord, Origin, Record
from tunesmith.vet.base import Flag, VetContext
from tunesmith.vet.filters.contamination import ContaminationFilter
from tunesmith.vet.view import record_ids

EVAL = [
    "please book a table for four people at an italian restaurant near the station tonight",
    "what will the weather be like in seattle on the fourteenth of june",
    "play jazz",
]
LONG_EVAL = " ".join(f"word{i}" for i in range(30))  # 30 distinct words: 18 thirteen-grams


def _labelled(texts: list[str], file: str = "d") -> list[Record]:
    return [LabelRecord(t, "x", Origin(file, i + 1)) for i, t in enumerate(texts)]


def _run(
    train: list[str], evaluation: list[str], **overrides: object
) -> tuple[dict[int, Flag], list[str], ContaminationFilter]:
    records, eval_records = _labelled(train), _labelled(evaluation, "eval")
    eval_ids = record_ids(eval_records)
    ctx = VetContext(
        ids=record_ids(records), records=records, config=VetConfig(), eval_ids=eval_ids, eval_records=eval_records
    )
    plugin = ContaminationFilter(ContaminationFilterConfig(**overrides))  # type: ignore[arg-type]
    flags = plugin.run(ctx)
    position = {rid: i for i, rid in enumerate(ctx.ids)}
    return {position[f.record_id]: f for f in flags}, eval_ids, plugin


def test_no_eval_data_does_nothing() -> None:
    flags, _, plugin = _run(["anything at all"], [])
    assert flags == {}
    assert plugin.summary == {"note": "no eval data"}


def test_near_copies_of_eval_records_are_removed() -> None:
    train = [
        "Please book a table for four people at an Italian restaurant near the station tomorrow!",  # 0.86
        "please book a table for four people at a greek restaurant near the station tonight",  # 0.53: kept
        "Play jazz.",  # an exact copy of a short eval record
        "play rock",
    ]
    flags, eval_ids, plugin = _run(train, EVAL)
    assert sorted(flags) == [0, 2]
    assert flags[0].reason == f"near-duplicate of eval record {eval_ids[0]} (Jaccard 0.86)"
    assert flags[0].details == {"eval_id": eval_ids[0]}
    assert flags[2].details == {"eval_id": eval_ids[2]}
    assert plugin.summary["near_eval_duplicates"] == 2
    assert plugin.summary["ngram_overlaps"] == 0


def test_ngram_overlap_above_the_limit() -> None:
    words = LONG_EVAL.split()
    mostly_copied = " ".join(["intro", "text", *words[:20], *[f"new{i}" for i in range(12)]])  # 8 of 22 shared
    quoted = " ".join([*[f"other{i}" for i in range(40)], *words[:13]])  # 1 of 41 shared
    flags, eval_ids, plugin = _run([mostly_copied, quoted], [LONG_EVAL], max_ngram_overlap=0.2, near_threshold=0.9)
    assert list(flags) == [0]
    assert flags[0].details == {"eval_id": eval_ids[0], "ngram_overlap": pytest.approx(8 / 22, abs=1e-4)}
    assert flags[0].reason == (
        f"36% of its word 13-grams appear in the eval data, most in {eval_ids[0]} (max_ngram_overlap 0.2)"
    )
    assert plugin.summary["eval_share_with_train_13gram"] == 1.0
    assert _run([mostly_copied, quoted], [LONG_EVAL], near_threshold=0.9)[0] == {}  # default limit 0.5


def test_clean_training_data_is_untouched_and_summary_counts_eval_side() -> None:
    train = ["add this song to my playlist", "set an alarm for seven in the morning please"]
    flags, _, plugin = _run(train, [*EVAL, "set an alarm for seven in the morning please"])
    assert list(flags) == [1]
    assert plugin.summary["eval_records"] == 4
    assert plugin.summary["eval_share_with_train_13gram"] == 0.25


def test_completion_records_use_their_full_text() -> None:
    # the prompt/answer boundary moved by one word: the same text, split differently
    records: list[Record] = [CompletionRecord("what will the weather be like", "in seattle today", Origin("d", 1))]
    evaluation: list[Record] = [CompletionRecord("what will the weather be like in", "seattle today", Origin("e", 1))]
    ctx = VetContext(
        ids=record_ids(records),
        records=records,
        config=VetConfig(),
        eval_ids=record_ids(evaluation),
        eval_records=evaluation,
    )
    assert len(ContaminationFilter(ContaminationFilterConfig()).run(ctx)) == 1
