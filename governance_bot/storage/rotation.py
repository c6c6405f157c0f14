"""``governance-bot keys rotate``: re-encrypt every encrypted column with the newest key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select, update

import governance_bot.storage.dp_models  # noqa: F401  (its encrypted columns are rotated too)
from governance_bot.storage import models as m
from governance_bot.storage.crypto import EncryptedJSON, EncryptedText, is_configured
from governance_bot.storage.db import Database

__all__ = ["rotate_all"]


def _encrypted_columns() -> list[tuple[Any, str, str]]:
    out = []
    for mapper in m.Base.registry.mappers:
        table = mapper.local_table
        assert isinstance(table, Table)
        for column in table.columns:
            if isinstance(column.type, EncryptedJSON | EncryptedText):
                pk = next(iter(table.primary_key.columns)).name
                out.append((table, column.name, pk))
    return out


def rotate_all(db: Database, batch: int = 500) -> dict[str, int]:
    """Read each row (any configured key decrypts) and write it back (the first key encrypts)."""
    if not is_configured():
        raise RuntimeError("no encryption keys configured")
    counts: dict[str, int] = {}
    for table, column, pk in _encrypted_columns():
        name = f"{table.name}.{column}"
        counts[name] = 0
        last: Any = None
        while True:
            with db.session() as session:
                query = select(table.c[pk], table.c[column]).order_by(table.c[pk]).limit(batch)
                if last is not None:
                    query = query.where(table.c[pk] > last)
                rows = session.execute(query).all()
                for key, value in rows:
                    session.execute(update(table).where(table.c[pk] == key)
                                    .values({column: value}))
                counts[name] += len(rows)
            if len(rows) < batch:
                break
            last = rows[-1][0]
    return counts
