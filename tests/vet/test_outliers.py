"""Embedding-space and perplexity outliers on crafted intent data with planted junk."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from crafted_intents import clean_rows, context

from tunesmith.config.vet_schema import VetConfig
from tunesmith.core.errors import ConfigError
from tunesmith.vet.filters.outliers import OutlierFilter, knn_mean_similarity, robust_z
from tunesmith.vet.perplexity import causal_lm_scorer

JUNK = [
    "zq8Xr0Lmv2PqWn7TbYc3Kd9Hs",
    "SELECT * FROM users WHERE id = 7; DROP TABLE logs;",
    "2024-03-01 12:00:03 ERROR [worker-4] connection refused at 0x7f3a",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "lorem ipsum dolor sit amet consectetur adipiscing elit",
    "<div class='c1'>&nbsp;&nbsp;</div>",
]


def _planted() -> tuple[list[tuple[str, str]], set[int]]:
    rows = clean_rows(per_label=30, seed=1)
    junk_at = set(range(len(rows), len(rows) + len(JUNK)))
    return rows + [(text, "get_weather") for text in JUNK], junk_at


def _flagged_rows(rows: list[tuple[str, str]], config: VetConfig | None = None) -> tuple[dict[int, float], dict]:
    ctx = context(rows, config)
    plugin = OutlierFilter((config or VetConfig()).outliers)
    flags = plugin.run(ctx)
    position = {rid: i for i, rid in enumerate(ctx.ids)}
    return {position[f.record_id]: f.score for f in flags}, plugin.summary


def test_planted_junk_is_caught_and_clean_records_are_not() -> None:
    rows, junk_at = _planted()
    flagged, summary = _flagged_rows(rows)
    assert len(junk_at & set(flagged)) >= 5  # of 6
    assert len(set(flagged) - junk_at) <= 2  # of 180 clean (~1%)
    assert summary["embedding_outliers"] == len(flagged)
    assert all(score > VetConfig().outliers.threshold for score in flagged.values())


def test_clean_data_alone_loses_at_most_one_percent() -> None:
    flagged, _ = _flagged_rows(clean_rows(per_label=30, seed=2))
    assert len(flagged) <= 2


def test_too_few_records_are_skipped_with_a_reason() -> None:
    flagged, summary = _flagged_rows(clean_rows(per_label=2))
    assert flagged == {} and "too few" in summary["skipped"]


def test_knn_similarity_and_robust_z() -> None:
    vectors = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0, 1]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = knn_mean_similarity(vectors, neighbours=1)
    assert similarity.argmin() == 3  # the orthogonal row is furthest from its nearest neighbour
    assert np.allclose(robust_z(np.ones(5)), 0.0)  # no spread: no outliers
    z = robust_z(np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 9.0]))
    assert z[-1] > 10 and np.all(np.abs(z[:-1]) < 2)


def test_perplexity_needs_a_scorer() -> None:
    config = VetConfig()
    config.outliers.perplexity = True
    with pytest.raises(ConfigError, match="vet.outliers.perplexity"):
        OutlierFilter(config.outliers).run(context(clean_rows(per_label=5), config))


def test_perplexity_outliers_come_from_the_scorer() -> None:
    config = VetConfig()
    config.outliers.perplexity = True
    rows = clean_rows(per_label=10)
    surprising = {3, 17}
    ctx = context(rows, config)
    ctx.model_scorer = lambda texts: np.array(
        [9.0 if i in surprising else 2.0 + 0.01 * (i % 7) for i in range(len(texts))]
    )
    plugin = OutlierFilter(config.outliers)
    flags = plugin.run(ctx)
    perplexity = {ctx.ids.index(f.record_id) for f in flags if f.details["kind"] == "perplexity"}
    assert perplexity == surprising
    assert plugin.summary["perplexity_outliers"] == 2


def test_causal_lm_scorer_on_the_tiny_model(tiny_model: Any, tiny_tokenizer: Any) -> None:
    model, tokenizer = tiny_model, tiny_tokenizer
    model.train()
    texts = ["Play some jazz music.", "What is the weather like in Paris tomorrow?", "x"]
    batched = causal_lm_scorer(model, tokenizer, batch_size=3)(texts)
    one_by_one = np.concatenate([causal_lm_scorer(model, tokenizer, batch_size=1)([t]) for t in texts])
    assert batched.shape == (3,) and np.all(np.isfinite(batched))
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-4, atol=1e-4)  # padding does not leak into the score
    assert batched[0] > 0 and model.training  # scored in eval mode, then the caller's mode is restored


def test_bad_thresholds_are_config_errors() -> None:
    config = VetConfig()
    config.outliers.threshold = 0
    config.outliers.neighbours = 0
    with pytest.raises(ConfigError) as error:
        OutlierFilter(config.outliers)
    assert len(error.value.problems) == 2 and "vet.outliers.neighbours" in str(error.value)
