"""media sources: the pictures the media step fetched for each item, or why not and when it
tries again (governance_bot/media.py)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import governance_bot.storage.models

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'media_sources',
        sa.Column('item_key', sa.String(length=512), nullable=False),
        sa.Column('media_index', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('connector', sa.String(length=128), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=True),
        sa.Column('mime_type', sa.String(length=64), nullable=True),
        sa.Column('fetched_at', governance_bot.storage.models.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=300), nullable=True),
        sa.Column('next_attempt_at', governance_bot.storage.models.UTCDateTime(timezone=True),
                  nullable=True),
        sa.PrimaryKeyConstraint('item_key', 'media_index', 'source', name=op.f('pk_media_sources')),
    )
    with op.batch_alter_table('media_sources', schema=None) as batch_op:
        batch_op.create_index('ix_media_sources_due', ['connector', 'next_attempt_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_media_sources_sha256'), ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('media_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_sources_sha256'))
        batch_op.drop_index('ix_media_sources_due')
    op.drop_table('media_sources')
