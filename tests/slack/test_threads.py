"""Items under an already-flagged thread update that thread's alert instead of sending more, and
never hide anything new (docs/routing.md, "Threads").

A further flag on a thread that repeats a concern its readers were already alerted to there (the
same rule about the same learner or member of staff, no more severe) is recorded under the alert:
the alert shows how many, the latest time and which are still open, and a "Show them in the
thread" button posts them as replies with their own buttons. A safeguarding finding, a new
concern, a more severe one, and an escalation are always messages of their own.

Findings come from the test-only detectors in tests/slack/helpers.py (plus a staff-concern one
here); the pipeline, outbox, Slack sink, bolt app (signed requests) and slack_sdk are the real
ones, against the fake Slack Web API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from governance_bot.findings import Category, Finding, Severity
from governance_bot.items import Item
from rules.base import DetectionContext
from rules.engine import DetectionEngine
from tests.slack.conftest import (
    DEPUTY_1,
    DEPUTY_2,
    DSL,
    FB_MANAGER_1,
    FB_MANAGER_2,
    TUTOR,
    SlackWorld,
)
from tests.slack.helpers import TEST_DETECTORS, block_action, post

TOM = {"id": "fb:5501", "name": "Tom Ashworth"}  # S004, an account manager


class StaffConcernTestDetector:
    """Test stand-in for a staff-conduct rule: one rule whose severity depends on what the
    member of staff wrote (a concern about its author, for the case manager)."""

    rule_id = "test_staff_concern"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        low = item.text.lower()
        if "at my house" in low:
            yield Finding(self.rule_id, Category.tone, Severity.high, 0.9,
                          "invites a learner to their home")
        elif "just the two of us" in low:
            yield Finding(self.rule_id, Category.tone, Severity.medium, 0.9,
                          "arranges to meet a learner alone")


def _managers(world: SlackWorld) -> str:
    channel = world.fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2)
    assert channel is not None
    return channel


def _posts_in(world: SlackWorld, channel: str | None) -> list[dict[str, Any]]:
    return [c.params for c in world.fake.calls("chat.postMessage")
            if c.params["channel"] == channel]


def _settle(world: SlackWorld) -> None:
    """Let the service refresh the alerts' counts (it does so at most every few seconds)."""
    later = time.monotonic() + 60
    world.bot.monotonic = lambda: later
    world.service.sender.drain(now=world.clock())


def _shown(world: SlackWorld, channel: str, ts: str) -> str:
    [message] = [msg for msg in world.fake.messages(channel) if msg["ts"] == ts]
    return json.dumps(message.get("blocks"), ensure_ascii=False) + str(message.get("text"))


def _buttons(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["action_id"], e.get("value", "")) for b in params.get("blocks") or []
            if b["type"] == "actions" for e in b["elements"]]


def test_the_same_concern_again_on_an_alerted_thread_updates_the_alert_instead_of_sending_more(
        world: SlackWorld) -> None:
    world.ingest(post("c1", "Jayden Price is in my class", kind="comment", thread="t-1"))
    world.ingest(post("c2", "yes Jayden Price sits next to me", kind="comment", thread="t-1"))
    world.ingest(post("c3", "Jayden Price again", kind="comment", thread="t-1"))
    _settle(world)
    channel = _managers(world)
    [alert] = _posts_in(world, channel)  # one message, nothing more sent
    ts = world.fake.messages(channel)[0]["ts"]
    shown = _shown(world, channel, ts)
    second, third = world.flag_id("c2"), world.flag_id("c3")
    assert "2 further flag(s) on this thread, the latest" in shown
    assert f"still open: #{second}, #{third}" in shown
    assert "gb_show_grouped" in shown
    assert alert["metadata"]["event_payload"]["flag_id"] == world.flag_id("c1")


def test_a_safeguarding_finding_on_an_alerted_thread_is_always_sent(world: SlackWorld) -> None:
    world.ingest(post("g1", "Jayden Price is in my class", kind="comment", thread="t-2"))
    world.ingest(post("g2", "Jayden Price told me he hurts me at home", kind="comment",
                      thread="t-2"))
    managers = _posts_in(world, _managers(world))
    dsl = _posts_in(world, world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2))
    assert len(dsl) == 1  # the DSL team is alerted ...
    assert "a possible safeguarding disclosure" in json.dumps(dsl[0]["blocks"])
    # ... and the managers get a message of their own telling them to take the post down
    assert len(managers) == 2
    assert "thread_ts" not in managers[1] or managers[1]["thread_ts"] is None
    second = json.dumps(managers[1]["blocks"], ensure_ascii=False)
    assert "Hide/remove this post; the DSL has been informed." in second
    assert "hurts me" not in second


def test_another_learner_on_an_alerted_thread_is_a_new_alert(world: SlackWorld) -> None:
    world.ingest(post("n1", "Jayden Price is in my class", kind="comment", thread="t-3"))
    world.ingest(post("n2", "and Maisie O'Connell too", kind="comment", thread="t-3"))
    assert len(_posts_in(world, _managers(world))) == 2


def test_a_more_serious_concern_about_staff_on_an_alerted_thread_is_a_new_alert(
        world: SlackWorld) -> None:
    world.rt.pipeline.engine = DetectionEngine(  # type: ignore[arg-type]
        [*TEST_DETECTORS, StaffConcernTestDetector()])
    world.ingest(post("s1", "Come by after school, just the two of us", kind="reply",
                      author=TOM, thread="t-4"))
    world.ingest(post("s2", "Remember, just the two of us", kind="reply", author=TOM,
                      thread="t-4"))
    case_manager = world.fake.conversation_for(DSL)
    assert len(_posts_in(world, case_manager)) == 1  # the same concern again: recorded under it
    world.ingest(post("s3", "Or come to see me at my house", kind="reply", author=TOM,
                      thread="t-4"))
    sent = _posts_in(world, case_manager)
    assert len(sent) == 2  # more severe: an alert of its own
    assert "invites a learner to their home" in json.dumps(sent[1]["blocks"])
    assert world.fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2) is None  # never the subject


def test_show_them_in_the_thread_posts_the_recorded_flags_as_replies_with_their_own_buttons(
        world: SlackWorld) -> None:
    world.ingest(post("r1", "Jayden Price is in my class", kind="comment", thread="t-5"))
    world.ingest(post("r2", "Jayden Price again", kind="comment", thread="t-5"))
    channel = _managers(world)
    anchor = world.fake.messages(channel)[0]["ts"]
    first, second = world.flag_id("r1"), world.flag_id("r2")
    click = block_action(FB_MANAGER_2, "gb_show_grouped", first, channel=channel,
                         message_ts=anchor)
    assert world.send(click).status_code == 200
    world.wait(lambda: len(_posts_in(world, channel)) == 2)
    reply = _posts_in(world, channel)[1]
    assert reply["thread_ts"] == anchor
    assert ("gb_remove", str(second)) in _buttons(reply)
    assert "Jayden" not in json.dumps(reply["blocks"])  # masked, as the alert is
    # pressed again: nothing more to show, nothing posted
    world.send(click)
    [note] = world.fake.wait_for("chat.postEphemeral")
    assert "Nothing more to show" in note.params["text"]
    assert len(_posts_in(world, channel)) == 2
    # the alert now says they are in its thread
    assert "see the replies below" in _shown(world, channel, anchor)


def test_someone_not_on_the_staff_register_cannot_show_the_recorded_flags(
        world: SlackWorld) -> None:
    world.ingest(post("x1", "Jayden Price is in my class", kind="comment", thread="t-6"))
    world.ingest(post("x2", "Jayden Price again", kind="comment", thread="t-6"))
    channel = _managers(world)
    anchor = world.fake.messages(channel)[0]["ts"]
    world.send(block_action("U0NOBODY", "gb_show_grouped", world.flag_id("x1"),
                            channel=channel, message_ts=anchor))
    [refusal] = world.fake.wait_for("chat.postEphemeral")
    assert "not in the staff register" in refusal.params["text"]
    assert len(_posts_in(world, channel)) == 1


def test_a_recorded_flag_escalated_to_the_dsl_reaches_them_as_a_message_of_its_own(
        world: SlackWorld) -> None:
    world.ingest(post("e1", "Jayden Price is in my class", kind="comment", thread="t-7"))
    world.ingest(post("e2", "Jayden Price again", kind="comment", thread="t-7"))
    channel = _managers(world)
    anchor = world.fake.messages(channel)[0]["ts"]
    first, second = world.flag_id("e1"), world.flag_id("e2")
    # the first is escalated: the DSL team has an alert about this thread now
    world.send(block_action(FB_MANAGER_1, "gb_escalate", first, channel=channel,
                            message_ts=anchor))
    dsl = lambda: _posts_in(world, world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2))  # noqa: E731
    world.wait(lambda: len(dsl()) == 1)
    # the second, the same concern, is escalated too: never recorded under the first
    world.send(block_action(FB_MANAGER_1, "gb_escalate", second, channel=channel,
                            message_ts=anchor))
    world.wait(lambda: len(dsl()) == 2)
    assert [p["metadata"]["event_payload"]["flag_id"] for p in dsl()] == [first, second]
    assert all(p.get("thread_ts") is None for p in dsl())
    assert world.flag(second).status == "escalated"
    assert TUTOR not in json.dumps([c.params for c in world.fake.calls("conversations.open")])
