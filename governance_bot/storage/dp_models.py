"""Tables for data protection and entry-point security: legal holds, redactions (retention and
erasure tombstones) and accepted webhook deliveries (the replay guard)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from governance_bot.storage.crypto import EncryptedJSON, EncryptedText
from governance_bot.storage.models import Base, utcnow

__all__ = ["ItemRedaction", "LegalHold", "WebhookDelivery"]


class LegalHold(Base):
    """Why a flag (and the items of its thread) must be kept: placed automatically on
    safeguarding flags of severity 4-5, or by a person with ``legal-hold set``. A released hold
    keeps its row (who released it, when, why)."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    reason: Mapped[str] = mapped_column(EncryptedText)
    placed_by: Mapped[str] = mapped_column(String(256))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]
    released_by: Mapped[str | None] = mapped_column(String(256))
    release_reason: Mapped[str | None] = mapped_column(EncryptedText)


class ItemRedaction(Base):
    """A tombstone: the content of one item version was removed (retention or erasure); the
    version row, its content hash and the audit trail stay."""

    __tablename__ = "item_redactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # retention | erasure
    learner_id: Mapped[str | None] = mapped_column(String(128))
    actor: Mapped[str] = mapped_column(String(256))
    redacted_at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebhookDelivery(Base):
    """A verified webhook delivery, keyed by a digest of its replay key: kept (with what it
    carried, encrypted) until its items are archived and checked, and as a replay guard until it
    expires (governance_bot/webhooks.py)."""

    __tablename__ = "webhook_deliveries"

    digest: Mapped[str] = mapped_column(String(128), primary_key=True)
    connector: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # {"items": [...], "deferred": [...]}: removed once processed (only the digest stays)
    payload: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON)
    processed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # the replica working on it, and until when (then anyone may take it up)
    claimed_by: Mapped[str | None] = mapped_column(String(256))
    claimed_until: Mapped[datetime | None]

    __table_args__ = (Index("ix_webhook_deliveries_pending", "claimed_until",
                            sqlite_where=text("processed_at IS NULL"),
                            postgresql_where=text("processed_at IS NULL")),)
