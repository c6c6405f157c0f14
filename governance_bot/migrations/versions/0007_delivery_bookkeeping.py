"""delivery bookkeeping: claims per outbox message, anchors due a refresh

``outbox.claims`` counts the claims of a message (and direct posts of its flag), so the Slack
sink looks for an earlier post (posted, then a crash before its record) only when one can exist.
Messages already in the outbox count as claimed once: whatever was in flight before the upgrade
is still looked for.

``flag_messages.refresh_due`` marks a message whose count of grouped flags is out of date; the
sender refreshes such messages at the end of each drain.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims', sa.Integer(), server_default='0', nullable=False))
    op.execute(sa.text("UPDATE outbox SET claims = 1"))
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refresh_due', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_flag_messages_refresh_due'), ['refresh_due'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_messages_refresh_due'))
        batch_op.drop_column('refresh_due')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('claims')
