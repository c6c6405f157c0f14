"""Alembic environment: governance-bot runs migrations programmatically (``db upgrade``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import governance_bot.storage.audit_models  # registers its tables
import governance_bot.storage.console_models  # registers its tables
import governance_bot.storage.dp_models  # registers its tables
import governance_bot.storage.media_models  # noqa: F401  (registers its tables)
from governance_bot.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_engine(
        config.get_main_option("sqlalchemy.url") or ""
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
