"""Near-duplicate texts: word 3-gram shingles, MinHash LSH for candidates, exact Jaccard to decide.

    reps = near_duplicate_clusters(texts, threshold=0.8)      # reps[i] == i: text i is a representative
    groups = near_duplicate_components(texts, threshold=0.8)  # near-duplicates share a group, however chained
    hits = NearDupIndex(eval_texts).query(train_text)         # [(eval index, Jaccard)], surest first

How it decides:
1. A text becomes a set of shingles: the word 3-grams of its normalised form (NFKC, lower case, punctuation
   removed, whitespace collapsed). A text of one or two words is one shingle (itself); an empty text has none.
   Texts with the same shingle set are handled once.
2. MinHash signatures (datasketch `MinHash.bulk`, seeded) are cut into bands; texts sharing a band are
   candidates. The bands are sized so a pair at the threshold is a candidate with probability >= 0.995
   (`lsh_bands`). Banding is done with numpy over the whole signature matrix: most texts share no band with
   any other and never reach the Python loop.
3. Every candidate pair is verified with the exact Jaccard similarity of the shingle sets, so no pair below the
   threshold is ever called a near-duplicate; the only approximation left is a rare missed pair. A signature
   depends only on its text and the seed, so a pair missed once is missed on every run: results are
   deterministic, and clustering the representatives again changes nothing.

numpy and datasketch are imported inside functions: `tunesmith.data` must import without them.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

SHINGLE_WORDS = 3
DEFAULT_THRESHOLD = 0.8
DEFAULT_NUM_PERM = 128
DEFAULT_SEED = 1
CANDIDATE_RECALL = 0.995
"""A pair exactly at the threshold shares a band with at least this probability (misses are the only error)."""

_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits: punctuation, underscores and spaces separate words


def normalise_words(text: str) -> list[str]:
    """The words of `text` in lower case, punctuation dropped (NFKC first, so full-width forms match)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def word_ngrams(words: Sequence[str], n: int) -> set[str]:
    """The word n-grams of `words`, joined by spaces; a text shorter than n words is one n-gram (itself)."""
    if len(words) < n:
        return {" ".join(words)} if words else set()
    shifted = [words[i : len(words) - n + 1 + i] for i in range(n)]  # n equal-length views, one per offset
    return set(map(" ".join, zip(*shifted, strict=True)))


def shingles(text: str) -> frozenset[str]:
    """The set MinHash and Jaccard work on: word 3-grams of the normalised text."""
    return frozenset(word_ngrams(normalise_words(text), SHINGLE_WORDS))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band (fewest false candidates) that still makes a pair at the
    threshold a candidate with probability >= CANDIDATE_RECALL, i.e. 1 - (1 - t^rows)^bands >= recall."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if num_perm < 2:
        raise ValueError(f"num_perm must be at least 2, got {num_perm}")
    for rows in range(num_perm // 2, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= CANDIDATE_RECALL:
            return bands, rows
    return num_perm, 1


def signatures(shingle_sets: Sequence[frozenset[str]], num_perm: int, seed: int) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures, one row per shingle set; row i equals the `hashvalues` of
    datasketch's `MinHash(num_perm, seed, hashfunc=zlib.crc32)` updated with set i (a test checks it).

    datasketch's `MinHash.bulk` loops over sets in Python; here every shingle of every set is permuted in one
    numpy pass per chunk and reduced per set with `minimum.reduceat`, about twice as fast on short texts.
    crc32 is the input hash: deterministic across processes (unlike `hash`) and faster than SHA-1.
    """
    import numpy as np
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, hashfunc=zlib.crc32).permutations  # (num_perm,) uint32 each
    empty = np.uint32(0xFFFFFFFF)  # an empty set keeps datasketch's initial value
    lengths = np.fromiter((len(s) for s in shingle_sets), dtype=np.int64, count=len(shingle_sets))
    hashed = np.fromiter(
        (zlib.crc32(shingle.encode("utf-8")) for shingle_set in shingle_sets for shingle in shingle_set),
        dtype=np.uint32,
        count=int(lengths.sum()),
    )
    mixed = _murmur3_finalize(hashed)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    result = np.full((len(shingle_sets), num_perm), empty, dtype=np.uint32)
    nonempty = np.flatnonzero(lengths > 0)
    chunk_sets = max(1, _CHUNK_SHINGLES // max(1, int(lengths.max(initial=1))))
    for first in range(0, len(nonempty), chunk_sets):
        rows = nonempty[first : first + chunk_sets]
        low, high = int(starts[rows[0]]), int(starts[rows[-1]] + lengths[rows[-1]])
        permuted = mixed[low:high, None] * a + b  # (shingles in chunk, num_perm), wraps mod 2^32
        result[rows] = np.minimum.reduceat(permuted, starts[rows] - low, axis=0)
    return result


_CHUNK_SHINGLES = 50_000  # shingles permuted per numpy pass: 50k x 128 perms x 4 bytes = 25 MB


def _murmur3_finalize(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (what datasketch's affine32 scheme applies to each input hash)."""
    import numpy as np

    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint32(16))
        h = h * np.uint32(0x85EBCA6B)
        h = h ^ (h >> np.uint32(13))
        h = h * np.uint32(0xC2B2AE35)
        return h ^ (h >> np.uint32(16))


def band_keys(signature_rows: np.ndarray, bands: tuple[int, int]) -> np.ndarray:
    """(n, bands) uint64: one key per band, a random linear hash of the band's rows (collisions only cost a
    wasted exact-Jaccard check)."""
    import numpy as np

    count, rows = bands
    n = signature_rows.shape[0]
    multipliers = np.random.default_rng(0).integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    banded = signature_rows[:, : count * rows].reshape(n, count, rows).astype(np.uint64)  # (n, bands, rows)
    with np.errstate(over="ignore"):  # wrap-around is the hash
        return (banded * multipliers).sum(axis=2, dtype=np.uint64)


def shared_buckets(keys: np.ndarray) -> dict[int, list[int]]:
    """Per row that shares at least one band key with another row: the ids of those shared buckets.

    A bucket id is band * n + (index of the key among that band's distinct keys). Rows sharing nothing are left
    out: they have no candidates at all.
    """
    import numpy as np

    n, count = keys.shape
    bucket = np.empty((n, count), dtype=np.int64)
    shared = np.zeros((n, count), dtype=bool)
    for band in range(count):
        _, inverse, sizes = np.unique(keys[:, band], return_inverse=True, return_counts=True)
        bucket[:, band] = band * n + inverse
        shared[:, band] = sizes[inverse] > 1
    result: dict[int, list[int]] = defaultdict(list)
    rows, cols = np.nonzero(shared)
    for row, bucket_id in zip(rows.tolist(), bucket[rows, cols].tolist(), strict=True):
        result[row].append(bucket_id)
    return result


class _Sketches:
    """The distinct shingle sets of a list of texts, with their LSH band keys."""

    def __init__(self, texts: Iterable[str], threshold: float, num_perm: int, seed: int):
        self.threshold = threshold
        self.num_perm = num_perm
        self.seed = seed
        self.bands = lsh_bands(threshold, num_perm)
        self.unique_of: list[int] = []
        """Per text: the index of its shingle set in `sets` (texts equal after normalising share one)."""
        self.sets: list[frozenset[str]] = []
        self.first_text: list[int] = []
        """Per shingle set: the first text that has it."""
        position: dict[frozenset[str], int] = {}
        for index, text in enumerate(texts):
            shingle_set = shingles(text)
            unique = position.setdefault(shingle_set, len(self.sets))
            if unique == len(self.sets):
                self.sets.append(shingle_set)
                self.first_text.append(index)
            self.unique_of.append(unique)
        self.keys = band_keys(signatures(self.sets, num_perm, seed), self.bands)

    def verified(self, shingle_set: frozenset[str], candidates: Iterable[int]) -> list[tuple[int, float]]:
        """The candidate set indices whose exact Jaccard with `shingle_set` reaches the threshold."""
        scored = ((c, jaccard(shingle_set, self.sets[c])) for c in candidates)
        return [(c, score) for c, score in scored if score >= self.threshold]


def near_duplicate_clusters(
    texts: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    seed: int = DEFAULT_SEED,
) -> list[int]:
    """Greedy in-order clustering: per text, the index of its representative (itself when it is one).

    Text i joins the earliest representative before it whose Jaccard with it is >= threshold; otherwise it
    becomes a representative. The representatives are pairwise below the threshold, so clustering them again
    keeps every one of them (idempotence). Texts equal after normalising always share a representative.
    """
    sketches = _Sketches(texts, threshold, num_perm, seed)
    rep_of_set = list(range(len(sketches.sets)))  # per distinct set: the distinct set it joined (or itself)
    reps_in_bucket: dict[int, list[int]] = defaultdict(list)
    for unique, buckets in sorted(shared_buckets(sketches.keys).items()):
        candidates = {rep for bucket in buckets for rep in reps_in_bucket[bucket]}
        matches = sketches.verified(sketches.sets[unique], sorted(candidates))
        if matches:
            rep_of_set[unique] = matches[0][0]  # sorted candidates: the earliest representative
        else:
            for bucket in buckets:
                reps_in_bucket[bucket].append(unique)
    return [sketches.first_text[rep_of_set[unique]] for unique in sketches.unique_of]


def near_duplicate_components(
    texts: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    seed: int = DEFAULT_SEED,
) -> list[int]:
    """Per text, the smallest index in its connected component under 'near-duplicate of' (chains included).

    Unlike the greedy clusters, no near-duplicate pair is ever split across two components, and which texts
    form a component does not depend on their order (only the numbering does).
    """
    sketches = _Sketches(texts, threshold, num_perm, seed)
    parent = list(range(len(sketches.sets)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    members: dict[int, list[int]] = defaultdict(list)
    for unique, buckets in sorted(shared_buckets(sketches.keys).items()):
        for other in sorted({m for bucket in buckets for m in members[bucket]}):
            # already joined (through another pair): no need to pay for the Jaccard
            if root(other) != root(unique) and jaccard(sketches.sets[unique], sketches.sets[other]) >= threshold:
                a, b = root(other), root(unique)
                parent[max(a, b)] = min(a, b)
        for bucket in buckets:
            members[bucket].append(unique)
    return [sketches.first_text[root(unique)] for unique in sketches.unique_of]


class NearDupIndex:
    """Texts indexed to answer 'which of them does this text near-duplicate?' (e.g. eval texts, queried with
    each training text)."""

    def __init__(
        self,
        texts: Sequence[str],
        threshold: float = DEFAULT_THRESHOLD,
        num_perm: int = DEFAULT_NUM_PERM,
        seed: int = DEFAULT_SEED,
    ):
        self._sketches = _Sketches(texts, threshold, num_perm, seed)
        self._texts_of_set: list[list[int]] = [[] for _ in self._sketches.sets]
        for index, unique in enumerate(self._sketches.unique_of):
            self._texts_of_set[unique].append(index)
        self._sets_by_key: list[dict[int, list[int]]] = [defaultdict(list) for _ in range(self._sketches.bands[0])]
        for unique, row in enumerate(self._sketches.keys.tolist()):
            for band, key in enumerate(row):
                self._sets_by_key[band][key].append(unique)

    def __len__(self) -> int:
        return len(self._sketches.unique_of)

    def query(self, text: str) -> list[tuple[int, float]]:
        """(index, Jaccard) of every indexed text at or above the threshold, highest Jaccard first."""
        return self.query_many([text])[0]

    def query_many(self, texts: Sequence[str]) -> list[list[tuple[int, float]]]:
        """`query` for many texts at once (hashed in bulk; only texts sharing a band key reach Python)."""
        import numpy as np

        queries = _Sketches(texts, self._sketches.threshold, self._sketches.num_perm, self._sketches.seed)
        indexed = self._sketches.keys
        hit = np.zeros(queries.keys.shape, dtype=bool)  # (queries, bands)
        for band in range(indexed.shape[1]):
            hit[:, band] = np.isin(queries.keys[:, band], indexed[:, band])
        per_set: dict[int, list[tuple[int, float]]] = {}
        for unique in np.flatnonzero(hit.any(axis=1)).tolist():
            row = queries.keys[unique]
            bands = np.flatnonzero(hit[unique]).tolist()
            candidates = {c for band in bands for c in self._sets_by_key[band][int(row[band])]}
            matches = self._sketches.verified(queries.sets[unique], sorted(candidates))
            hits = [(index, score) for c, score in matches for index in self._texts_of_set[c]]
            per_set[unique] = sorted(hits, key=lambda h: (-h[1], h[0]))
        return [per_set.get(unique, []) for unique in queries.unique_of]
