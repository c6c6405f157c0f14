"""Tune the safeguarding pack's semantic thresholds, margins and context penalty on dev data.

    .venv/bin/python tools/tune_safeguarding.py [--write] [--heldout] [--errors] [--cv]
    .venv/bin/python tools/tune_safeguarding.py --unseen FILE

Reads tests/data/safeguarding_dev.jsonl (``{"text", "family"}``, family null for benign) and scores
every text against each family's exemplars and the pack's benign exemplars with the shipped
embedding model. A text counts as flagged for a family when the lexicons fire (weak cues need
company, as in the detector), or when its best sentence reaches the family's threshold (plus the
pack's ``context_penalty`` where the text mentions one of the family's contexts: a lesson, a game,
sport, the school play) and beats every benign exemplar by the family's margin.

For each family the threshold (0.40-0.90) and the margin (0.00-0.15) are swept together
(positives: the family's texts; negatives: the benign texts; other families' texts are left out,
since a concern flagged under a neighbouring family still reaches the DSL). The pair with the best
F1 wins (the DSL wants neither misses nor noise); where several are equally good, the middle of
the tying range is taken, so the choice does not sit on the edge of what the dev data showed.
Thresholds below 0.40 are not considered (below that, everyday sentences about family, school and
friends come close to every exemplar). The pack-wide context penalty (0.00-0.40) is swept around
that, and the best sum of family F1s wins (ties: the middle value).

``--write`` puts the chosen values into rules/packs/safeguarding.toml. ``--heldout`` then prints
the misses and false alarms on the pack's must-catch / must-not-catch tables, for the results file
only: those tables are the held-out check in tests/test_safeguarding.py and are NOT used here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rules.packs import SHIPPED, load_pack  # noqa: E402
from rules.safeguarding import SafeguardingDetector  # noqa: E402

DEV = REPO / "tests" / "data" / "safeguarding_dev.jsonl"
THRESHOLDS = [t / 100 for t in range(40, 91)]
MARGINS = [m / 100 for m in range(0, 16)]
PENALTIES = [p / 100 for p in range(0, 41, 2)]


def _middle(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def tune_family(fid: str, rows: list[dict], scores: list[dict], lexical: list[set[str]],
                penalty: float) -> dict[str, float]:
    """The best (threshold, margin) for one family and its figures on the dev set."""
    keep = [i for i, r in enumerate(rows) if r["family"] in (fid, None)]
    pos = np.array([rows[i]["family"] == fid for i in keep])
    lex = np.array([fid in lexical[i] for i in keep])
    sc = np.array([scores[i].get(fid, (-1.0, 1.0, 0.0)) for i in keep]).reshape(-1, 3)
    cos, benign, in_ctx = sc[:, 0], sc[:, 1], sc[:, 2]
    thr = np.array(THRESHOLDS)[:, None, None]
    margin = np.array(MARGINS)[None, :, None]
    flagged = lex | ((cos >= thr + penalty * in_ctx) & (cos >= benign + margin))
    tp = (flagged & pos).sum(axis=2)
    fp = (flagged & ~pos).sum(axis=2)
    fn = (~flagged & pos).sum(axis=2)
    f1 = np.where(tp > 0, 2 * tp / np.maximum(1, 2 * tp + fp + fn), 0.0)
    best = float(f1.max())
    ti, mi = np.nonzero(f1 == f1.max())
    m = _middle([MARGINS[j] for j in mi])
    t = _middle([THRESHOLDS[i] for i, j in zip(ti, mi, strict=True) if MARGINS[j] == m])
    i, j = THRESHOLDS.index(t), MARGINS.index(m)
    npos = int(pos.sum())
    ctp, cfp = int(tp[i, j]), int(fp[i, j])
    return {"f1": best, "threshold": t, "margin": m, "tp": ctp, "fp": cfp, "fn": int(fn[i, j]),
            "precision": ctp / (ctp + cfp) if ctp + cfp else 1.0,
            "recall": ctp / npos if npos else 1.0,
            "lexicon_recall": int((lex & pos).sum()) / npos if npos else 1.0}


def write_pack(chosen: dict[str, dict[str, float]], penalty: float) -> Path:
    path = SHIPPED / "safeguarding.toml"
    text = path.read_text()
    for fid, c in chosen.items():
        block = re.search(rf"(?ms)^\[families\.{fid}\]\n.*?(?=^\[)", text)
        assert block, fid
        body = block.group(0)
        body = re.sub(r"(?m)^semantic_threshold = [0-9.]+",
                      f"semantic_threshold = {c['threshold']:.2f}", body)
        if re.search(r"(?m)^semantic_margin = ", body):
            body = re.sub(r"(?m)^semantic_margin = [0-9.]+",
                          f"semantic_margin = {c['margin']:.2f}", body)
        else:
            body = re.sub(r"(?m)^(semantic_threshold = [0-9.]+\n)",
                          rf"\g<1>semantic_margin = {c['margin']:.2f}\n", body)
        text = text[:block.start()] + body + text[block.end():]
    text = re.sub(r"(?m)^context_penalty = [0-9.]+", f"context_penalty = {penalty:.2f}", text)
    path.write_text(text)
    return path


def heldout(det: SafeguardingDetector) -> None:
    catch, clear = det.examples()
    texts = sorted({t for _, _, t in catch} | {t for _, t in clear})
    found = dict(zip(texts, det.detect_many(texts), strict=True))
    misses = [(f, t) for f, _, t in catch
              if f not in {x.evidence.detail["family"] for x in found[t]}]
    alarms = [(f, t, sorted(x.evidence.detail["family"] for x in found[t])) for f, t in clear
              if found[t]]
    print(f"held-out must-catch: {len(catch) - len(misses)}/{len(catch)} found; "
          f"must-not-catch: {len(alarms)}/{len(clear)} with a finding")
    for f, t in misses:
        print(f"  MISS  {f:13} {t}")
    for f, t, got in alarms:
        print(f"  ALARM {f:13} {t}  -> {got}")


def unseen(det: SafeguardingDetector, path: Path) -> None:
    """Figures on sentences written once and never used while developing (bench/data)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    found = det.detect_many([r["text"] for r in rows])
    pos = [(r, f) for r, f in zip(rows, found, strict=True) if r["family"]]
    neg = [(r, f) for r, f in zip(rows, found, strict=True) if not r["family"]]
    misses = [r for r, f in pos if r["family"] not in {x.evidence.detail["family"] for x in f}]
    alarms = [(r, f) for r, f in neg if f]
    print(f"unseen ({path.name}): {len(pos) - len(misses)}/{len(pos)} concerns found under "
          f"their family; {len(alarms)}/{len(neg)} benign with a finding")
    for r in misses:
        print(f"  MISS  {r['family']:13} {r['text']}")
    for r, f in alarms:
        print(f"  ALARM {r['text']}  -> {sorted(x.evidence.detail['family'] for x in f)}")


def cross_validate(det: SafeguardingDetector, rows: list[dict], scores: list[dict],
                   lexical: list[set[str]], shuffles: int = 10) -> None:
    """Per-family margins against one pack-wide margin, by 2-fold cross-validation on the dev set:
    tune on one half, count on the other (concerns found under their family, benign texts with
    any finding), summed over shuffles. Shows whether the extra freedom generalises."""
    import random

    penalty = det.context_penalty

    def count(idx: list[int], chosen: dict[str, dict[str, float]]) -> tuple[int, int, int]:
        tp = fn = fp = 0
        for i in idx:
            sc, fired = scores[i], set(lexical[i])
            fired |= {fid for fid, c in chosen.items() if fid in sc
                      and sc[fid][0] >= c["threshold"] + penalty * sc[fid][2]
                      and sc[fid][0] >= sc[fid][1] + c["margin"]}
            if rows[i]["family"]:
                tp += rows[i]["family"] in fired
                fn += rows[i]["family"] not in fired
            else:
                fp += bool(fired)
        return tp, fn, fp

    def tune(idx: list[int], shared: bool) -> dict[str, dict[str, float]]:
        sub = ([rows[i] for i in idx], [scores[i] for i in idx], [lexical[i] for i in idx])
        if not shared:
            return {fid: tune_family(fid, *sub, penalty) for fid in det.families}
        global MARGINS
        every, best = MARGINS, None
        for m in every:
            MARGINS = [m]
            chosen = {fid: tune_family(fid, *sub, penalty) for fid in det.families}
            total = sum(c["f1"] for c in chosen.values())
            if best is None or total > best[0]:
                best = (total, chosen)
        MARGINS = every
        assert best is not None
        return best[1]

    for shared in (False, True):
        totals = [0, 0, 0]
        for seed in range(shuffles):
            idx = list(range(len(rows)))
            random.Random(seed).shuffle(idx)
            halves = [idx[::2], idx[1::2]]
            for k in (0, 1):
                got = count(halves[1 - k], tune(halves[k], shared))
                totals = [a + b for a, b in zip(totals, got, strict=True)]
        tp, fn, fp = totals
        nneg = shuffles * sum(1 for r in rows if not r["family"])
        print(f"cross-validation, {'one pack-wide margin' if shared else 'per-family margins'}: "
              f"recall {tp / (tp + fn):.3f}, benign texts flagged {fp}/{nneg} "
              f"({100 * fp / nneg:.1f} %)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", action="store_true", help="write the values into the pack")
    parser.add_argument("--heldout", action="store_true",
                        help="afterwards, report the held-out tables (not used for tuning)")
    parser.add_argument("--errors", action="store_true", help="list the dev set's errors")
    parser.add_argument("--cv", action="store_true",
                        help="2-fold cross-validation: per-family margins vs one shared margin")
    parser.add_argument("--unseen", type=Path, metavar="JSONL",
                        help="only report figures on a set never used in development, and stop")
    args = parser.parse_args()
    if args.unseen:
        unseen(SafeguardingDetector.from_pack(load_pack("safeguarding")), args.unseen)
        return
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    det = SafeguardingDetector.from_pack(load_pack("safeguarding"))
    start = time.perf_counter()
    scores = det.family_scores([r["text"] for r in rows])
    lexical = [det.lexical_families(det.mask_idioms(r["text"])) for r in rows]
    elapsed = time.perf_counter() - start
    print(f"dev set: {len(rows)} texts ({sum(1 for r in rows if r['family'])} concerns, "
          f"{sum(1 for r in rows if not r['family'])} benign); scored in {elapsed:.1f} s")
    results = {p: {fid: tune_family(fid, rows, scores, lexical, p) for fid in det.families}
               for p in PENALTIES}
    totals = {p: round(sum(c["f1"] for c in r.values()), 6) for p, r in results.items()}
    top = max(totals.values())
    penalty = _middle([p for p, t in totals.items() if t == top])
    print("context penalty sweep (mean F1): " + ", ".join(
        f"{p:.2f}={t / len(det.families):.3f}" for p, t in totals.items()))
    print(f"chosen context penalty {penalty:.2f}")
    print(f"{'family':14} {'thr':>5} {'margin':>6} {'P':>5} {'R':>5} {'F1':>5} {'FP':>3} "
          f"{'FN':>3}  lexicon-only R")
    chosen = results[penalty]
    for fid, c in chosen.items():
        print(f"{fid:14} {c['threshold']:5.2f} {c['margin']:6.2f} {c['precision']:5.2f} "
              f"{c['recall']:5.2f} {c['f1']:5.2f} {int(c['fp']):3d} {int(c['fn']):3d}  "
              f"{c['lexicon_recall']:.2f}")
    tp = sum(int(c["tp"]) for c in chosen.values())
    fp_texts = sum(
        1 for r, sc, lx in zip(rows, scores, lexical, strict=True) if r["family"] is None and (
            lx or any(
                fid in sc and sc[fid][0] >= c["threshold"] + penalty * sc[fid][2]
                and sc[fid][0] >= sc[fid][1] + c["margin"]
                for fid, c in chosen.items()))
    )
    print(f"overall on dev: {tp}/{sum(1 for r in rows if r['family'])} concerns flagged under "
          f"their family; {fp_texts}/{sum(1 for r in rows if not r['family'])} benign texts "
          "with any finding")
    if args.cv:
        cross_validate(det, rows, scores, lexical)
    if args.errors:
        for r, sc, lx in zip(rows, scores, lexical, strict=True):
            fired = set(lx) | {
                fid for fid, c in chosen.items()
                if fid in sc and sc[fid][0] >= c["threshold"] + penalty * sc[fid][2]
                and sc[fid][0] >= sc[fid][1] + c["margin"]}
            if r["family"] and r["family"] not in fired:
                s = sc.get(r["family"], (0.0, 0.0, 0.0))
                print(f"  dev FN {r['family']:13} cos={s[0]:.2f} benign={s[1]:.2f} "
                      f"ctx={s[2]:.0f} {r['text']}")
            elif not r["family"] and fired:
                print(f"  dev FP {sorted(fired)} {r['text']}")
    if args.write:
        print(f"wrote the values into {write_pack(chosen, penalty)}")
    if args.heldout:
        heldout(SafeguardingDetector.from_pack(load_pack("safeguarding")))


if __name__ == "__main__":
    main()
