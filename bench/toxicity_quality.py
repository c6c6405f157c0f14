"""Toxicity quality on the Davidson development slice: hate or offensive (positive) vs neither.

Every toxicity backend that can run on this machine is scored through the project's own code
(``rules.toxicity`` backends, ``governance_bot.evaluation.evaluate``): ROC AUC from the scores, and
precision / recall / F1 at the pack's threshold and at the best threshold on this slice (it is
development data, so choosing a threshold on it is allowed; the held-back data is not used).

Detoxify's real weights cannot be downloaded here (the GitHub release is unreachable); the script
tries and reports that. A random-weight model would give meaningless quality, so none is scored.

    .venv/bin/python bench/run.py toxicity_quality
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path
from typing import Any

from bench.harness import Bench, Skip, shared_dir
from governance_bot.evaluation import LabelledRecord, evaluate
from rules.packs import load_pack
from rules.toxicity import (
    ProfanityFallbackBackend,
    ToxicityDetector,
    ToxicityModelUnavailable,
    ToxicityPack,
    load_detoxify,
)

CLASS_NAMES = {"0": "hate", "1": "offensive", "2": "neither"}


def davidson() -> Path:
    path = shared_dir() / "datasets" / "davidson" / "labeled_data.dev.csv"
    if not path.is_file():
        raise Skip(f"{path} is missing")
    return path


def records() -> tuple[list[LabelledRecord], list[str]]:
    out: list[LabelledRecord] = []
    classes: list[str] = []
    with davidson().open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            cls = CLASS_NAMES[row["class"]]
            classes.append(cls)
            out.append(LabelledRecord(row["tweet"], frozenset(
                [] if cls == "neither" else ["toxicity"])))
    return out, classes


def sweep(recs: list[LabelledRecord], scores: list[float]) -> list[dict[str, float]]:
    rows = []
    for t in [x / 20 for x in range(1, 20)]:
        tp = sum(1 for r, s in zip(recs, scores, strict=True) if s >= t and r.labels)
        fp = sum(1 for r, s in zip(recs, scores, strict=True) if s >= t and not r.labels)
        fn = sum(1 for r, s in zip(recs, scores, strict=True) if s < t and r.labels)
        p = tp / (tp + fp) if tp + fp else 0.0
        r_ = tp / (tp + fn) if tp + fn else 0.0
        rows.append({"threshold": t, "precision": p, "recall": r_,
                     "f1": 2 * p * r_ / (p + r_) if p + r_ else 0.0})
    return rows


def run(bench: Bench, args: argparse.Namespace) -> None:
    recs, classes = records()
    pack = ToxicityPack.from_dict(load_pack("toxicity"))
    out: dict[str, Any] = {
        "data": f"{davidson().name}: {len(recs)} tweets; hate {classes.count('hate')}, "
                f"offensive {classes.count('offensive')}, neither {classes.count('neither')} "
                f"(positive = hate or offensive: "
                f"{sum(1 for r in recs if r.labels) / len(recs):.1%})",
        "backends": [],
    }

    # Detoxify: what an offline machine gets
    try:
        load_detoxify("original")
        out["detoxify"] = "loaded (unexpected on these machines)"
    except ToxicityModelUnavailable as exc:
        out["detoxify"] = f"not available here: {exc}"

    # alt-profanity-check, through the detector exactly as the fallback runs in the service
    detector = ToxicityDetector(ProfanityFallbackBackend("bench"), pack)
    scorer = detector.category_scorer()
    assert scorer is not None
    start = time.perf_counter()
    report = evaluate(recs, scorer=scorer, thresholds={"toxicity": pack.fallback.threshold})
    elapsed = time.perf_counter() - start
    scores = [row["toxicity"] for row in scorer([r.text for r in recs])]
    tox = report.category("toxicity")
    curve = sweep(recs, scores)
    best = max(curve, key=lambda row: row["f1"])
    hate_only = [(r, s, c) for r, s, c in zip(recs, scores, classes, strict=True)
                 if c in ("hate", "neither")]
    hate_report = evaluate([LabelledRecord(r.text, frozenset(["toxicity"] if c == "hate" else []))
                            for r, _, c in hate_only], scorer=scorer,
                           thresholds={"toxicity": pack.fallback.threshold})
    out["backends"].append({
        "backend": "alt-profanity-check (shipped fallback)",
        "auc": tox.auc,
        "pack_threshold": pack.fallback.threshold,
        "precision": tox.precision, "recall": tox.recall, "f1": tox.f1,
        "best_threshold": best,
        "hate_vs_neither_auc": hate_report.category("toxicity").auc,
        "texts_per_second": len(recs) / elapsed,
        "curve": curve,
    })

    bench.note(out["data"])
    bench.note(f"Detoxify: {out['detoxify']}")
    bench.table("ROC AUC and scores at the pack's threshold and the best one on this slice",
                ["backend", "AUC", "threshold", "precision", "recall", "F1",
                 "best F1 (threshold)", "AUC hate vs neither", "texts/s"],
                [[b["backend"], b["auc"], b["pack_threshold"], b["precision"], b["recall"],
                  b["f1"], f"{b['best_threshold']['f1']:.3f} "
                  f"({b['best_threshold']['threshold']:.2f})", b["hate_vs_neither_auc"],
                  b["texts_per_second"]] for b in out["backends"]])
    bench.table("Threshold sweep (alt-profanity-check)", ["threshold", "precision", "recall",
                                                          "F1"],
                [[row["threshold"], row["precision"], row["recall"], row["f1"]]
                 for row in curve])
    bench.note("```\n" + report.render().strip() + "\n```")
    b = out["backends"][0]
    bench.target("Davidson dev slice: AUC and F1 per toxicity backend available here (issue 6)",
                 f"{b['backend']}: AUC {b['auc']:.3f}, F1 {b['f1']:.3f} at "
                 f"{b['pack_threshold']:.2f}; Detoxify's real weights cannot be downloaded here",
                 None)


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py toxicity_quality")
