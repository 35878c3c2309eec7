"""The dedup filter: exact copies, label conflicts, near-duplicates, semantic duplicates; idempotent."""

from __future__ import annotations

import numpy as np
import pytest

from tunesmith.config.vet_schema import DedupFilterConfig, VetConfig
from tunesmith.core.records import CompletionRecord, LabelRecord, Origin, Record
from tunesmith.vet import embed
from tunesmith.vet.base import Flag, VetContext
from tunesmith.vet.filters.dedup import DedupFilter, greedy_cosine_clusters
from tunesmith.vet.runner import vet_records
from tunesmith.vet.view import record_ids

BASE = "please book a table for four people at an italian restaurant near the station tonight"
NEAR = "please book a table for four people at an italian restaurant near the station tomorrow"  # Jaccard 0.86
FAR = "please book a table for four people at a greek restaurant near the station tonight"  # Jaccard 0.53


def _labelled(pairs: list[tuple[str, str]]) -> list[Record]:
    return [LabelRecord(text, label, Origin("d", i + 1)) for i, (text, label) in enumerate(pairs)]


def _run(records: list[Record], **overrides: object) -> tuple[list[str], dict[int, Flag], DedupFilter]:
    ids = record_ids(records)
    plugin = DedupFilter(DedupFilterConfig(**overrides))  # type: ignore[arg-type]
    flags = plugin.run(VetContext(ids=ids, records=records, config=VetConfig()))
    position = {rid: i for i, rid in enumerate(ids)}
    return ids, {position[f.record_id]: f for f in flags}, plugin


def test_exact_copies_after_normalising_keep_the_first() -> None:
    records = _labelled([("Play some jazz", "play"), ("play  SOME jazz ", "play"), ("play some jazz", "play")])
    ids, flags, plugin = _run(records, near=False)
    assert sorted(flags) == [1, 2]
    assert all(f.details["kept_id"] == ids[0] and f.reason == f"exact duplicate of {ids[0]}" for f in flags.values())
    assert plugin.summary["duplicates"] == {"exact": 2, "label_conflicts": 0}


def test_same_text_with_another_label_is_a_conflict() -> None:
    records = _labelled([("Play some jazz", "play"), ("play some jazz", "add"), ("Play some jazz", "play")])
    ids, flags, plugin = _run(records)
    assert flags[1].reason == f"same text as {ids[0]} with a different label ('add', kept 'play')"
    assert flags[1].details == {
        "kept_id": ids[0],
        "kind": "exact",
        "label_conflict": True,
        "label": "add",
        "kept_label": "play",
    }
    assert flags[2].reason == f"exact duplicate of {ids[0]}"
    assert plugin.summary["duplicates"]["label_conflicts"] == 1


def test_near_duplicates_removed_and_near_misses_kept() -> None:
    records = _labelled([(FAR, "a"), (BASE, "a"), (NEAR, "a"), ("Play some jazz", "b"), ("Play some rock", "b")])
    ids, flags, plugin = _run(records)
    assert list(flags) == [2]
    assert flags[2].reason == f"near-duplicate of {ids[1]} (Jaccard 0.86)"
    assert flags[2].details == {"kept_id": ids[1], "kind": "near", "similarity": pytest.approx(12 / 14, abs=1e-4)}
    assert flags[2].score == pytest.approx(12 / 14)
    assert plugin.summary["duplicates"] == {"exact": 0, "label_conflicts": 0, "near": 1}
    assert _run(records, near=False)[1] == {}
    # at 0.5, BASE (0.53 to FAR) joins FAR; NEAR is 0.44 from FAR and BASE is no longer a representative, so
    # NEAR is kept: representatives only, which is what makes a second pass find nothing
    lower = _run(records, near_threshold=0.5)[1]
    assert list(lower) == [1] and lower[1].details["kept_id"] == ids[0]


def test_near_duplicate_with_another_label_says_so() -> None:
    ids, flags, _ = _run(_labelled([(BASE, "book"), (NEAR, "weather")]))
    assert flags[1].reason.endswith("with a different label ('weather', kept 'book')")


def test_completion_records_compare_prompt_and_answer() -> None:
    records: list[Record] = [
        CompletionRecord("What is 2+2?", "4", Origin("d", 1)),
        CompletionRecord("What is 2+2?", "Four.", Origin("d", 2)),  # another answer: not a copy
        CompletionRecord("what is 2+2?", "4", Origin("d", 3)),
    ]
    _, flags, _ = _run(records)
    assert list(flags) == [2]


def test_dedup_twice_changes_nothing() -> None:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    texts = [" ".join(rng.choice(words, size=rng.integers(3, 15))) for _ in range(300)]
    texts += [t.upper() for t in texts[:40]] + [t + " extra" for t in texts[40:120]]
    records = _labelled([(t, "x") for t in texts])
    config = VetConfig()
    for name in ("quality", "pii", "contamination", "outliers", "label_noise", "poison"):
        getattr(config, name).enabled = False
    first = vet_records(records, config)
    assert first.report["filters"]["dedup"]["removed"] > 40
    second = vet_records(first.kept, config)
    assert second.report["removed"] == 0 and second.quarantine == []
    for entry in first.quarantine:
        assert entry.details["kept_id"] in first.kept_ids


def test_semantic_duplicates_with_stand_in_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = {"cheap flights to rome": [1.0, 0.0], "inexpensive plane tickets to rome": [0.99, 0.141], "hi": [0, 1]}

    def fake_embed(texts: list[str], backend: str, seed: int = 0) -> np.ndarray:
        assert backend == "minilm"
        return embed.l2_normalise(np.array([vectors[t] for t in texts], dtype=np.float32))

    monkeypatch.setattr(embed, "embed_texts", fake_embed)
    records = _labelled([(t, "x") for t in vectors])
    ids, flags, plugin = _run(records, semantic=True, semantic_threshold=0.95)
    assert list(flags) == [1]
    assert flags[1].reason == f"semantic-duplicate of {ids[0]} (cosine 0.990)"
    assert flags[1].details["kind"] == "semantic"
    assert plugin.summary["duplicates"]["semantic"] == 1
    assert _run(records, semantic=True, semantic_threshold=0.995)[1] == {}


def test_greedy_cosine_clusters_join_the_earliest_representative() -> None:
    angles = np.radians([0.0, 10.0, 20.0, 90.0, 5.0])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    reps, scores = greedy_cosine_clusters(vectors, threshold=float(np.cos(np.radians(12))))
    # 10 deg joins 0; 20 deg is 20 from 0 (too far) and 10 from a non-representative: its own; 5 deg joins 0
    assert reps == [0, 0, 2, 3, 0]
    assert scores[4] == pytest.approx(np.cos(np.radians(5)), abs=1e-6)
