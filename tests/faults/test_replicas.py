"""Several replicas on one database share the work: each account is polled by one replica at a
time, each notification is claimed by one sender, and the scheduled Slack jobs (escalation of
unacknowledged safeguarding concerns, the daily digest) run once across replicas.

Two ``Service`` objects with their own database engines stand for two ``governance-bot run``
processes (the SIGKILL test in test_kill_replica.py uses real processes); their jobs are started
at the same moment from threads, as two schedulers firing together would.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from sqlalchemy import select

import governance_bot.service as service_module
from connectors.jsonl import JsonlConnector, JsonlSettings
from governance_bot import leases
from governance_bot.config import Config
from governance_bot.outbox import OutboxSender
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from rules.engine import DETECTORS, DetectionEngine
from tests.faults.world import REGISTERS, Counts, flagged, write_items
from tests.slack.conftest import Clock
from tests.slack.fake_slack import Call, FakeSlack
from tests.slack.helpers import SIGNING_SECRET, TEST_DETECTORS, post

START = datetime(2026, 11, 20, 10, 5, tzinfo=UTC)


def together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads released at the same instant; their results in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


@pytest.fixture
def replicas(database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
             ) -> Iterator[tuple[list[Service], FakeSlack, Clock]]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-replicas")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    clock = Clock(START)
    with FakeSlack() as fake:
        config = Config.model_validate(dict(
            database={"url": database_url}, registers={"file": REGISTERS},
            delivery={"sink": "slack"},
            detection={"disabled_rules": list(DETECTORS)},
            slack={"enabled": True, "api_url": fake.base_url},
            service={"lease_seconds": 30}))
        services = []
        for name in ("replica-a", "replica-b"):
            rt = Runtime.from_config(config)
            rt.engine = DetectionEngine(list(TEST_DETECTORS))  # type: ignore[arg-type]
            rt.pipeline.engine = rt.engine
            rt.pipeline.clock = clock
            service = Service(rt)
            service.owner = service.sender.owner = name
            service.slack.bot.clock = clock
            services.append(service)
        yield services, fake, clock
        for s in services:
            s.rt.close()


def test_an_account_is_polled_by_one_replica_and_each_flag_is_delivered_once(
        replicas: tuple[list[Service], FakeSlack, Clock], tmp_path: Path) -> None:
    services, fake, _ = replicas
    export = tmp_path / "export.jsonl"
    write_items(export, 30)
    connectors = [JsonlConnector(JsonlSettings(name="facebook-export", type="jsonl",
                                               account="brookfield-facebook", path=export))
                  for _ in services]
    together(*[lambda s=s, c=c: s.poll(c) for s, c in zip(services, connectors, strict=True)])
    together(*[lambda s=s: s.drain() for s in services])
    counts = Counts.read(services[0].rt.db, fake)
    counts.report("two replicas polling one account")
    assert counts.items == 30 and counts.versions_per_item == {1: 30}
    assert counts.flags == flagged(30) and counts.outbox_pending == 0
    assert len(counts.posts_per_flag) == flagged(30)
    assert set(counts.posts_per_flag.values()) == {1}


def test_an_unacknowledged_safeguarding_concern_is_escalated_once_across_replicas(
        replicas: tuple[list[Service], FakeSlack, Clock]) -> None:
    services, fake, clock = replicas
    services[0].rt.pipeline.process_many([post("d1", "nobody would miss me", thread="d1")])
    services[0].sender.drain(now=clock())
    fake.reset()
    clock.advance(minutes=16)  # severity 5: 15 minutes without acknowledgement
    results = together(*[lambda s=s: s.slack.run_escalation(s.owner) for s in services])
    with services[0].rt.db.session() as session:
        escalations = list(session.execute(select(m.AuditEvent).where(
            m.AuditEvent.action == "flag.escalated_unacknowledged")).scalars())
    reminders = [c for c in fake.calls("chat.postMessage") if "still not acknowledged"
                 in c.params.get("text", "")]
    print(f"escalation results per replica: {results}; {len(escalations)} escalation(s), "
          f"{len(reminders)} reminder post(s)")
    assert len(escalations) == 1
    assert len(reminders) == 1
    # the next round, on whichever replica, finds nothing more due
    assert all(not r for r in
               together(*[lambda s=s: s.slack.run_escalation(s.owner) for s in services]))


def test_the_daily_digest_is_sent_once_across_replicas(
        replicas: tuple[list[Service], FakeSlack, Clock]) -> None:
    services, fake, clock = replicas
    services[0].rt.pipeline.process_many([post(f"t{i}", "Whatever.", thread=f"t{i}")
                                          for i in range(3)])
    services[0].sender.drain(now=clock())
    fake.reset()
    results = together(*[lambda s=s: s.slack.run_digest(s.owner) for s in services])
    print(f"digest results per replica: {results}")
    assert sorted(results, key=lambda r: r is None) == [3, None]
    assert len(fake.calls("chat.postMessage")) == 1  # one account, one digest message
    # a trigger a moment later (a replica whose clock is a little behind) finds the lease taken
    assert services[1].slack.run_digest("replica-c") is None


def test_the_weekly_access_audit_starts_once_across_replicas(
        replicas: tuple[list[Service], FakeSlack, Clock], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    services, _, _ = replicas
    started: list[str] = []
    for s in services:
        monkeypatch.setattr(s.access_audit, "start",
                            lambda s=s: started.append(s.owner))
    together(*[s.start_access_audit for s in services])
    assert len(started) == 1
    leases_now = datetime.now(UTC)
    with services[0].rt.db.session() as session:
        state = session.get(m.ConnectorState, "job:access-audit")
        assert state is not None and state.lease_owner == started[0]
        assert state.lease_until is not None
        until = state.lease_until if state.lease_until.tzinfo else \
            state.lease_until.replace(tzinfo=UTC)
        assert until > leases_now + timedelta(hours=11)


def test_chasing_and_closing_the_access_audit_runs_on_one_replica_at_a_time(
        replicas: tuple[list[Service], FakeSlack, Clock], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    services, _, _ = replicas
    ticks: list[str] = []
    for s in services:
        def tick(s: Service = s) -> None:
            ticks.append(s.owner)
            time.sleep(0.3)  # a tick that takes a moment, as chasing everyone does
        monkeypatch.setattr(s.access_audit, "tick", tick)
    together(*[s.tick_access_audit for s in services])
    assert len(ticks) == 1
    services[1].tick_access_audit()  # released afterwards: the next tick runs anywhere
    assert len(ticks) == 2


def test_a_long_scan_renews_its_lease_and_stops_cleanly_if_another_replica_took_over(
        replicas: tuple[list[Service], FakeSlack, Clock], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    services, fake, _ = replicas
    a, b = services
    export = tmp_path / "export.jsonl"
    write_items(export, 60)  # two of the pipeline's batches of 32
    name = "facebook-export"

    def connector() -> JsonlConnector:
        return JsonlConnector(JsonlSettings(name=name, type="jsonl",
                                            account="brookfield-facebook", path=export))

    class TakeOverAtItem15:
        """Fault injection: while replica A works on p15, replica B decides A's lease has run
        out (as it would if A had stalled for longer than the lease) and takes it."""

        rule_id = "test_take_over"

        def detect(self, item: Any, ctx: Any) -> list[Any]:
            if item.id == "p15":
                assert leases.acquire(b.rt.db, name, b.owner, timedelta(minutes=5),
                                      datetime.now(UTC) + timedelta(hours=1))
            return []

    detectors: list[Any] = [*TEST_DETECTORS, TakeOverAtItem15()]
    a.rt.pipeline.engine = DetectionEngine(detectors)
    # every tick of A's clock is a quarter of an hour later, as if each batch took that long:
    # the lease is renewed (or found taken) after every batch
    ticks = itertools.count()
    monkeypatch.setattr(service_module, "time",
                        SimpleNamespace(monotonic=lambda: next(ticks) * 900.0))
    a.poll(connector())
    with a.rt.db.session() as session:
        state = session.get(m.ConnectorState, name)
        assert state is not None and state.lease_owner == b.owner
        assert not state.cursor  # A stopped without moving the cursor
    with a.rt.db.session() as session:
        undetected = len(session.execute(select(m.ItemVersion.id).where(
            m.ItemVersion.detected_at.is_(None))).all())
    stopped_at = 60 - undetected
    # the lease is checked after each batch is recorded: A stopped at the end of the batch in
    # which B took over, and checked nothing after it
    assert stopped_at == 32
    b.poll(connector())  # B re-reads from the cursor and finishes
    together(a.drain, b.drain)
    counts = Counts.read(b.rt.db, fake)
    counts.report(f"lease taken over after {stopped_at} items")
    assert counts.items == 60 and counts.versions_per_item == {1: 60}
    assert counts.flags == flagged(60) and counts.outbox_pending == 0
    assert set(counts.posts_per_flag.values()) == {1} and len(counts.posts_per_flag) == 20


def test_a_slow_sender_keeps_its_claims_and_another_sender_posts_nothing_twice(
        replicas: tuple[list[Service], FakeSlack, Clock]) -> None:
    """A sender that is alive but slow (Slack answers its first post with a 503 and its client
    waits to retry, longer than the claim's lease) keeps its claims, on SQLite, which has no row
    locks, as on PostgreSQL: a second sender draining meanwhile (another replica, or ``ingest``
    beside ``run``) takes none of them, so it neither posts the flag whose post is being retried
    a second time (before, on SQLite, it did) nor takes the rest of the batch over.

    The first sender's retry is held until the second sender has drained, so the order is
    certain: its claims are two seconds old (the lease is one) when the second sender looks."""
    services, fake, _ = replicas
    services[0].rt.pipeline.process_many([post(f"s{i}", f"Jayden Price photo {i}",
                                               thread=f"s{i}") for i in range(2)])
    slow, other = (OutboxSender(s.rt.db, s.slack.sink, s.rt.registers, owner=s.owner,
                                lease_seconds=1) for s in services)
    retrying, go_on = threading.Event(), threading.Event()

    class UntilTheOtherHasDrained(RetryIntervalCalculator):
        def calculate_sleep_duration(self, current_attempt: int) -> float:
            retrying.set()
            go_on.wait(20)
            return 0.0

    for handler in services[0].slack.bot.client.retry_handlers:
        if isinstance(handler, ServerErrorRetryHandler):
            handler.interval_calculator = UntilTheOtherHasDrained()

    def slack_fails_the_first_post(call: Call) -> None:
        if call.method == "conversations.open":  # the first sender's, just before it posts
            fake.on_call = None
            fake.fail_next(1, 503)

    fake.on_call = slack_fails_the_first_post
    results: list[tuple[int, int]] = []
    first = threading.Thread(target=lambda: results.append(slow.drain()))
    first.start()
    try:
        assert retrying.wait(20), "the first sender's post was not refused"
        time.sleep(2)  # longer than its claims' lease: it is still at work
        assert other.drain() == (0, 0)  # both flags are still the first sender's
    finally:
        go_on.set()
        first.join(30)
    assert results == [(2, 0)]
    posted = Counter(c.params["metadata"]["event_payload"]["flag_id"]
                     for c in fake.calls("chat.postMessage") if c.status == 200)
    assert len(posted) == 2 and set(posted.values()) == {1}  # each flag posted once
