"""The media step's bookkeeping: which picture of which item was fetched (its SHA-256 in the
media store) or why not, and when it is tried again (governance_bot/media.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from governance_bot.storage.models import Base

__all__ = ["MediaSource"]


class MediaSource(Base):
    """One picture of one item (``item_key``, its index in ``media``, ``source``: a digest of
    the platform's id for the file or of its link without the query, since signed links carry
    tokens and change): the stored file's SHA-256 once fetched, else the last failure and the
    next try. A picture replaced by an edit keeps its row (the earlier version of the item still
    shows it), so the store keeps the file while the item's content is kept. Holds no URL and no
    content."""

    __tablename__ = "media_sources"

    item_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    media_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    connector: Mapped[str] = mapped_column(String(128))
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    mime_type: Mapped[str | None] = mapped_column(String(64))
    fetched_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(300))
    next_attempt_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_media_sources_due", "connector", "next_attempt_at"),)
