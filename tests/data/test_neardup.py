"""Near-duplicate detection: shingles, exact verification, greedy clusters, components, the query index."""

from __future__ import annotations

import random
import zlib

import pytest

from tunesmith.data.neardup import (
    NearDupIndex,
    jaccard,
    lsh_bands,
    near_duplicate_clusters,
    near_duplicate_components,
    shingles,
    signatures,
)

BASE = "please book a table for four people at an italian restaurant near the station tonight"
# one word changed at the end: 12 of 13 shingles shared -> Jaccard 12/14 = 0.857
NEAR = "please book a table for four people at an italian restaurant near the station tomorrow"
# two words changed in the middle: 4 of 13 shingles differ -> Jaccard 9/17 = 0.53
FAR = "please book a table for four people at a greek restaurant near the station tonight"


def _random_texts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(500)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(4, 20))) for _ in range(count)]


def test_shingles_normalise_case_punctuation_and_space() -> None:
    assert shingles("Hello,   WORLD! How are you?") == shingles("hello world how are you")
    assert shingles("hello world how") == {"hello world how"}
    assert shingles("Hi there!") == {"hi there"}  # shorter than 3 words: the text itself
    assert shingles("  ...  ") == frozenset()


def test_jaccard_is_exact() -> None:
    assert jaccard(shingles(BASE), shingles(NEAR)) == pytest.approx(12 / 14)
    assert jaccard(shingles(BASE), shingles(FAR)) == pytest.approx(9 / 17)
    assert jaccard(frozenset(), frozenset()) == 1.0


def test_signatures_equal_datasketch_minhash() -> None:
    from datasketch import MinHash

    sets = [shingles(t) for t in (BASE, "", "one", *_random_texts(20))]
    rows = signatures(sets, num_perm=64, seed=5)
    for shingle_set, row in zip(sets, rows, strict=True):
        expected = MinHash(num_perm=64, seed=5, hashfunc=zlib.crc32)
        expected.update_batch([s.encode("utf-8") for s in shingle_set])
        assert (row == expected.hashvalues).all()


def test_lsh_bands_keep_recall_at_the_threshold() -> None:
    for threshold in (0.5, 0.8, 0.95):
        bands, rows = lsh_bands(threshold, 128)
        assert bands * rows <= 128
        assert 1 - (1 - threshold**rows) ** bands >= 0.995
    with pytest.raises(ValueError, match="threshold"):
        lsh_bands(0.0, 128)


def test_clusters_keep_first_and_only_verified_pairs() -> None:
    texts = ["unrelated text about the weather in paris", BASE, FAR, NEAR, BASE.upper() + "!", "tiny"]
    reps = near_duplicate_clusters(texts, threshold=0.8)
    assert reps == [0, 1, 2, 1, 1, 5]  # NEAR (0.857) and the shouted copy join BASE; FAR (0.53) does not
    assert near_duplicate_clusters(texts, threshold=0.9) == [0, 1, 2, 3, 1, 5]


def test_clusters_are_idempotent_on_many_texts() -> None:
    rng = random.Random(1)
    texts = _random_texts(400)
    for _ in range(200):  # plant near-duplicates: a copy with its last word changed
        words = rng.choice(texts).split()
        texts.append(" ".join([*words[:-1], "changed"]))
    reps = near_duplicate_clusters(texts, threshold=0.7)
    kept = [t for i, t in enumerate(texts) if reps[i] == i]
    assert len(kept) < len(texts)
    assert near_duplicate_clusters(kept, threshold=0.7) == list(range(len(kept)))
    for i, rep in enumerate(reps):  # every removed text really is a near-duplicate of its representative
        assert rep <= i and reps[rep] == rep
        assert jaccard(shingles(texts[i]), shingles(texts[rep])) >= 0.7


def test_components_join_chains_and_ignore_order() -> None:
    a = "one two three four five six seven eight nine ten eleven twelve"
    b = a + " thirteen"  # a~b (10/11), b~c, but a and c are further apart
    c = b + " fourteen"
    texts = [a, "something else entirely here", c, b]
    assert near_duplicate_clusters(texts, threshold=0.85) == [0, 1, 2, 0]  # greedy: c and a are too far apart
    assert near_duplicate_components(texts, threshold=0.85) == [0, 1, 0, 0]
    assert near_duplicate_components(list(reversed(texts)), threshold=0.85) == [0, 0, 2, 0]


def test_index_query_returns_verified_hits_best_first() -> None:
    index = NearDupIndex([FAR, BASE, "something else", BASE.lower()], threshold=0.8)
    assert len(index) == 4
    assert index.query(NEAR) == [(1, pytest.approx(12 / 14)), (3, pytest.approx(12 / 14))]
    assert index.query("nothing like it at all") == []
    assert index.query_many([BASE, "zzz"]) == [[(1, 1.0), (3, 1.0)], []]
    assert NearDupIndex([]).query(BASE) == []
