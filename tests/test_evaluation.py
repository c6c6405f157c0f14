"""``governance-bot eval``: labelled records in, precision / recall / F1 per category, confusion and
AUC out. The classifier here is the real shipped profanity model (alt-profanity-check), reached
through the toxicity detector's fallback exactly as a configured install reaches it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from governance_bot.config import Config, load_config
from governance_bot.evaluation import (
    NONE,
    LabelledRecord,
    evaluate,
    parse_record,
    read_labelled,
    run_eval,
)
from rules.engine import DetectionEngine
from rules.toxicity import ToxicityDetector

OTHER_RULES = ["learner_pii", "out_of_hours", "tone"]

# clear-cut cases for a profanity model: what it must get right, and two it cannot
LABELLED = [
    ("fuck off you idiot", ["toxicity"]),
    ("you are a stupid bitch", ["toxicity"]),
    ("shut the fuck up", ["toxicity"]),
    ("this school is shit", ["toxicity"]),
    ("Well done to the Year 9 netball team", []),
    ("The open evening is on Thursday at 5pm", []),
    ("Thanks for the lovely photos from the trip", []),
    ("Please bring a packed lunch on Friday", []),
    # swearing in praise: a false positive for a profanity model
    ("that was a fucking brilliant result today", []),
    # hate without swear words: a miss for a profanity model
    ("go back to where you came from", ["toxicity"]),
    # a threat: the safeguarding category, which the profanity model does not cover
    ("I will find you after school and hurt you", ["safeguarding"]),
]


def fallback_config(tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(
        "[detection]\n"
        f"disabled_rules = {json.dumps(OTHER_RULES)}\n"
        "[classifiers.toxicity]\n"
        'checkpoint = "no-weights-here.ckpt"\n'
        'huggingface_config_path = "."\n'
        "allow_fallback = true\n"
    )
    return load_config(path, env={})


@pytest.fixture
def records() -> list[LabelledRecord]:
    return [LabelledRecord(text, frozenset(labels)) for text, labels in LABELLED]


def test_precision_recall_and_f1_per_category(tmp_path, records):
    engine = DetectionEngine.from_config(fallback_config(tmp_path), only=["toxicity"])
    report = evaluate(records, engine)
    toxicity = report.category("toxicity")
    assert (toxicity.tp, toxicity.fp, toxicity.fn, toxicity.tn) == (4, 1, 1, 5)
    assert toxicity.precision == pytest.approx(0.8)
    assert toxicity.recall == pytest.approx(0.8)
    assert toxicity.f1 == pytest.approx(0.8)
    safeguarding = report.category("safeguarding")
    assert (safeguarding.tp, safeguarding.fn, safeguarding.recall) == (0, 1, 0.0)
    # the confusion says where the misses went
    assert report.confusion[("safeguarding", NONE)] == 1
    assert report.confusion[(NONE, "toxicity")] == 1
    assert report.confusion[("toxicity", "toxicity")] == 4
    assert report.confusion[(NONE, NONE)] == 4


def test_a_record_whose_detection_fails_is_named_and_the_others_are_still_scored(
    tmp_path, records, monkeypatch,
):
    """eval detects through the same batched path as classify and the pipeline: a detector
    failing on one record costs that record alone, named by where it was read."""
    engine = DetectionEngine.from_config(fallback_config(tmp_path), only=["toxicity"])
    [detector] = engine.detectors
    real_batch, real_one = detector.detect_batch, detector.detect
    bad = "you are a stupid bitch"

    def batch(items, ctx):
        if any(i.text == bad for i in items):
            raise RuntimeError("a detector bug")
        return real_batch(items, ctx)

    def one(item, ctx):
        if item.text == bad:
            raise RuntimeError("a detector bug")
        return real_one(item, ctx)

    monkeypatch.setattr(detector, "detect_batch", batch)
    monkeypatch.setattr(detector, "detect", one)
    named = [LabelledRecord(r.text, r.labels, None, f"cases.jsonl:{n}")
             for n, r in enumerate(records, 1)]
    report = evaluate(named, engine, batch_size=4)
    assert report.records == len(records) - 1
    assert report.problems == ["cases.jsonl:2: not evaluated: detection failed "
                               "(RuntimeError: a detector bug)"]
    toxicity = report.category("toxicity")
    # the same answers as the full run for every other record: one true positive fewer
    assert (toxicity.tp, toxicity.fp, toxicity.fn, toxicity.tn) == (3, 1, 1, 5)


def test_auc_comes_from_the_classifier_scores(tmp_path, records):
    engine = DetectionEngine.from_config(fallback_config(tmp_path), only=["toxicity"])
    [detector] = engine.detectors
    assert isinstance(detector, ToxicityDetector)
    scorer = detector.category_scorer()
    assert scorer is not None
    report = evaluate(records, scorer=scorer, thresholds={"toxicity": 0.8})
    scores = [row["toxicity"] for row in scorer([r.text for r in records])]
    expected = roc_auc_score([int("toxicity" in r.labels) for r in records], scores)
    assert report.category("toxicity").auc == pytest.approx(expected)
    assert 0.5 < expected < 1.0  # better than chance, not perfect on these cases
    # scorer-only predictions use the given threshold, as the detector does
    assert report.category("toxicity").tp == 4


def test_labelled_files_accept_text_records_and_items_and_name_bad_lines(tmp_path):
    item = {
        "id": "9", "platform": "facebook", "account": "fb-main", "kind": "comment",
        "author": {"handle": "@visitor"}, "created_at": "2026-03-04T10:00:00+00:00",
        "text": "shut the fuck up", "labels": ["toxicity"],
    }
    lines = [
        json.dumps({"text": "lovely day", "labels": []}),
        json.dumps(item),
        "{not json",
        json.dumps({"text": "x", "labels": ["rudeness"]}),
        json.dumps({"text": "x", "labels": "toxicity"}),
        json.dumps({**item, "kind": "smoke_signal"}),
        "",
    ]
    path = tmp_path / "labelled.jsonl"
    path.write_text("\n".join(lines) + "\n")
    records, problems = read_labelled(path)
    assert [r.text for r in records] == ["lovely day", "shut the fuck up"]
    assert records[1].item is not None and records[1].item.key == "facebook:fb-main:9"
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (3, 4, 5, 6)]
    assert "not valid JSON" in problems[0]
    assert "unknown label(s) rudeness" in problems[1]
    assert "must be a list" in problems[2]
    assert "kind" in problems[3]


def test_the_project_sets_family_key_is_a_label_and_null_means_nothing_should_be_flagged():
    """bench/data/safeguarding_unseen.jsonl and tests/data/safeguarding_dev.jsonl write
    {"text", "family"}: their benign rows ("family": null) are counted, not skipped."""
    assert parse_record({"text": "kms", "family": "self_harm"}, "x").labels == {"self_harm"}
    assert parse_record({"text": "see you at football", "family": None}, "x").labels == set()
    with pytest.raises(ValueError, match="family"):
        parse_record({"text": "x", "family": 3}, "x")


def test_a_record_without_text_is_refused():
    with pytest.raises(ValueError, match="text"):
        parse_record({"labels": []}, "x")


def test_run_eval_prints_the_tables_and_skipped_lines(tmp_path):
    path = tmp_path / "labelled.jsonl"
    lines = [json.dumps({"text": t, "labels": labels}) for t, labels in LABELLED]
    lines.append("[]")
    path.write_text("\n".join(lines) + "\n")
    text = run_eval(fallback_config(tmp_path), path)
    assert "Detection quality on 11 labelled records" in text
    assert "Confusion" in text and "labelled \\ predicted" in text
    row = next(line for line in text.splitlines() if line.strip("│ ").startswith("toxicity"))
    assert "0.800" in row  # precision, recall and F1 of the table above
    assert "alt-profanity-check (fallback)" in text
    assert "1 record(s) skipped" in text and "not a JSON object" in text


def test_an_empty_file_says_so(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    assert "no usable labelled records" in run_eval(fallback_config(tmp_path), path)
