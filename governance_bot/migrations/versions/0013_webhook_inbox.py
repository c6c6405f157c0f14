"""webhook deliveries kept until checked; undetected item versions found by an index

A webhook delivery is stored, with its items (encrypted like every archived item), in the same
transaction that claims its replay key; it is marked processed once its items are archived and
checked. A delivery left unprocessed by a crash is taken up again at start and every few seconds
(governance_bot/webhooks.py). A partial index finds the item versions archived but not yet
checked (the start-up and periodic sweep, governance_bot/pipeline.py ``recheck``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import governance_bot.storage.crypto
import governance_bot.storage.models

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', governance_bot.storage.crypto.EncryptedJSON(),
                                      nullable=True))
        batch_op.add_column(sa.Column('processed_at', governance_bot.storage.models.UTCDateTime(
            timezone=True), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', governance_bot.storage.models.UTCDateTime(
            timezone=True), nullable=True))
    # deliveries accepted before this revision were processed when they were accepted
    op.execute("UPDATE webhook_deliveries SET processed_at = received_at")
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_deliveries_pending', ['claimed_until'], unique=False,
                              sqlite_where=sa.text('processed_at IS NULL'),
                              postgresql_where=sa.text('processed_at IS NULL'))
    with op.batch_alter_table('item_versions', schema=None) as batch_op:
        batch_op.create_index('ix_item_versions_undetected', ['seen_at'], unique=False,
                              sqlite_where=sa.text('detected_at IS NULL'),
                              postgresql_where=sa.text('detected_at IS NULL'))


def downgrade() -> None:
    with op.batch_alter_table('item_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_item_versions_undetected')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_pending')
        batch_op.drop_column('claimed_until')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempts')
        batch_op.drop_column('processed_at')
        batch_op.drop_column('payload')
