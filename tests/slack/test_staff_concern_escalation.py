"""A concern about a member of staff that its case manager does not acknowledge in time goes to
the alternate (KCSIE part 4: allegations are handled promptly), never to the member of staff it
is about. Through the service's scheduler job, the real slack_sdk and the fake Slack; signed
requests for the alternate's acknowledgement.

The concern comes from a test-only detector (a staff member's reply that arranges to meet a
learner alone, a medium-severity tone finding: the case manager's route).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from governance_bot.findings import Category, Finding, Severity
from governance_bot.items import Item
from rules.base import DetectionContext
from rules.engine import DetectionEngine
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, SlackWorld
from tests.slack.helpers import TEST_DETECTORS, block_action, post

CHAIR = "U0RHALE"  # S011, chair of governors: the alternate
TOM = {"id": "fb:5501", "name": "Tom Ashworth"}  # S004, an account manager


class MeetAloneTestDetector:
    """Test stand-in: a reply arranging to meet a learner alone (a concern about its author)."""

    rule_id = "test_meet_alone"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        if "just the two of us" in item.text.lower():
            yield Finding(self.rule_id, Category.tone, Severity.medium, 0.9,
                          "arranges to meet a learner alone")


def _with_staff_concerns(world: SlackWorld) -> None:
    world.rt.pipeline.engine = DetectionEngine(  # type: ignore[arg-type]
        [*TEST_DETECTORS, MeetAloneTestDetector()])


def _opened(world: SlackWorld) -> list[set[str]]:
    return [set(c.params["users"].split(",")) for c in world.fake.calls("conversations.open")]


def test_an_unacknowledged_concern_about_staff_goes_to_the_alternate_after_a_working_day(
        world: SlackWorld) -> None:
    _with_staff_concerns(world)
    world.ingest(post("sc1", "Come to my office after school, just the two of us", kind="reply",
                      author=TOM))
    flag_id = world.flag_id("sc1")
    assert _opened(world) == [{DSL}]  # the case manager (the DSL by default), nobody else
    job = world.service.slack.escalation
    world.clock.advance(hours=23, minutes=59)
    assert job.run() == []
    world.clock.advance(minutes=2)
    assert job.run() == [(flag_id, 1)]
    assert job.run() == []  # once
    world.clock.advance(days=2)
    assert job.run() == []  # one level only: the deputies and the rota never get it
    # the case manager is reminded in their message, the alternate has it now
    reminder = [c for c in world.fake.calls("chat.postMessage") if c.params.get("thread_ts")]
    assert f"<@{DSL}>" in reminder[0].params["text"]
    assert {CHAIR} in _opened(world)
    to_chair = [c for c in world.fake.calls("chat.postMessage")
                if c.params["channel"] == world.fake.conversation_for(CHAIR)]
    assert to_chair and "arranges to meet a learner alone" in json.dumps(to_chair[0].params)
    for never in (FB_MANAGER_1, DEPUTY_1, DEPUTY_2):
        assert {never} not in _opened(world)
    assert len(world.audit("flag.escalated_unacknowledged")) == 1
    # the alternate can act on it now: their acknowledgement is recorded
    world.send(block_action(CHAIR, "gb_ack", flag_id,
                            channel=world.fake.conversation_for(CHAIR)))
    world.wait(lambda: world.flag(flag_id).acknowledged_at is not None)
    assert world.flag(flag_id).acknowledged_by == "S011"


def test_an_acknowledged_concern_about_staff_is_never_escalated(world: SlackWorld) -> None:
    _with_staff_concerns(world)
    world.ingest(post("sc2", "see you later, just the two of us", kind="reply", author=TOM))
    flag_id = world.flag_id("sc2")
    world.bot.decisions().acknowledge(flag_id, world.bot.registers.staff["S001"],
                                      slack_user_id=DSL)
    world.clock.advance(days=3)
    assert world.service.slack.escalation.run() == []


def test_a_concern_about_the_case_manager_escalates_to_nobody_it_is_about(
        world: SlackWorld) -> None:
    """Tom Ashworth is the case manager; a concern about him goes to the alternate (the chair of
    governors) at once. Unacknowledged, the chair is reminded and it goes to nobody else: never
    to Tom, never to the deputies."""
    world.bot.config.routing.staff_concerns_to = ["S004"]
    world.service.sender.need_to_know.staff_concerns_to = ["S004"]
    world.bot._need_to_know = None
    _with_staff_concerns(world)
    world.ingest(post("sc3", "We could meet, just the two of us", kind="reply", author=TOM))
    flag_id = world.flag_id("sc3")
    assert _opened(world) == [{CHAIR}]
    world.clock.advance(days=1, minutes=1)
    assert world.service.slack.escalation.run() == [(flag_id, 1)]
    assert _opened(world) == [{CHAIR}]
    [reminder] = [c for c in world.fake.calls("chat.postMessage") if c.params.get("thread_ts")]
    assert f"<@{CHAIR}>" in reminder.params["text"]
    assert world.fake.conversation_for(FB_MANAGER_1) is None
    [decision] = world.audit("flag.escalated_unacknowledged")
    assert decision.data["to"] == []
