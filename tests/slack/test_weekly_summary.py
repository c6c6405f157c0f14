"""The case manager hears about one-to-one staff-learner conversations without a second adult in
a weekly summary (issue: "a weekly summary to the case manager"), not in the daily one; other
low-severity concerns about staff stay in the daily summary. Through the real digest job, the
real slack_sdk and the fake Slack.

The findings come from test-only detectors standing in for accountability and out_of_hours (the
real rules are tested on the example organisation in tests/test_quickstart_routing.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item
from rules.base import DetectionContext
from rules.engine import DetectionEngine
from tests.slack.conftest import DSL, FB_MANAGER_1, SlackWorld
from tests.slack.helpers import TEST_DETECTORS, post

TOM = {"id": "fb:5501", "name": "Tom Ashworth"}  # S004


class OneToOneTestDetector:
    """Stand-ins: "(1:1)" is a conversation without a second adult, "(late)" an out-of-hours
    message, both low severity (the case manager's summaries)."""

    rule_id = "test_one_to_one"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        if "(1:1)" in item.text:
            yield Finding("accountability", Category.accountability, Severity.low, 0.9,
                          "a one-to-one conversation with a learner, nobody else copied in",
                          Evidence(), subject=f"staff:S004>learner:L001>conversation:{item.id}")
        if "(late)" in item.text:
            yield Finding("test_late", Category.out_of_hours, Severity.low, 0.9,
                          "a message to a learner at 22:40", Evidence(),
                          subject="staff:S004>learner:L001")


def _world(world: SlackWorld) -> SlackWorld:
    world.rt.pipeline.engine = DetectionEngine(  # type: ignore[arg-type]
        [*TEST_DETECTORS, OneToOneTestDetector()])
    return world


def test_conversations_without_a_second_adult_go_to_the_case_manager_once_a_week(
        world: SlackWorld) -> None:
    w = _world(world)
    w.ingest(post("a1", "(1:1) see you at the library", kind="direct_message", author=TOM,
                  thread="dm-1"),
             post("a2", "(late) did you finish the essay", kind="direct_message", author=TOM,
                  thread="dm-2"))
    assert w.fake.calls("chat.postMessage") == []  # nothing at once: both are summaries
    digest = w.service.slack.digest
    assert digest.run() == 1  # the daily summary: the out-of-hours message only
    [daily] = w.fake.calls("chat.postMessage")
    assert daily.params["channel"] == w.fake.conversation_for(DSL)
    assert "daily summary" in daily.params["text"]
    assert "22:40" in json.dumps(daily.params) and "nobody else copied in" not in json.dumps(
        daily.params)
    assert digest.run() == 0  # and the conversation still waits for the weekly one
    assert digest.run_weekly() == 1
    weekly = w.fake.calls("chat.postMessage")[-1]
    assert weekly.params["channel"] == w.fake.conversation_for(DSL)
    assert "weekly summary" in weekly.params["text"]
    assert "nobody else copied in" in json.dumps(weekly.params)
    assert "22:40" not in json.dumps(weekly.params)
    assert digest.run_weekly() == 0  # once
    assert digest.run() == 0
    # never to the member of staff it is about (a manager of the account)
    assert w.fake.conversation_for(FB_MANAGER_1) is None
    assert len(w.audit("digest.weekly_sent")) == 1


def test_the_weekly_summary_is_scheduled_on_monday_at_the_digest_time(world: SlackWorld) -> None:
    world.service.schedule()
    jobs = {j.id: j for j in world.service.scheduler.get_jobs()}
    trigger = str(jobs["slack:weekly-summary"].trigger)
    assert "day_of_week='mon'" in trigger and "hour='8'" in trigger and "minute='0'" in trigger
    assert str(jobs["slack:weekly-summary"].trigger.timezone) == "Europe/London"
