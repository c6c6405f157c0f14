"""flag_informed.contact encrypted at rest (a guardian's or employer's contact)

The column becomes Text (a Fernet token is longer than the 512 characters it allowed). Rows
written before this revision stay readable as they are; ``governance-bot keys rotate`` encrypts
them with the current key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 08:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import governance_bot.storage.crypto

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('flag_informed', schema=None) as batch_op:
        batch_op.alter_column('contact', existing_type=sa.String(length=512),
                              type_=governance_bot.storage.crypto.EncryptedText(),
                              existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('flag_informed', schema=None) as batch_op:
        batch_op.alter_column('contact', existing_type=governance_bot.storage.crypto.EncryptedText(),
                              type_=sa.String(length=512), existing_nullable=False)
