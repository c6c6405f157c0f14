"""Tables of the case console: signed-in sessions and the DSL's case notes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from governance_bot.storage.crypto import EncryptedText
from governance_bot.storage.models import Base, utcnow

__all__ = ["CaseNote", "ConsoleSession"]


class ConsoleSession(Base):
    """A signed-in person. The cookie carries a random token; only its SHA-256 is stored, so a
    copy of the database signs nobody in. Ending a session (sign-out, timeout) is final."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the cookie token
    staff_id: Mapped[str] = mapped_column(String(128), index=True)
    email: Mapped[str] = mapped_column(String(256))
    method: Mapped[str] = mapped_column(String(16))  # oidc | dev
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # the absolute timeout
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))


class CaseNote(Base):
    """A DSL's note on a case: append-only (never edited or deleted), encrypted at rest."""

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    staff_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
