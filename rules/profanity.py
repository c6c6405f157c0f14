"""The profanity fallback's linear model, read without scikit-learn.

alt-profanity-check ships a TF-IDF vectoriser and a calibrated linear SVM as scikit-learn pickles;
unpickling them imports scikit-learn and SciPy, about a second of CPU at every start that uses the
fallback (more than the rest of a one-item ``classify``). The model itself is a vocabulary, the
terms' IDF weights, five linear scorers and their sigmoid calibrations: ``governance-bot models
fetch`` writes those arrays once into the model store (``profanity/``), checks the scores they give
against the package's own ``predict_prob`` and records the result beside them (rules/models.py). At
run time :func:`load` reads the arrays with NumPy alone; without a checked export (fetch not run,
another package version) the fallback uses the package as before.

Nothing here downloads: the pickles ship inside the package.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.models import ExportRecord, file_identity, package_version, store_dir

__all__ = ["LinearProfanityModel", "export", "export_path", "load", "status"]

PACKAGE = "alt-profanity-check"
# the arrays are compared with the package's own scores to within this (float64 sums in another
# order differ in the last bits only)
TOLERANCE = 1e-9
# the record's parity entry is keyed by what computes the scores here
RUNTIME = "numpy"
CHECK_TEXTS = (
    "Well done to the Year 9 netball team",
    "shut the fuck up you idiot",
    "this school is shit",
    "The open evening is on Thursday at 5pm",
    "that was a fucking brilliant result today",
    "you are a stupid bitch",
    "",
    "!!!",
    "Ça va? Très bien, merci — naïve café",
    "ASS ass Ass a.s.s",
)


def _package_files() -> tuple[Path, Path] | None:
    import importlib.util

    spec = importlib.util.find_spec("profanity_check")
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data / "vectorizer.joblib", data / "model.joblib"


def export_path() -> Path:
    return store_dir() / "profanity" / f"{PACKAGE}-{package_version(PACKAGE)}.npz"


@dataclass(frozen=True)
class LinearProfanityModel:
    """TF-IDF (lower-cased words of two or more word characters, l2-normalised) and the mean of
    sigmoid-calibrated linear scores, as scikit-learn computes them for this model."""

    index: dict[str, int]
    idf: Any  # (terms,)
    coef: Any  # (scorers, terms)
    intercept: Any  # (scorers,)
    a: Any  # (scorers,) sigmoid calibration: p = 1 / (1 + exp(a * decision + b))
    b: Any
    token: re.Pattern[str] = re.compile(r"(?u)\b\w\w+\b")  # the vectoriser's token_pattern

    @classmethod
    def read(cls, path: Path) -> LinearProfanityModel:
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            terms = data["terms"]
            return cls({str(t): i for i, t in enumerate(terms.tolist())}, data["idf"],
                       data["coef"], data["intercept"], data["a"], data["b"])

    def predict_prob(self, texts: Sequence[str]) -> list[float]:
        import numpy as np

        out = []
        for text in texts:
            counts: dict[int, int] = {}
            for word in self.token.findall(text.lower()):
                j = self.index.get(word)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if counts:
                cols = np.fromiter(counts, dtype=np.int64, count=len(counts))
                weights = np.fromiter(counts.values(), dtype=np.float64,
                                      count=len(counts)) * self.idf[cols]
                weights /= np.sqrt(np.dot(weights, weights))
                decision = self.coef[:, cols] @ weights + self.intercept
            else:
                decision = self.intercept.copy()
            out.append(float(np.mean(1.0 / (1.0 + np.exp(self.a * decision + self.b)))))
        return out


def _arrays_from_package() -> dict[str, Any]:
    """The model's arrays, read from the package's pickles (imports scikit-learn)."""
    import numpy as np
    from profanity_check import profanity_check as shipped

    vectorizer, model = shipped.vectorizer, shipped.model
    params = vectorizer.get_params()
    expected = {"analyzer": "word", "lowercase": True, "ngram_range": (1, 1), "norm": "l2",
                "preprocessor": None, "strip_accents": None, "sublinear_tf": False,
                "token_pattern": LinearProfanityModel.token.pattern, "tokenizer": None,
                "use_idf": True, "binary": False}
    different = {k: params.get(k) for k, v in expected.items() if params.get(k) != v}
    if different:
        raise ValueError(f"the shipped vectoriser is not the one this reader handles: {different}")
    scorers = model.calibrated_classifiers_
    if any(c.method != "sigmoid" or len(c.classes) != 2 for c in scorers):
        raise ValueError("the shipped model is not a binary sigmoid-calibrated linear model")
    terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    return {
        "terms": np.array(terms),
        "idf": np.asarray(vectorizer.idf_, dtype=np.float64),
        "coef": np.vstack([np.asarray(c.estimator.coef_, dtype=np.float64).ravel()
                           for c in scorers]),
        "intercept": np.array([float(np.ravel(c.estimator.intercept_)[0]) for c in scorers]),
        "a": np.array([float(c.calibrators[0].a_) for c in scorers]),
        "b": np.array([float(c.calibrators[0].b_) for c in scorers]),
    }


def export(force: bool = False) -> tuple[bool, str]:
    """Write the arrays into the model store and check them against the package once
    (``models fetch``). Returns (usable, what was done)."""
    files = _package_files()
    if files is None:
        return False, f"{PACKAGE} is not installed (pip install 'governance-bot[ml]')"
    path = export_path()
    source = file_identity(files[1])
    record = ExportRecord.read(path)
    if record is not None and not force and record.verified(source, RUNTIME):
        return True, f"profanity fallback: {status()[1]}"
    import numpy as np
    from profanity_check import predict_prob

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial.npz")
    np.savez(partial, **_arrays_from_package())
    partial.replace(path)
    texts = [*CHECK_TEXTS, *_vocabulary_texts()]
    got = LinearProfanityModel.read(path).predict_prob(texts)
    want = [float(p) for p in predict_prob(texts)]
    worst = max(abs(x - y) for x, y in zip(got, want, strict=True))
    record = ExportRecord.new(path, source, package=PACKAGE,
                              package_version=package_version(PACKAGE),
                              vectorizer=file_identity(files[0]).as_dict())
    record.add_parity(RUNTIME, worst, TOLERANCE, len(texts), f"{PACKAGE}'s predict_prob")
    record.write()
    if worst > TOLERANCE:
        return False, (f"profanity fallback: the arrays at {path} disagree with the package "
                       f"({worst:.1e}); the package is used as it is")
    return True, f"profanity fallback: {status()[1]}"


def _vocabulary_texts() -> list[str]:
    """Check texts that reach many of the vocabulary's terms, repeated and mixed."""
    from profanity_check import profanity_check as shipped

    terms = sorted(shipped.vectorizer.vocabulary_)
    return [" ".join(terms[i:i + 7] + terms[i:i + 2]).upper() if i % 3 == 0 else
            " and ".join(terms[i:i + 11]) for i in range(0, len(terms), 97)]


def _record() -> ExportRecord | None:
    files = _package_files()
    if files is None:
        return None
    record = ExportRecord.read(export_path())
    if record is None:
        return None
    known = (record.data.get("source") or {})
    if not record.verified(file_identity(files[1], known), RUNTIME):
        return None
    return record


def status() -> tuple[bool, str]:
    """(ready, one line): whether a checked export is in the store, without loading it."""
    record = _record()
    if record is None:
        return False, (f"no checked export in {export_path().parent} (run `governance-bot "
                       "models fetch`): the package's scikit-learn model is loaded instead "
                       "(about a second more at start)")
    entry = record.parity(RUNTIME) or {}
    return True, (f"{PACKAGE} arrays at {record.path}, equal to the package's scores within "
                  f"{float(entry.get('max_abs_diff', 0.0)):.0e} on {entry.get('texts')} check "
                  "texts (no scikit-learn at run time)")


def load() -> LinearProfanityModel | None:
    """The checked export, or None (then the caller uses the package itself)."""
    record = _record()
    if record is None:
        return None
    try:
        return LinearProfanityModel.read(record.path)
    except (OSError, ValueError, KeyError):
        return None
