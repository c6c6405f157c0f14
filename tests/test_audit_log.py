"""The audit log is append-only and tamper-evident: `verify` names the first broken link."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from governance_bot.storage import auditlog
from governance_bot.storage.db import Database


@pytest.fixture
def db(database_url: str) -> Database:
    database = Database(database_url)
    database.upgrade()
    with database.session() as s:
        for i in range(5):
            auditlog.append(s, "dsl@example.org", "flag.acknowledged", f"flag:{i}",
                            {"note": f"seen {i}"})
    return database


def verify(db: Database) -> auditlog.VerifyResult:
    with db.session() as s:
        return auditlog.verify(s)


def test_an_untouched_log_verifies(db: Database):
    result = verify(db)
    assert result.ok and result.checked == 5


@pytest.mark.parametrize("statement, broken", [
    ("UPDATE audit_events SET actor = 'someone else' WHERE seq = 3", 3),
    ("UPDATE audit_events SET data = '{\"note\": \"changed\"}' WHERE seq = 2", 2),
    ("UPDATE audit_events SET created_at = '2020-01-01 00:00:00' WHERE seq = 4", 4),
    ("DELETE FROM audit_events WHERE seq = 2", 2),
    ("DELETE FROM audit_events WHERE seq = 5", 5),
    ("DELETE FROM audit_events WHERE seq >= 4", 4),
    ("DELETE FROM audit_events WHERE seq = 1", 1),
])
def test_verify_fails_after_any_row_is_changed_or_deleted_in_the_database(
    db: Database, statement: str, broken: int
):
    if db.engine.dialect.name == "postgresql":
        statement = statement.replace("'2020-01-01 00:00:00'", "'2020-01-01 00:00:00+00'")
        statement = statement.replace("data = '", "data = CAST('").replace(
            "}' WHERE", "}' AS JSON) WHERE")
    with db.engine.begin() as conn:
        conn.execute(text(statement))
    result = verify(db)
    db.dispose()
    assert not result.ok
    assert result.broken_seq == broken, result.problem


def test_a_rewritten_row_with_a_recomputed_hash_still_breaks_the_next_link(db: Database):
    with db.session() as s:
        row = s.execute(text("SELECT * FROM audit_events WHERE seq = 2")).mappings().one()
        forged = auditlog._event_hash(row["prev_hash"], 2, auditlog.datetime.fromisoformat(
            "2026-01-01T00:00:00+00:00"), "forger", row["action"], row["subject"], {})
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor='forger', hash=:h WHERE seq=2"),
                     {"h": forged})
        conn.execute(text("UPDATE audit_events SET data=:d, created_at=:t WHERE seq=2"),
                     {"d": "{}", "t": auditlog.datetime.fromisoformat("2026-01-01T00:00:00+00:00")
                      if db.engine.dialect.name == "postgresql" else "2026-01-01 00:00:00.000000"})
    result = verify(db)
    assert not result.ok and result.broken_seq == 3


def test_events_written_together_chain_exactly_as_events_written_one_at_a_time(
    database_url: str, tmp_path
):
    """``batched`` (used when a batch of items is recorded) only changes when the chain's head
    is read: the events, their order, their hashes and the head are those of one-at-a-time
    appends."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from governance_bot.storage.models import AuditEvent, AuditHead

    at = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    events = [("governance-bot", "flag.created", f"flag:{i}", {"findings": [i]},
               at + timedelta(seconds=i)) for i in range(4)]

    def chain(url: str, together: bool) -> list[tuple]:
        database = Database(url)
        database.upgrade()
        with database.session() as s:
            auditlog.append(s, "dsl@example.org", "flag.acknowledged", "flag:0", at=at)
        with database.session() as s:
            if together:
                with auditlog.batched(s):
                    for actor, action, subject, data, when in events:
                        auditlog.append(s, actor, action, subject, data, at=when)
                    # nothing is written until the block ends
                    assert s.get(AuditHead, 1).seq == 1
            else:
                for actor, action, subject, data, when in events:
                    auditlog.append(s, actor, action, subject, data, at=when)
        with database.session() as s:
            assert auditlog.verify(s).ok
            rows = [(e.seq, e.action, e.subject, e.data, e.prev_hash, e.hash) for e in
                    s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
            head = s.get(AuditHead, 1)
            rows.append((head.seq, head.hash))
        database.dispose()
        return rows

    if database_url.startswith("sqlite"):
        one, two = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'two.db'}"
        assert chain(one, together=False) == chain(two, together=True)
    else:  # one PostgreSQL database: the second run starts from an empty log again
        separate = chain(database_url, together=False)
        with Database(database_url).engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events"))
            conn.execute(text("DELETE FROM audit_head"))
        assert chain(database_url, together=True) == separate


def test_a_batch_of_events_that_fails_writes_none_of_them(db: Database):
    with pytest.raises(RuntimeError), db.session() as s, auditlog.batched(s):
        auditlog.append(s, "governance-bot", "flag.created", "flag:99")
        raise RuntimeError("the batch's transaction fails")
    result = verify(db)
    assert result.ok and result.checked == 5


# --- sealed with a key, re-sealed when the keys rotate, anchored outside ------------------------

def _keyed_log(database_url: str, keys: list[str]) -> Database:
    from governance_bot.storage import crypto

    crypto.configure(keys)
    database = Database(database_url)
    database.upgrade()
    with database.session() as s:
        for i in range(4):
            auditlog.append(s, "staff:S002", "flag.acknowledged", f"flag:{i}", {"n": i})
    return database


def test_a_rotated_key_reseals_the_log_which_then_needs_only_the_new_key(database_url: str):
    from cryptography.fernet import Fernet

    from governance_bot.storage import crypto

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    database = _keyed_log(database_url, [old])
    try:
        first = verify(database)
        assert first.ok and first.keyed == 4 and first.unkeyed == 0
        crypto.configure([new])  # the old key removed before `keys rotate`: cannot be checked
        refused = verify(database)
        assert not refused.ok and "none of the configured keys" in (refused.problem or "")
        crypto.configure([new, old])  # step 1 of docs/security.md: the new key first
        with database.session() as s:
            assert auditlog.reseal(s) == 4
        crypto.configure([new])  # step 3: the old key removed
        resealed = verify(database)
        assert resealed.ok and resealed.keyed == 4
    finally:
        crypto.configure(None)
        database.dispose()


def test_a_log_that_does_not_verify_is_never_resealed(database_url: str):
    from cryptography.fernet import Fernet

    from governance_bot.storage import crypto

    key = Fernet.generate_key().decode()
    database = _keyed_log(database_url, [key])
    try:
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET actor = 'someone else' WHERE seq = 2"))
        with database.session() as s, pytest.raises(ValueError, match="not re-sealed"):
            auditlog.reseal(s)
        assert not verify(database).ok  # the evidence of tampering is still there
    finally:
        crypto.configure(None)
        database.dispose()


def test_the_head_is_anchored_to_a_file_and_a_slack_channel_once_per_move(
        make_config, tmp_path):  # type: ignore[no-untyped-def]
    import json

    from governance_bot.audit_anchor import anchor
    from governance_bot.runtime import Runtime
    from tests.slack.fake_slack import FakeSlack

    config = make_config('[audit_log]\nanchor_file = "anchors.log"\nslack_channel = "C0AUDIT"\n')
    rt = Runtime.from_config(config, with_connectors=False)  # the registers: events
    try:
        with FakeSlack() as fake:
            from slack_sdk import WebClient

            client = WebClient(token="xoxb-test", base_url=fake.base_url)
            first = anchor(config, rt.db, slack_client=client)
            assert first is not None and first["seq"] > 0
            assert anchor(config, rt.db, slack_client=client) is None  # the head did not move
            with rt.db.session() as s:
                auditlog.append(s, "cli", "legal_hold.placed", "flag:1", {})
            second = anchor(config, rt.db, slack_client=client)
            assert second is not None and second["seq"] == first["seq"] + 1
            posts = fake.calls("chat.postMessage")
        lines = [json.loads(line) for line in (tmp_path / "anchors.log").read_text().splitlines()]
        assert [line["seq"] for line in lines] == [first["seq"], second["seq"]]
        assert len(posts) == 2 and posts[0].params["channel"] == "C0AUDIT"
        assert f"event {second['seq']}" in posts[1].params["text"]
        assert oct((tmp_path / "anchors.log").stat().st_mode)[-3:] == "600"
    finally:
        rt.close()
