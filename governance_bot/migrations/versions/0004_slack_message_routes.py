"""slack: which route's view a flag message shows, and the thread it is grouped under

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 05:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('route', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('thread_ts', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.drop_column('thread_ts')
        batch_op.drop_column('route')
