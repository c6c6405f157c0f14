"""Slack unreachable for an hour, then back: every concern arrives once, none is lost.

Policy: concerns reach the designated managers and the DSL; an outage may delay them but must not
lose or duplicate them. For a simulated hour Slack first answers 500 and then refuses connections
(its address goes dead); the outbox retries with growing backoff on the simulated clock
(``OutboxSender.drain(now=...)``). When Slack is back every flag is posted exactly once.

The Slack client's own quick retries (about 1.5 s of real sleeping per call) are switched off
here so that the simulated hour takes seconds; the outbox's backoff is what is under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from governance_bot.config import Config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from rules.engine import DETECTORS, DetectionEngine
from tests.faults.world import REGISTERS, Counts, item
from tests.pg_server import _free_port
from tests.slack.fake_slack import FakeSlack
from tests.slack.helpers import SIGNING_SECRET, TEST_DETECTORS, post

T0 = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def service(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Service,
                                                                                   FakeSlack]]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-outage")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    with FakeSlack() as fake:
        config = Config.model_validate(dict(
            database={"url": database_url}, registers={"file": REGISTERS},
            delivery={"sink": "slack"},
            detection={"disabled_rules": list(DETECTORS)},
            slack={"enabled": True, "api_url": fake.base_url}))
        rt = Runtime.from_config(config)
        rt.engine = DetectionEngine(list(TEST_DETECTORS))  # type: ignore[arg-type]
        rt.pipeline.engine = rt.engine
        svc = Service(rt)
        svc.slack.bot.client.retry_handlers = []
        yield svc, fake
        rt.close()


@pytest.mark.slow
def test_an_hour_without_slack_delays_concerns_but_loses_and_doubles_none(
        service: tuple[Service, FakeSlack]) -> None:
    svc, fake = service
    from governance_bot.items import Item

    items = [Item.model_validate(item(i)) for i in range(12)]  # 4 name a learner
    items.append(post("sg1", "he hurts me at home", thread="sg1"))  # a disclosure: to the DSL
    client = svc.slack.bot.client
    good_url = client.base_url
    fake.down_status = 500
    svc.rt.pipeline.process_many(items)
    attempts_per_minute = []
    for minute in range(0, 61):
        if minute == 30:  # the second half hour: nothing even answers
            fake.down_status = None
            client.base_url = f"http://127.0.0.1:{_free_port()}/api/"
        delivered, failed = svc.sender.drain(now=T0 + timedelta(minutes=minute))
        assert delivered == 0
        attempts_per_minute.append(failed)
    assert not fake.calls("chat.postMessage"), "nothing got through during the outage"
    with svc.rt.db.session() as s:
        waiting = list(s.execute(select(m.OutboxMessage)).scalars())
    assert waiting and all(w.delivered_at is None and w.attempts >= 8 for w in waiting)
    assert any("unreachable" in (w.last_error or "") for w in waiting)
    # backoff: retries thin out as the outage goes on (not one attempt per message per minute)
    assert sum(attempts_per_minute[40:]) < sum(attempts_per_minute[:20])

    client.base_url = good_url  # Slack is back
    minute = 61
    while svc.sender.pending() and minute < 61 + 20:
        svc.sender.drain(now=T0 + timedelta(minutes=minute))
        minute += 1
    counts = Counts.read(svc.rt.db, fake)
    counts.report(f"Slack down for 60 simulated minutes, recovered by minute {minute - 1}")
    print(f"failed attempts per simulated minute: {attempts_per_minute}")
    assert counts.outbox_pending == 0
    assert counts.flags == 5
    assert len(counts.posts_per_flag) == 5 and set(counts.posts_per_flag.values()) == {1}
    # nothing more is sent afterwards
    svc.sender.drain(now=T0 + timedelta(hours=3))
    assert Counts.read(svc.rt.db, fake).posts_per_flag == counts.posts_per_flag
