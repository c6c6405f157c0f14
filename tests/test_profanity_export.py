"""The profanity fallback read without scikit-learn gives the package's own scores.

Policy link: where Detoxify's weights are not on the machine and the school allows the fallback,
a comment is judged by alt-profanity-check's shipped model; reading that model's arrays directly
(to start in a fraction of the time) must not change a single judgement.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from profanity_check import predict_prob

from rules import profanity
from rules.models import ExportRecord
from rules.toxicity import ProfanityFallbackBackend
from tests.shared import require_shared

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOVERNANCE_BOT_MODEL_CACHE", str(tmp_path / "models"))
    ok, message = profanity.export()
    assert ok, message
    return tmp_path / "models"


def corpora() -> list[str]:
    texts = []
    for path in sorted((REPO / "examples" / "items").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                texts.append(str(json.loads(line).get("text") or ""))
            except ValueError:
                texts.append(line)  # the malformed demo lines are text too
    for line in (REPO / "tests" / "data" / "safeguarding_dev.jsonl").read_text().splitlines():
        texts.append(json.loads(line)["text"])
    return texts


def test_on_the_corpora_the_arrays_give_the_packages_scores(store: Path) -> None:
    texts = corpora()
    davidson = require_shared("datasets", "davidson", "labeled_data.dev.csv")
    with davidson.open(newline="", encoding="utf-8") as fh:
        texts += [row["tweet"] for row in csv.DictReader(fh)]
    model = profanity.load()
    assert model is not None
    got, want = model.predict_prob(texts), predict_prob(texts)
    assert len(texts) > 1000
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) <= profanity.TOLERANCE
    # the same judgement at every threshold the toxicity pack could use
    for threshold in (0.3, 0.5, 0.7, 0.9):
        assert [p >= threshold for p in got] == [p >= threshold for p in want]
    assert sum(p >= 0.5 for p in want) > 50  # a real comparison: many texts are profane


words = st.sampled_from(["fuck", "shit", "idiot", "lovely", "team", "the", "Ass", "ASS",
                         "bitch", "naïve", "café", "x", "9", "well", "done", "damn"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(words, st.text(max_size=8)), max_size=30),
       st.sampled_from([" ", "  ", "\n", ", ", "!", "-", "_"]))
def test_any_text_gets_the_packages_score(parts: list[str], sep: str) -> None:
    model = _model()
    text = sep.join(parts)
    [got] = model.predict_prob([text])
    [want] = predict_prob([text])
    assert abs(got - want) <= profanity.TOLERANCE


_cached: list[profanity.LinearProfanityModel] = []


def _model() -> profanity.LinearProfanityModel:
    if not _cached:
        import tempfile

        from rules.models import store_dir

        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
            mp.setenv("GOVERNANCE_BOT_MODEL_CACHE", tmp)
            assert store_dir() == Path(tmp)
            assert profanity.export()[0]
            model = profanity.load()
            assert model is not None
            _cached.append(model)
    return _cached[0]


def test_the_fallback_uses_the_checked_arrays_and_says_so(store: Path) -> None:
    backend = ProfanityFallbackBackend()
    scores = backend.score(["shut the fuck up", "Well done to the team"])
    assert scores == [{"profanity": p} for p in
                      profanity.LinearProfanityModel.read(profanity.export_path())
                      .predict_prob(["shut the fuck up", "Well done to the team"])]
    ready, line = profanity.status()
    assert ready and "no scikit-learn at run time" in line


def test_arrays_that_changed_since_their_check_are_not_used(store: Path) -> None:
    path = profanity.export_path()
    path.write_bytes(path.read_bytes() + b"\0")  # not the file that was checked
    assert profanity.load() is None
    ready, line = profanity.status()
    assert not ready and "governance-bot models fetch" in line
    # the fallback still scores, with the package itself
    assert ProfanityFallbackBackend().score(["this school is shit"])[0]["profanity"] == \
        pytest.approx(float(predict_prob(["this school is shit"])[0]))


def test_arrays_made_from_another_model_file_are_not_used(store: Path) -> None:
    record = ExportRecord.read(profanity.export_path())
    assert record is not None
    record.data["source"]["sha256"] = "0" * 64
    record.data["source"]["mtime_ns"] = 0  # so the package file is hashed again
    record.write()
    assert profanity.load() is None


def test_without_a_fetch_the_package_is_used(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVERNANCE_BOT_MODEL_CACHE", str(tmp_path / "empty"))
    assert profanity.load() is None
    assert ProfanityFallbackBackend().score(["you are a stupid bitch"])[0]["profanity"] > 0.5
