"""slack: decisions, informed people, digest entries

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import governance_bot.storage.models

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = governance_bot.storage.models.UTCDateTime


def upgrade() -> None:
    op.create_table('flag_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('staff_id', sa.String(length=128), nullable=False),
    sa.Column('slack_user_id', sa.String(length=64), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=64), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', _TS(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_flag_decisions_flag_id_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag_decisions'))
    )
    with op.batch_alter_table('flag_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_decisions_flag_id'), ['flag_id'], unique=False)

    op.create_table('flag_informed',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=32), nullable=False),
    sa.Column('register_id', sa.String(length=128), nullable=True),
    sa.Column('contact', sa.String(length=512), nullable=False),
    sa.Column('method', sa.String(length=32), nullable=False),
    sa.Column('informed_by', sa.String(length=128), nullable=False),
    sa.Column('informed_at', _TS(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['decision_id'], ['flag_decisions.id'], name=op.f('fk_flag_informed_decision_id_flag_decisions')),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_flag_informed_flag_id_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flag_informed'))
    )
    with op.batch_alter_table('flag_informed', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_flag_informed_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_flag_informed_flag_id'), ['flag_id'], unique=False)

    op.create_table('digest_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=128), nullable=False),
    sa.Column('route', sa.String(length=32), nullable=False),
    sa.Column('created_at', _TS(timezone=True), nullable=False),
    sa.Column('sent_at', _TS(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_digest_entries_flag_id_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_digest_entries')),
    sa.UniqueConstraint('flag_id', 'route', name='uq_digest_entries_flag_route')
    )
    with op.batch_alter_table('digest_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_digest_entries_flag_id'), ['flag_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_digest_entries_sent_at'), ['sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('digest_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_digest_entries_sent_at'))
        batch_op.drop_index(batch_op.f('ix_digest_entries_flag_id'))
    op.drop_table('digest_entries')
    with op.batch_alter_table('flag_informed', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_informed_flag_id'))
        batch_op.drop_index(batch_op.f('ix_flag_informed_decision_id'))
    op.drop_table('flag_informed')
    with op.batch_alter_table('flag_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_flag_decisions_flag_id'))
    op.drop_table('flag_decisions')
