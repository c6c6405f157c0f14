"""Toxicity: Detoxify scores on comments, the organisation's own posts and staff messages.

Policy duties enforced: posts on the official accounts stay consistent with the organisation's aims
and tone, and inappropriate posts by others are removed (P1 "Managing our online presence", P2
"Information security"); staff keep a professional tone with learners (P1 "What we expect of our
staff", P2 "Communicating with students"); threats and sexual language are KCSIE conduct risks for
the DSL.

What lives here (the run-time side; making and checking exports is rules/toxicity_export.py):

* where the model's files are: ``detoxify_files`` (the model store that ``governance-bot models
  fetch`` fills, or a checkpoint named in the config). Nothing is ever downloaded here.
* ``load_detoxify``: builds a real ``detoxify.Detoxify`` from a local checkpoint plus a local
  transformer config/tokenizer folder, **fully offline** (Detoxify itself would still ask the
  model hub for the checkpoint's ``model_type``; we point that at the local folder, see
  docs/classifiers-toxicity.md).
* Scoring backends: ``OnnxBackend`` (the checkpoint exported to ONNX, used only when the record
  beside the export says it passed its parity check against torch for this checkpoint and this
  ONNX Runtime; no torch is loaded then), ``DetoxifyBackend`` (torch, stock
  ``Detoxify.predict``), ``ProfanityFallbackBackend`` (alt-profanity-check, only where
  ``allow_fallback`` is set; its findings say so).
* ``ToxicityDetector``: thresholds, categories and severities from ``rules/packs/toxicity.toml``;
  its model loads when the first text needs it.
* ``toxicity_status(config)``: one line for ``doctor`` and the weekly report, from the files
  and records alone.

Message text is never logged.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import ItemKind, Role
from rules.base import DetectionContext, DetectorBase, DetectorUnavailable
from rules.batching import available_cores, plan_batches, spread_batches
from rules.models import FETCH_STEP, ExportRecord, file_identity, runtime_version, store_dir

if TYPE_CHECKING:
    from governance_bot.config import Config, ToxicitySettings
    from governance_bot.items import Item

__all__ = [
    "LABELS",
    "ONNX_VARIANTS",
    "DetoxifyBackend",
    "DetoxifyFiles",
    "OnnxBackend",
    "ParityResult",
    "ProfanityFallbackBackend",
    "ScoringBackend",
    "ToxicityDetector",
    "ToxicityModelUnavailable",
    "ToxicityPack",
    "build_backend",
    "detoxify_files",
    "load_detoxify",
    "parity_check",
    "plan_batches",
    "toxicity_status",
]

log = logging.getLogger(__name__)

# The labels Detoxify models report (the "unbiased" ones add identity subgroups, which we ignore).
LABELS = (
    "toxicity",
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "sexual_explicit",
)
# Detoxify's own renaming of the Jigsaw class names (detoxify.detoxify.load_checkpoint).
_DETOXIFY_RENAMES = {
    "toxic": "toxicity",
    "identity_hate": "identity_attack",
    "severe_toxic": "severe_toxicity",
}
FALLBACK_LABEL = "profanity"
_FETCH_TO_DO = (
    f"Fix: run `{FETCH_STEP}` on a machine with internet (here, or elsewhere and then `"
    f"{FETCH_STEP} --from DIR` here with the folder it filled; docs/classifiers-toxicity.md)."
)
_WHAT_TO_DO = (
    f"{_FETCH_TO_DO[:-1]}; or set allow_fallback = true to use the shipped profanity model "
    "meanwhile; or add \"toxicity\" to [detection] disabled_rules."
)


class ToxicityModelUnavailable(DetectorUnavailable):
    """No toxicity model could be loaded; the message says why and what to do."""


# --------------------------------------------------------------------------------------- pack


class LabelRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(ge=0.0, le=1.0)
    severity: Severity
    category: Category
    explanation: str
    escalate_at: float | None = Field(default=None, ge=0.0, le=1.0)
    escalated_severity: Severity | None = None

    def severity_for(self, score: float) -> Severity | None:
        if score < self.threshold:
            return None
        if self.escalate_at is not None and score >= self.escalate_at:
            return self.escalated_severity or self.severity
        return self.severity


class ScopeRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    own_voice_roles: list[Role] = Field(default_factory=lambda: [Role.organisation, Role.staff])
    own_voice_relabel: dict[Category, Category] = Field(default_factory=dict)
    other_kinds: list[ItemKind] = Field(
        default_factory=lambda: [ItemKind.comment, ItemKind.reply, ItemKind.post]
    )


class OnnxRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parity_tolerance: float = Field(default=1e-3, gt=0.0, le=1e-3)
    check_texts: list[str] = Field(min_length=4)


class ToxicityPack(BaseModel):
    """``rules/packs/toxicity.toml``, validated."""

    model_config = ConfigDict(extra="forbid")

    rule_id: Literal["toxicity"] = "toxicity"
    description: str = ""
    labels: dict[str, LabelRule]
    scope: ScopeRules = Field(default_factory=ScopeRules)
    fallback: LabelRule
    onnx: OnnxRules

    @classmethod
    def from_dict(cls, pack: dict[str, Any]) -> ToxicityPack:
        where = pack.get("_path", "toxicity pack")
        data = {k: v for k, v in pack.items() if not k.startswith("_")}
        try:
            parsed = cls.model_validate(data)
        except ValidationError as exc:
            lines = [
                f"{where}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            ]
            raise ValueError("invalid toxicity rule pack:\n  " + "\n  ".join(lines)) from None
        unknown = sorted(set(parsed.labels) - set(LABELS))
        if unknown:
            raise ValueError(
                f"{where}: labels: unknown label(s) {', '.join(unknown)}; "
                f"Detoxify reports {', '.join(LABELS)}"
            )
        return parsed


# ------------------------------------------------------------------------------------ loading


def _offline() -> None:
    """Nothing reaches for a model hub at run time (set before transformers is imported)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _hf_folder_problem(folder: Path) -> str | None:
    if not folder.is_dir():
        return f"huggingface_config_path {folder} is not a folder"
    if not (folder / "config.json").is_file():
        return f"huggingface_config_path {folder} has no config.json"
    tokenizer_files = ("tokenizer.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model",
                       "vocab.json")
    if not any((folder / name).is_file() for name in tokenizer_files):
        return (f"huggingface_config_path {folder} has no tokenizer files "
                "(tokenizer.json, vocab.txt...)")
    return None


def _read_checkpoint(path: Path, device: str) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise ToxicityModelUnavailable(f"checkpoint {path} does not exist")
    try:
        # weights_only: a checkpoint is plain tensors and a config dict; refuse pickled code
        loaded = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ToxicityModelUnavailable(
            f"checkpoint {path} holds more than tensors and a config, so it is not loaded "
            f"({str(exc).splitlines()[0]}). Fix: convert it once with `python -m rules.toxicity "
            "prepare --checkpoint FILE --out DIR` on a machine you trust"
        ) from None
    except Exception as exc:
        raise ToxicityModelUnavailable(f"checkpoint {path} cannot be read: {exc}") from None
    if not isinstance(loaded, dict) or "config" not in loaded or "state_dict" not in loaded:
        raise ToxicityModelUnavailable(
            f"checkpoint {path} is not in Detoxify's format (a dict with 'config' and 'state_dict')"
        )
    try:
        loaded["config"]["arch"]["args"]["model_name"]
        loaded["config"]["dataset"]["args"]["classes"]
    except (KeyError, TypeError):
        raise ToxicityModelUnavailable(
            f"checkpoint {path}: its config lacks arch.args or dataset.args.classes"
        ) from None
    return loaded


def _cap_length(detox: Any) -> None:
    """Truncate at what the model's position embeddings allow (a tokenizer may say 'infinite')."""
    limit = getattr(detox.model.config, "max_position_embeddings", 512) or 512
    # RoBERTa-style models reserve two positions for the padding offset
    if getattr(detox.model.config, "model_type", "") in {"roberta", "xlm-roberta"}:
        limit -= 2
    if not detox.tokenizer.model_max_length or detox.tokenizer.model_max_length > limit:
        detox.tokenizer.model_max_length = limit


def load_detoxify(
    model_type: str = "original",
    checkpoint: Path | None = None,
    huggingface_config_path: Path | None = None,
    device: str = "cpu",
) -> Any:
    """A real ``detoxify.Detoxify`` from a local checkpoint and its config/tokenizer folder,
    fully offline (never a download: ``governance-bot models fetch`` puts the files here).
    Detoxify would call ``config_class.from_pretrained(<the checkpoint's model_type>)`` (a hub
    name such as ``bert-base-uncased``) without ``local_files_only``; we rewrite the checkpoint's
    ``config.arch.args.model_type`` to the local folder and call Detoxify's own
    ``get_model_and_tokenizer`` with it, so nothing is fetched.
    """
    if checkpoint is None:
        raise ToxicityModelUnavailable(
            f"Detoxify {model_type!r} is not on this machine and nothing is downloaded at run "
            f"time. {_WHAT_TO_DO}")
    if not checkpoint.is_file():
        raise ToxicityModelUnavailable(f"checkpoint {checkpoint} does not exist")
    if huggingface_config_path is None:
        raise ToxicityModelUnavailable(
            f"checkpoint {checkpoint} is set but huggingface_config_path is not: offline loading "
            "needs the folder with the transformer config.json and tokenizer files"
        )
    problem = _hf_folder_problem(huggingface_config_path)
    if problem:
        raise ToxicityModelUnavailable(problem)
    _offline()
    from detoxify import Detoxify
    from detoxify import detoxify as detoxify_module

    loaded = _read_checkpoint(checkpoint, device)
    args = dict(loaded["config"]["arch"]["args"])
    args["model_type"] = str(huggingface_config_path)  # the snag: never a hub name
    class_names = [
        _DETOXIFY_RENAMES.get(c, c) for c in loaded["config"]["dataset"]["args"]["classes"]
    ]
    try:
        model, tokenizer = detoxify_module.get_model_and_tokenizer(
            **args,
            state_dict=loaded["state_dict"],
            huggingface_config_path=str(huggingface_config_path),
        )
    except Exception as exc:
        raise ToxicityModelUnavailable(
            f"checkpoint {checkpoint} with {huggingface_config_path} cannot be built: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    del loaded
    detox = Detoxify.__new__(Detoxify)  # what Detoxify.__init__ sets, from our offline load
    detox.model, detox.tokenizer, detox.class_names, detox.device = (
        model, tokenizer, class_names, device
    )
    detox.model.to(device)
    detox.model.eval()
    _cap_length(detox)
    return detox


# ----------------------------------------------------------------------------------- backends


class ScoringBackend(Protocol):
    """Scores texts: one dict label -> probability per text."""

    name: str
    is_fallback: bool

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]: ...


def _batches(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start:start + size]


class DetoxifyBackend:
    """Stock Detoxify on torch: ``Detoxify.predict`` on batches of ``batch_size`` texts."""

    is_fallback = False

    def __init__(self, detox: Any, batch_size: int = 32, model_type: str = "original"):
        self.detox = detox
        self.batch_size = batch_size
        self.model_type = model_type
        self.name = f"detoxify-{model_type} (torch)"
        self.class_names: list[str] = list(detox.class_names)
        self._lock = threading.Lock()  # a torch module is not meant to be shared across threads

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        out: list[dict[str, float]] = []
        for batch in _batches(list(texts), self.batch_size):
            with self._lock:
                result = self.detox.predict(list(batch))
            for i in range(len(batch)):
                out.append({
                    label: float(values[i] if isinstance(values, list) else values)
                    for label, values in result.items()
                })
        return out


class OnnxBackend:
    """The same checkpoint exported to ONNX and run with onnxruntime.

    Texts are tokenised exactly as Detoxify does (truncation; padding to the longest in a batch),
    all at once, then grouped by token count (``plan_batches``) so a batch carries little padding.
    With ``workers`` > 1 the batches run side by side, one per worker thread, on one shared
    session with one intra-op thread each (``InferenceSession.run`` is thread-safe and releases
    the GIL): independent batches use the cores better than one batch split across them.
    With an fp32 export a text's scores do not depend on which batch it lands in (the attention
    mask ignores padding) nor on which thread runs it; with the int8 one they move slightly
    (activations are scaled per batch), within the parity tolerance.
    """

    is_fallback = False

    def __init__(self, session: Any, tokenizer: Any, class_names: Sequence[str],
                 batch_size: int = 32, model_type: str = "original", sort_by_length: bool = True,
                 variant: str = "onnx", workers: int = 1):
        self.session = session
        self.tokenizer = tokenizer
        self.class_names = list(class_names)
        self.batch_size = batch_size
        self.sort_by_length = sort_by_length
        self.model_type = model_type
        self.variant = variant
        self.workers = max(1, workers)
        self.name = f"detoxify-{model_type} ({variant})"
        self.input_names = [i.name for i in session.get_inputs()]
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, tokenizer: Any, class_names: Sequence[str], batch_size: int = 32,
                  model_type: str = "original", threads: int | None = None,
                  sort_by_length: bool = True, variant: str = "onnx",
                  parallel_batches: bool = True) -> OnnxBackend:
        """A backend on the export at ``path`` using ``threads`` CPU threads (default: every
        available core): with ``parallel_batches``, that many batches at once on one thread
        each; without, one batch at a time on that many intra-op threads."""
        import onnxruntime as ort

        threads = threads or available_cores()
        workers = threads if parallel_batches else 1
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads // workers
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(session, tokenizer, class_names, batch_size, model_type, sort_by_length,
                   variant, workers)

    def _run(self, encoded: list[dict[str, list[int]]]) -> Any:
        import numpy as np

        # padded as the tokenizer pads (its pad id and side), without a second tokenizer call
        width = max(len(row["input_ids"]) for row in encoded)
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        feeds: dict[str, Any] = {}
        for name in self.input_names:
            fill = {"input_ids": self.tokenizer.pad_token_id or 0,
                    "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0)}.get(name, 0)
            array = np.full((len(encoded), width), fill, dtype=np.int64)
            for r, row in enumerate(encoded):
                values = row[name]
                if left:
                    array[r, width - len(values):] = values
                else:
                    array[r, :len(values)] = values
            feeds[name] = array
        logits = self.session.run(None, feeds)[0]
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="toxicity")
            return self._pool

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        enc = self.tokenizer(list(texts), truncation=True)
        rows = [{name: enc[name][i] for name in self.input_names} for i in range(len(texts))]
        lengths = [len(r["input_ids"]) for r in rows]
        plan = plan_batches(lengths, self.batch_size, sort=self.sort_by_length)
        out: list[dict[str, float]] = [{} for _ in texts]

        def run(idx: list[int]) -> tuple[list[int], Any]:
            return idx, self._run([rows[i] for i in idx])

        if self.workers > 1:
            done: Iterable[tuple[list[int], Any]] = self._executor().map(
                run, spread_batches(plan, lengths, self.workers))
        else:
            done = map(run, plan)
        for idx, probs in done:
            for row, i in enumerate(idx):
                out[i] = {label: float(probs[row, j]) for j, label in enumerate(self.class_names)}
        return out


class ProfanityFallbackBackend:
    """alt-profanity-check's shipped linear model: one profanity probability per text.

    A profanity model, not a toxicity or safeguarding model; used only when the configuration
    allows it and Detoxify cannot be loaded, and every finding from it says so.
    """

    is_fallback = True
    name = "alt-profanity-check (fallback)"

    def __init__(self, reason: str = ""):
        import importlib.util

        if importlib.util.find_spec("profanity_check") is None:
            raise ToxicityModelUnavailable(
                "the fallback model alt-profanity-check is not installed "
                "(pip install 'governance-bot[ml]')")
        self._predict_prob: Any = None  # the model is read on the first text
        self.reason = reason

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if not texts:
            return []
        if self._predict_prob is None:
            from rules import profanity

            # the arrays `models fetch` exported and checked: no scikit-learn at run time
            model = profanity.load()
            if model is not None:
                self._predict_prob = model.predict_prob
            else:
                from profanity_check import predict_prob

                self._predict_prob = predict_prob
        probs = self._predict_prob(list(texts))
        return [{FALLBACK_LABEL: float(p)} for p in probs]


# --------------------------------------------------------------------------------------- ONNX


@dataclass(frozen=True, slots=True)
class ParityResult:
    ok: bool
    max_abs_diff: float
    tolerance: float
    texts: int

    def describe(self) -> str:
        verdict = "within" if self.ok else "outside"
        return (f"max |onnx - torch| = {self.max_abs_diff:.2e} on {self.texts} check texts, "
                f"{verdict} the tolerance {self.tolerance:.0e}")


def parity_check(reference: ScoringBackend, candidate: ScoringBackend, texts: Sequence[str],
                 tolerance: float = 1e-3) -> ParityResult:
    """Largest absolute difference of any label's score between two backends on ``texts``."""
    ref = reference.score(texts)
    got = candidate.score(texts)
    worst = 0.0
    for a, b in zip(ref, got, strict=True):
        if set(a) != set(b):
            return ParityResult(False, float("inf"), tolerance, len(texts))
        for label, value in a.items():
            diff = abs(value - b[label])
            if diff != diff:  # NaN
                return ParityResult(False, float("inf"), tolerance, len(texts))
            worst = max(worst, diff)
    return ParityResult(worst <= tolerance, worst, tolerance, len(texts))


# The ONNX variants the service tries, fastest first; each is used only if it passes the parity
# check against torch. "int8": the first-token export with dynamic int8 quantisation of its
# weights and activations (onnxruntime's u8s8 kernels; about 4x on a VNNI CPU, but it moves scores
# by a few 1e-3 on random weights, so the gate usually refuses it). "first-token": the model traced
# with eager attention and its last encoder layer computing the first token only (what every
# Detoxify head reads; ``_export_first_token``), fp32, exact. "plain": the dynamo export as it
# comes (fp32).
OnnxVariant = Literal["int8", "first-token", "plain"]
ONNX_VARIANTS: tuple[OnnxVariant, ...] = ("int8", "first-token", "plain")
VARIANT_NAMES = {"int8": "onnx, first-token, int8", "first-token": "onnx, first-token",
                  "plain": "onnx"}


def release_memory() -> None:
    gc.collect()
    # glibc keeps freed arenas otherwise, and RSS would still count the torch weights
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def variant_path(path: Path, variant: OnnxVariant) -> Path:
    """The first-token export lives at the configured ``onnx_path``; the others beside it."""
    if variant == "first-token":
        return path
    return path.with_name(f"{path.stem}.{variant}{path.suffix}")


@dataclass(frozen=True, slots=True)
class DetoxifyFiles:
    """Where the configured Detoxify model's files are (they may not exist)."""

    model: str
    folder: Path
    checkpoint: Path
    hf_dir: Path | None
    onnx_base: Path  # the first-token export; the other variants beside it
    configured: bool  # named in the config (else: the model store)

    def problem(self) -> str | None:
        """What is missing, or None when the weights and tokenizer files are there."""
        if not self.checkpoint.is_file():
            if self.configured:
                return f"checkpoint {self.checkpoint} does not exist"
            return (f"Detoxify {self.model!r} is not on this machine (nothing in {self.folder}; "
                    "nothing is downloaded at run time)")
        if self.hf_dir is None:
            return (f"checkpoint {self.checkpoint} is set but huggingface_config_path is not: "
                    "offline loading needs the folder with the transformer config.json and "
                    "tokenizer files")
        return _hf_folder_problem(self.hf_dir)


def detoxify_files(settings: ToxicitySettings, base: Path) -> DetoxifyFiles:
    """The checkpoint named in ``[classifiers.toxicity]``, or the model store's copy."""
    onnx = _resolve(settings.onnx_path, base) if settings.onnx_path else None
    if settings.checkpoint:
        ckpt = _resolve(settings.checkpoint, base)
        hf = (_resolve(settings.huggingface_config_path, base)
              if settings.huggingface_config_path else None)
        return DetoxifyFiles(settings.model, ckpt.parent, ckpt, hf,
                             onnx or ckpt.with_name(ckpt.stem + ".onnx"), True)
    folder = store_dir() / "detoxify" / settings.model
    name = f"detoxify-{settings.model}"
    return DetoxifyFiles(settings.model, folder, folder / f"{name}.ckpt", folder / f"{name}-hf",
                         onnx or folder / f"{name}.onnx", False)


@dataclass(frozen=True, slots=True)
class _OnnxChoice:
    variant: OnnxVariant
    path: Path
    record: ExportRecord
    parity: ParityResult


def _onnx_choice(files: DetoxifyFiles, pack: ToxicityPack) -> tuple[_OnnxChoice | None,
                                                                    list[str]]:
    """The fastest export made from this checkpoint whose recorded parity check with this ONNX
    Runtime is within the pack's tolerance, and notes on the others. Reads files only."""
    notes: list[str] = []
    runtime = runtime_version()
    if runtime is None:
        return None, ["onnxruntime is not installed (install governance-bot[ml])"]
    identity = None
    found = False
    for variant in ONNX_VARIANTS:
        path = variant_path(files.onnx_base, variant)
        record = ExportRecord.read(path)
        if record is None:
            continue
        found = True
        if identity is None:
            identity = file_identity(files.checkpoint, record.data.get("source"))
        if not record.made_from(identity):
            notes.append(f"{path} ({variant}) was made from another checkpoint")
            continue
        entry = record.parity(runtime)
        if entry is None:
            notes.append(f"{path} ({variant}) " + (
                "has changed since it was checked" if not record.unchanged()
                else f"has not been checked with onnxruntime {runtime}"))
            continue
        result = ParityResult(float(entry["max_abs_diff"]) <= pack.onnx.parity_tolerance,
                              float(entry["max_abs_diff"]), pack.onnx.parity_tolerance,
                              int(entry.get("texts") or 0))
        if not result.ok:
            advice = ("quantisation moves these weights' scores too far" if variant == "int8"
                      else "delete it and run `" + FETCH_STEP + "` to export it again")
            notes.append(f"{path} ({variant}) failed the parity check against torch "
                         f"({result.describe()}); {advice}")
            continue
        return _OnnxChoice(variant, path, record, result), notes
    if not found:
        notes.append(f"no ONNX export beside {files.checkpoint}")
    return None, notes


def _onnx_backend(choice: _OnnxChoice, files: DetoxifyFiles, settings: ToxicitySettings
                  ) -> OnnxBackend:
    """The export the record vouches for, with the tokenizer Detoxify uses for it (its class
    and length as recorded when it was made): no torch is imported."""
    _offline()
    import transformers

    data = choice.record.data
    assert files.hf_dir is not None
    tokenizer = getattr(transformers, str(data["tokenizer"])).from_pretrained(
        str(files.hf_dir), local_files_only=True)
    tokenizer.model_max_length = int(data["max_length"])
    return OnnxBackend.from_file(choice.path, tokenizer, list(data["class_names"]),
                                 settings.batch_size, settings.model, settings.threads,
                                 variant=VARIANT_NAMES[choice.variant],
                                 parallel_batches=settings.parallel_batches)


def _resolve(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else base / path


# ------------------------------------------------------------------------------ building it


@dataclass(slots=True)
class BackendStatus:
    """What was loaded, for logs, ``doctor`` and the weekly report."""

    ok: bool
    backend: str
    message: str
    fallback: bool = False
    parity: ParityResult | None = None
    notes: list[str] = field(default_factory=list)


_LAST_STATUS: dict[str, BackendStatus] = {}


def _fallback(settings: ToxicitySettings, reason: str, announced: bool = False
              ) -> tuple[ScoringBackend, BackendStatus]:
    if not settings.allow_fallback:
        raise ToxicityModelUnavailable(f"{reason}. {_WHAT_TO_DO}")
    # said once: when start-up already warned that the fallback will be used (the detector's
    # preflight), its use is not warned about again
    log.log(logging.DEBUG if announced else logging.WARNING,
            "%s; using the fallback profanity model (allow_fallback = true). Run `%s` to "
            "get the model", reason, FETCH_STEP)
    status = BackendStatus(
        ok=False, backend=ProfanityFallbackBackend.name, fallback=True,
        # the fallback is already allowed: what is left to do is fetching the model
        message=f"{reason}. Using the shipped fallback alt-profanity-check (profanity only); "
                f"its findings are marked as from the fallback. {_FETCH_TO_DO}",
    )
    return ProfanityFallbackBackend(reason=reason), status


def build_backend(settings: ToxicitySettings, pack: ToxicityPack,
                  base_dir: Path | None = None, *, announced: bool = False
                  ) -> tuple[ScoringBackend, BackendStatus]:
    """Load the configured backend from local files, falling back as the configuration allows.

    The fastest ONNX export whose recorded parity check passed (for this checkpoint and this
    ONNX Runtime) is used without loading torch; without one, Detoxify runs on torch and the
    log says to run ``governance-bot models fetch``. Nothing is exported, checked or downloaded
    here. Raises ``ToxicityModelUnavailable`` (with what to do) when no Detoxify weights are
    there and the fallback is not allowed. ``announced``: start-up already said the fallback
    will be used (it is then not warned about again).
    """
    base = base_dir or Path.cwd()
    files = detoxify_files(settings, base)
    problem = files.problem()
    if problem:
        return _fallback(settings, f"Detoxify weights could not be loaded: {problem}",
                         announced)
    notes: list[str] = []
    if settings.backend != "torch":
        choice, notes = _onnx_choice(files, pack)
        if choice is not None:
            try:
                onnx_backend = _onnx_backend(choice, files, settings)
            except Exception as exc:  # a damaged export or tokenizer folder: torch still works
                notes.append(f"{choice.path} cannot be loaded ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''})")
            else:
                skipped = f"; faster variants not used: {'; '.join(notes)}" if notes else ""
                return onnx_backend, BackendStatus(
                    True, onnx_backend.name, f"{onnx_backend.name} loaded; parity with torch "
                    f"(checked when exported): {choice.parity.describe()}{skipped}",
                    parity=choice.parity, notes=notes)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    try:
        detox = load_detoxify(settings.model, files.checkpoint, files.hf_dir, settings.device)
    except ToxicityModelUnavailable as exc:
        return _fallback(settings, f"Detoxify weights could not be loaded: {exc}",
                         announced)
    torch_backend = DetoxifyBackend(detox, settings.batch_size, settings.model)
    if settings.backend == "torch":
        return torch_backend, BackendStatus(True, torch_backend.name,
                                            f"{torch_backend.name} loaded (backend = torch)")
    message = (f"{torch_backend.name} loaded; ONNX fast path not used: {'; '.join(notes)}. "
               f"Run `{FETCH_STEP}` to export it and check it once")
    log.warning("toxicity: %s", message)
    return torch_backend, BackendStatus(True, torch_backend.name, message, notes=notes)


# ----------------------------------------------------------------------------------- detector


class ToxicityDetector(DetectorBase):
    """Scores text with Detoxify and raises one finding per item from the pack's thresholds.

    Enforces the tone and removal duties (P1 "Managing our online presence", "What we expect of our
    staff"; P2 "Information security", "Communicating with students"): comments on the official
    accounts are checked for abuse, hate, threats and sexual language; the organisation's own posts
    and staff messages for unprofessional tone.
    """

    rule_id = "toxicity"
    batch_safe = True  # scores each item alone: a whole batch at once

    def __init__(self, backend: ScoringBackend | None, pack: ToxicityPack,
                 status: BackendStatus | None = None, model_type: str = "original", *,
                 loader: Callable[[], tuple[ScoringBackend, BackendStatus]] | None = None,
                 preflight: str | None = None):
        self._backend = backend
        self._loader = loader  # the model is loaded by this when the first text needs it
        self._lock = threading.Lock()
        self.pack = pack
        self.status = status or BackendStatus(backend is not None, getattr(backend, "name", ""),
                                              "")
        self.model_type = model_type
        self.unavailable: str | None = None  # why the rule is off, when it is found at first use
        self._preflight = preflight

    @classmethod
    def from_pack(cls, pack: dict[str, Any], config: Config) -> ToxicityDetector:
        """The detector, with its model loaded on first use. What is on disk is checked now
        (files and records, nothing loaded): with no weights and no fallback allowed the rule is
        off from the start, saying what to do; with the fallback allowed, the start-up log says
        it will be used and how to get the model."""
        parsed = ToxicityPack.from_dict(pack)
        settings = config.classifiers.toxicity
        if not settings.enabled:
            status = BackendStatus(True, "", "toxicity classifier disabled in the configuration")
            _LAST_STATUS["toxicity"] = status
            return cls(None, parsed, status, settings.model)
        files = detoxify_files(settings, config.base_dir)
        problem = files.problem()
        preflight = None
        if problem:
            reason = f"Detoxify weights could not be loaded: {problem}"
            if not settings.allow_fallback:
                raise ToxicityModelUnavailable(f"{reason}. {_WHAT_TO_DO}")
            preflight = (f"{reason}; the fallback profanity model will be used (allow_fallback "
                         f"= true). Run `{FETCH_STEP}` to get the model")
        base = config.base_dir
        return cls(None, parsed, BackendStatus(True, "", "not loaded yet (loads on first use)"),
                   settings.model, loader=lambda: build_backend(settings, parsed, base,
                                                 announced=preflight is not None),
                   preflight=preflight)

    def preflight(self) -> str | None:
        """What start-up should say about the model without loading it (None: nothing)."""
        return self._preflight

    @property
    def backend(self) -> ScoringBackend | None:
        """The scoring backend, loaded on first use (None: disabled, or it could not load)."""
        if self._loader is not None:
            self._load()
        return self._backend

    @backend.setter
    def backend(self, value: ScoringBackend | None) -> None:
        self._backend, self._loader = value, None

    def _load(self) -> None:
        with self._lock:
            loader, self._loader = self._loader, None
            if loader is None:
                return
            try:
                self._backend, self.status = loader()
            except ToxicityModelUnavailable as exc:
                # said once; the other rules keep running (a missing model must not switch off
                # every other safeguard)
                self._backend, self.unavailable = None, str(exc)
                self.status = BackendStatus(False, "", str(exc))
                log.error("detection rule toxicity is OFF: %s", exc)
            else:
                if not self.status.fallback:  # the fallback's use is said by _fallback
                    log.info("toxicity: %s", self.status.message)
            _LAST_STATUS["toxicity"] = self.status

    def category_scorer(self) -> Callable[[Sequence[str]], list[dict[str, float]]] | None:
        """texts -> {category: score} (the highest score of the labels the pack maps to each
        category), for ROC AUC in ``governance-bot eval``; None when no model is loaded."""
        backend = self.backend
        if backend is None:
            return None
        rules = ({FALLBACK_LABEL: self.pack.fallback} if backend.is_fallback
                 else self.pack.labels)

        def score(texts: Sequence[str]) -> list[dict[str, float]]:
            out: list[dict[str, float]] = []
            for row in backend.score(texts):
                by_category: dict[str, float] = {}
                for label, rule in rules.items():
                    if label in row:
                        key = rule.category.value
                        by_category[key] = max(by_category.get(key, 0.0), row[label])
                out.append(by_category)
            return out

        return score

    # -- which items, which texts

    def _role(self, item: Item, ctx: DetectionContext) -> Role | None:
        role = item.author.role
        if role is None and ctx.registers is not None:
            role = ctx.registers.resolve_person(item.author, item.account).role
        return role

    def _in_scope(self, item: Item, ctx: DetectionContext) -> tuple[bool, bool]:
        """(checked, own voice)."""
        if not item.text.strip():
            return False, False
        own = self._role(item, ctx) in self.pack.scope.own_voice_roles
        return own or item.kind in self.pack.scope.other_kinds, own

    # -- detection

    def detect(self, item: Item, ctx: DetectionContext) -> list[Finding]:
        return self.detect_batch([item], ctx)[0]

    def detect_batch(self, items: Sequence[Item], ctx: DetectionContext) -> list[list[Finding]]:
        out: list[list[Finding]] = [[] for _ in items]
        if self.backend is None:
            return out
        chosen: list[tuple[int, bool]] = []
        for i, item in enumerate(items):
            checked, own = self._in_scope(item, ctx)
            if checked:
                chosen.append((i, own))
        if not chosen:
            return out
        scores = self.backend.score([items[i].text for i, _ in chosen])
        for (i, own), item_scores in zip(chosen, scores, strict=True):
            finding = self._finding(items[i], item_scores, own)
            if finding is not None:
                out[i].append(finding)
        return out

    def _finding(self, item: Item, scores: dict[str, float], own_voice: bool) -> Finding | None:
        assert self.backend is not None
        rules = ({FALLBACK_LABEL: self.pack.fallback} if self.backend.is_fallback
                 else self.pack.labels)
        fired: list[tuple[Severity, float, str, LabelRule]] = []
        for label, rule in rules.items():
            if label not in scores:
                continue
            severity = rule.severity_for(scores[label])
            if severity is not None:
                fired.append((severity, scores[label], label, rule))
        if not fired:
            return None
        severity, score, label, rule = max(fired, key=lambda f: (f[0], f[1]))
        category = rule.category
        if own_voice:
            category = self.pack.scope.own_voice_relabel.get(category, category)
        whose = "own post or staff message" if own_voice else item.kind.value
        also = [f"{lab} {sc:.2f}" for _, sc, lab, _ in sorted(fired, key=lambda f: -f[1])
                if lab != label]
        explanation = (f"{whose.capitalize()} scored {score:.2f} for {rule.explanation} "
                       f"({self.backend.name})")
        if also:
            explanation += f"; also {', '.join(also)}"
        if self.backend.is_fallback:
            explanation += ". From the FALLBACK model: Detoxify weights are not loaded"
        author = item.author
        subject = f"{author.role.value}:{author.register_id}" if (
            author.role and author.register_id) else None
        return Finding(
            rule_id=self.rule_id,
            category=category,
            severity=severity,
            score=float(score),
            explanation=explanation,
            evidence=Evidence(
                spans=((0, len(item.text)),),
                detail={
                    "label": label,
                    "backend": self.backend.name,
                    "fallback": self.backend.is_fallback,
                    "model": None if self.backend.is_fallback else self.model_type,
                    "fired": {lab: round(sc, 4) for _, sc, lab, _ in fired},
                    "scores": {k: round(v, 4) for k, v in scores.items()
                               if k in LABELS or k == FALLBACK_LABEL},
                    "own_voice": own_voice,
                },
            ),
            subject=subject,
        )


# ------------------------------------------------------------------------------------- status


def toxicity_status(config: Config, load: bool = False) -> tuple[bool, str]:
    """(ok, one line) about the toxicity classifier, for ``doctor`` and the weekly report.

    Reports what the running detector loaded if it has loaded in this process; otherwise what
    is on disk (the weights, the ONNX exports and their recorded parity checks), without
    loading anything. ``load=True`` loads the model (``doctor --deep``; seconds).
    """
    settings = config.classifiers.toxicity
    if "toxicity" in config.detection.disabled_rules or not settings.enabled:
        return True, "toxicity classifier: disabled in the configuration"
    built = _LAST_STATUS.get("toxicity")
    if built is not None and built.backend and not load:
        return built.ok, f"toxicity classifier: {built.message}"
    from rules.packs import load_pack

    pack = ToxicityPack.from_dict(load_pack("toxicity", config.detection.packs_dir and
                                            config.resolve_path(config.detection.packs_dir)))
    if load:
        try:
            _, status = build_backend(settings, pack, config.base_dir)
        except ToxicityModelUnavailable as exc:
            return False, f"toxicity classifier: {exc}"
        return status.ok, f"toxicity classifier: {status.message}"
    files = detoxify_files(settings, config.base_dir)
    problem = files.problem()
    if problem:
        if settings.allow_fallback:  # already allowed: only the fetch step is left to do
            return False, (f"toxicity classifier: {problem} (allow_fallback = true: the "
                           f"profanity fallback is used meanwhile). {_FETCH_TO_DO}")
        return False, f"toxicity classifier: {problem}. {_WHAT_TO_DO}"
    where = f"Detoxify {settings.model} from {files.checkpoint} (offline)"
    if settings.backend == "torch":
        return True, f"toxicity classifier: {where}, backend torch"
    choice, notes = _onnx_choice(files, pack)
    if choice is None:
        return True, (f"toxicity classifier: {where} on torch (slower start): the ONNX fast path "
                      f"is not ready: {'; '.join(notes)}. Run `{FETCH_STEP}` to export it and "
                      "check it once")
    return True, (f"toxicity classifier: {where}, {VARIANT_NAMES[choice.variant]} export "
                  f"{choice.path}; parity with torch (checked when exported): "
                  f"{choice.parity.describe()}")


if __name__ == "__main__":  # pragma: no cover - the tools moved to rules/toxicity_export.py
    from rules.toxicity_export import _main

    sys.exit(_main())
