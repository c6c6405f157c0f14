"""`governance-bot classify`: batched like ingest, the same answers as one item at a time, and
the same registers as the service.

Policy link: a dry run over past posts must say exactly what the service would say, about the
same learners: a learner added with `registers import` is protected in a classify run too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.jsonl import LineProblem, read_items
from governance_bot.classify import Classifier
from governance_bot.config import load_config
from governance_bot.items import Item

REPO = Path(__file__).resolve().parent.parent


def gb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def example(tmp_path: Path) -> Path:
    folder = tmp_path / "brookfield"
    shutil.copytree(REPO / "examples", folder,
                    ignore=shutil.ignore_patterns("*.db*", "audit-anchors.log*"))
    return folder


def post(text: str, n: int = 1) -> dict[str, Any]:
    return {"id": f"post{n}", "platform": "facebook", "account": "brookfield-facebook",
            "kind": "post", "author": {"id": "104000000001"},
            "created_at": "2026-11-18T10:00:00+00:00", "text": text}


def example_items() -> list[Item]:
    items = []
    for path in sorted((REPO / "examples" / "items").glob("*.jsonl")):
        items += [p for _f, _l, p in read_items(path) if not isinstance(p, LineProblem)]
    return items


def test_a_learner_added_with_registers_import_is_known_to_classify(example: Path) -> None:
    (example / "extra-learners.csv").write_text(
        "learner_id,first_name,last_name,date_of_birth\n"
        "L900,Zarah,Quennell-Obi,2011-05-02\n")
    (example / "in.jsonl").write_text(json.dumps(post(
        "Congratulations to Zarah Quennell-Obi on her county swimming medal!")) + "\n")
    args = ("classify", "--input", "in.jsonl", "--output", "out.jsonl", "--config", "config.toml")

    def learner_findings() -> list[dict[str, Any]]:
        gb(*args, cwd=example)
        [line] = [json.loads(x) for x in (example / "out.jsonl").read_text().splitlines()]
        return [f for f in line["findings"] if f["rule_id"] == "learner_pii"]

    assert learner_findings() == []  # not in the config's registers: an adult, as far as known
    gb("registers", "import", "--learners", "extra-learners.csv", "--config", "config.toml",
       cwd=example)
    [finding] = learner_findings()
    assert finding["evidence"]["register_entry"] == "learner:L900"


def _comparable(findings: list[Any]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in findings]


def test_batched_detection_gives_the_one_at_a_time_answers_in_the_same_order() -> None:
    """Every rule with the models that run here (sentence embeddings on ONNX Runtime, the
    profanity fallback, the image checks), over the example organisation's items twice over
    (so thread rules and repeated out-of-hours contact see history across batches)."""
    config = load_config(REPO / "examples" / "config.toml")
    items = example_items()
    items += [i.model_copy(update={"id": f"{i.id}-again"}) for i in items]
    one_at_a_time = Classifier.from_config(config)
    expected = [_comparable(one_at_a_time.classify(item)) for item in items]
    batched = Classifier.from_config(config)
    got = list(batched.classify_many(items, batch_size=48))
    assert [item.key for item, _ in got] == [item.key for item in items]
    assert [_comparable(f) for _, f in got] == expected  # type: ignore[arg-type]
    assert sum(1 for e in expected if e) > 50  # a real comparison: many items have findings


def test_a_failing_item_is_reported_and_the_others_are_classified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_config(REPO / "examples" / "config.toml")
    classifier = Classifier.from_config(config)
    tone = next(d for d in classifier.engine.detectors if d.rule_id == "tone")
    real = tone.detect

    def broken(item: Item, ctx: Any) -> Any:
        if item.id == "bad":
            raise RuntimeError("a detector bug")
        return real(item, ctx)

    monkeypatch.setattr(tone, "detect", broken)

    def items() -> Iterator[Item]:
        for n, text in enumerate(["Sports day is on Friday", "x", "Lovely photos"]):
            yield Item.model_validate({**post(text, n), "id": "bad" if n == 1 else f"ok{n}"})

    got = list(classifier.classify_many(items(), batch_size=2))
    assert [item.id for item, _ in got] == ["ok0", "bad", "ok2"]
    assert isinstance(got[1][1], RuntimeError)
    assert isinstance(got[0][1], list) and isinstance(got[2][1], list)


def test_a_learner_added_with_registers_import_is_known_to_eval(example: Path) -> None:
    """eval judges labelled posts with the service's registers too: a post naming a learner
    imported with `registers import` counts as finding learner details."""
    (example / "extra-learners.csv").write_text(
        "learner_id,first_name,last_name,date_of_birth\n"
        "L901,Ottilie,Brannagh-Soyinka,2012-01-09\n")
    (example / "labelled.jsonl").write_text(json.dumps({
        **post("Congratulations to Ottilie Brannagh-Soyinka on her county swimming medal!"),
        "labels": ["learner_pii"]}) + "\n")
    args = ("eval", "--input", "labelled.jsonl", "--rule", "learner_pii", "--json",
            "--config", "config.toml")

    def learner_pii_recall() -> float:
        report = json.loads(gb(*args, cwd=example).stdout)
        [scores] = [c for c in report["categories"] if c["category"] == "learner_pii"]
        return float(scores["tp"]) / (scores["tp"] + scores["fn"])

    assert learner_pii_recall() == 0.0  # not in the config's registers
    gb("registers", "import", "--learners", "extra-learners.csv", "--config", "config.toml",
       cwd=example)
    assert learner_pii_recall() == 1.0
