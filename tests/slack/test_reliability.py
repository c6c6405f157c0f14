"""Escalation timing, outages, crashes, App Home and /governance.

Findings come from the test-only detectors in tests/slack/helpers.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from governance_bot.outbox import OutboxSender
from governance_bot.slack.sink import SlackSink
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, TUTOR, SlackWorld
from tests.slack.helpers import event, post, slash_command


def test_an_unacknowledged_severity_5_flag_escalates_after_15_minutes(world: SlackWorld) -> None:
    world.bot.settings = world.bot.settings.model_copy(update={"escalate_to": ["S004"]})
    world.ingest(post("e1", "nobody would miss me", kind="comment"))
    flag_id = world.flag_id("e1")
    job = world.service.slack.escalation
    world.clock.advance(minutes=14, seconds=59)
    assert job.run() == []
    world.clock.advance(seconds=2)
    assert job.run() == [(flag_id, 1)]
    # re-notified in the thread, and each deputy gets the flag directly
    reminder = [c for c in world.fake.calls("chat.postMessage") if c.params.get("thread_ts")]
    assert f"<@{DSL}>" in reminder[0].params["text"]
    opened = [set(c.params["users"].split(",")) for c in world.fake.calls("conversations.open")]
    assert {DEPUTY_1} in opened and {DEPUTY_2} in opened
    assert job.run() == []  # once per level
    world.clock.advance(minutes=15)
    assert job.run() == [(flag_id, 2)]  # then the next contact
    assert {"U0TASHWOR"} in [set(c.params["users"].split(","))
                             for c in world.fake.calls("conversations.open")]
    assert world.flag(flag_id).escalation_level == 2
    assert len(world.audit("flag.escalated_unacknowledged")) == 2


def test_a_severity_4_flag_waits_60_minutes_and_an_acknowledged_flag_never_escalates(
        world: SlackWorld) -> None:
    world.ingest(post("e2", "he hurts me at home", kind="comment"),
                 post("e3", "nobody would miss me", kind="comment"))
    sev4, sev5 = world.flag_id("e2"), world.flag_id("e3")
    world.service.slack.service_ack = None
    world.bot.decisions().acknowledge(sev5, world.bot.registers.staff["S001"],
                                      slack_user_id=DSL)
    job = world.service.slack.escalation
    world.clock.advance(minutes=59)
    assert job.run() == []
    world.clock.advance(minutes=2)
    assert job.run() == [(sev4, 1)]


def test_the_out_of_hours_rota_is_added_to_the_first_escalation(
        world: SlackWorld) -> None:
    from governance_bot.config import RotaEntry

    world.bot.config.slack.rota = [RotaEntry(days=["friday"], hours="00:00-23:59",
                                             staff=["S006"])]
    world.ingest(post("e4", "nobody would miss me", kind="comment"))  # Friday 20 Nov 2026
    world.clock.advance(minutes=16)
    world.service.slack.escalation.run()
    opened = [set(c.params["users"].split(",")) for c in world.fake.calls("conversations.open")]
    assert {TUTOR} in opened


def test_a_slack_outage_delays_alerts_but_loses_none_and_never_posts_twice(
        world: SlackWorld) -> None:
    from slack_sdk.http_retry.builtin_interval_calculators import (
        FixedValueRetryIntervalCalculator,
    )

    for handler in world.bot.client.retry_handlers:  # keep the test fast
        handler.interval_calculator = FixedValueRetryIntervalCalculator(0.01)
    world.fake.fail_next(2, 429, {"Retry-After": "0"})  # rate limited: retried by the client
    items = [post(f"o{i}", f"Jayden Price photo {i}", thread=f"t{i}") for i in range(5)]
    world.rt.pipeline.process_many(items[:1])
    world.service.sender.drain()
    assert len(world.fake.calls("chat.postMessage")) == 1  # 429 honoured and retried
    world.fake.reset()
    world.fake.down_status = 503  # then down "for an hour"
    world.rt.pipeline.process_many(items[1:])
    sender = world.service.sender
    now = datetime.now(UTC)  # the outbox's backoff runs on the real clock
    for minute in range(0, 60, 5):  # the service keeps draining during the outage
        sender.drain(now=now + timedelta(minutes=minute))
    assert world.fake.calls("chat.postMessage") == []
    assert sender.pending() == 4
    world.fake.down_status = None  # Slack is back
    later = now + timedelta(hours=2)
    sender.drain(now=later)
    assert sender.pending() == 0
    flags = sorted(c.params["metadata"]["event_payload"]["flag_id"]
                   for c in world.fake.calls("chat.postMessage"))
    assert flags == [2, 3, 4, 5]
    sender.drain(now=later + timedelta(hours=1))
    assert len(world.fake.calls("chat.postMessage")) == 4


def test_a_crash_between_posting_and_recording_never_posts_twice(world: SlackWorld) -> None:
    """The sender dies after Slack accepted the post but before its transaction commits; a new
    sender reclaims the message when the lease ends and finds the post by its metadata."""

    class Crash(BaseException):
        pass

    def crash_after_post(call):  # type: ignore[no-untyped-def]
        if call.method == "chat.postMessage":
            raise Crash

    world.rt.pipeline.process_many([post("x1", "Jayden Price again")])
    dying = OutboxSender(world.rt.db, SlackSink(world.bot), world.rt.registers, owner="dying",
                         lease_seconds=60)
    original = world.bot.client.chat_postMessage

    def post_then_die(**kw):  # type: ignore[no-untyped-def]
        original(**kw)
        raise Crash

    world.bot.client.chat_postMessage = post_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        dying.drain(now=world.clock())
    world.bot.client.chat_postMessage = original  # type: ignore[method-assign]
    assert len(world.fake.calls("chat.postMessage")) == 1
    restarted = OutboxSender(world.rt.db, SlackSink(world.bot), world.rt.registers,
                             owner="restarted")
    assert restarted.drain(now=world.clock()) == (0, 0)  # lease still held by the dead one
    assert restarted.drain(now=world.clock() + timedelta(minutes=2)) == (1, 0)
    assert len(world.fake.calls("chat.postMessage")) == 1  # found by metadata, not re-posted
    assert world.fake.calls("chat.update")


def test_app_home_lists_the_viewers_open_flags(world: SlackWorld) -> None:
    world.ingest(post("h1", "Jayden Price photo"), post("h2", "nobody would miss me"))
    resp = world.send_raw(event({"type": "app_home_opened", "user": FB_MANAGER_1, "tab": "home",
                                 "channel": "D0HOME"}), "application/json")
    assert resp.status_code == 200
    [published] = world.fake.wait_for("views.publish")
    shown = json.dumps(published.params["view"])
    assert published.params["user_id"] == FB_MANAGER_1
    assert "#1" in shown and "#2" not in shown  # their account's flag, not the safeguarding one
    world.send_raw(event({"type": "app_home_opened", "user": DSL, "tab": "home"}),
                   "application/json")
    world.fake.wait_for("views.publish", 2)
    shown = json.dumps(world.fake.calls("views.publish")[1].params["view"])
    assert "#2" in shown and "#1" not in shown


@pytest.mark.parametrize(("user", "text", "expect"), [
    (DSL, "status", "Audit log: intact."),
    (DSL, "flags", "#1 safeguarding concern"),
    (DSL, "audit", "flag.created"),
    (TUTOR, "audit", "The audit log is for the administrators and the DSL"),
    ("U0STRANGER", "status", "not in the staff register"),
])
def test_the_governance_slash_command(world: SlackWorld, user: str, text: str,
                                      expect: str) -> None:
    world.ingest(post("g1", "nobody would miss me"))
    resp = world.send_raw(slash_command(user, text), "application/x-www-form-urlencoded")
    assert resp.status_code == 200
    assert expect in resp.json()["text"]
    assert resp.json()["response_type"] == "ephemeral"
