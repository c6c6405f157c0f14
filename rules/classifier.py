"""The learned safeguarding classifier: a calibrated logistic head per family on the sentence
embeddings the safeguarding detector already computes (all-MiniLM-L6-v2, rules/embeddings.py),
and, for the families whose public development data supports it (bullying and hate), a second
logistic model on the sentence's word and character n-grams, stacked with the first.

Lexicon cues stay for precision and explanation; the head adds recall on wording no cue or
exemplar anticipated. Per family it gives a probability for each sentence; the family fires when
the probability reaches the family's ``classifier_threshold`` in the safeguarding pack (chosen on
held-out folds of the development data). The embedding part costs one small matrix product per
batch of sentences (the embeddings are there anyway); the n-gram part counts the sentence's
words and character n-grams against a fixed vocabulary (why: abuse and hate are often carried by
words and spellings the sentence embedding reads weakly, "ur a waste of oxygen", slurs).

The weights (``rules/models/safeguarding_head.npz``: coefficients, the n-gram vocabulary and its
inverse document frequencies, no pickled objects) are versioned in the repository and rebuilt,
seeded and reproducibly, by ``tools/train_safeguarding_classifier.py`` from the development
halves in ``../shared/datasets/`` and the examples written for this project.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MODEL_FILE", "NGRAMS", "FamilyClassifier", "NgramFeatures"]

MODEL_FILE = Path(__file__).resolve().parent / "models" / "safeguarding_head.npz"

# How sentences are cut into n-grams, the same at training (scikit-learn's ``TfidfVectorizer``
# with these settings, tools/train_safeguarding_classifier.py) and at run time (below, without
# scikit-learn: importing it would cost every start): words and word pairs (a word is a run of
# letters or digits, one letter counts: "u", "r"), and character runs of 2-5 inside words padded
# with a space (spellings and inflections: "idiot", "idiots", "idiotic").
NGRAMS: dict[str, dict[str, Any]] = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b"},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5)},
}
_TOKEN = re.compile(NGRAMS["word"]["token_pattern"])
_SPACES = re.compile(r"\s\s+")


def word_ngrams(text: str) -> list[str]:
    """The words and runs of words of ``text``, as ``TfidfVectorizer(analyzer="word")`` cuts
    them (lower-cased)."""
    tokens = _TOKEN.findall(text.lower())
    low, high = NGRAMS["word"]["ngram_range"]
    out = list(tokens) if low == 1 else []
    for n in range(max(2, low), min(high, len(tokens)) + 1):
        out += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return out


def char_ngrams(text: str) -> list[str]:
    """The character runs inside the words of ``text``, each word padded with a space, as
    ``TfidfVectorizer(analyzer="char_wb")`` cuts them (lower-cased)."""
    out: list[str] = []
    for word in _words(text):
        out += _word_char_ngrams(word)
    return out


def _words(text: str) -> list[str]:
    return _SPACES.sub(" ", text.lower()).split()


def _word_char_ngrams(word: str) -> list[str]:
    """The character runs of one (lower-cased) word padded with a space: a word's runs do not
    depend on its neighbours, so they can be looked up once per word."""
    low, high = NGRAMS["char"]["ngram_range"]
    out: list[str] = []
    w = f" {word} "
    for n in range(low, high + 1):
        offset = 0
        out.append(w[offset:offset + n])
        while offset + n < len(w):
            offset += 1
            out.append(w[offset:offset + n])
        if offset == 0:  # a word shorter than n is counted once, as itself
            break
    return out


_ANALYSERS = {"word": word_ngrams, "char": char_ngrams}


@dataclass(slots=True)
class NgramFeatures:
    """Sublinear TF-IDF of a sentence's word and character n-grams over a fixed vocabulary, each
    kind L2-normalised on its own, as scikit-learn's ``TfidfVectorizer`` computes it at training
    (tests/test_safeguarding_classifier.py compares them); columns: the word terms, then the
    character terms."""

    vocabulary: dict[str, tuple[str, ...]]  # kind -> terms, in column order
    idf: dict[str, np.ndarray]  # kind -> (terms,)
    _index: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    # word -> the vocabulary columns of its character runs: the same words come back in
    # sentence after sentence, and cutting them into runs is most of the cost (bounded)
    _word_columns: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index = {kind: {t: i for i, t in enumerate(terms)}
                       for kind, terms in self.vocabulary.items()}

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.vocabulary.values())

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The non-zero features of one sentence: (columns, values)."""
        columns: list[np.ndarray] = []
        values: list[np.ndarray] = []
        offset = 0
        for kind, terms in self.vocabulary.items():
            index = self._index[kind]
            if kind == "char":
                counts = Counter(self._char_columns(text, index))
            else:
                counts = Counter(i for i in map(index.get, _ANALYSERS[kind](text))
                                 if i is not None)
            if counts:
                cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                w = (1.0 + np.log(tf)) * self.idf[kind][cols]
                columns.append(cols + offset)
                values.append(w / np.sqrt(np.dot(w, w)))
            offset += len(terms)
        if not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return np.concatenate(columns), np.concatenate(values)

    def _char_columns(self, text: str, index: dict[str, int]) -> list[int]:
        """The vocabulary columns of the character runs of ``text``, word by word (as
        :func:`char_ngrams` cuts them, those outside the vocabulary left out)."""
        cache = self._word_columns
        out: list[int] = []
        for word in _words(text):
            columns = cache.get(word)
            if columns is None:
                columns = [i for i in map(index.get, _word_char_ngrams(word)) if i is not None]
                if len(cache) >= 20_000:
                    cache.clear()
                cache[word] = columns
            out += columns
        return out

    def scores(self, texts: Sequence[str], weights: np.ndarray) -> np.ndarray:
        """(texts, rows of ``weights``): each sentence's features times each row of
        ``weights`` (rows, terms)."""
        out = np.zeros((len(texts), len(weights)), dtype=np.float64)
        for row, text in enumerate(texts):
            cols, values = self.features(text)
            if len(cols):
                out[row] = weights[:, cols] @ values
        return out


@dataclass(frozen=True, slots=True)
class FamilyClassifier:
    """One logistic head per family on the sentence embedding, and for some families a logistic
    model on n-grams, stacked and calibrated together (Platt scaling with two inputs, fitted on
    held-out folds):
    ``p = sigmoid(scale * (w.x + b) + ngram_scale * (v.h + c) + offset)``; a family without an
    n-gram model has ``ngram_scale`` 0 (plain Platt scaling of the embedding head)."""

    families: tuple[str, ...]
    weights: np.ndarray  # (families, dimensions)
    bias: np.ndarray  # (families,)
    scale: np.ndarray  # (families,)
    offset: np.ndarray
    info: dict[str, object]
    ngrams: NgramFeatures | None = None
    ngram_families: tuple[str, ...] = ()
    ngram_weights: np.ndarray | None = None  # (ngram_families, terms)
    ngram_bias: np.ndarray | None = None  # (ngram_families,)
    ngram_scale: np.ndarray | None = None  # (ngram_families,)

    def probabilities(self, vectors: np.ndarray, texts: Sequence[str] | None = None
                      ) -> np.ndarray:
        """(sentences, families) calibrated probabilities for unit-length sentence vectors and
        the sentences they embed (``texts``: needed when the model has n-gram families)."""
        if not len(vectors):
            return np.zeros((0, len(self.families)), dtype=np.float32)
        z = (vectors @ self.weights.T + self.bias) * self.scale + self.offset
        if self.ngrams is not None and self.ngram_families:
            if texts is None or len(texts) != len(vectors):
                raise ValueError("the n-gram families need each sentence's text")
            assert self.ngram_weights is not None and self.ngram_bias is not None
            assert self.ngram_scale is not None
            raw = self.ngrams.scores(texts, self.ngram_weights) + self.ngram_bias
            for j, fid in enumerate(self.ngram_families):
                z[:, self.families.index(fid)] += self.ngram_scale[j] * raw[:, j]
        return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)

    def save(self, path: Path = MODEL_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "families": np.array(self.families), "weights": self.weights.astype(np.float32),
            "bias": self.bias.astype(np.float32), "scale": self.scale.astype(np.float32),
            "offset": self.offset.astype(np.float32),
            "info": np.array(json.dumps(self.info, sort_keys=True)),
        }
        if self.ngrams is not None and self.ngram_families:
            assert self.ngram_weights is not None and self.ngram_bias is not None
            assert self.ngram_scale is not None
            arrays.update({
                "ngram_families": np.array(self.ngram_families),
                "ngram_weights": self.ngram_weights.astype(np.float32),
                "ngram_bias": self.ngram_bias.astype(np.float32),
                "ngram_scale": self.ngram_scale.astype(np.float32),
            })
            for kind, terms in self.ngrams.vocabulary.items():
                # one string, terms a line each (no term holds a line break: words have none,
                # character n-grams are cut inside words)
                arrays[f"ngram_{kind}_terms"] = np.array("\n".join(terms))
                arrays[f"ngram_{kind}_idf"] = self.ngrams.idf[kind].astype(np.float32)
        with path.open("wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> FamilyClassifier:
        with np.load(path, allow_pickle=False) as data:
            ngrams = None
            extra: dict[str, Any] = {}
            if "ngram_families" in data:
                ngrams = NgramFeatures(
                    {kind: tuple(str(data[f"ngram_{kind}_terms"]).split("\n"))
                     for kind in NGRAMS},
                    {kind: np.asarray(data[f"ngram_{kind}_idf"], dtype=np.float32)
                     for kind in NGRAMS})
                extra = {
                    "ngram_families": tuple(str(f) for f in data["ngram_families"]),
                    "ngram_weights": np.asarray(data["ngram_weights"], dtype=np.float32),
                    "ngram_bias": np.asarray(data["ngram_bias"], dtype=np.float32),
                    "ngram_scale": np.asarray(data["ngram_scale"], dtype=np.float32),
                }
            return cls(
                families=tuple(str(f) for f in data["families"]),
                weights=np.asarray(data["weights"], dtype=np.float32),
                bias=np.asarray(data["bias"], dtype=np.float32),
                scale=np.asarray(data["scale"], dtype=np.float32),
                offset=np.asarray(data["offset"], dtype=np.float32),
                info=json.loads(str(data["info"])),
                ngrams=ngrams, **extra,
            )
