"""Two ``governance-bot run`` replicas on one PostgreSQL database; one is killed mid-batch.

Policy: every item seen is archived (evidence is not lost) and every concern reaches the right
people once. The replica holding the polling lease is SIGKILLed half-way through a batch of a
jsonl export; the other replica takes the lease over when it runs out, re-reads from the last
saved cursor and finishes. Afterwards: every item archived exactly once, every flag posted to
Slack exactly once (counted at the fake Slack by the flag id in each post's metadata).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select

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
from tests.pg_server import _free_port
from tests.slack.fake_slack import FakeSlack

N = 150


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_replica_killed_mid_batch_loses_nothing_and_doubles_nothing(
        tmp_path: Path, database_url: str) -> None:
    export = tmp_path / "export.jsonl"
    write_items(export, N)
    with FakeSlack() as fake:
        configs = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            configs.append(write_config(tmp_path / name / "config.toml", database_url, fake=fake,
                                        port=_free_port(), connectors=jsonl_connector(export)))
        # schema, registers and configuration record made once, as `governance-bot db upgrade`
        # and the first start would
        Runtime.from_config(load_config(configs[0], env={})).close()
        db = Database(database_url)

        def archived() -> int:
            with db.session() as s:
                return int(s.execute(select(func.count(m.ItemRecord.id))).scalar_one())

        def lease_owner() -> str | None:
            with db.session() as s:
                state = s.get(m.ConnectorState, "facebook-export")
                return state.lease_owner if state else None

        replicas = [governance_bot("run", "-c", str(c), cwd=c.parent) for c in configs]
        try:
            wait_until(lambda: archived() >= N // 10, 120, "the first tenth of the batch")
            owner = lease_owner()
            assert owner is not None, "someone is polling, so someone holds the lease"
            pid = int(owner.rsplit(":", 1)[1])
            victim = next(p for p in replicas if p.pid == pid)
            survivor = next(p for p in replicas if p.pid != pid)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            at_kill = archived()
            print(f"killed replica {pid} with {at_kill}/{N} items archived")
            assert at_kill < N, "the kill must land mid-batch for this test to mean anything"

            def settled() -> bool:
                c = Counts.read(db, fake)
                return c.items == N and c.outbox_pending == 0 and \
                    len(c.posts_per_flag) == flagged(N)

            wait_until(settled, 150, "the surviving replica to finish the batch")
            assert survivor.poll() is None, "the survivor is still running"
        finally:
            outputs = [stop(p) for p in replicas]
        counts = Counts.read(db, fake)
        counts.report("after SIGKILL of one replica")
        assert counts.items == N
        assert counts.versions_per_item == {1: N}  # archived exactly once
        assert counts.flags == flagged(N)
        assert counts.outbox_pending == 0
        assert set(counts.posts_per_flag.values()) == {1}, outputs  # delivered exactly once
        with db.session() as s:
            state = s.get(m.ConnectorState, "facebook-export")
            assert state is not None and state.cursor == {"lines": {str(export): N}}
        db.dispose()
