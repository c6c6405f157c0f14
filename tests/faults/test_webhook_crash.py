"""A replica SIGKILLed while webhook deliveries are being checked loses nothing and doubles
nothing (issue 17, row 1, and the acceptance test across Meta, WhatsApp, the learner Slack and
Teams).

Before: ``run`` was SIGKILLed 0.4 s into a signed 200-comment Meta delivery; after the restart the
platform's retry was answered 200 as a duplicate (the replay claim had been committed before the
items were checked), and the items archived before the kill were never checked: 0 flags, and
WhatsApp, which has no polling, would never check them either.

Here four signed deliveries arrive at once (200 Facebook comments, 20 WhatsApp messages, 5
learner-Slack events, a Teams notification of 5 chat messages); ``run`` is SIGKILLed by its PID
0.4 s later, restarted, and every platform retries its delivery. Afterwards every item is archived
once and checked (one version each, every version marked checked), every flag is created once
(one ``flag.created`` audit event each) and shown in Slack exactly once: no flag is posted twice
(counted at the fake Slack by the flag id in each post's metadata) and every flag is either
posted or recorded under the alert already sent for its thread (docs/routing.md, Threads).
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from governance_bot.config import load_config
from governance_bot.runtime import Runtime
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from tests.fake_slack_workspace import FakeWorkspace
from tests.faults import deliveries as d
from tests.faults.platforms import FakeGraph
from tests.faults.world import Counts, governance_bot, stop, wait_until, write_config
from tests.pg_server import _free_port
from tests.slack.fake_slack import FakeSlack


def _post(base: str, delivery: d.Delivery) -> int:
    try:
        return httpx.post(base + delivery.path, content=delivery.body, headers=delivery.headers,
                          timeout=60).status_code
    except httpx.HTTPError:
        return 0  # the service died under it: the platform will retry


LATER = ("digest", "case_digest", "record_only")  # routes not sent as a message of their own


def for_later(db: Database) -> int:
    """Flags for a daily digest or summary, or only recorded: never posted on their own."""
    with db.session() as s:
        return int(s.execute(select(func.count(m.Flag.id)).where(
            m.Flag.route.in_(LATER))).scalar_one())


def archived(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count(m.ItemRecord.id))).scalar_one())


def unchecked(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count(m.ItemVersion.id)).where(
            m.ItemVersion.detected_at.is_(None))).scalar_one())


def _wait_ready(base: str, proc: object) -> None:
    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 120, "the service to answer /healthz")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_replica_killed_while_checking_webhook_deliveries_checks_each_item_once(
        tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in d.ENV.items():  # the service's environment: the platforms' secrets
        monkeypatch.setenv(name, value)
    graph = FakeGraph()
    teams_ids = [f"17000000{n:05d}" for n in range(5)]
    # a kiss from the tutor to a learner is flagged (tone) in the learner Slack and in Teams
    kiss = "Session {} went well, see you tomorrow xx"
    for n, mid in enumerate(teams_ids):
        graph.messages[mid] = d.teams_message(mid, n, kiss.format(n) if n % 2 == 0 else None)
    batch = [d.facebook(200),
             d.whatsapp([d.whatsapp_message(f"wamid.FAULT{n:03d}", f"See you at four {n}",
                                            d.T0 + n) for n in range(20)]),
             *[d.slack_event(n, kiss.format(n) if n % 2 == 0 else None) for n in range(5)],
             d.teams(teams_ids)]
    expected_items = sum(len(x.keys) for x in batch)
    workspace = FakeWorkspace(users=d.SLACK_USERS, channels=d.SLACK_CHANNELS,
                              members={"D0DM": ["U0TUTOR", "U0LEARN"]})
    with FakeSlack() as fake, workspace, graph:
        port = _free_port()
        config = write_config(tmp_path / "config.toml", database_url, fake=fake, port=port,
                              connectors=d.connectors_toml(slack_url=workspace.base_url,
                                                           graph_url=graph.base_url),
                              rules=("learner_pii", "tone"))
        Runtime.from_config(load_config(config, env=d.ENV)).close()  # schema and registers
        db = Database(database_url)
        base = f"http://127.0.0.1:{port}"

        def start() -> object:
            proc = governance_bot("run", "-c", str(config), cwd=tmp_path)
            _wait_ready(base, proc)
            return proc

        first = start()
        try:
            with ThreadPoolExecutor(len(batch)) as pool:
                sent = [pool.submit(_post, base, x) for x in batch]
                # killed mid-way: once the first items are archived (0.4 s in on an idle
                # machine), while the rest are being archived and checked
                wait_until(lambda: archived(db) >= 10, 60, "the first items archived")
                os.kill(first.pid, signal.SIGKILL)  # type: ignore[attr-defined]
                first.wait(timeout=10)  # type: ignore[attr-defined]
                answers = [f.result() for f in sent]
            at_kill = Counts.read(db)
            unchecked_at_kill = unchecked(db)
            print(f"SIGKILL mid-way: answers {answers}; {at_kill.items}/{expected_items} items "
                  f"archived, {unchecked_at_kill} of them not checked, {at_kill.flags} flags")
            assert at_kill.items < expected_items or unchecked_at_kill > 0, \
                "the kill must land mid-way for this test to mean anything"
            second = start()
            try:
                # every platform retries what it sent (acknowledged or not)
                retried = [_post(base, x) for x in batch]
                assert all(code in (200, 202) for code in retried), retried

                def settled() -> bool:
                    c = Counts.read(db, fake)
                    return (c.items == expected_items and unchecked(db) == 0
                            and c.outbox_pending == 0 and c.shown + for_later(db) == c.flags)

                try:
                    wait_until(settled, 180, "every item checked and every flag posted")
                except AssertionError as exc:  # say where it stood, with the service's log
                    c = Counts.read(db, fake)
                    log = stop(second)  # type: ignore[arg-type]
                    raise AssertionError(
                        f"{exc}: {c.items}/{expected_items} items, {unchecked(db)} unchecked, "
                        f"{c.flags} flags, {c.outbox_pending} pending, {c.shown} shown, "
                        f"{len(c.posts_per_flag)} posted\n{log[-6000:]}") from None
            finally:
                out = stop(second)  # type: ignore[arg-type]
        finally:
            if first.poll() is None:  # type: ignore[attr-defined]
                first.kill()  # type: ignore[attr-defined]
        counts = Counts.read(db, fake)
        counts.report("after SIGKILL of run during four webhook deliveries")
        with db.session() as s:
            keys = set(s.execute(select(m.ItemRecord.key)).scalars())
            created = Counter(s.execute(select(m.AuditEvent.subject).where(
                m.AuditEvent.action == "flag.created")).scalars())
            fb_flags = s.execute(select(func.count(m.Flag.id)).where(
                m.Flag.account == "brookfield-facebook")).scalar_one()
            per_account = Counter(s.execute(select(m.Flag.account)).scalars())
        later = for_later(db)
        db.dispose()
        assert keys == {k for x in batch for k in x.keys}, out
        assert counts.versions_per_item == {1: expected_items}  # archived exactly once
        assert fb_flags == batch[0].flagged  # every learner's name flagged, once
        print(f"flags per account: {dict(per_account)}; {later} for a digest or summary")
        assert set(created.values()) == {1} and len(created) == counts.flags  # checked once
        assert counts.outbox_pending == 0
        assert set(counts.posts_per_flag.values()) == {1}, out  # none posted twice
        # every flag that is sent is shown in Slack once: a message of its own or recorded under
        # its thread's alert (the 200 comments are one post's thread: docs/routing.md,
        # Threads); the tutor's kisses are low-severity conduct for the case manager's summary
        assert counts.shown + later == counts.flags and counts.posts_per_flag
        assert per_account["brookfield-slack"] == 3 and per_account["brookfield-teams"] == 3
