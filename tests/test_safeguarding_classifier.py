"""The learned safeguarding classifier's weights and features (rules/classifier.py): what the
training script computed is what runs, the file holds only numbers and words (no pickled
objects), and the shipped weights are the ones the script describes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from rules.classifier import MODEL_FILE, NGRAMS, FamilyClassifier, NgramFeatures

sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")

SENTENCES = [
    "shut up you idiot, nobody likes you",
    "Shut the door quietly, the exam has started",
    "u r such a clown lol",
    "The Year 9 trip to the science museum is on Friday",
    "get lost, idiot",
]


def _features(texts: list[str]) -> tuple[NgramFeatures, list[object]]:
    """The vocabulary and idf as the training script fits them, and the fitted vectorisers."""
    vocabulary, idf, fitted = {}, {}, []
    for kind, spec in NGRAMS.items():
        vec = sklearn_text.TfidfVectorizer(lowercase=True, sublinear_tf=True, **spec)
        vec.fit(texts)
        vocabulary[kind] = tuple(str(t) for t in vec.get_feature_names_out())
        idf[kind] = vec.idf_.astype(np.float32)
        fitted.append(vec)
    return NgramFeatures(vocabulary, idf), fitted


def test_run_time_ngram_features_are_the_ones_the_training_computed() -> None:
    """rules/classifier.py cuts and weighs n-grams without scikit-learn (importing it would cost
    every start); what it computes is what scikit-learn computed when the model was trained."""
    features, fitted = _features(SENTENCES)
    unseen = ["you idiot", "shut up u clown", "the museum trip is on Friday", "",
              "  spaced   out\ttext  ", "a", "Ünïcode wörds and 123 numbers", "u r a  clown!!"]
    expected = np.hstack([v.transform(unseen).toarray() for v in fitted])
    ours = np.zeros_like(expected)
    for row, text in enumerate(unseen):
        cols, values = features.features(text)
        ours[row, cols] = values
    assert np.allclose(ours, expected, atol=1e-6)
    assert len(features.features("you idiot")[0]) > 0
    # a word's character runs are looked up once and remembered: the same sentences read
    # again, in another order, give the same features as the first time
    for row, text in reversed(list(enumerate(unseen))):
        cols, values = features.features(text)
        again = np.zeros(expected.shape[1])
        again[cols] = values
        assert np.array_equal(again, ours[row]), text


def _model(features: NgramFeatures) -> FamilyClassifier:
    rng = np.random.default_rng(13)
    return FamilyClassifier(
        families=("self_harm", "bullying"), weights=rng.normal(size=(2, 4)).astype(np.float32),
        bias=np.array([0.1, -0.2], np.float32), scale=np.array([1.5, 0.8], np.float32),
        offset=np.array([-1.0, 0.3], np.float32), info={"seed": 13},
        ngrams=features, ngram_families=("bullying",),
        ngram_weights=rng.normal(size=(1, features.size)).astype(np.float32),
        ngram_bias=np.array([-0.5], np.float32), ngram_scale=np.array([0.7], np.float32))


def test_saved_weights_load_back_to_the_same_probabilities_without_pickle(tmp_path: Path) -> None:
    features, _ = _features(SENTENCES)
    model = _model(features)
    vectors = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    texts = ["shut up you idiot", "see you at the museum", "u r a clown"]
    path = tmp_path / "head.npz"
    model.save(path)
    loaded = FamilyClassifier.load(path)
    assert np.allclose(loaded.probabilities(vectors, texts), model.probabilities(vectors, texts))
    # the n-gram evidence moves only the family that has it
    plain = model.probabilities(vectors, ["", "", ""])
    moved = model.probabilities(vectors, texts)
    assert np.allclose(plain[:, 0], moved[:, 0]) and not np.allclose(plain[:, 1], moved[:, 1])
    with np.load(path, allow_pickle=False) as data:  # would raise on a pickled object
        assert all(data[k].dtype != object for k in data.files)


def test_a_model_with_ngram_families_refuses_vectors_without_their_sentences() -> None:
    features, _ = _features(SENTENCES)
    with pytest.raises(ValueError, match="each sentence's text"):
        _model(features).probabilities(np.zeros((1, 4), np.float32))


def test_the_shipped_weights_read_words_for_bullying_and_hate_only() -> None:
    head = FamilyClassifier.load(MODEL_FILE)
    assert head.ngram_families == ("bullying", "hate")
    assert head.info["seed"] == 13
    assert head.info["script"] == "tools/train_safeguarding_classifier.py"
    assert head.ngrams is not None and 10_000 < head.ngrams.size <= 60_000
    # small and plain: arrays of numbers and strings in a zip, nothing executable
    assert MODEL_FILE.stat().st_size < 2_000_000
    with zipfile.ZipFile(MODEL_FILE) as zf:
        assert all(n.endswith(".npy") for n in zf.namelist())
