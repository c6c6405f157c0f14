"""audit events sealed with a key: the key's id on each event

From this revision, with encryption keys configured, each audit event is sealed with an
HMAC-SHA256 under a key derived from them (governance_bot/storage/auditlog.py) and records the
key's id; events written before keep their plain hash (NULL key id) until `governance-bot keys
rotate` seals them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_id', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_column('key_id')
