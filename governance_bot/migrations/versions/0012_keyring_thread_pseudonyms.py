"""keyring: the encryption check token and the thread-key secret; thread keys become pseudonyms

Thread keys (``platform:account:thread``) were stored in clear in ``items.thread_key`` and
``flags.thread_key``; a WhatsApp thread id is the two phone numbers, so a copy of the database
(without the encryption keys) gave away learners' phone numbers. From this revision each thread
key is stored as a keyed pseudonym (HMAC-SHA256 with a secret kept in ``keyring``, encrypted
with the configured keys); existing rows are rewritten here. The ``encryption-check`` token
records that the database holds encrypted data (governance_bot/storage/keyring.py).

A database that already holds encrypted data is upgraded only with its keys configured: the new
secret is stored encrypted, and the keys are checked against the data first.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import governance_bot.storage.crypto
import governance_bot.storage.models
from governance_bot.storage import crypto, keyring

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stored(value: str) -> str:
    return crypto.encrypt(value) if crypto.is_configured() else value


def upgrade() -> None:
    conn = op.get_bind()
    check: str | None = None
    if keyring.holds_encrypted_data(conn):
        # before any change: refuse to store the new secret in clear beside encrypted data
        if not crypto.is_configured():
            raise crypto.KeyError_(keyring.NO_KEY)
        sample = keyring._sample_encrypted(conn)
        try:
            if sample is not None:
                crypto.decrypt(sample)
        except crypto.KeyError_:
            raise crypto.KeyError_(keyring.WRONG_KEY) from None
    if crypto.is_configured():
        check = crypto.encrypt(keyring._TOKEN)
    op.create_table('keyring',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', governance_bot.storage.crypto.EncryptedText(), nullable=False),
    sa.Column('created_at', governance_bot.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_keyring'))
    )
    table = sa.table('keyring', sa.column('name', sa.String), sa.column('value', sa.Text),
                     sa.column('created_at', sa.DateTime(timezone=True)))
    now = datetime.now(UTC)
    secret = os.urandom(32)
    rows: list[dict[str, Any]] = [{"name": keyring.THREAD_KEY, "value": _stored(secret.hex()),
                                   "created_at": now}]
    if check is not None:
        rows.append({"name": keyring.CHECK, "value": check, "created_at": now})
    op.bulk_insert(table, rows)
    for (old,) in conn.execute(sa.text("SELECT DISTINCT thread_key FROM items")).all():
        if str(old).startswith("t1:"):
            continue
        new = keyring.pseudonym(secret, str(old))
        for name in ("items", "flags"):
            conn.execute(sa.text(f"UPDATE {name} SET thread_key = :new WHERE thread_key = :old"),
                         {"new": new, "old": old})


def _data(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict) and set(value) == {"enc"}:
        try:
            value = json.loads(crypto.decrypt(value["enc"]))
        except crypto.KeyError_:
            return None
    return value if isinstance(value, dict) else None


def downgrade() -> None:
    """Thread keys back in clear, from each item's current version (an item whose content was
    removed by retention or erasure keeps its pseudonym)."""
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT items.id, items.thread_key, item_versions.data FROM items JOIN item_versions "
        "ON item_versions.item_id = items.id AND item_versions.version = items.current_version"
    )).all()
    for item_id, _digest, raw in rows:
        data = _data(raw)
        if data is None or not all(data.get(k) for k in ("platform", "account", "id")):
            continue
        thread = data.get("thread_id") or data.get("parent_id") or data["id"]
        clear = f"{data['platform']}:{data['account']}:{thread}"
        conn.execute(sa.text("UPDATE items SET thread_key = :clear WHERE id = :id"),
                     {"clear": clear, "id": item_id})
        conn.execute(sa.text("UPDATE flags SET thread_key = :clear WHERE item_id = :id"),
                     {"clear": clear, "id": item_id})
    op.drop_table('keyring')
    keyring.forget_all()
