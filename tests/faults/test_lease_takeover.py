"""Leases survive crashes (issue 17, row 8).

Before: ``run`` SIGKILLed mid-poll and restarted at once did not poll for 10 minutes: the dead
process kept its lease for twice the poll interval (a daily connector would have waited 48 hours),
and the restarted process, with a new PID, was a stranger to it.

Now a poll holds a short lease (``[service] lease_seconds``) renewed by a heartbeat whatever the
poll interval, and owners are named by host, boot, process start time and PID: the restarted
replica recognises its dead predecessor's lease and takes it at once; another machine's lease is
taken once its heartbeat has stopped for ``lease_seconds``.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.base import Connector, ConnectorSettings, FetchResult
from governance_bot import leases
from governance_bot.config import load_config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from tests.faults.world import (
    governance_bot,
    jsonl_connector,
    stop,
    wait_until,
    write_config,
    write_items,
)
from tests.pg_server import _free_port

N = 600


def archived(db: Database) -> int:
    with db.session() as s:
        return int(s.execute(select(func.count(m.ItemRecord.id))).scalar_one())


def lease(db: Database, name: str) -> tuple[str | None, datetime | None]:
    with db.session() as s:
        state = s.get(m.ConnectorState, name)
        return (state.lease_owner, state.lease_until) if state else (None, None)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_replica_restarted_after_sigkill_polls_again_at_once(
        tmp_path: Path, database_url: str) -> None:
    export = tmp_path / "export.jsonl"
    write_items(export, N)
    # a five-minute poll, the default one-minute lease: the restart must not wait for either
    config = write_config(tmp_path / "config.toml", database_url, port=_free_port(),
                          connectors=jsonl_connector(export, poll=300), lease_seconds=60)
    Runtime.from_config(load_config(config, env={})).close()
    db = Database(database_url)
    first = governance_bot("run", "-c", str(config), cwd=tmp_path)
    second = None
    try:
        wait_until(lambda: archived(db) >= 40 and lease(db, "facebook-export")[0] is not None,
                   120, "the first poll under way")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        at_kill = archived(db)
        owner, until = lease(db, "facebook-export")
        print(f"SIGKILL with {at_kill}/{N} archived; the dead process's lease runs until "
              f"{until} ({owner})")
        assert at_kill < N, "the kill must land mid-poll for this test to mean anything"
        restarted = time.monotonic()
        second = governance_bot("run", "-c", str(config), cwd=tmp_path)
        wait_until(lambda: lease(db, "facebook-export")[0] not in (None, owner), 60,
                   "the restarted replica to take the polling lease")
        took = time.monotonic() - restarted
        wait_until(lambda: archived(db) == N, 240, "the restarted replica to finish the export")
        print(f"the restarted replica took the lease {took:.1f} s after it started")
        assert took < 30  # start-up included; the lease itself had 60 s (or, before, 600 s) left
    finally:
        stop(first)
        if second is not None:
            stop(second)
        db.dispose()


class _SlowConnector(Connector):
    """A connector whose fetch takes ``seconds`` (a first backfill, a slow platform)."""

    type = "slow"

    def __init__(self, settings: ConnectorSettings, seconds: float) -> None:
        super().__init__(settings)
        self.seconds = seconds
        self.seen_leases: list[tuple[str | None, datetime | None]] = []

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        time.sleep(self.seconds)
        return FetchResult(items=[], cursor={"done": True})


def test_a_daily_connectors_lease_is_short_and_kept_alive_by_a_heartbeat(
        make_config: Any) -> None:
    """A daily connector's poll held its lease for 48 hours; now for ``lease_seconds``, renewed
    every third of that while the poll runs (however long it runs)."""
    config = make_config("[service]\nlease_seconds = 3\n")
    rt = Runtime.from_config(config, with_connectors=False)
    svc = Service(rt)
    settings = ConnectorSettings(name="daily", type="slow", account="brookfield-facebook",
                                 poll_interval_seconds=86400)
    connector = _SlowConnector(settings, seconds=5)
    seen: list[datetime] = []
    import threading

    stop_watch = threading.Event()

    def watch() -> None:
        while not stop_watch.wait(0.5):
            _, until = lease(rt.db, "daily")
            if until is not None:
                seen.append(until)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = datetime.now(UTC)
    try:
        svc.poll(connector)
    finally:
        stop_watch.set()
        watcher.join()
        svc.close()
        rt.close()
    assert seen, "the lease was held during the poll"
    assert max(seen) < started + timedelta(seconds=15)  # never 2 x 24 hours
    assert len(set(seen)) >= 2, "renewed while the 5 s fetch ran (a 3 s lease)"


def test_a_lease_held_elsewhere_is_taken_only_after_its_heartbeat_stops(make_config: Any) -> None:
    config = make_config()
    rt = Runtime.from_config(config, with_connectors=False)
    try:
        now = datetime.now(UTC)
        elsewhere = "replica-b.example:0123456789ab.4242:77"
        assert leases.acquire(rt.db, "x", elsewhere, timedelta(seconds=60), now)
        me = leases.owner_identity()
        assert not leases.acquire(rt.db, "x", me, timedelta(seconds=60), now)  # alive elsewhere
        assert leases.acquire(rt.db, "x", me, timedelta(seconds=60),
                              now + timedelta(seconds=61))  # its heartbeat stopped a minute ago
        # a dead process on this machine (e.g. this one's crashed predecessor): taken at once
        dead = me.rsplit(":", 1)[0].rsplit(".", 1)[0] + ".1:999999"
        assert leases.owner_is_dead(dead)
        assert leases.acquire(rt.db, "y", dead, timedelta(seconds=60), now)
        assert leases.acquire(rt.db, "y", me, timedelta(seconds=60), now)
        assert not leases.owner_is_dead(me)
    finally:
        rt.close()
