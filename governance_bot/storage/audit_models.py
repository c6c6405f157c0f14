"""Tables of the weekly dual-access audit: runs, attestations and findings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from governance_bot.storage.models import Base, utcnow

__all__ = ["AccessAttestation", "AccessAuditRun", "AccessFinding"]


class AccessAuditRun(Base):
    """One weekly (or on-demand) audit: asked, chased once, then closed at the deadline."""

    __tablename__ = "access_audit_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    chase_at: Mapped[datetime]
    deadline: Mapped[datetime]
    chased_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    trigger: Mapped[str] = mapped_column(String(32), default="schedule")  # schedule | manual
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AccessAttestation(Base):
    """A designated manager's answer for one account: can log in today, 2FA on, password age.
    Never a password."""

    __tablename__ = "access_attestations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("access_audit_runs.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(128))
    staff_id: Mapped[str] = mapped_column(String(128))
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    chased_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    can_log_in: Mapped[bool | None]
    two_factor: Mapped[bool | None]
    password_changed_on: Mapped[date | None] = mapped_column(Date)
    message_ref: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        UniqueConstraint("run_id", "account_id", "staff_id", name="uq_access_attestations_who"),
    )


class AccessFinding(Base):
    __tablename__ = "access_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("access_audit_runs.id"), index=True)
    account_id: Mapped[str] = mapped_column(String(128), index=True)
    check: Mapped[str] = mapped_column(String(64))
    severity: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    remedy: Mapped[str] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolution_note: Mapped[str | None] = mapped_column(Text)
