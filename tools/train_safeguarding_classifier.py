"""Train the safeguarding classifier (rules/classifier.py) and choose its thresholds, reproducibly.

    .venv/bin/python tools/train_safeguarding_classifier.py            # report only
    .venv/bin/python tools/train_safeguarding_classifier.py --write    # and write the weights
                                                                        # and the pack's thresholds
    .venv/bin/python tools/train_safeguarding_classifier.py --write --detector-oof
        # also the whole detector out of fold, and bullying's and hate's classifier_confident

Data (development halves and examples written for this project only; the other halves, the
Davidson rows outside the shared slice and any other outside set are never read):

* ``../shared/datasets/safeguarding-dev/``: CSSRS (Reddit users at suicide risk: ``self_harm``),
  ConvAbuse (abuse typed at chatbots: ``bullying``), Stormfront (hate speech: ``hate``);
* ``../shared/datasets/davidson/labeled_data.dev.csv``: hate speech (``hate``) and tweets with
  neither hate nor offence (negatives); offensive-only tweets are left out (swearing is not, by
  itself, a safeguarding concern);
* ``tests/data/safeguarding_dev.jsonl`` and ``bench/data/classifier_examples.jsonl`` (sentences
  written for the families the public data lacks: grooming, exploitation, abuse disclosures, UK
  school slang, and everyday school talk), the pack's concern and benign exemplars, and the
  example organisation's items (benign school posts and messages; the few labelled safeguarding
  items of examples/expected-findings.json are left out).

CSSRS labels whole users (all their posts): each sentence of an at-risk user is not a disclosure.
Multiple-instance learning: a first head is trained without CSSRS; in each at-risk user's posts the
sentences it scores highest (at most 3, above 0.3) become positives; all sentences of users labelled
supportive or indicator are left out (they talk about suicide while supporting others).

Model: one logistic regression per family (scikit-learn, ``class_weight="balanced"``, seed 13),
Platt-calibrated on 5-fold out-of-fold scores. Thresholds: per family, the lowest probability at
which the out-of-fold false-alarm rate on that family's negatives stays within the family's
budget (``BUDGETS``) and the rate on everyday school text within ``SCHOOL_BUDGET``. Reported
figures are out-of-fold (the head never saw the texts it is scored
on), combined with the lexicons and meaning matching as the detector combines them; thresholds
are chosen on the other folds (nested), so the figures are not tuned on the texts they measure.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rules.classifier import MODEL_FILE, NGRAMS, FamilyClassifier, NgramFeatures  # noqa: E402
from rules.packs import load_pack  # noqa: E402

SEED = 13
FOLDS = 5
CACHE = Path("/tmp/governance-bot-train-cache")
# per family: the out-of-fold false-alarm rate allowed on that family's negatives (the share of
# texts without the family that the head alone flags as it)
BUDGETS = {"self_harm": 0.01, "bullying": 0.03, "hate": 0.03}
DEFAULT_BUDGET = 0.005
# and on everyday school text (the school-written benign sentences, the pack's benign exemplars,
# the example organisation's posts): the public sets are adult text, and a threshold they allow
# can still fire on "I'm so tired I could sleep till Christmas"
SCHOOL_BUDGET = 0.003
SCHOOL_SOURCES = {"school-dev", "school-written", "exemplars", "example-org"}
# classifier_confident per family (--detector-oof): the families with a public development set
# of their own, and the false-alarm rate allowed there, out of fold: one standard error
# (about 0.5 points on these sets) under the 5 % the issue aims at. The level chosen is the
# lowest (in steps of 0.05) within that rate at which the project's everyday school texts get no
# more findings than with the gate always on.
CONFIDENT_SETS = {"bullying": ("convabuse", "cyberbullying"),
                  "hate": ("stormfront", "threats_extremism")}
CONFIDENT_FALSE_ALARMS = 0.045
# the families with a word and character n-gram model stacked on the embedding head: those with
# a public development set of their own (ConvAbuse, Stormfront and Davidson). The vocabulary:
# terms in at least NGRAM_MIN_DF training sentences, the most frequent NGRAM_TERMS of each kind.
NGRAM_FAMILIES = ("bullying", "hate")
NGRAM_C = 4.0
NGRAM_MIN_DF = 2
NGRAM_TERMS = {"word": 20000, "char": 40000}


def shared() -> Path:
    import os

    return Path(os.environ.get("GOVERNANCE_BOT_SHARED", REPO.parent / "shared"))


# -- data ------------------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def load_units() -> list[dict[str, Any]]:
    """Every training text: {text, families (set), source, group (for folds), doc}."""
    units: list[dict[str, Any]] = []
    ds = shared() / "datasets"
    for row in _jsonl(ds / "safeguarding-dev" / "convabuse.jsonl"):
        units.append({"text": row["text"], "families": {"bullying"} if row["labels"] else set(),
                      "source": "convabuse", "group": row["id"]})
    for row in _jsonl(ds / "safeguarding-dev" / "stormfront.jsonl"):
        units.append({"text": row["text"], "families": {"hate"} if row["labels"] else set(),
                      "source": "stormfront", "group": row["id"]})
    with (ds / "davidson" / "labeled_data.dev.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["class"] == "1":
                continue  # offensive only: left out
            units.append({"text": row["tweet"],
                          "families": {"hate"} if row["class"] == "0" else set(),
                          "source": "davidson", "group": f"davidson-{row['']}"})
    for row in _jsonl(ds / "safeguarding-dev" / "cssrs.jsonl"):
        units.append({"text": row["text"], "families": {"self_harm"} if row["labels"] else set(),
                      "source": "cssrs", "group": row["id"], "doc": True})
    for path, source in ((REPO / "tests/data/safeguarding_dev.jsonl", "school-dev"),
                         (REPO / "bench/data/classifier_examples.jsonl", "school-written")):
        if not path.exists():
            continue
        for i, row in enumerate(_jsonl(path)):
            fam = row.get("family")
            units.append({"text": row["text"], "families": {fam} if fam else set(),
                          "source": source, "group": f"{source}-{i}"})
    pack = load_pack("safeguarding")
    for fid, fam in pack["families"].items():
        for sub in fam.get("sub", {}).values():
            for i, t in enumerate(sub.get("exemplars", [])):
                units.append({"text": t, "families": {fid}, "source": "exemplars",
                              "group": f"ex-{fid}-{i}-{t[:20]}"})
        for i, t in enumerate(fam.get("benign_exemplars", [])):
            units.append({"text": t, "families": set(), "source": "exemplars",
                          "group": f"benign-{fid}-{i}"})
    for i, t in enumerate(pack.get("benign_exemplars", [])):
        units.append({"text": t, "families": set(), "source": "exemplars", "group": f"b-{i}"})
    expected = json.loads((REPO / "examples/expected-findings.json").read_text())
    flagged = {k for k, v in expected.items()
               if any(c in json.dumps(v) for c in ("safeguarding", "commerce"))}
    for path in sorted((REPO / "examples/items").glob("brookfield-*.jsonl")):
        for row in _jsonl(path):
            if row.get("text") and row.get("id") not in flagged and not any(
                    row.get("id", "") in k for k in flagged):
                units.append({"text": row["text"], "families": set(), "source": "example-org",
                              "group": f"org-{row.get('id')}"})
    return units


# -- embeddings (cached by content, like the detector's own sentence split) ------------------------


def sentences(detector: Any, text: str) -> list[str]:
    """The sentences the detector embeds (its normalisation and idiom masking first); a text
    with none long enough is one unit of its own."""
    from rules.normalise import normalise
    from rules.safeguarding import trim_span

    masked = detector._mask(normalise(text).text)
    spans = detector._sentences(masked) or [trim_span(masked, 0, len(masked))]
    return [masked[a:b] for a, b in spans if a < b]


def embed_all(texts: list[str]) -> np.ndarray:
    """Unit vectors for ``texts``, kept in a cache by content (re-runs embed only new texts)."""
    from rules.embeddings import embed

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "embeddings.npz"
    known: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as data:
            known = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    for start in range(0, len(todo), 2048):
        chunk = todo[start:start + 2048]
        vectors = embed([t for _, t in chunk], batch_size=128)
        known.update(zip([k for k, _ in chunk], vectors, strict=True))
        np.savez(path, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
        print(f"  embedded {start + len(chunk)} / {len(todo)} new sentences", flush=True)
    return np.stack([known[k] for k in keys]).astype(np.float32)


# -- training --------------------------------------------------------------------------------------


def fit_head(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=SEED)
    model.fit(x, y)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def fit_ngram_features(texts: list[str], transform: list[str]) -> tuple[NgramFeatures, Any]:
    """The n-gram vocabulary and inverse document frequencies of ``texts`` (scikit-learn's
    ``TfidfVectorizer``), and the features of ``transform`` (a sparse matrix: the word terms,
    then the character terms). rules/classifier.py computes the same features at run time,
    without scikit-learn, from the idf as stored (float32): the matrix is made from those."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    vocabulary: dict[str, tuple[str, ...]] = {}
    idf: dict[str, np.ndarray] = {}
    blocks = []
    for kind, spec in NGRAMS.items():
        vec = TfidfVectorizer(lowercase=True, sublinear_tf=True, min_df=NGRAM_MIN_DF,
                              max_features=NGRAM_TERMS[kind], **spec)
        vec.fit(texts)
        vocabulary[kind] = tuple(str(t) for t in vec.get_feature_names_out())
        idf[kind] = vec.idf_.astype(np.float32)
        vec.idf_ = idf[kind].astype(np.float64)  # as stored
        blocks.append(normalize(vec.transform(transform)))
    return NgramFeatures(vocabulary, idf), sparse.hstack(blocks).tocsr()


def check_ngram_features(features: NgramFeatures, h: Any, texts: list[str]) -> None:
    """The run-time features (rules/classifier.py) are the ones the models were trained on."""
    rng = np.random.default_rng(SEED)
    probe = rng.normal(size=(2, features.size))
    rows = rng.choice(len(texts), size=min(len(texts), 3000), replace=False)
    ours = features.scores([texts[r] for r in rows], probe)
    theirs = np.asarray(h[rows] @ probe.T)
    if not np.allclose(ours, theirs, atol=1e-5):
        raise SystemExit("the run-time n-gram features differ from scikit-learn's: "
                         f"largest difference {np.abs(ours - theirs).max():.2g}")


def fit_ngram_head(h: Any, y: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=NGRAM_C, class_weight="balanced", solver="liblinear",
                               max_iter=3000, random_state=SEED)
    model.fit(h, y)
    return model.coef_[0].astype(np.float32), float(model.intercept_[0])


def platt2(emb: np.ndarray, ngram: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Platt scaling with two inputs (the embedding head's and the n-gram model's held-out
    scores): the stacking weights and the offset."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1e4, max_iter=1000, random_state=SEED)
    m.fit(np.c_[emb, ngram], y)
    return float(m.coef_[0][0]), float(m.coef_[0][1]), float(m.intercept_[0])


def platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=1e4, max_iter=1000, random_state=SEED)
    m.fit(scores.reshape(-1, 1), y)
    return float(m.coef_[0][0]), float(m.intercept_[0])


def folds_of(groups: list[str]) -> np.ndarray:
    """A fold per group, from a hash of the group (stable across runs and machines)."""
    return np.array([int(hashlib.sha256(g.encode()).hexdigest(), 16) % FOLDS for g in groups])


def threshold_for(probs: np.ndarray, negatives: np.ndarray, budget: float) -> float:
    """The lowest threshold whose false-alarm rate on ``negatives`` is within ``budget``."""
    neg = np.sort(probs[negatives])[::-1]
    if not len(neg):
        return 0.5
    k = int(np.floor(budget * len(neg)))
    return float(min(0.999, max(0.05, neg[k] + 1e-6 if k < len(neg) else 0.05)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write weights and thresholds")
    parser.add_argument("--report", type=Path, default=None, help="write figures as JSON here")
    parser.add_argument("--ngram-families", default=",".join(NGRAM_FAMILIES),
                        help="the families given an n-gram model (comma-separated; empty: "
                             "none, the embedding heads alone, as before)")
    parser.add_argument("--out", type=Path, default=MODEL_FILE,
                        help="where --write writes the weights (default: the shipped file)")
    parser.add_argument("--detector-oof", action="store_true",
                        help="also run the whole detector (gates included) out of fold on the "
                             "public development sets: each fold's texts read by the heads and "
                             "thresholds of the other folds")
    args = parser.parse_args()

    from rules.safeguarding import SafeguardingDetector

    pack = load_pack("safeguarding")
    detector = SafeguardingDetector.from_pack(
        {**pack, "settings": {**pack["settings"], "semantic": False, "classifier": False}})
    families = tuple(pack["families"])
    units = load_units()
    print(f"{len(units)} texts", {s: sum(1 for u in units if u["source"] == s)
                                 for s in sorted({u["source"] for u in units})}, flush=True)
    # sentence rows: (unit index, sentence text)
    rows: list[tuple[int, str]] = []
    for i, u in enumerate(units):
        for s in sentences(detector, u["text"]):
            rows.append((i, s))
    x = embed_all([s for _, s in rows])
    unit_of = np.array([i for i, _ in rows])
    is_doc = np.array([bool(units[i].get("doc")) for i in unit_of])
    fold = folds_of([units[i]["group"] for i in unit_of])
    print(f"{len(rows)} sentences embedded", flush=True)

    def labels(fid: str) -> np.ndarray:
        return np.array([fid in units[i]["families"] for i in unit_of])

    # n-gram features: per fold, the vocabulary of the other folds' sentences (CSSRS's users are
    # not read: no n-gram family is trained on them); and one of every sentence, for the weights
    texts = [s for _, s in rows]
    ngram_rows = ~is_doc
    ngram_families = tuple(f for f in families if f in args.ngram_families.split(","))
    fold_features: list[NgramFeatures] = []
    fold_h: list[Any] = []
    if ngram_families:
        for k in range(FOLDS):
            feats, h = fit_ngram_features(
                [texts[r] for r in np.flatnonzero(ngram_rows & (fold != k))], texts)
            fold_features.append(feats)
            fold_h.append(h)
        features, h_all = fit_ngram_features([texts[r] for r in np.flatnonzero(ngram_rows)],
                                             texts)
        check_ngram_features(features, h_all, texts)
        print(f"  n-grams: {features.size} terms", flush=True)
    ngram_weights, ngram_biases, ngram_scales = [], [], []
    fold_ngram_heads: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(FOLDS)]

    weights, biases, scales, offsets = [], [], [], []
    # per fold: the heads that never saw it, (weights, bias) per family
    fold_heads: list[list[tuple[np.ndarray, float]]] = [[] for _ in range(FOLDS)]
    oof = np.zeros((len(rows), len(families)), dtype=np.float32)
    train_mask_of: dict[str, np.ndarray] = {}
    for f_idx, fid in enumerate(families):
        y = labels(fid)
        if fid == "self_harm":
            # multiple-instance step: non-CSSRS first, then the best sentences of at-risk users
            base = ~is_doc
            w, b = fit_head(x[base], y[base])
            s = x @ w + b
            mask = base.copy()
            yy = y.copy()
            by_unit: dict[int, list[int]] = defaultdict(list)
            for r in np.flatnonzero(is_doc & y):
                by_unit[int(unit_of[r])].append(int(r))
            for _, rs in by_unit.items():
                best = sorted(rs, key=lambda r: -s[r])[:3]
                probs = 1 / (1 + np.exp(-s[best]))
                for r, p in zip(best, probs, strict=True):
                    if p >= 0.3:
                        mask[r] = True
                        yy[r] = True
            y = yy
        else:
            mask = ~is_doc
        train_mask_of[fid] = mask
        if y[mask].sum() < 5:
            for k in range(FOLDS):
                fold_heads[k].append((np.zeros(x.shape[1], np.float32), -10.0))
            weights.append(np.zeros(x.shape[1], np.float32))
            biases.append(-10.0)
            scales.append(1.0)
            offsets.append(0.0)
            continue
        raw = np.zeros(len(rows), dtype=np.float32)
        raw_ngram = np.zeros(len(rows), dtype=np.float32)
        for k in range(FOLDS):
            tr = mask & (fold != k)
            w, b = fit_head(x[tr], y[tr])
            raw[fold == k] = x[fold == k] @ w + b
            fold_heads[k].append((w, b))
            if fid in ngram_families:
                assert not (mask & is_doc).any()
                v, d = fit_ngram_head(fold_h[k][tr], y[tr])
                raw_ngram[fold == k] = fold_h[k][fold == k] @ v + d
                fold_ngram_heads[k].append((v, d))
        if fid in ngram_families:
            a, a2, c = platt2(raw[mask], raw_ngram[mask], y[mask])
            oof[:, f_idx] = 1 / (1 + np.exp(-(a * raw + a2 * raw_ngram + c)))
            v, d = fit_ngram_head(h_all[mask], y[mask])
            ngram_weights.append(v)
            ngram_biases.append(d)
            ngram_scales.append(a2)
        else:
            a, c = platt(raw[mask], y[mask])
            oof[:, f_idx] = 1 / (1 + np.exp(-(a * raw + c)))
        w, b = fit_head(x[mask], y[mask])
        weights.append(w)
        biases.append(b)
        scales.append(a)
        offsets.append(c)
        print(f"  {fid}: {int(y[mask].sum())} positive sentences of {int(mask.sum())}",
              flush=True)

    # per unit: the highest out-of-fold probability over its sentences
    unit_probs = np.zeros((len(units), len(families)), dtype=np.float32)
    unit_fold = np.zeros(len(units), dtype=int)
    for r, i in enumerate(unit_of):
        unit_probs[i] = np.maximum(unit_probs[i], oof[r])
        unit_fold[i] = fold[r]
    thresholds: dict[str, float] = {}
    nested: dict[str, np.ndarray] = {}
    fold_thresholds: list[dict[str, float]] = [{} for _ in range(FOLDS)]
    for f_idx, fid in enumerate(families):
        y_unit = np.array([fid in u["families"] for u in units])
        budget = BUDGETS.get(fid, DEFAULT_BUDGET)
        negatives = ~y_unit
        if fid == "self_harm":
            negatives &= np.array([u["source"] != "cssrs" for u in units])
        school = negatives & np.array([u["source"] in SCHOOL_SOURCES for u in units])
        thresholds[fid] = max(threshold_for(unit_probs[:, f_idx], negatives, budget),
                              threshold_for(unit_probs[:, f_idx], school, SCHOOL_BUDGET))
        # nested: each fold's threshold chosen on the other folds only
        fired = np.zeros(len(units), dtype=bool)
        for k in range(FOLDS):
            others = unit_fold != k
            t = max(threshold_for(unit_probs[:, f_idx], negatives & others, budget),
                    threshold_for(unit_probs[:, f_idx], school & others, SCHOOL_BUDGET))
            fired[unit_fold == k] = unit_probs[unit_fold == k, f_idx] >= t
            fold_thresholds[k][fid] = t
        nested[fid] = fired
    report = evaluate_combined(units, families, nested, detector)
    confident: dict[str, float] = {}
    if args.detector_oof:
        fold_ngrams = [
            {"ngrams": fold_features[k], "ngram_families": ngram_families,
             "ngram_weights": np.stack([v for v, _ in fold_ngram_heads[k]]),
             "ngram_bias": np.array([d for _, d in fold_ngram_heads[k]], np.float32),
             "ngram_scale": np.array(ngram_scales, np.float32)} if ngram_families else {}
            for k in range(FOLDS)]
        report["detector_out_of_fold"] = evaluate_detector_oof(
            units, unit_fold, families, fold_heads, fold_thresholds,
            (np.array(scales, np.float32), np.array(offsets, np.float32)), fold_ngrams)
        confident, report["classifier_confident"] = choose_confident(units)
        report["detector_out_of_fold_with_toxicity"] = with_toxicity(units, confident)
    print(json.dumps({"thresholds": thresholds, **report}, indent=1))
    if args.report:
        args.report.write_text(json.dumps({"thresholds": thresholds, **report}, indent=1))
    if args.write:
        info = {"seed": SEED, "folds": FOLDS, "texts": len(units), "sentences": len(rows),
                "trained_on": sorted({u["source"] for u in units}),
                "ngram_c": NGRAM_C, "ngram_min_df": NGRAM_MIN_DF, "ngram_terms": NGRAM_TERMS,
                "script": "tools/train_safeguarding_classifier.py"}
        ngram_part: dict[str, Any] = {}
        if ngram_families:
            ngram_part = {"ngrams": features, "ngram_families": ngram_families,
                          "ngram_weights": np.stack(ngram_weights),
                          "ngram_bias": np.array(ngram_biases, np.float32),
                          "ngram_scale": np.array(ngram_scales, np.float32)}
        FamilyClassifier(families, np.stack(weights), np.array(biases, np.float32),
                         np.array(scales, np.float32), np.array(offsets, np.float32),
                         info, **ngram_part).save(args.out)
        write_thresholds(thresholds)
        if confident:
            write_thresholds(confident, key="classifier_confident")
        print(f"wrote {args.out} and the thresholds in rules/packs/safeguarding.toml")


def evaluate_combined(units: list[dict[str, Any]], families: tuple[str, ...],
                      head: dict[str, np.ndarray], detector: Any) -> dict[str, Any]:
    """Out-of-fold figures per dev set, the head combined with lexicons and meaning matching."""
    from governance_bot.evaluation import DATASET_LABELS
    from rules.packs import load_pack
    from rules.safeguarding import SafeguardingDetector

    pack = load_pack("safeguarding")
    full = SafeguardingDetector.from_pack(
        {**pack, "settings": {**pack["settings"], "classifier": False}})
    out: dict[str, Any] = {}
    for source, label in (("cssrs", "suicide_selfharm"), ("convabuse", "cyberbullying"),
                          ("stormfront", "threats_extremism")):
        idx = [i for i, u in enumerate(units) if u["source"] == source]
        cache = CACHE / f"base-{source}-{len(idx)}.json"
        if cache.exists():
            base = [set(x) for x in json.loads(cache.read_text())]
        else:
            base = [{f.evidence.detail["family"] for f in found}
                    for found in full.detect_many([units[i]["text"] for i in idx])]
            cache.write_text(json.dumps([sorted(b) for b in base]))
        counts = DATASET_LABELS[label]
        stats: dict[str, Any] = {}
        for name, use_head in (("lexicons+meaning", False), ("with classifier", True)):
            tp = fp = fn = tn = anyfp = neg = 0
            for j, i in enumerate(idx):
                pred = set(base[j])
                if use_head:
                    pred |= {f for f in families if head[f][i]}
                actual = bool(units[i]["families"])
                guess = bool(pred & counts)
                tp += actual and guess
                fn += actual and not guess
                fp += (not actual) and guess
                tn += (not actual) and not guess
                if not actual:
                    neg += 1
                    anyfp += bool(pred)
            stats[name] = {"recall": tp / max(1, tp + fn), "false_alarms": fp / max(1, fp + tn),
                           "any_finding_on_negatives": anyfp / max(1, neg),
                           "tp": tp, "fn": fn, "fp": fp, "tn": tn}
        out[source] = stats
    return out


def evaluate_detector_oof(units: list[dict[str, Any]], unit_fold: np.ndarray,
                          families: tuple[str, ...],
                          fold_heads: list[list[tuple[np.ndarray, float]]],
                          fold_thresholds: list[dict[str, float]],
                          platt_params: tuple[np.ndarray, np.ndarray],
                          fold_ngrams: list[dict[str, Any]]) -> dict[str, Any]:
    """The shipped detector (lexicons, meaning, the classifier and its gates, the benign gate
    always on: ``choose_confident`` gives the figures at each classifier_confident level) on the
    public development sets and the project's school texts, out of fold: the texts of fold k are
    read with the heads trained without fold k and the thresholds chosen on the other folds.
    (The Platt scaling, two or three numbers per family, and CSSRS's choice of positive
    sentences use every fold: a small leak, noted.)"""
    from dataclasses import replace
    from unittest.mock import patch

    from governance_bot.evaluation import DATASET_LABELS
    from rules.safeguarding import SafeguardingDetector

    pack = load_pack("safeguarding")
    scales, offsets = platt_params
    sets = (("cssrs", "suicide_selfharm"), ("convabuse", "cyberbullying"),
            ("stormfront", "threats_extremism"))
    school = ("school-dev", "school-written", "example-org")  # the project's own texts
    predicted: dict[int, set[str]] = {}
    # per text, per family: (probability, its threshold, held back by the benign gate); to
    # choose classifier_confident (the probability at which a hit passes the gate)
    gates: dict[int, dict[str, tuple[float, float, bool]]] = {}
    import rules.embeddings as embeddings

    def cached_embed(texts: Any, batch_size: int = 64) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, embeddings.DIMENSIONS), dtype=np.float32)
        return embed_all(list(texts))

    # the detector's sentences are the ones the heads were trained on: read from the cache
    with patch.object(embeddings, "embed", cached_embed):
        for k in range(FOLDS):
            det = SafeguardingDetector.from_pack(pack)
            det._ensure_semantic()
            det._classifier = FamilyClassifier(
                families, np.stack([w for w, _ in fold_heads[k]]),
                np.array([b for _, b in fold_heads[k]], np.float32), scales, offsets,
                {"fold": k}, **fold_ngrams[k])
            for fid, t in fold_thresholds[k].items():
                if det.families[fid].classifier_threshold is not None:
                    # the benign gate always on (choose_confident works from there)
                    det.families[fid] = replace(det.families[fid], classifier_threshold=t,
                                                classifier_confident=None)
            det.classifier_confident = 1.01
            idx = [i for i, u in enumerate(units)
                   if u["source"] in {s for s, _ in sets} | set(school) and unit_fold[i] == k]
            seen: list[dict[str, tuple[float, float, bool]]] = []
            det._classifier_hits = _recording(det, seen)  # type: ignore[method-assign]
            # every text with sentences is read to the end, so that the records line up with
            # them: the shortcut for texts no family could match changes no finding
            # (tests/test_safeguarding_gate.py), only the work
            det._could_hit = lambda *_: True  # type: ignore[method-assign]
            for i, found in zip(idx, det.detect_many([units[i]["text"] for i in idx]),
                                strict=True):
                predicted[i] = {f.evidence.detail["family"] for f in found}
            # one record per text with sentences to embed, in order
            embedded = [i for i in idx if det._units(det.mask_idioms(units[i]["text"]))[0]]
            gates.update(zip(embedded, seen, strict=True))
            print(f"  detector out of fold: fold {k + 1} / {FOLDS}", flush=True)
    out: dict[str, Any] = {}
    for source, label in sets:
        counts = DATASET_LABELS[label]
        idx = [i for i, u in enumerate(units) if u["source"] == source]
        pos = [i for i in idx if units[i]["families"]]
        neg = [i for i in idx if not units[i]["families"]]
        tp = sum(bool(predicted[i] & counts) for i in pos)
        fp = sum(bool(predicted[i] & counts) for i in neg)
        out[source] = {"recall": tp / max(1, len(pos)), "false_alarms": fp / max(1, len(neg)),
                       "any_finding_on_negatives":
                           sum(bool(predicted[i]) for i in neg) / max(1, len(neg)),
                       "tp": tp, "fn": len(pos) - tp, "fp": fp, "tn": len(neg) - fp}
    neg = [i for i, u in enumerate(units) if u["source"] in school and not u["families"]]
    out["school"] = {"any_finding_on_negatives":
                     sum(bool(predicted[i]) for i in neg) / max(1, len(neg)),
                     "fp": sum(bool(predicted[i]) for i in neg), "negatives": len(neg)}
    (CACHE / "detector-oof.json").write_text(json.dumps({
        "predicted": {str(i): sorted(p) for i, p in predicted.items()},
        "gates": {str(i): g for i, g in gates.items()},
        "units": [{"source": u["source"], "families": sorted(u["families"])} for u in units]}))
    return out


def _recording(det: Any, seen: list[dict[str, tuple[float, float, bool]]]) -> Any:
    """``det._classifier_hits`` that also records, per family, the best sentence's probability,
    the threshold and whether the benign-exemplar gate alone holds the hit back."""
    original = det._classifier_hits

    def hits(sims: np.ndarray, benign_sims: np.ndarray, probs: np.ndarray,
             spans: list[tuple[int, int]], contexts: set[str]) -> Any:
        record: dict[str, tuple[float, float, bool]] = {}
        for fid, col in det._classifier_columns.items():
            threshold = det.families[fid].classifier_threshold
            if det._penalty(fid, contexts):
                threshold = max(threshold, det.classifier_context_threshold)
            row = int(np.argmax(probs[:, col]))
            idx = det._family_index.get(fid)
            gated = False
            if idx is not None:
                best = float(sims[row, idx].max())
                benign = float(benign_sims[row].max()) if benign_sims.shape[1] else -1.0
                if best <= -1.0:
                    threshold = 2.0  # ruled out (semantic_requires): never fires
                gated = best < benign
            record[fid] = (float(probs[row, col]), float(threshold), gated)
        seen.append(record)
        return original(sims, benign_sims, probs, spans, contexts)

    return hits


def choose_confident(units: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, Any]]:
    """Per family of ``CONFIDENT_SETS``: the classifier_confident level chosen from the
    out-of-fold run of the detector (``evaluate_detector_oof``), and the figures per level."""
    from governance_bot.evaluation import DATASET_LABELS

    data = json.loads((CACHE / "detector-oof.json").read_text())
    predicted = {int(i): set(p) for i, p in data["predicted"].items()}
    gates = {int(i): g for i, g in data["gates"].items()}
    school = [i for i in predicted if units[i]["source"] in SCHOOL_SOURCES
              and not units[i]["families"]]

    def figures(fid: str, level: float) -> tuple[float, float, int]:
        source, label = CONFIDENT_SETS[fid]
        counts = DATASET_LABELS[label]
        pred: dict[int, set[str]] = {}
        for i, p in predicted.items():
            prob, threshold, gated = gates.get(i, {}).get(fid, (0.0, 2.0, False))
            pred[i] = p | {fid} if gated and prob >= threshold and prob >= level else p
        pos = [i for i in pred if units[i]["source"] == source and units[i]["families"]]
        neg = [i for i in pred if units[i]["source"] == source and not units[i]["families"]]
        return (sum(bool(pred[i] & counts) for i in pos) / max(1, len(pos)),
                sum(bool(pred[i] & counts) for i in neg) / max(1, len(neg)),
                sum(bool(pred[i]) for i in school))

    chosen: dict[str, float] = {}
    table: dict[str, Any] = {}
    for fid in CONFIDENT_SETS:
        levels = [1.01] + [round(x, 2) for x in np.arange(0.95, 0.0, -0.05)]
        rows = {level: figures(fid, level) for level in levels}
        table[fid] = {str(k): v for k, v in rows.items()}
        school_base = rows[1.01][2]
        ok = [lv for lv in levels
              if rows[lv][1] <= CONFIDENT_FALSE_ALARMS and rows[lv][2] <= school_base]
        chosen[fid] = float(min(ok)) if ok else 1.01
    return chosen, {"chosen": chosen, "levels (recall, false alarms, school findings)": table}


def toxicity_names(texts: list[str]) -> list[set[str]]:
    """What the toxicity rule of the example configuration finds in each text (Detoxify where its
    weights are on the machine, else the shipped profanity fallback, as ``eval`` runs it)."""
    from governance_bot.config import load_config
    from governance_bot.evaluation import (
        LabelledRecord,
        _item_for,
        _NoHistory,
        _registers,
        predicted_names,
    )
    from rules.base import DetectionContext
    from rules.engine import DetectionEngine

    config = load_config(REPO / "examples" / "config.toml", env={})
    engine = DetectionEngine.from_config(config, only=["toxicity"])
    ctx = DetectionContext(registers=_registers(config), history=_NoHistory())
    items = [_item_for(LabelledRecord(text=t, labels=frozenset()), i)
             for i, t in enumerate(texts)]
    out: list[set[str]] = []
    for _, found in engine.detect_stream(items, ctx, batch_size=256):
        if isinstance(found, Exception):
            raise SystemExit(f"the toxicity rule failed: {found}")
        out.append(predicted_names(found))
    return out


def with_toxicity(units: list[dict[str, Any]], confident: dict[str, float]) -> dict[str, Any]:
    """The whole detector out of fold (at the chosen ``classifier_confident`` levels) together
    with the toxicity rule, as the issue counts ConvAbuse ("safeguarding or toxicity"): the
    toxicity rule is not trained here, so its findings need no folds."""
    from governance_bot.evaluation import DATASET_LABELS

    data = json.loads((CACHE / "detector-oof.json").read_text())
    predicted = {int(i): set(p) for i, p in data["predicted"].items()}
    gates = {int(i): g for i, g in data["gates"].items()}
    for i, p in predicted.items():
        for fid, level in confident.items():
            prob, threshold, gated = gates.get(i, {}).get(fid, (0.0, 2.0, False))
            if gated and prob >= threshold and prob >= level:
                p.add(fid)
    out: dict[str, Any] = {}
    for source, label in CONFIDENT_SETS.values():
        counts = DATASET_LABELS[label]
        idx = [i for i in sorted(predicted) if units[i]["source"] == source]
        toxic = toxicity_names([units[i]["text"] for i in idx])
        pos = [k for k, i in enumerate(idx) if units[i]["families"]]
        neg = [k for k, i in enumerate(idx) if not units[i]["families"]]
        for name, found in (("safeguarding", [predicted[i] for i in idx]),
                            ("toxicity", toxic),
                            ("safeguarding+toxicity",
                             [predicted[i] | t for i, t in zip(idx, toxic, strict=True)])):
            tp = sum(bool(found[k] & counts) for k in pos)
            fp = sum(bool(found[k] & counts) for k in neg)
            out[f"{source} {name}"] = {"recall": tp / max(1, len(pos)),
                                       "false_alarms": fp / max(1, len(neg)), "tp": tp, "fp": fp}
    return out


def write_thresholds(thresholds: dict[str, float], key: str = "classifier_threshold") -> None:
    path = REPO / "rules/packs/safeguarding.toml"
    text = path.read_text(encoding="utf-8")
    for fid, t in thresholds.items():
        header = f"[families.{fid}]\n"
        start = text.index(header)
        end = text.find("\n[", start + len(header))
        section = text[start:end]
        line = f"{key} = {t:.3f}" if key == "classifier_threshold" else f"{key} = {t:.2f}"
        if re.search(rf"(?m)^{key} = ", section):
            section = re.sub(rf"(?m)^{key} = [0-9.]+", line, section)
        else:  # before the family's first threshold or duty line
            section = re.sub(r"(?m)^(?=(semantic_threshold|duty) = )", line + "\n", section,
                             count=1)
        text = text[:start] + section + text[end:]
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
