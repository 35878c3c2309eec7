"""Duplicates: exact copies, near-duplicates (MinHash LSH), and optionally paraphrases (MiniLM cosine).

Three passes over the full text of the live records, each on what the previous one kept, each keeping the first
record of a cluster (in file order) and quarantining the rest with `details["kept_id"]` naming the kept one:

1. Exact: the same text after NFKC, lower case and whitespace collapsing. For label records, a copy whose label
   differs from the kept one's is a conflict ("same text as <id> with a different label"): the first is kept,
   the others removed, the labels reported.
2. Near (`near`): Jaccard of word 3-gram shingles >= `near_threshold`, by `data.neardup`'s greedy clustering
   (LSH candidates verified with the exact Jaccard). The kept records are pairwise below the threshold, so
   deduplicating them again removes nothing.
3. Semantic (`semantic`, off by default): cosine similarity of MiniLM sentence embeddings >= `semantic_threshold`,
   the same greedy in-order clustering. Cost: O(n^2) dot products in row blocks (minutes beyond ~50k records).
"""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any

from tunesmith.config.vet_schema import DedupFilterConfig
from tunesmith.data.neardup import jaccard, near_duplicate_clusters, shingles
from tunesmith.data.split import normalise_text
from tunesmith.vet.base import FILTERS, Flag, VetContext

if TYPE_CHECKING:
    import numpy as np

SEMANTIC_ROW_BLOCK = 1024  # rows of the similarity matrix held at once: (block, n) float32


def exact_key(text: str) -> str:
    """What counts as 'the same text': NFKC, lower case, runs of whitespace collapsed, ends stripped."""
    return normalise_text(unicodedata.normalize("NFKC", text))


@FILTERS.register("dedup")
class DedupFilter:
    statistical = False

    def __init__(self, config: DedupFilterConfig):
        self.config = config
        self.summary: dict[str, Any] = {}

    def run(self, ctx: VetContext) -> list[Flag]:
        texts, labels, ids = ctx.texts(), ctx.labels(), ctx.ids
        flags, kept = self._exact(texts, labels, ids)
        counts = {"exact": len(flags), "label_conflicts": sum(1 for f in flags if f.details["label_conflict"])}
        if self.config.near:
            near_flags, kept = self._near(texts, labels, ids, kept)
            flags += near_flags
            counts["near"] = len(near_flags)
        if self.config.semantic:
            semantic_flags, kept = self._semantic(texts, labels, ids, kept, ctx.seed)
            flags += semantic_flags
            counts["semantic"] = len(semantic_flags)
        self.summary = {
            "duplicates": counts,
            "note": ", ".join(f"{kind} {n}" for kind, n in counts.items() if n) or "no duplicates",
        }
        return flags

    def _exact(self, texts: list[str], labels: list[str | None], ids: list[str]) -> tuple[list[Flag], list[int]]:
        first_with: dict[str, int] = {}
        flags, kept = [], []
        for index, text in enumerate(texts):
            first = first_with.setdefault(exact_key(text), index)
            if first == index:
                kept.append(index)
                continue
            conflict = labels[index] != labels[first]
            reason = (
                f"same text as {ids[first]} with a different label ({labels[index]!r}, kept {labels[first]!r})"
                if conflict
                else f"exact duplicate of {ids[first]}"
            )
            details = {"kept_id": ids[first], "kind": "exact", "label_conflict": conflict}
            if conflict:
                details |= {"label": labels[index], "kept_label": labels[first]}
            flags.append(Flag(ids[index], reason, 1.0, details=details))
        return flags, kept

    def _near(
        self, texts: list[str], labels: list[str | None], ids: list[str], kept: list[int]
    ) -> tuple[list[Flag], list[int]]:
        cfg = self.config
        reps = near_duplicate_clusters([texts[i] for i in kept], threshold=cfg.near_threshold, num_perm=cfg.num_perm)
        flags, still_kept = [], []
        for position, rep_position in enumerate(reps):
            index, rep = kept[position], kept[rep_position]
            if rep == index:
                still_kept.append(index)
                continue
            score = jaccard(shingles(texts[index]), shingles(texts[rep]))
            flags.append(self._cluster_flag("near", f"Jaccard {score:.2f}", score, index, rep, ids, labels))
        return flags, still_kept

    def _semantic(
        self, texts: list[str], labels: list[str | None], ids: list[str], kept: list[int], seed: int
    ) -> tuple[list[Flag], list[int]]:
        from tunesmith.vet.embed import embed_texts

        vectors = embed_texts([texts[i] for i in kept], "minilm", seed)
        reps, scores = greedy_cosine_clusters(vectors, self.config.semantic_threshold)
        flags, still_kept = [], []
        for position, rep_position in enumerate(reps):
            index, rep = kept[position], kept[rep_position]
            if rep == index:
                still_kept.append(index)
                continue
            score = scores[position]
            flags.append(self._cluster_flag("semantic", f"cosine {score:.3f}", score, index, rep, ids, labels))
        return flags, still_kept

    @staticmethod
    def _cluster_flag(
        kind: str, similarity: str, score: float, index: int, rep: int, ids: list[str], labels: list[str | None]
    ) -> Flag:
        conflict = labels[index] != labels[rep]
        reason = f"{kind}-duplicate of {ids[rep]} ({similarity})"
        details: dict[str, Any] = {"kept_id": ids[rep], "kind": kind, "similarity": round(score, 4)}
        if conflict:
            reason += f" with a different label ({labels[index]!r}, kept {labels[rep]!r})"
            details |= {"label_conflict": True, "label": labels[index], "kept_label": labels[rep]}
        return Flag(ids[index], reason, score, details=details)


def greedy_cosine_clusters(vectors: np.ndarray, threshold: float) -> tuple[list[int], list[float]]:
    """Greedy in-order clustering of L2-normalised rows by cosine similarity: per row, its representative (the
    earliest representative before it at >= threshold, else itself) and the similarity to it (1.0 for itself).
    """
    import numpy as np

    n = vectors.shape[0]
    earlier_similar: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for start in range(0, n, SEMANTIC_ROW_BLOCK):
        stop = min(start + SEMANTIC_ROW_BLOCK, n)
        similarity = vectors[start:stop] @ vectors[:stop].T  # (block, stop): only earlier rows matter
        rows, cols = np.nonzero(similarity >= threshold)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            if col < start + row:
                earlier_similar[start + row].append((col, float(similarity[row, col])))
    reps, scores = list(range(n)), [1.0] * n
    for index in range(n):
        match = next(((j, s) for j, s in sorted(earlier_similar[index]) if reps[j] == j), None)
        if match is not None:
            reps[index], scores[index] = match
    return reps, scores
