"""the case console: sessions and case notes

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import governance_bot.storage.crypto
import governance_bot.storage.models

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('console_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=128), nullable=False),
    sa.Column('email', sa.String(length=256), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', governance_bot.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', governance_bot.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', governance_bot.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ended_at', governance_bot.storage.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_sessions'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_staff_id'), ['staff_id'], unique=False)
    op.create_table('case_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.String(length=128), nullable=False),
    sa.Column('text', governance_bot.storage.crypto.EncryptedText(), nullable=False),
    sa.Column('created_at', governance_bot.storage.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], name=op.f('fk_case_notes_flag_id_flags')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_notes'))
    )
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_notes_flag_id'), ['flag_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_notes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_notes_flag_id'))
    op.drop_table('case_notes')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_staff_id'))
    op.drop_table('console_sessions')
