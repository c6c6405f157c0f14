"""Toxicity quality on the Davidson development slice: hate or offensive (positive) vs neither.

Every toxicity backend that can run on this machine is scored through the project's own code
(``rules.toxicity`` backends, ``governance_bot.evaluation.evaluate``): ROC AUC from the scores, and
precision / recall / F1 at the pack's threshold and at the best threshold on this slice (it is
development data, so choosing a threshold on it is allowed; the held-back data is not used).

Detoxify's real weights cannot be downloaded here (the GitHub release is unreachable); the script
tries and reports that. A random-weight model would give meaningless quality, so none is scored.

    .venv/bin/python bench/bench_eval_davidson.py [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("GOVERNANCE_BOT_SHARED", REPO.parent / "shared"))
DAVIDSON = SHARED / "datasets" / "davidson" / "labeled_data.dev.csv"

from governance_bot.evaluation import LabelledRecord, evaluate  # noqa: E402
from rules.packs import load_pack  # noqa: E402
from rules.toxicity import (  # noqa: E402
    ProfanityFallbackBackend,
    ToxicityDetector,
    ToxicityModelUnavailable,
    ToxicityPack,
    load_detoxify,
)

CLASS_NAMES = {"0": "hate", "1": "offensive", "2": "neither"}


def records() -> tuple[list[LabelledRecord], list[str]]:
    out: list[LabelledRecord] = []
    classes: list[str] = []
    with DAVIDSON.open(newline="", encoding="utf-8") as fh:
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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    recs, classes = records()
    pack = ToxicityPack.from_dict(load_pack("toxicity"))
    out: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "data": f"{DAVIDSON.name}: {len(recs)} tweets; hate {classes.count('hate')}, "
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

    print(f"# Davidson dev slice ({out['date']}, {out['machine']})")
    print(out["data"])
    print(f"Detoxify: {out['detoxify']}")
    print("\n| backend | AUC | threshold | precision | recall | F1 | best F1 (threshold) "
          "| AUC hate vs neither |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for b in out["backends"]:
        print(f"| {b['backend']} | {b['auc']:.3f} | {b['pack_threshold']:.2f} | "
              f"{b['precision']:.3f} | {b['recall']:.3f} | {b['f1']:.3f} | "
              f"{b['best_threshold']['f1']:.3f} ({b['best_threshold']['threshold']:.2f}) | "
              f"{b['hate_vs_neither_auc']:.3f} |")
    print("\nthreshold sweep (alt-profanity-check):")
    for row in curve:
        print(f"  {row['threshold']:.2f}  P {row['precision']:.3f}  R {row['recall']:.3f}  "
              f"F1 {row['f1']:.3f}")
    print("\n" + report.render())
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
