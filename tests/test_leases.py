"""Several replicas on one database: one at a time polls a connector."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from governance_bot import leases
from governance_bot.storage.db import Database

NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)
TTL = timedelta(minutes=2)


def test_a_lease_is_held_by_one_replica_until_released_or_expired(database_url: str):
    db = Database(database_url)
    db.upgrade()
    assert leases.acquire(db, "fb", "replica-a", TTL, NOW)
    assert not leases.acquire(db, "fb", "replica-b", TTL, NOW + timedelta(seconds=30))
    assert leases.acquire(db, "fb", "replica-a", TTL, NOW + timedelta(seconds=30))  # renewal
    # replica-a dies: its lease runs out and replica-b takes over
    assert leases.acquire(db, "fb", "replica-b", TTL, NOW + timedelta(minutes=5))
    leases.release(db, "fb", "replica-b")
    assert leases.acquire(db, "fb", "replica-a", TTL, NOW + timedelta(minutes=5))
    db.dispose()


def test_replicas_racing_for_a_new_lease_get_exactly_one_winner(database_url: str):
    dbs = [Database(database_url) for _ in range(6)]
    dbs[0].upgrade()
    barrier = threading.Barrier(len(dbs))
    wins: list[str] = []

    def race(i: int) -> None:
        barrier.wait()
        if leases.acquire(dbs[i], "x-account", f"replica-{i}", TTL, NOW):
            wins.append(f"replica-{i}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(dbs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    for db in dbs:
        db.dispose()
