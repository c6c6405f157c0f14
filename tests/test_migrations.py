"""The Alembic migrations create exactly the tables the models describe, on each backend, so a
model change without its migration (or the reverse) is caught here rather than in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import governance_bot.storage.audit_models  # registers its tables
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
        command.downgrade(db._alembic_config(), "0003")  # undoes 0006, 0005 and 0004
        assert db.current_revision() == "0003"
        db.upgrade()
        assert db.current_revision() == db.head_revision()
    finally:
        db.dispose()
