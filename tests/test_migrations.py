"""The Alembic migrations create exactly the tables the models describe, on each backend, so a
model change without its migration (or the reverse) is caught here rather than in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import governance_bot.storage.audit_models  # registers its tables
import governance_bot.storage.console_models  # registers its tables
import governance_bot.storage.dp_models  # noqa: F401  (registers its tables)
from governance_bot.storage.db import Database
from governance_bot.storage.models import Base


def test_the_migrated_schema_matches_the_models(database_url: str):
    db = Database(database_url)
    try:
        db.upgrade()
        assert db.current_revision() == db.head_revision()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()
    assert diff == [], diff


def test_the_newest_migrations_can_be_undone_and_redone(database_url: str):
    from alembic import command

    db = Database(database_url)
    try:
        db.upgrade()
        command.downgrade(db._alembic_config(), "0003")  # undoes 0014 to 0004
        assert db.current_revision() == "0003"
        db.upgrade()
        assert db.current_revision() == db.head_revision()
    finally:
        db.dispose()


def test_outbox_messages_in_flight_during_the_upgrade_to_0007_count_as_claimed(database_url: str):
    """A message claimed (maybe posted) before the upgrade must still be looked for in Slack
    before it is posted: it counts as claimed once, so its next claim is not a first."""
    from alembic import command
    from sqlalchemy import text

    db = Database(database_url)
    try:
        command.upgrade(db._alembic_config(), "0006")
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO outbox (kind, route, payload, created_at, available_at, attempts, "
                "claimed_by, claimed_until) VALUES ('flag_created', 'dsl', '{}', "
                "'2026-11-21 09:00:00', '2026-11-21 09:00:00', 0, 'old-replica', "
                "'2026-11-21 09:02:00')"))
        db.upgrade()
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT claims FROM outbox")).scalar_one() == 1
            assert conn.execute(text("SELECT count(*) FROM flag_messages WHERE refresh_due > 0")
                                ).scalar_one() == 0
    finally:
        db.dispose()


def test_counting_the_flags_grouped_under_a_slack_message_uses_an_index(database_url: str):
    """The count under a thread's first message is read at each refresh; without an index it
    would scan every message ever posted."""
    from sqlalchemy import inspect

    db = Database(database_url)
    try:
        db.upgrade()
        indexes = inspect(db.engine).get_indexes("flag_messages")
    finally:
        db.dispose()
    assert any(ix["column_names"] == ["thread_ts"] for ix in indexes), indexes


def _old_whatsapp_item(conn, data: str) -> None:  # type: ignore[no-untyped-def]
    """An item and its flag as revision 0010 stored them: the thread key in clear."""
    from sqlalchemy import text

    conn.execute(text(
        "INSERT INTO items (id, key, platform, account, native_id, kind, thread_key, created_at, "
        "first_seen_at, last_seen_at, current_version, content_hash) VALUES (1, "
        "'whatsapp:brookfield-whatsapp:wamid.A1', 'whatsapp', 'brookfield-whatsapp', 'wamid.A1', "
        "'direct_message', 'whatsapp:brookfield-whatsapp:109876543210:447700900123', "
        "'2026-11-20 10:00:00', '2026-11-20 10:00:00', '2026-11-20 10:00:00', 1, 'h')"))
    conn.execute(text(
        "INSERT INTO item_versions (item_id, version, content_hash, data, seen_at) VALUES "
        "(1, 1, 'h', :data, '2026-11-20 10:00:00')"), {"data": data})
    conn.execute(text(
        "INSERT INTO flags (item_id, account, thread_key, category, severity, route, status, "
        "created_at, updated_at, item_created_at, escalation_level, legal_hold) VALUES (1, "
        "'brookfield-whatsapp', "
        "'whatsapp:brookfield-whatsapp:109876543210:447700900123', 'learner_pii', 3, "
        "'account_managers', 'open', '2026-11-20 10:00:00', '2026-11-20 10:00:00', "
        "'2026-11-20 10:00:00', 0, false)"))


WHATSAPP_ITEM = {
    "id": "wamid.A1", "platform": "whatsapp", "account": "brookfield-whatsapp",
    "kind": "direct_message", "created_at": "2026-11-20T10:00:00+00:00",
    "author": {"id": "447700900123"}, "text": "see you at 4",
    "thread_id": "109876543210:447700900123",
}


def test_the_upgrade_to_0012_turns_stored_thread_keys_into_pseudonyms_and_back(
        database_url: str):
    """Phone numbers in thread keys (WhatsApp) leave the plain columns; the thread is still one
    thread (its history is found), and the downgrade restores the keys from the archive."""
    import json

    from alembic import command
    from sqlalchemy import text

    from governance_bot.history import DatabaseHistory
    from governance_bot.items import Item

    db = Database(database_url)
    try:
        command.upgrade(db._alembic_config(), "0011")
        with db.engine.begin() as conn:
            _old_whatsapp_item(conn, json.dumps(WHATSAPP_ITEM))
        db.upgrade()
        with db.engine.connect() as conn:
            keys = {k for (k,) in conn.execute(text("SELECT thread_key FROM items UNION "
                                                    "SELECT thread_key FROM flags"))}
        assert len(keys) == 1 and next(iter(keys)).startswith("t1:"), keys
        assert "447700900123" not in next(iter(keys))
        later = Item.model_validate({**WHATSAPP_ITEM, "id": "wamid.A2",
                                     "created_at": "2026-11-20T11:00:00+00:00"})
        assert [i.id for i in DatabaseHistory(db).thread(later)] == ["wamid.A1"]
        command.downgrade(db._alembic_config(), "0011")
        with db.engine.connect() as conn:
            keys = {k for (k,) in conn.execute(text("SELECT thread_key FROM items UNION "
                                                    "SELECT thread_key FROM flags"))}
        assert keys == {"whatsapp:brookfield-whatsapp:109876543210:447700900123"}
    finally:
        db.dispose()


def test_an_encrypted_database_is_upgraded_to_0012_only_with_its_key(database_url: str):
    import json

    import pytest
    from alembic import command
    from cryptography.fernet import Fernet

    from governance_bot.storage import crypto

    key = Fernet.generate_key().decode()
    db = Database(database_url)
    try:
        command.upgrade(db._alembic_config(), "0011")
        crypto.configure([key])
        encrypted = json.dumps({"enc": crypto.encrypt(json.dumps(WHATSAPP_ITEM))})
        with db.engine.begin() as conn:
            _old_whatsapp_item(conn, encrypted)
        crypto.configure(None)
        with pytest.raises(crypto.KeyError_, match="no encryption key"):
            db.upgrade()
        crypto.configure([Fernet.generate_key().decode()])
        with pytest.raises(crypto.KeyError_, match="cannot read"):
            db.upgrade()
        crypto.configure([key])
        db.upgrade()
        assert db.current_revision() == db.head_revision()
        assert db.check_encryption().startswith("on")
        crypto.configure(None)
        with pytest.raises(crypto.KeyError_, match="no encryption key"):
            db.check_encryption()
    finally:
        crypto.configure(None)
        db.dispose()
