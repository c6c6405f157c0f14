"""an index on flag_messages.thread_ts

A thread's first Slack message shows how many further flags are grouped under it; that count is
read at every refresh of the message by ``thread_ts``. Without an index each count scans every
message the service has ever posted, a cost that grows for as long as the service runs.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 14:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_messages_thread_ts'), ['thread_ts'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_messages_thread_ts'))
