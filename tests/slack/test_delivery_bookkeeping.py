"""Each flag is shown once per conversation, at the least cost that keeps that true.

* A flag's first delivery attempt cannot have been posted before, so it reads no conversation
  history; any later attempt (after a crash, an expired lease, a lost answer, a direct post by an
  escalation) looks for the earlier post by its metadata and never posts twice.
* Further flags on one thread that add nothing new are recorded under the first one's message
  (not sent), whose count of them is refreshed once per batch, and still refreshed after a crash
  in between.

On SQLite and, when GOVERNANCE_BOT_TEST_PG_URL names a server, PostgreSQL. Findings come from the
test-only detectors in tests/slack/helpers.py; the outbox, Slack sink and slack_sdk client are the
real ones, Slack is the local fake.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError

import pytest
from sqlalchemy import select

from governance_bot.config import Config
from governance_bot.outbox import OutboxSender
from governance_bot.runtime import Runtime
from governance_bot.slack.bot import SlackBot, make_client
from governance_bot.slack.sink import SlackSink
from governance_bot.storage import models as m
from rules.engine import DETECTORS, DetectionEngine
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, FB_MANAGER_2, REGISTERS
from tests.slack.fake_slack import FakeSlack
from tests.slack.helpers import TEST_DETECTORS, block_action, post


def at(**later: float) -> datetime:
    """Now (the outbox's backoff and leases run on the real clock), or that much later."""
    return datetime.now(UTC) + timedelta(**later)

READS = ("conversations.history", "conversations.replies")


class Crash(BaseException):
    """The process dies here (nothing after it runs, nothing uncommitted survives)."""


@dataclass
class Delivery:
    fake: FakeSlack
    rt: Runtime
    bot: SlackBot

    def sender(self, owner: str = "sender-1", bot: SlackBot | None = None) -> OutboxSender:
        return OutboxSender(self.rt.db, SlackSink(bot or self.bot), self.rt.registers,
                            owner=owner, lease_seconds=60)

    def another_replica(self) -> SlackBot:
        """The Slack side of a second replica on the same database."""
        bot = SlackBot(self.bot.config, self.rt.db, make_client(self.bot.config),
                       registers=self.rt.registers)
        bot.client.retry_handlers = []
        return bot

    def raise_flags(self, *items: Any) -> None:
        self.rt.pipeline.process_many(list(items))

    def posts_per_flag(self) -> Counter[int]:
        return Counter(int(c.params["metadata"]["event_payload"]["flag_id"])
                       for c in self.fake.calls("chat.postMessage")
                       if isinstance(c.params.get("metadata"), dict))

    def recorded(self) -> int:
        """Flags shown in Slack: as a message of their own, or recorded under another's."""
        with self.rt.db.session() as s:
            return len(s.execute(select(m.FlagMessage.id)).all())

    def reads(self) -> list[str]:
        return [c.method for c in self.fake.calls() if c.method in READS]

    def outbox(self) -> list[m.OutboxMessage]:
        with self.rt.db.session() as s:
            return list(s.execute(select(m.OutboxMessage).order_by(m.OutboxMessage.id)).scalars())

    def anchor(self, channel: str) -> m.FlagMessage:
        with self.rt.db.session() as s:
            return s.execute(select(m.FlagMessage).where(
                m.FlagMessage.channel == channel, m.FlagMessage.thread_ts.is_(None))
                .order_by(m.FlagMessage.id)).scalars().first()  # type: ignore[return-value]

    def shown(self, channel: str, ts: str) -> str:
        [message] = [x for x in self.fake.messages(channel) if x["ts"] == ts]
        return json.dumps(message["blocks"])


def managers_dm(d: Delivery) -> str:
    channel = d.fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2)
    assert channel is not None
    return channel


@pytest.fixture
def delivery(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Delivery]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-bookkeeping")
    with FakeSlack() as fake:
        config = Config.model_validate(dict(
            database={"url": database_url}, registers={"file": REGISTERS},
            delivery={"sink": "slack"}, detection={"disabled_rules": list(DETECTORS)},
            slack={"enabled": True, "api_url": fake.base_url}))
        rt = Runtime.from_config(config)
        rt.engine = DetectionEngine(list(TEST_DETECTORS))  # type: ignore[arg-type]
        rt.pipeline.engine = rt.engine
        bot = SlackBot(config, rt.db, make_client(config), registers=rt.registers)
        bot.client.retry_handlers = []
        yield Delivery(fake, rt, bot)
        rt.close()


def on_thread(n: int, thread: str = "t-busy", start: int = 0) -> list[Any]:
    return [post(f"{thread}-{i}", f"Jayden Price in photo {i}", kind="comment", thread=thread)
            for i in range(start, start + n)]


# --- looking for an earlier post only when there can be one ------------------------------------
def test_a_first_delivery_reads_no_conversation_history(delivery: Delivery) -> None:
    delivery.raise_flags(*on_thread(3), post("solo-1", "Jayden Price won", thread="solo-1"),
                         post("sg-1", "nobody would miss me", kind="comment", thread="sg-1"))
    assert delivery.sender().drain(now=at()) == (5, 0)
    assert delivery.reads() == []  # neither conversations.history nor conversations.replies
    # three alerts; the thread's two further flags are recorded under its first one's message
    assert sorted(delivery.posts_per_flag().values()) == [1] * 3
    assert delivery.recorded() == 5
    assert all(o.claims == 1 for o in delivery.outbox())


@pytest.mark.parametrize("later", [False, True], ids=["alert", "new concern on an alerted thread"])
def test_a_crash_after_the_post_and_before_its_record_never_posts_twice(
        delivery: Delivery, later: bool) -> None:
    if later:  # the flag that is lost is a new alert on a thread already alerted
        delivery.raise_flags(*on_thread(1))
        delivery.sender().drain(now=at())
        delivery.raise_flags(post("t-busy-new", "and Maisie O'Connell too", kind="comment",
                                  thread="t-busy"))
    else:
        delivery.raise_flags(*on_thread(1, start=1))
    original = delivery.bot.client.chat_postMessage

    def post_then_die(**kw: Any) -> Any:
        original(**kw)
        raise Crash

    delivery.bot.client.chat_postMessage = post_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        delivery.sender("dying").drain(now=at())
    delivery.bot.client.chat_postMessage = original  # type: ignore[method-assign]
    lost = max(delivery.posts_per_flag())
    assert delivery.posts_per_flag()[lost] == 1  # Slack has it, the database does not
    assert delivery.reads() == []  # the first attempt did not look

    restarted = delivery.sender("restarted")
    assert restarted.drain(now=at()) == (0, 0)  # the dead sender's lease still holds
    assert restarted.drain(now=at(minutes=2)) == (1, 0)
    assert delivery.posts_per_flag()[lost] == 1  # found by its metadata, not posted again
    assert delivery.reads() == ["conversations.history"]
    assert [o.claims for o in delivery.outbox()][-1] == 2
    with delivery.rt.db.session() as s:
        assert s.execute(select(m.FlagMessage.id).where(
            m.FlagMessage.flag_id == lost)).scalar_one()
    if later:  # two alerts of their own, nothing recorded under either
        assert len(delivery.fake.messages(managers_dm(delivery))) == 2


@pytest.mark.parametrize("failure", [URLError("timed out"), TimeoutError("read timed out")],
                         ids=["URLError", "TimeoutError"])
def test_a_post_whose_answer_was_lost_is_not_posted_again(delivery: Delivery,
                                                           failure: Exception) -> None:
    delivery.raise_flags(post("lost-1", "Jayden Price won", thread="lost-1"))
    original = delivery.bot.client.chat_postMessage

    def post_then_lose_the_answer(**kw: Any) -> Any:
        original(**kw)
        raise failure

    delivery.bot.client.chat_postMessage = post_then_lose_the_answer  # type: ignore[method-assign]
    sender = delivery.sender()
    assert sender.drain(now=at()) == (0, 1)  # the sink said "unreachable": retried later
    delivery.bot.client.chat_postMessage = original  # type: ignore[method-assign]
    [message] = delivery.outbox()
    assert message.attempts == 1 and "unreachable" in (message.last_error or "")
    assert sender.drain(now=at(minutes=5)) == (1, 0)
    assert list(delivery.posts_per_flag().values()) == [1]
    assert delivery.reads() == ["conversations.history"]


def test_a_flag_for_two_routes_in_one_channel_is_posted_once_when_the_first_answer_is_lost(
        delivery: Delivery) -> None:
    """Both routes of one flag go to one channel. The first route's post reaches Slack but its
    answer is lost; the second route's message, though on its first claim, must look for it."""
    delivery.bot.settings = delivery.bot.settings.model_copy(update={
        "delivery": "channel", "channels": {"account_managers": "C0ALL", "dsl": "C0ALL"}})
    delivery.raise_flags(post("two-1", "Jayden Price says nobody would miss me", kind="comment"))
    assert len(delivery.outbox()) == 2  # one message per route
    original = delivery.bot.client.chat_postMessage
    lost: list[bool] = []

    def lose_the_first_answer(**kw: Any) -> Any:
        answer = original(**kw)
        if not lost:
            lost.append(True)
            raise URLError("timed out")
        return answer

    delivery.bot.client.chat_postMessage = lose_the_first_answer  # type: ignore[method-assign]
    delivery.sender().drain(now=at())
    delivery.sender().drain(now=at(minutes=5))
    assert list(delivery.posts_per_flag().values()) == [1]
    assert all(o.delivered_at is not None for o in delivery.outbox())
    assert delivery.reads() == ["conversations.history"]  # the second message looked


def test_an_escalation_whose_answer_was_lost_is_not_posted_again_by_the_outbox(
        world: Any) -> None:
    """A manager escalates: the flag is shown to the DSL at once, and the outbox holds the
    same message as a safety net. The direct post reaches Slack but its answer is lost, so the
    outbox delivers; it must find the post, not make a second one."""
    world.ingest(post("esc-1", "Ruby Fletcher's art"))
    flag_id = world.flag_id("esc-1")
    original = world.bot.client.chat_postMessage

    def lose_the_answer(**kw: Any) -> Any:
        original(**kw)
        raise URLError("timed out")

    world.bot.client.chat_postMessage = lose_the_answer
    world.send(block_action(FB_MANAGER_1, "gb_escalate", flag_id))
    world.wait(lambda: any(c.params["channel"] == world.fake.conversation_for(
        DSL, DEPUTY_1, DEPUTY_2) for c in world.fake.calls("chat.postMessage")))
    world.bot.client.chat_postMessage = original
    dsl_dm = world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)
    with world.rt.db.session() as s:
        [safety_net] = s.execute(select(m.OutboxMessage).where(
            m.OutboxMessage.kind == "flag_escalated")).scalars()
    assert safety_net.delivered_at is None and safety_net.claims == 1  # noted before posting
    world.service.sender.drain(now=world.clock() + timedelta(minutes=1))
    assert world.service.sender.pending() == 0
    to_dsl = [c for c in world.fake.calls("chat.postMessage") if c.params["channel"] == dsl_dm]
    assert len(to_dsl) == 1


# --- the count of grouped flags: once per batch, right after a crash ---------------------------
def test_flags_on_one_thread_in_one_drain_update_the_first_message_once_with_the_final_count(
        delivery: Delivery) -> None:
    delivery.raise_flags(*on_thread(6))
    assert delivery.sender().drain(now=at()) == (6, 0)
    channel = managers_dm(delivery)
    anchor = delivery.anchor(channel)
    posts = delivery.fake.calls("chat.postMessage")
    assert [p.params.get("thread_ts") for p in posts] == [None]  # one alert, nothing more sent
    updates = [c for c in delivery.fake.calls("chat.update") if c.params["ts"] == anchor.ts]
    assert len(updates) == 1
    assert "5 further flag(s) on this thread" in json.dumps(updates[0].params["blocks"])
    assert delivery.recorded() == 6
    assert anchor.refresh_due == 0


def test_a_crash_before_the_count_is_refreshed_is_put_right_by_the_next_drain(
        delivery: Delivery) -> None:
    delivery.raise_flags(*on_thread(4))
    original = delivery.bot.client.chat_update

    def die(**kw: Any) -> Any:
        raise Crash

    delivery.bot.client.chat_update = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        delivery.sender("dying").drain(now=at())
    delivery.bot.client.chat_update = original  # type: ignore[method-assign]
    channel = managers_dm(delivery)
    anchor = delivery.anchor(channel)
    assert sorted(delivery.posts_per_flag().values()) == [1]  # one alert; the further flags
    assert delivery.recorded() == 4  # are recorded under it ...
    assert "further flag(s)" not in delivery.shown(channel, anchor.ts)  # ... the count is not
    assert anchor.refresh_due == 3

    assert delivery.sender("restarted").drain(now=at()) == (0, 0)  # nothing left to deliver ...
    assert "3 further flag(s) on this thread" in delivery.shown(channel, anchor.ts)  # ... but this
    assert delivery.anchor(channel).refresh_due == 0


def test_slack_failing_during_the_refresh_leaves_the_count_for_the_next_drain(
        delivery: Delivery) -> None:
    delivery.raise_flags(*on_thread(3))
    original = delivery.bot.client.chat_update
    delivery.bot.client.chat_update = lambda **kw: (_ for _ in ()).throw(  # type: ignore[method-assign]
        URLError("connection refused"))
    assert delivery.sender().drain(now=at()) == (3, 0)  # the flags themselves are delivered
    delivery.bot.client.chat_update = original  # type: ignore[method-assign]
    channel = managers_dm(delivery)
    assert delivery.anchor(channel).refresh_due == 2
    delivery.raise_flags(*on_thread(1, start=3))  # a later reply on the same thread
    assert delivery.sender().drain(now=at()) == (1, 0)
    anchor = delivery.anchor(channel)
    assert "3 further flag(s) on this thread" in delivery.shown(channel, anchor.ts)
    assert anchor.refresh_due == 0


def test_a_flag_grouped_while_the_count_is_being_refreshed_is_counted_by_the_next_drain(
        delivery: Delivery) -> None:
    delivery.raise_flags(*on_thread(2))
    original = delivery.bot.client.chat_update
    replica = delivery.another_replica()
    late = threading.Thread(target=lambda: (delivery.raise_flags(*on_thread(1, start=2)),
                                            delivery.sender("replica-2", replica).drain(now=at())))

    def another_replica_groups_one_more(**kw: Any) -> Any:
        # while this message is being brought up to date, another replica adds a reply under
        # it and refreshes the count itself (on PostgreSQL it waits for this refresh to commit;
        # SQLite has no row locks, so there this stale update lands after the other's)
        delivery.bot.client.chat_update = original  # type: ignore[method-assign]
        late.start()
        if delivery.rt.db.is_sqlite:
            late.join()
        return original(**kw)

    delivery.bot.client.chat_update = another_replica_groups_one_more  # type: ignore[method-assign]
    delivery.sender().drain(now=at())
    late.join(30)
    channel = managers_dm(delivery)
    delivery.sender().drain(now=at())
    anchor = delivery.anchor(channel)
    assert sorted(delivery.posts_per_flag().values()) == [1]
    assert delivery.recorded() == 3
    assert "2 further flag(s) on this thread" in delivery.shown(channel, anchor.ts)
    assert anchor.refresh_due == 0


def test_the_service_refreshes_a_busy_threads_count_at_most_every_few_seconds(
        delivery: Delivery) -> None:
    """Drained after every flag (as the service does after each webhook), a busy thread's count
    is refreshed once, then left marked until the interval has passed; the next drain after
    that shows the final count."""
    delivery.bot.anchor_refresh_seconds = 5
    clock = [1000.0]
    delivery.bot.monotonic = lambda: clock[0]
    sender = delivery.sender()
    for flag in on_thread(5):
        delivery.raise_flags(flag)
        sender.drain(now=at())
        clock[0] += 0.2  # 5 flags a second
    channel = managers_dm(delivery)
    anchor = delivery.anchor(channel)
    updates = [c for c in delivery.fake.calls("chat.update") if c.params["ts"] == anchor.ts]
    assert len(updates) == 1 and "1 further flag(s)" in json.dumps(updates[0].params["blocks"])
    assert anchor.refresh_due == 3
    clock[0] += 5
    assert sender.drain(now=at()) == (0, 0)
    assert "4 further flag(s) on this thread" in delivery.shown(channel, anchor.ts)
    assert delivery.anchor(channel).refresh_due == 0


def test_a_count_left_by_a_replica_that_died_is_refreshed_by_another_within_the_sweep(
        delivery: Delivery) -> None:
    from governance_bot.slack.bot import SWEEP_SECONDS

    clock = [1000.0]
    delivery.bot.monotonic = lambda: clock[0]
    delivery.raise_flags(*on_thread(1))
    assert delivery.sender("replica-1").drain(now=at()) == (1, 0)
    replica = delivery.another_replica()

    def die(**kw: Any) -> Any:
        raise Crash

    replica.client.chat_update = die  # type: ignore[method-assign]
    delivery.raise_flags(*on_thread(1, start=1))
    with pytest.raises(Crash):  # replica 2 records the reply, then dies before the refresh
        delivery.sender("replica-2", replica).drain(now=at())
    channel = managers_dm(delivery)
    anchor = delivery.anchor(channel)
    assert anchor.refresh_due == 1
    assert delivery.sender("replica-1").drain(now=at()) == (0, 0)
    assert "further flag(s)" not in delivery.shown(channel, anchor.ts)  # not its mark: not yet
    clock[0] += SWEEP_SECONDS
    delivery.sender("replica-1").drain(now=at())
    assert "1 further flag(s) on this thread" in delivery.shown(channel, anchor.ts)
    assert delivery.anchor(channel).refresh_due == 0


def test_a_message_recorded_meanwhile_by_someone_else_is_settled_not_crashed_on(
        delivery: Delivery) -> None:
    """While this sender is delivering a flag, something else (an escalation shown directly)
    posts it and records that in its own transaction first. This sender's record then clashes:
    the attempt is counted and retried, the drain goes on, and the flag is in Slack once."""
    delivery.raise_flags(post("race-1", "Jayden Price won", thread="race-1"))
    delivery.fake.fail_next(1, 500)  # the first attempt fails: the next one looks for a post
    sender = delivery.sender()
    assert sender.drain(now=at()) == (0, 1)
    flag_id = delivery.outbox()[0].flag_id
    assert flag_id is not None
    real_find = delivery.bot._find_posted

    def someone_else_posts_and_records_first(channel_: str, flag: int, thread_ts: str | None
                                             ) -> str | None:
        answer = delivery.bot.client.chat_postMessage(
            channel=channel_, text="flag", metadata={"event_type": "governance_flag",
                                                      "event_payload": {"flag_id": flag}})
        with delivery.rt.db.session() as s:
            s.add(m.FlagMessage(flag_id=flag, sink="slack", channel=channel_, ts=answer["ts"],
                                route="account_managers", created_at=at()))
        return real_find(channel_, flag, thread_ts)

    delivery.bot._find_posted = someone_else_posts_and_records_first  # type: ignore[method-assign]
    assert sender.drain(now=at(minutes=1)) == (0, 1)  # no exception out of the drain
    delivery.bot._find_posted = real_find  # type: ignore[method-assign]
    [message] = delivery.outbox()
    assert message.attempts == 2 and "IntegrityError" in (message.last_error or "")
    assert sender.drain(now=at(minutes=5)) == (1, 0)  # the recorded message is brought up to date
    assert delivery.posts_per_flag() == Counter({flag_id: 1})
    channel = managers_dm(delivery)
    assert [x["ts"] for x in delivery.fake.messages(channel)] == [delivery.anchor(channel).ts]


# --- a sender for some routes only ------------------------------------------------------------
def test_a_sender_for_some_routes_claims_only_their_messages(delivery: Delivery) -> None:
    """A safeguarding concern goes to the DSL; a sender limited to the DSL's route delivers it
    and leaves the managers' message unclaimed for a sender of theirs."""
    delivery.raise_flags(post("solo-1", "Jayden Price won", thread="solo-1"),
                         post("sg-1", "nobody would miss me", kind="comment", thread="sg-1"))
    routes = {o.route for o in delivery.outbox()}
    assert {"dsl", "account_managers"} <= routes
    assert delivery.sender().drain(now=at(), routes=set()) == (0, 0)
    dsl_messages = sum(1 for o in delivery.outbox() if o.route == "dsl")
    assert delivery.sender().drain(now=at(), routes={"dsl"}) == (dsl_messages, 0)
    left = [o for o in delivery.outbox() if o.delivered_at is None]
    assert left and all(o.route != "dsl" and o.claims == 0 for o in left)
    assert delivery.sender().drain(now=at()) == (len(left), 0)
    assert sorted(delivery.posts_per_flag().values()) == [1] * len(delivery.posts_per_flag())
