"""Toxicity: Detoxify scores on comments, the organisation's own posts and staff messages.

Policy duties enforced: posts on the official accounts stay consistent with the organisation's aims
and tone, and inappropriate posts by others are removed (P1 "Managing our online presence", P2
"Information security"); staff keep a professional tone with learners (P1 "What we expect of our
staff", P2 "Communicating with students"); threats and sexual language are KCSIE conduct risks for
the DSL.

What lives here:

* ``load_detoxify``: builds a real ``detoxify.Detoxify`` either by Detoxify's normal download or
  from a local checkpoint plus a local transformer config/tokenizer folder, **fully offline**
  (Detoxify itself would still ask the model hub for the checkpoint's ``model_type``; we point
  that at the local folder, see docs/classifiers-toxicity.md).
* Scoring backends: ``DetoxifyBackend`` (torch, stock ``Detoxify.predict``), ``OnnxBackend`` (the
  same checkpoint exported with ``torch.onnx.export`` and run by onnxruntime, used only after
  ``parity_check`` against torch), ``ProfanityFallbackBackend`` (alt-profanity-check, only where
  ``allow_fallback`` is set; its findings say so).
* ``ToxicityDetector``: thresholds, categories and severities from ``rules/packs/toxicity.toml``.
* ``toxicity_status(config)``: one line for ``doctor`` and the weekly report.
* ``prepare_offline_bundle`` / ``python -m rules.toxicity prepare``: on a machine with internet,
  writes the checkpoint and tokenizer files to carry to an air-gapped one.

Message text is never logged.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import hashlib
import json
import logging
import os
import pickle
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import ItemKind, Role
from rules.base import DetectionContext, DetectorBase, DetectorUnavailable

if TYPE_CHECKING:
    from governance_bot.config import Config, ToxicitySettings
    from governance_bot.items import Item

__all__ = [
    "LABELS",
    "ONNX_VARIANTS",
    "DetoxifyBackend",
    "OnnxBackend",
    "ParityResult",
    "ProfanityFallbackBackend",
    "ScoringBackend",
    "ToxicityDetector",
    "ToxicityModelUnavailable",
    "ToxicityPack",
    "build_backend",
    "export_onnx",
    "load_detoxify",
    "parity_check",
    "plan_batches",
    "prepare_offline_bundle",
    "quantize_onnx",
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
_WHAT_TO_DO = (
    "Fix: on a machine with internet run `python -m rules.toxicity prepare --model {model} "
    "--out DIR`, copy DIR here and set [classifiers.toxicity] checkpoint and "
    "huggingface_config_path to the files it names (docs/classifiers-toxicity.md); or set "
    "allow_fallback = true to use the shipped profanity model meanwhile; or add \"toxicity\" to "
    "[detection] disabled_rules."
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
    """A real ``detoxify.Detoxify``.

    Without ``checkpoint``: Detoxify's normal download (needs internet on first use; cached by
    torch hub afterwards). With ``checkpoint`` and ``huggingface_config_path``: fully offline.
    Detoxify would call ``config_class.from_pretrained(<the checkpoint's model_type>)`` (a hub
    name such as ``bert-base-uncased``) without ``local_files_only``; we rewrite the checkpoint's
    ``config.arch.args.model_type`` to the local folder and call Detoxify's own
    ``get_model_and_tokenizer`` with it, so nothing is fetched.
    """
    from detoxify import Detoxify
    from detoxify import detoxify as detoxify_module

    if checkpoint is None:
        try:
            detox = Detoxify(model_type=model_type, device=device,
                             huggingface_config_path=(str(huggingface_config_path)
                                                      if huggingface_config_path else None))
        except Exception as exc:
            raise ToxicityModelUnavailable(
                f"Detoxify {model_type!r} could not be downloaded ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        detox.model.eval()
        _cap_length(detox)
        return detox

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
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
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


def plan_batches(lengths: Sequence[int], max_batch: int, overhead_tokens: int = 32,
                 sort: bool = True) -> list[list[int]]:
    """Indices of texts grouped into batches of at most ``max_batch``, padding kept small.

    With ``sort``: texts are ordered by token count and the sorted run is cut where it costs least
    (dynamic programming: a batch costs its padded tokens, ``len(batch) * longest``, plus
    ``overhead_tokens`` for the call itself), so short texts are never padded to a long one's
    length. Without: fixed batches in the given order (what stock Detoxify does).
    """
    n = len(lengths)
    if not sort:
        return [list(range(s, min(s + max_batch, n))) for s in range(0, n, max_batch)]
    order = sorted(range(n), key=lambda i: (lengths[i], i))
    ordered = [lengths[i] for i in order]
    best = [0] + [0] * n  # best[j]: least cost of the first j sorted texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        longest = ordered[j - 1]
        choice, cost = j - 1, None
        for i in range(max(0, j - max_batch), j):
            c = best[i] + (j - i) * longest + overhead_tokens
            if cost is None or c < cost:
                choice, cost = i, c
        best[j], cut[j] = int(cost or 0), choice
    batches: list[list[int]] = []
    j = n
    while j > 0:
        batches.append(order[cut[j]:j])
        j = cut[j]
    batches.reverse()
    return batches


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def spread_batches(plan: list[list[int]], lengths: Sequence[int],
                   workers: int) -> list[list[int]]:
    """``plan``'s batches, most work first, the biggest halved until every worker has one.

    Most work first, so the batches run side by side finish at about the same time; a call with
    fewer batches than workers (one short burst of comments) is split so no core sits idle.
    """
    def work(batch: list[int]) -> int:
        return len(batch) * max(lengths[i] for i in batch)

    batches = [list(b) for b in plan if b]
    while 0 < len(batches) < workers:
        biggest = max(batches, key=work)
        if len(biggest) < 2:
            break
        batches.remove(biggest)
        half = len(biggest) // 2  # in a token-ordered plan each half keeps its padding low
        batches += [biggest[:half], biggest[half:]]
    return sorted(batches, key=work, reverse=True)


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
        from profanity_check import predict_prob

        self._predict_prob = predict_prob
        self.reason = reason

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        if not texts:
            return []
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


def _onnx_sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _checkpoint_identity(model_type: str, checkpoint: Path | None) -> dict[str, Any]:
    """What the ONNX export was made from: by content, so a copied bundle still matches."""
    if checkpoint is None:
        return {"model_type": model_type, "checkpoint": None}
    digest = hashlib.sha256()
    with checkpoint.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"model_type": model_type, "size": checkpoint.stat().st_size,
            "sha256": digest.hexdigest()}


# The ONNX variants the service tries, fastest first; each is used only if it passes the parity
# check against torch. "int8": the first-token export with dynamic int8 quantisation of its
# weights and activations (onnxruntime's u8s8 kernels; about 4x on a VNNI CPU, but it moves scores
# by a few 1e-3 on random weights, so the gate usually refuses it). "first-token": the model traced
# with eager attention and its last encoder layer computing the first token only (what every
# Detoxify head reads; ``_export_first_token``), fp32, exact. "plain": the dynamo export as it
# comes (fp32).
OnnxVariant = Literal["int8", "first-token", "plain"]
ONNX_VARIANTS: tuple[OnnxVariant, ...] = ("int8", "first-token", "plain")
_VARIANT_NAMES = {"int8": "onnx, first-token, int8", "first-token": "onnx, first-token",
                  "plain": "onnx"}


def export_onnx(detox: Any, path: Path, identity: dict[str, Any] | None = None,
                variant: OnnxVariant = "plain", source: Path | None = None) -> Path:
    """Export the Detoxify model to ONNX at ``path`` (dynamic batch and sequence length).

    ``variant="int8"`` quantises ``source`` (a first-token export) instead of exporting. The
    ``.onnx.json`` beside it records ``identity`` (what it was made from) and the variant.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if variant == "int8":
        if source is None:
            raise ValueError("the int8 variant is made from a first-token export: pass source=")
        quantize_onnx(source, path)
    elif variant == "first-token":
        _export_first_token(detox, path)
    else:
        _export_dynamo(detox, path)
    _onnx_sidecar(path).write_text(json.dumps({**(identity or {}), "export": variant}, indent=1))
    return path


def quantize_onnx(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation (int8 weights, uint8 activations scaled per call) of ``source``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                     # tensors whose type the quantiser cannot infer are fp32
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return target


def _export_sample(detox: Any) -> tuple[Any, list[str]]:
    tokenizer = detox.tokenizer
    sample = tokenizer(["an example sentence for export", "a second, somewhat longer example "
                        "sentence so the two lengths differ"], return_tensors="pt", padding=True,
                       truncation=True)
    return sample, [n for n in tokenizer.model_input_names if n in sample]


def _export_dynamo(detox: Any, path: Path) -> None:
    import torch

    model = detox.model.eval()
    sample, names = _export_sample(detox)
    batch = torch.export.Dim("batch", min=1, max=4096)
    seq = torch.export.Dim("sequence", min=1, max=int(detox.tokenizer.model_max_length))
    # the exporter warns about its own internals (axis renaming, deprecated helpers): not ours
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (), kwargs={n: sample[n] for n in names}, input_names=names,
            output_names=["logits"], dynamic_shapes={n: {0: batch, 1: seq} for n in names},
            dynamo=True, verbose=False,
        )
    if program is None:  # pragma: no cover - dynamo export always returns a program
        raise RuntimeError("torch.onnx.export returned nothing")
    program.save(str(path))


def _first_token_attention(attention: Any, query_states: Any, hidden: Any,
                           attention_mask: Any) -> Any:
    """Self-attention of the first token over every token, as transformers' eager attention."""
    import torch

    batch, length, _ = hidden.shape
    heads, size = attention.num_attention_heads, attention.attention_head_size
    query = attention.query(query_states).view(batch, 1, heads, size).transpose(1, 2)
    key = attention.key(hidden).view(batch, length, heads, size).transpose(1, 2)
    value = attention.value(hidden).view(batch, length, heads, size).transpose(1, 2)
    weights = torch.matmul(query, key.transpose(2, 3)) * attention.scaling
    if attention_mask is not None:
        mask = attention_mask[:, :, :1, :]
        if mask.dtype == torch.bool:  # sdpa's form: True where a token may be attended to
            weights = weights.masked_fill(~mask, torch.finfo(weights.dtype).min)
        else:  # eager's form (what the export traces): added to the scores
            weights = weights + mask
    weights = torch.nn.functional.softmax(weights, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).reshape(batch, 1, heads * size)


def _first_token_layer(layer: Any) -> Any:
    """``layer`` (the model's last encoder layer) computing only the first token's output.

    Every Detoxify head (the BERT and ALBERT poolers, the RoBERTa/XLM-R classification head)
    reads only the first token of the last layer's output. That token's output needs the keys
    and values of every token but the query, the attention output, the feed-forward and the
    LayerNorms of the first token only, so this module computes just those, with the layer's own
    weights, and returns a sequence of length 1: the same numbers as the full layer for that
    token, for about a sixth of the layer's work.
    """
    import torch

    class FirstTokenLayer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = layer

        def forward(self, hidden: Any, attention_mask: Any = None, *args: Any,
                    **kwargs: Any) -> Any:
            first = hidden[:, :1]
            if hasattr(layer, "full_layer_layer_norm"):  # ALBERT
                attention = layer.attention
                context = _first_token_attention(attention, first, hidden, attention_mask)
                attended = attention.LayerNorm(first + attention.dense(context))
                return layer.full_layer_layer_norm(layer.ff_chunk(attended) + attended)
            # BERT, RoBERTa, XLM-R
            context = _first_token_attention(layer.attention.self, first, hidden, attention_mask)
            attended = layer.attention.output(context, first)
            return layer.feed_forward_chunk(attended)

    return FirstTokenLayer()


@contextlib.contextmanager
def _last_layer_on_first_token(model: Any) -> Any:
    """Within the block, ``model``'s last encoder layer computes the first token only."""
    base = getattr(model, model.base_model_prefix)
    encoder = base.encoder
    if hasattr(encoder, "layer"):  # BERT, RoBERTa, XLM-R
        last = encoder.layer[-1]
        encoder.layer[-1] = _first_token_layer(last)
        try:
            yield
        finally:
            encoder.layer[-1] = last
        return
    # ALBERT: groups of shared layers, each group called for several consecutive layers; the last
    # group's last layer runs on the first token in its last call only
    import torch

    config = model.config
    groups = encoder.albert_layer_groups
    group = groups[-1]
    calls = int(config.num_hidden_layers // config.num_hidden_groups)

    class LastCall(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.group, self.count = group, 0

        def forward(self, hidden: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
            self.count += 1
            if self.count < calls:
                return self.group(hidden, attention_mask, **kwargs)
            self.count = 0
            layers = list(self.group.albert_layers)
            for albert_layer in layers[:-1]:
                hidden = albert_layer(hidden, attention_mask, **kwargs)
            return _first_token_layer(layers[-1])(hidden, attention_mask)

    if config.num_hidden_layers % config.num_hidden_groups:
        raise ValueError("ALBERT layers not evenly split into groups")
    groups[-1] = LastCall()
    try:
        yield
    finally:
        groups[-1] = group


def _export_first_token(detox: Any, path: Path) -> None:
    """Traced export with eager attention and the last layer on the first token only.

    The model is traced (``torch.onnx.export(..., dynamo=False)``) with transformers' eager
    attention, inside ``_last_layer_on_first_token``: the last encoder layer computes only the
    first token's output, which is all the classification head reads (the keys and values still
    come from every token), so about 7 % of a 12-layer model's work is skipped with the same
    result. onnxruntime's own graph optimisations apply when the session loads it. Inputs are
    passed by name: ``forward``'s positional order is not the tokenizer's. The torch model's
    attention implementation and layers are restored afterwards, so the torch reference in the
    parity check is untouched.
    """
    import torch

    model = detox.model.eval()
    sample, names = _export_sample(detox)

    class ByName(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: Any) -> Any:
            return self.model(**dict(zip(names, inputs, strict=True))).logits

    before = getattr(model.config, "_attn_implementation", None)
    try:
        model.set_attn_implementation("eager")
        with torch.no_grad(), warnings.catch_warnings(), _last_layer_on_first_token(model):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                ByName().eval(), tuple(sample[n] for n in names), str(path), input_names=names,
                output_names=["logits"], opset_version=17, dynamo=False,
                dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                              "logits": {0: "batch"}},
            )
    finally:
        if before is not None:
            model.set_attn_implementation(before)
        _release_memory()  # the tracer's copies of the weights


def _default_onnx_path(settings: ToxicitySettings, base: Path) -> Path:
    if settings.onnx_path:
        return _resolve(settings.onnx_path, base)
    if settings.checkpoint:
        ckpt = _resolve(settings.checkpoint, base)
        return ckpt.with_name(ckpt.stem + ".onnx")
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / f"detoxify-{settings.model}.onnx"


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


def build_backend(settings: ToxicitySettings, pack: ToxicityPack,
                  base_dir: Path | None = None) -> tuple[ScoringBackend, BackendStatus]:
    """Load the configured backend, falling back as the configuration allows.

    Raises ``ToxicityModelUnavailable`` (with what to do) when no Detoxify weights load and the
    fallback is not allowed.
    """
    base = base_dir or Path.cwd()
    checkpoint = _resolve(settings.checkpoint, base) if settings.checkpoint else None
    hf_dir = (_resolve(settings.huggingface_config_path, base)
              if settings.huggingface_config_path else None)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    try:
        detox = load_detoxify(settings.model, checkpoint, hf_dir, settings.device)
    except ToxicityModelUnavailable as exc:
        reason = f"Detoxify weights could not be loaded: {exc}"
        if not settings.allow_fallback:
            raise ToxicityModelUnavailable(
                f"{reason}. {_WHAT_TO_DO.format(model=settings.model)}"
            ) from None
        log.warning("%s; using the fallback profanity model (allow_fallback = true)", reason)
        status = BackendStatus(
            ok=False, backend=ProfanityFallbackBackend.name, fallback=True,
            message=f"{reason}. Using the shipped fallback alt-profanity-check (profanity only); "
                    f"its findings are marked as from the fallback. "
                    f"{_WHAT_TO_DO.format(model=settings.model)}",
        )
        return ProfanityFallbackBackend(reason=reason), status

    torch_backend = DetoxifyBackend(detox, settings.batch_size, settings.model)
    if settings.backend == "torch":
        return torch_backend, BackendStatus(True, torch_backend.name,
                                            f"{torch_backend.name} loaded (backend = torch)")
    notes: list[str] = []
    onnx_backend, parity = _try_onnx(settings, pack, detox, torch_backend, checkpoint, base, notes)
    if onnx_backend is not None and parity is not None:
        # the torch model is no longer needed: let it go, and give the memory back to the OS
        torch_backend.detox = None
        del detox
        _release_memory()
        skipped = f"; faster variants not used: {'; '.join(notes)}" if notes else ""
        return onnx_backend, BackendStatus(
            True, onnx_backend.name, f"{onnx_backend.name} loaded; parity with torch: "
            f"{parity.describe()}{skipped}", parity=parity, notes=notes)
    message = f"{torch_backend.name} loaded; ONNX fast path not used: {'; '.join(notes)}"
    log.warning("toxicity: %s", message)
    return torch_backend, BackendStatus(True, torch_backend.name, message, parity=parity,
                                        notes=notes)


def _release_memory() -> None:
    gc.collect()
    # glibc keeps freed arenas otherwise, and RSS would still count the torch weights
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _variant_path(path: Path, variant: OnnxVariant) -> Path:
    """The first-token export lives at the configured ``onnx_path``; the others beside it."""
    if variant == "first-token":
        return path
    return path.with_name(f"{path.stem}.{variant}{path.suffix}")


def _try_onnx(settings: ToxicitySettings, pack: ToxicityPack, detox: Any,
              torch_backend: DetoxifyBackend, checkpoint: Path | None, base: Path,
              notes: list[str]) -> tuple[OnnxBackend | None, ParityResult | None]:
    """The fastest ONNX variant that passes the parity check, or (None, last parity result).

    Each variant in ``ONNX_VARIANTS`` order is exported once (kept beside the checkpoint, made
    again when the checkpoint changes), loaded, and checked against torch on the pack's check
    texts; the first within the tolerance is used. One that fails is named in ``notes``.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        notes.append("onnxruntime is not installed (install governance-bot[ml])")
        return None, None
    base_path = _default_onnx_path(settings, base)
    identity = _checkpoint_identity(settings.model, checkpoint)
    parity: ParityResult | None = None
    for variant in ONNX_VARIANTS:
        candidate, result = _try_onnx_variant(settings, pack, detox, torch_backend, identity,
                                              variant, base_path, notes)
        parity = result or parity
        if candidate is not None and result is not None:
            return candidate, result
        log.info("toxicity: ONNX variant %r not used: %s", variant, notes[-1])
    return None, parity


def _ensure_export(detox: Any, identity: dict[str, Any], variant: OnnxVariant, base_path: Path,
                   model: str, notes: list[str]) -> Path | None:
    """The variant's export, made (again) unless one made from this checkpoint is there."""
    path = _variant_path(base_path, variant)
    wanted = {**identity, "export": variant}
    if path.is_file() and _onnx_sidecar(path).is_file():
        try:
            if json.loads(_onnx_sidecar(path).read_text()) == wanted:
                return path
        except ValueError:
            pass
    source = None
    if variant == "int8":
        source = _ensure_export(detox, identity, "first-token", base_path, model, notes)
        if source is None:
            return None
    try:
        log.info("toxicity: exporting %s to ONNX (%s) at %s (once; takes a minute)",
                 model, variant, path)
        export_onnx(detox, path, identity, variant, source)
    except Exception as exc:
        notes.append(f"{variant} export to {path} failed ({type(exc).__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''})")
        return None
    return path


def _try_onnx_variant(settings: ToxicitySettings, pack: ToxicityPack, detox: Any,
                      torch_backend: DetoxifyBackend, identity: dict[str, Any],
                      variant: OnnxVariant, base_path: Path,
                      notes: list[str]) -> tuple[OnnxBackend | None, ParityResult | None]:
    path = _ensure_export(detox, identity, variant, base_path, settings.model, notes)
    if path is None:
        return None, None
    try:
        candidate = OnnxBackend.from_file(path, detox.tokenizer, torch_backend.class_names,
                                          settings.batch_size, settings.model, settings.threads,
                                          variant=_VARIANT_NAMES[variant],
                                          parallel_batches=settings.parallel_batches)
    except Exception as exc:
        notes.append(f"{path} cannot be loaded by onnxruntime ({type(exc).__name__})")
        return None, None
    parity = parity_check(torch_backend, candidate, pack.onnx.check_texts,
                          pack.onnx.parity_tolerance)
    if not parity.ok:
        advice = ("quantisation moves these weights' scores too far" if variant == "int8"
                  else "delete it to have it exported again")
        notes.append(f"{path} ({variant}) failed the parity check against torch "
                     f"({parity.describe()}); {advice}")
        del candidate
        _release_memory()
        return None, parity
    return candidate, parity


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
                 status: BackendStatus | None = None, model_type: str = "original"):
        self.backend = backend
        self.pack = pack
        self.status = status or BackendStatus(backend is not None, getattr(backend, "name", ""),
                                              "")
        self.model_type = model_type

    @classmethod
    def from_pack(cls, pack: dict[str, Any], config: Config) -> ToxicityDetector:
        parsed = ToxicityPack.from_dict(pack)
        settings = config.classifiers.toxicity
        if not settings.enabled:
            status = BackendStatus(True, "", "toxicity classifier disabled in the configuration")
            _LAST_STATUS["toxicity"] = status
            return cls(None, parsed, status, settings.model)
        backend, status = build_backend(settings, parsed, config.base_dir)
        _LAST_STATUS["toxicity"] = status
        log.info("toxicity: %s", status.message)
        return cls(backend, parsed, status, settings.model)

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

    Reports what the running detector loaded if one was built in this process; otherwise checks
    the configured files, and with ``load=True`` actually loads the model (slow: seconds).
    """
    settings = config.classifiers.toxicity
    if "toxicity" in config.detection.disabled_rules or not settings.enabled:
        return True, "toxicity classifier: disabled in the configuration"
    built = _LAST_STATUS.get("toxicity")
    if built is not None and not load:
        return built.ok, f"toxicity classifier: {built.message}"
    if load:
        from rules.packs import load_pack

        pack = ToxicityPack.from_dict(load_pack("toxicity", config.detection.packs_dir and
                                                config.resolve_path(config.detection.packs_dir)))
        try:
            _, status = build_backend(settings, pack, config.base_dir)
        except ToxicityModelUnavailable as exc:
            return False, f"toxicity classifier: {exc}"
        return status.ok, f"toxicity classifier: {status.message}"
    base = config.base_dir
    what_to_do = _WHAT_TO_DO.format(model=settings.model)
    if settings.checkpoint:
        ckpt = _resolve(settings.checkpoint, base)
        if not ckpt.is_file():
            return False, f"toxicity classifier: checkpoint {ckpt} does not exist. {what_to_do}"
        if not settings.huggingface_config_path:
            return False, ("toxicity classifier: checkpoint set but huggingface_config_path "
                           f"is not. {what_to_do}")
        problem = _hf_folder_problem(_resolve(settings.huggingface_config_path, base))
        if problem:
            return False, f"toxicity classifier: {problem}. {what_to_do}"
        return True, (f"toxicity classifier: Detoxify {settings.model} from {ckpt} (offline), "
                      f"backend {settings.backend}")
    import torch
    from detoxify.detoxify import MODEL_URLS

    cached = (Path(torch.hub.get_dir()) / "checkpoints" /
              MODEL_URLS[settings.model].rsplit("/", 1)[-1])
    if cached.is_file():
        return True, f"toxicity classifier: Detoxify {settings.model} cached at {cached}"
    fallback = " (allow_fallback = true: the profanity fallback would be used)" if (
        settings.allow_fallback) else ""
    return False, (f"toxicity classifier: Detoxify {settings.model} is not on this machine and "
                   f"will be downloaded from GitHub at start-up, which fails without internet"
                   f"{fallback}. {what_to_do}")


# ------------------------------------------------------------------------ offline bundles


def prepare_offline_bundle(out_dir: Path, model_type: str = "original",
                           checkpoint: Path | None = None,
                           huggingface_config_path: Path | None = None,
                           export: bool = False) -> dict[str, Path]:
    """Write what an air-gapped install needs into ``out_dir``.

    Run on a machine with internet (without ``checkpoint``: Detoxify downloads the release
    weights and the transformer's config/tokenizer from the hub), or offline to convert an
    existing Detoxify checkpoint into the tensors-and-config-only form ``load_detoxify`` reads.
    Returns the paths to put in ``[classifiers.toxicity]``.
    """
    import torch
    from detoxify import Detoxify

    out_dir.mkdir(parents=True, exist_ok=True)
    hf_dir = out_dir / f"detoxify-{model_type}-hf"
    ckpt_out = out_dir / f"detoxify-{model_type}.ckpt"
    if checkpoint is None:
        source = torch.hub.load_state_dict_from_url(
            __import__("detoxify.detoxify", fromlist=["MODEL_URLS"]).MODEL_URLS[model_type],
            map_location="cpu", weights_only=False)
        detox = Detoxify(model_type=model_type, device="cpu")
    else:
        # an explicit conversion the operator asked for: the file is trusted here
        source = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if huggingface_config_path is None:
            detox = Detoxify(model_type=model_type, checkpoint=str(checkpoint), device="cpu")
        else:
            slim = {"config": source["config"], "state_dict": source["state_dict"]}
            tmp = out_dir / ".slim.ckpt"
            torch.save(slim, tmp)
            try:
                detox = load_detoxify(model_type, tmp, huggingface_config_path)
            finally:
                tmp.unlink(missing_ok=True)
    hf_dir.mkdir(exist_ok=True)
    detox.model.config.save_pretrained(hf_dir)
    detox.tokenizer.save_pretrained(hf_dir)
    config = json.loads(json.dumps(source["config"], default=str))
    torch.save({"config": config, "state_dict": detox.model.state_dict()}, ckpt_out)
    paths = {"checkpoint": ckpt_out, "huggingface_config_path": hf_dir}
    if export:
        onnx_path = out_dir / f"detoxify-{model_type}.onnx"
        # the first-token export and its int8 quantisation, so the server only runs the parity
        # checks (exporting holds the torch model and the tracer's copy of it)
        identity = _checkpoint_identity(model_type, ckpt_out)
        export_onnx(detox, onnx_path, identity, "first-token")
        export_onnx(detox, _variant_path(onnx_path, "int8"), identity, "int8", source=onnx_path)
        paths["onnx_path"] = onnx_path
    return paths


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rules.toxicity",
                                     description="Toxicity classifier tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write weights + tokenizer for an air-gapped install")
    prep.add_argument("--model", default="original",
                      choices=["original", "original-small", "unbiased", "unbiased-small",
                               "multilingual"])
    prep.add_argument("--out", type=Path, required=True)
    prep.add_argument("--checkpoint", type=Path, help="convert this Detoxify checkpoint")
    prep.add_argument("--huggingface-config-path", type=Path,
                      help="local config/tokenizer folder for --checkpoint (offline conversion)")
    prep.add_argument("--onnx", action="store_true", help="also export the ONNX fast path")
    args = parser.parse_args(argv)
    paths = prepare_offline_bundle(args.out, args.model, args.checkpoint,
                                   args.huggingface_config_path, args.onnx)
    print("Copy this folder to the air-gapped machine and put in the config:")
    print("[classifiers.toxicity]")
    print(f'model = "{args.model}"')
    for key, path in paths.items():
        print(f'{key} = "{path}"')
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
