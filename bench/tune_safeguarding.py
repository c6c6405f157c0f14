"""Tune the safeguarding pack's per-family semantic thresholds on the development set only.

    .venv/bin/python bench/tune_safeguarding.py [--write]

Reads tests/data/safeguarding_dev.jsonl (``{"text", "family"}``, family null for benign), scores
every text against each family's exemplars with the shipped embedding model, and for each family
sweeps the cosine threshold (positives: the family's texts; negatives: the benign texts; other
families' texts are left out, since a concern flagged under a neighbouring family still reaches the
DSL): a text counts as flagged for a family when the lexicons fire, or when
its best sentence reaches the threshold and beats the family's benign exemplars by the pack's
margin. The chosen threshold maximises F1 (the DSL wants neither misses nor noise) with ties
going to the higher threshold; thresholds below 0.40 are not considered (below that, everyday
sentences about family, school and friends come close to every exemplar). The pack-wide margin by
which a sentence must beat every benign exemplar is swept too, and the best mean F1 over families
wins. ``--write`` puts the chosen
values into rules/packs/safeguarding.toml. The pack's must-catch/must-not-catch tables are NOT
used here: they are the held-out check in tests/test_safeguarding.py.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rules.packs import SHIPPED, load_pack  # noqa: E402
from rules.safeguarding import SafeguardingDetector  # noqa: E402

DEV = REPO / "tests" / "data" / "safeguarding_dev.jsonl"


def fbeta(tp: int, fp: int, fn: int, beta: float) -> float:
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return (1 + b2) * tp / denom if denom else 0.0


def sweep(det: SafeguardingDetector, rows: list[dict], scores: list[dict],
          lexical: list[set[str]], margin: float) -> dict[str, tuple[float, ...]]:
    chosen: dict[str, tuple[float, ...]] = {}
    for fid in det.families:
        best: tuple[float, ...] | None = None
        pos = [r["family"] == fid for r in rows]
        negs = [r["family"] is None for r in rows]
        lex_tp = sum(1 for p, lx in zip(pos, lexical, strict=True) if p and fid in lx)
        for step in range(40, 91):
            thr = step / 100
            tp = fp = fn = 0
            for p, neg, sc, lx in zip(pos, negs, scores, lexical, strict=True):
                if not (p or neg):
                    continue
                cos, benign = sc.get(fid, (0.0, 0.0))
                flagged = fid in lx or (cos >= thr and cos >= benign + margin)
                tp += p and flagged
                fp += neg and flagged
                fn += p and not flagged
            prec = tp / (tp + fp) if tp + fp else 1.0
            rec = tp / (tp + fn) if tp + fn else 1.0
            cand = (fbeta(tp, fp, fn, 1), thr, prec, rec, fbeta(tp, fp, fn, 2),
                    lex_tp / max(1, sum(pos)), fp)
            if best is None or cand[0] >= best[0]:
                best = cand
        assert best is not None
        chosen[fid] = best
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="write thresholds into the pack")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    det = SafeguardingDetector.from_pack(load_pack("safeguarding"))
    start = time.perf_counter()
    scores = det.family_scores([r["text"] for r in rows])
    lexical = [
        {h.cue.family for h in det.lexical_hits(det.mask_idioms(r["text"]))} for r in rows
    ]
    elapsed = time.perf_counter() - start
    print(f"dev set: {len(rows)} texts ({sum(1 for r in rows if r['family'])} positive); "
          f"scored in {elapsed:.1f} s")
    results = {m / 100: sweep(det, rows, scores, lexical, m / 100) for m in range(0, 16)}
    margin = max(results, key=lambda m: (round(sum(v[0] for v in results[m].values()), 6), m))
    print("margin sweep (mean F1 over families): " + ", ".join(
        f"{m:.2f}={sum(v[0] for v in r.values()) / len(r):.3f}" for m, r in results.items()))
    print(f"chosen margin {margin:.2f}")
    print(f"{'family':14} {'thr':>5} {'P':>5} {'R':>5} {'F1':>5} {'F2':>5} {'FP':>3}  "
          "lexicon-only R")
    chosen: dict[str, float] = {}
    for fid, (f1, thr, prec, rec, f2, lex_r, fp) in results[margin].items():
        chosen[fid] = thr
        print(f"{fid:14} {thr:5.2f} {prec:5.2f} {rec:5.2f} {f1:5.2f} {f2:5.2f} {int(fp):3d}  "
              f"{lex_r:.2f}")
    if args.write:
        path = SHIPPED / "safeguarding.toml"
        text = path.read_text()
        for fid, thr in chosen.items():
            text = re.sub(
                rf"(\[families\.{fid}\][^\[]*?semantic_threshold = )[0-9.]+",
                rf"\g<1>{thr:.2f}",
                text,
                flags=re.S,
            )
        text = re.sub(r"(?m)^semantic_margin = [0-9.]+", f"semantic_margin = {margin:.2f}", text)
        path.write_text(text)
        print(f"wrote thresholds into {path}")


if __name__ == "__main__":
    main()
