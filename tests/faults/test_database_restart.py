"""The database restarts while items are being ingested: nothing half-done survives.

Policy: every item is archived (evidence is kept) and every concern is raised once. A
``governance-bot ingest`` of a jsonl export runs against a PostgreSQL cluster of the test's own
(tests/pg_server.py), which is restarted (``pg_ctl restart -m fast``: every connection dropped)
part-way through. Items caught by the restart are retried while the database is away (the
pipeline retries on OperationalError for up to 30 s) or reported and skipped; the rest goes on
once the database is back; a second ingest of the same file completes whatever was missed. The
same with ``governance-bot run`` polling the export: the cursor is not moved past an item that
failed, so the next poll completes it. Afterwards every item is archived exactly once and every
flag delivered exactly once.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from governance_bot.config import load_config
from governance_bot.runtime import Runtime
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from tests.faults.world import (
    Counts,
    flagged,
    governance_bot,
    jsonl_connector,
    stop,
    wait_until,
    write_config,
    write_items,
)
from tests.pg_server import PgServer, pg_server  # noqa: F401  (the fixture)

N = 150


@pytest.mark.slow
def test_a_database_restart_during_ingest_loses_and_doubles_nothing(
        tmp_path: Path, pg_server: PgServer) -> None:  # noqa: F811
    export = tmp_path / "export.jsonl"
    write_items(export, N)
    config = write_config(tmp_path / "config.toml", pg_server.url)
    Runtime.from_config(load_config(config, env={})).close()
    db = Database(pg_server.url)

    def archived() -> int:
        try:
            with db.session() as s:
                return int(s.execute(select(func.count(m.ItemRecord.id))).scalar_one())
        except OperationalError:
            return -1

    first = governance_bot("ingest", str(export), "-c", str(config), cwd=tmp_path)
    try:
        wait_until(lambda: archived() >= N // 10, 120, "a tenth of the items")
        pg_server.restart()
        at_restart = archived()
        print(f"database restarted with {at_restart}/{N} items archived")
        first_out, _ = first.communicate(timeout=180)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    db.dispose()
    assert first.returncode == 0, first_out
    mid = Counts.read(db)
    mid.report("after the ingest interrupted by the restart")
    assert at_restart < N, "the restart must land mid-ingest for this test to mean anything"

    second = governance_bot("ingest", str(export), "-c", str(config), cwd=tmp_path)
    second_out, _ = second.communicate(timeout=180)
    assert second.returncode == 0, second_out

    counts = Counts.read(db)
    sent = Counter(json.loads(line)["flag_id"]
                   for line in (tmp_path / "flags.jsonl").read_text().splitlines())
    counts.report("after a second ingest of the same file")
    print(f"JSON sink: {sum(sent.values())} notifications for {len(sent)} flags")
    assert counts.items == N
    assert counts.versions_per_item == {1: N}
    assert counts.flags == flagged(N)
    assert counts.outbox_pending == 0
    assert len(sent) == flagged(N) and set(sent.values()) == {1}
    db.dispose()


@pytest.mark.slow
def test_a_database_restart_under_the_running_service_loses_and_doubles_nothing(
        tmp_path: Path, pg_server: PgServer) -> None:  # noqa: F811
    export = tmp_path / "export.jsonl"
    write_items(export, N)
    config = write_config(tmp_path / "config.toml", pg_server.url,
                          connectors=jsonl_connector(export))
    Runtime.from_config(load_config(config, env={})).close()
    db = Database(pg_server.url)

    def archived() -> int:
        try:
            with db.session() as s:
                return int(s.execute(select(func.count(m.ItemRecord.id))).scalar_one())
        except OperationalError:
            return -1

    def done() -> bool:
        try:
            c = Counts.read(db)
            with db.session() as s:
                state = s.get(m.ConnectorState, "facebook-export")
                cursor = state.cursor if state else None
        except OperationalError:
            return False
        return c.items == N and c.outbox_pending == 0 and c.flags == flagged(N) and \
            cursor == {"lines": {str(export): N}}

    service = governance_bot("run", "-c", str(config), cwd=tmp_path)
    try:
        wait_until(lambda: archived() >= N // 10, 120, "a tenth of the items")
        pg_server.restart()
        at_restart = archived()
        print(f"database restarted with {at_restart}/{N} items archived")
        wait_until(done, 150, "the service to archive, flag and deliver everything")
        assert service.poll() is None, "the service survived the restart"
    finally:
        output = stop(service)
    assert at_restart < N, "the restart must land mid-scan for this test to mean anything"
    counts = Counts.read(db)
    sent = Counter(json.loads(line)["flag_id"]
                   for line in (tmp_path / "flags.jsonl").read_text().splitlines())
    counts.report("governance-bot run across a database restart")
    print(f"JSON sink: {sum(sent.values())} notifications for {len(sent)} flags")
    assert counts.versions_per_item == {1: N}
    assert len(sent) == flagged(N) and set(sent.values()) == {1}, output
    db.dispose()
