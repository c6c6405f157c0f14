"""need to know: decision state (version, removal, escalated_at), messages per person, approved
photos

Decisions are a compare-and-set on the flag's state: ``version`` (bumped by every decision),
``removal`` (the managers' decision on the post, apart from the case's status) and
``escalated_at``. A Slack message shown to one person records whom (``recipient``). A photo a
manager pre-approved is kept by its sha256 (``approved_media``).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import governance_bot.storage.models

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('removal', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column(
            'escalated_at', governance_bot.storage.models.UTCDateTime(timezone=True),
            nullable=True))
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recipient', sa.String(length=128), nullable=True))
    op.create_table(
        'approved_media',
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('account', sa.String(length=128), nullable=False),
        sa.Column('approved_by', sa.String(length=128), nullable=False),
        sa.Column('flag_id', sa.Integer(), nullable=True),
        sa.Column('created_at', governance_bot.storage.models.UTCDateTime(timezone=True),
                  nullable=False),
        sa.ForeignKeyConstraint(['flag_id'], ['flags.id'],
                                name=op.f('fk_approved_media_flag_id_flags')),
        sa.PrimaryKeyConstraint('sha256', name=op.f('pk_approved_media')),
    )
    # flags escalated before this migration
    op.execute("UPDATE flags SET escalated_at = updated_at WHERE status = 'escalated'")


def downgrade() -> None:
    op.drop_table('approved_media')
    with op.batch_alter_table('flag_messages', schema=None) as batch_op:
        batch_op.drop_column('recipient')
    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('removal')
        batch_op.drop_column('version')
