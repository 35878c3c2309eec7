"""Embedding-space outliers: records far from every other record (junk, foreign text, pasted logs, wrong task).

A record's remoteness is -log of its mean cosine similarity to its `neighbours` nearest records in
`ctx.embeddings()` (similarities clipped at 0.01). The log spreads out the top end, where junk sits with almost
no similarity to anything, instead of squeezing it against a distance of 1. Turned into a robust z-score
(median and MAD, so the outliers themselves do not widen the scale), a record above `threshold` is removed with
score = z. A clump of alike junk smaller than k still looks remote; a genuine cluster larger than it does not.
k is `neighbours`, but at most n / 15 (at least 5): on 200 records a k of 50 would make every small template
family look remote.

With `perplexity: true`, each record's mean token negative log-likelihood under the base model (the scorer the
recipe puts in `ctx.model_scorer`) is scored the same way, high side only: text the model finds far more
surprising than the rest of the data. A record flagged by both keeps the higher z.

Cost: nearest neighbours by brute force, O(n^2 * dims) in blocks of rows (fine to ~50k records on CPU).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunesmith.config.vet_schema import OutlierFilterConfig
from tunesmith.core.errors import ConfigError, Problem
from tunesmith.vet.base import FILTERS, Flag, VetContext
from tunesmith.vet.config_checks import require

if TYPE_CHECKING:
    import numpy as np

MIN_RECORDS = 20  # below this, a median and MAD say little about what is typical
NEIGHBOUR_SHARE = 15  # k is at most n / 15: on small data, a large k makes every small genuine cluster look remote
MIN_NEIGHBOURS = 5
ROW_BLOCK = 2048  # rows of the similarity matrix held at once: (ROW_BLOCK, n) floats
MIN_SIMILARITY = 0.01  # floor before the log: below it, "no similarity" is all that matters


@FILTERS.register("outliers")
class OutlierFilter:
    statistical = True

    def __init__(self, config: OutlierFilterConfig):
        require(
            [
                ("outliers.threshold", config.threshold, config.threshold > 0, "a robust z-score > 0 (e.g. 3.5)"),
                ("outliers.neighbours", config.neighbours, config.neighbours >= 1, "an integer >= 1"),
            ]
        )
        self.config = config
        self.summary: dict[str, Any] = {}

    def run(self, ctx: VetContext) -> list[Flag]:
        n = len(ctx.records)
        if self.config.perplexity and ctx.model_scorer is None:
            raise ConfigError(
                [
                    Problem(
                        "vet.outliers.perplexity",
                        None,
                        "is on, but no base model was given to the vetting step",
                        "vet inside `tunesmith train`/`run` (which load the base model), "
                        "or set --vet.outliers.perplexity=false",
                    )
                ]
            )
        if n < MIN_RECORDS:
            self.summary = {"skipped": f"too few records ({n}) for outlier statistics"}
            return []
        k = min(self.config.neighbours, max(MIN_NEIGHBOURS, n // NEIGHBOUR_SHARE))
        similarity = knn_mean_similarity(ctx.embeddings(), k)
        flags = dict(self._embedding_flags(ctx, similarity, k))
        self.summary = {
            "records": n,
            "neighbours": k,
            "embedding_outliers": len(flags),
            "median_knn_similarity": round(_median(similarity), 4),
        }
        if self.config.perplexity and ctx.model_scorer is not None:
            perplexity_flags = list(self._perplexity_flags(ctx))
            self.summary["perplexity_outliers"] = len(perplexity_flags)
            for i, flag in perplexity_flags:
                if i not in flags or flag.score > flags[i].score:
                    flags[i] = flag
        return [flags[i] for i in sorted(flags)]

    def _embedding_flags(self, ctx: VetContext, similarity: np.ndarray, k: int) -> list[tuple[int, Flag]]:
        import numpy as np

        z = robust_z(-np.log(np.maximum(similarity, MIN_SIMILARITY)))
        return [
            (
                int(i),
                Flag(
                    ctx.ids[i],
                    f"embedding outlier: mean cosine similarity {similarity[i]:.3f} to its {k} nearest records "
                    f"(robust z {z[i]:.1f} > {self.config.threshold:g})",
                    float(z[i]),
                    details={"kind": "embedding", "knn_similarity": round(float(similarity[i]), 4)},
                ),
            )
            for i in (z > self.config.threshold).nonzero()[0]
        ]

    def _perplexity_flags(self, ctx: VetContext) -> list[tuple[int, Flag]]:
        import numpy as np

        assert ctx.model_scorer is not None
        nll = np.asarray(ctx.model_scorer(ctx.texts()), dtype=np.float64)
        z = robust_z(nll)
        return [
            (
                int(i),
                Flag(
                    ctx.ids[i],
                    f"perplexity outlier: {np.exp(nll[i]):.1f} under the base model "
                    f"(robust z {z[i]:.1f} > {self.config.threshold:g})",
                    float(z[i]),
                    details={"kind": "perplexity", "perplexity": round(float(np.exp(nll[i])), 2)},
                ),
            )
            for i in (z > self.config.threshold).nonzero()[0]
        ]


def knn_mean_similarity(embeddings: np.ndarray, neighbours: int) -> np.ndarray:
    """(n,) mean cosine similarity of each L2-normalised row to its `neighbours` most similar other rows."""
    import numpy as np

    n = embeddings.shape[0]
    k = max(1, min(neighbours, n - 1))
    similarity = np.empty(n, dtype=np.float64)
    for start in range(0, n, ROW_BLOCK):
        stop = min(start + ROW_BLOCK, n)
        sims = embeddings[start:stop] @ embeddings.T  # (block, n)
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # a record is not its own neighbour
        nearest = np.partition(sims, n - k, axis=1)[:, n - k :]  # (block, k) largest similarities
        similarity[start:stop] = nearest.mean(axis=1)
    return similarity


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 * MAD): a z-score the outliers themselves cannot inflate; zeros if no spread."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    median = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - median))
    if spread <= 1e-12:  # over half the values are equal: fall back to the mean absolute deviation
        spread = 1.2533 * np.mean(np.abs(values - median))
    if spread <= 1e-12:
        return np.zeros_like(values)
    return (values - median) / spread


def _median(values: np.ndarray) -> float:
    import numpy as np

    return float(np.median(values))
