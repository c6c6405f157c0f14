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
        command.downgrade(db._alembic_config(), "0003")  # undoes 0009 to 0004
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
