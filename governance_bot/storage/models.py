"""Database tables. Changing them needs an Alembic migration (governance_bot/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from governance_bot.storage.crypto import EncryptedJSON, EncryptedText

__all__ = [
    "Account",
    "ApprovedMedia",
    "AuditEvent",
    "AuditHead",
    "Base",
    "ConnectorState",
    "DigestEntry",
    "Finding",
    "Flag",
    "FlagDecision",
    "FlagMessage",
    "InformedPerson",
    "ItemRecord",
    "ItemVersion",
    "Keyring",
    "Learner",
    "OutboxMessage",
    "Staff",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are stored and returned as UTC-aware datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class ItemRecord(Base):
    """One archived item; its content lives in versions, the newest is ``current_version``."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    platform: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(128))
    native_id: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32))
    thread_key: Mapped[str] = mapped_column(String(512), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_items_account_created", "account", "created_at"),)


class ItemVersion(Base):
    __tablename__ = "item_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    detected_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("item_id", "version", name="uq_item_versions_item_version"),
        # the versions archived but not yet checked (the sweep after a crash)
        Index("ix_item_versions_undetected", "seen_at", sqlite_where=text("detected_at IS NULL"),
              postgresql_where=text("detected_at IS NULL")),
    )


class Flag(Base):
    """The findings on one item, routed to the people who must act."""

    __tablename__ = "flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), unique=True)
    account: Mapped[str] = mapped_column(String(128), index=True)
    thread_key: Mapped[str] = mapped_column(String(512), index=True)
    category: Mapped[str] = mapped_column(String(64), index=True)
    severity: Mapped[int] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    item_created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    assigned_to: Mapped[str | None] = mapped_column(String(128))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    legal_hold: Mapped[bool] = mapped_column(default=False)
    # decisions are compare-and-set on the state (governance_bot/decisions.py): every decision
    # bumps the version; a form carries the version it was opened at, so a repeated submission
    # finds it changed and is answered "already recorded"
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the managers' decision on the post (removing, removed, kept), kept apart from ``status``,
    # which a safeguarding or staff-conduct part keeps open until its own outcome
    removal: Mapped[str | None] = mapped_column(String(16))
    escalated_at: Mapped[datetime | None]  # the managers handed it to the DSL team


class Finding(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    rule_id: Mapped[str] = mapped_column(String(128))
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[int] = mapped_column(Integer)
    score: Mapped[float]
    route: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(256))
    evidence: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    explanation: Mapped[str] = mapped_column(Text)
    item_created_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_findings_rule_subject", "rule_id", "subject", "item_created_at"),)


class OutboxMessage(Base):
    """A notification to deliver; written in the same transaction as the flag change."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("flags.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # flag_created, flag_updated, digest, ...
    route: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # how often a sender has claimed it (or shown its flag directly, e.g. an escalation): on the
    # first claim nothing can have been posted yet, so a sink need not look for an earlier post
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None] = mapped_column(index=True)


class FlagMessage(Base):
    """Where a flag was shown (a Slack channel and message ts), so it can be updated in place."""

    __tablename__ = "flag_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    sink: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    route: Mapped[str | None] = mapped_column(String(32))  # whose view it shows (masking)
    # grouped under another message (indexed: the count under a message is read at each refresh)
    thread_ts: Mapped[str | None] = mapped_column(String(64), index=True)
    # the member of staff the message was rendered for (a direct message to one person shows
    # what that person may see); None for a channel (rendered for the route)
    recipient: Mapped[str | None] = mapped_column(String(128))
    # > 0: flags were grouped under this message since its count was last shown; the sender
    # refreshes it at the end of its drain (a crash in between leaves it marked for the next)
    refresh_due: Mapped[int] = mapped_column(Integer, default=0, server_default="0", index=True)

    __table_args__ = (UniqueConstraint("flag_id", "sink", "channel", name="uq_flag_messages_dest"),)


class AuditEvent(Base):
    """Append-only; each row carries the hash of the one before it."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(128), index=True)
    subject: Mapped[str | None] = mapped_column(String(512))
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # the id of the key the event is sealed with (HMAC); None: a plain SHA-256 (no keys then)
    key_id: Mapped[str | None] = mapped_column(String(16))


class AuditHead(Base):
    """The newest link of the chain, so deleting the last rows is detectable too."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class ConnectorState(Base):
    """Per-connector cursor, health and polling lease."""

    __tablename__ = "connector_state"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_poll_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]


class Staff(Base):
    __tablename__ = "register_staff"

    staff_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Learner(Base):
    __tablename__ = "register_learners"

    learner_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Account(Base):
    __tablename__ = "register_accounts"

    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class FlagDecision(Base):
    """A decision on a flag taken in Slack: remove, keep, escalate, acknowledge, outcome, assign."""

    __tablename__ = "flag_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[str] = mapped_column(String(128))
    slack_user_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(EncryptedText)
    outcome: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InformedPerson(Base):
    """Someone told about a removal (the learner named, a guardian, an employer), and how."""

    __tablename__ = "flag_informed"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    decision_id: Mapped[int] = mapped_column(ForeignKey("flag_decisions.id"), index=True)
    relation: Mapped[str] = mapped_column(String(32))  # learner, guardian, employer
    register_id: Mapped[str | None] = mapped_column(String(128))
    contact: Mapped[str] = mapped_column(EncryptedText)  # a guardian's or employer's contact
    method: Mapped[str] = mapped_column(String(32))
    informed_by: Mapped[str] = mapped_column(String(128))
    informed_at: Mapped[datetime] = mapped_column(default=utcnow)


class DigestEntry(Base):
    """A low-severity flag waiting for the daily digest of its route."""

    __tablename__ = "digest_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flag_id: Mapped[int] = mapped_column(ForeignKey("flags.id"), index=True)
    account: Mapped[str] = mapped_column(String(128))
    route: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(index=True)

    __table_args__ = (UniqueConstraint("flag_id", "route", name="uq_digest_entries_flag_route"),)


class ApprovedMedia(Base):
    """A photo a designated manager pre-approved (by its sha256): the consent check passes it."""

    __tablename__ = "approved_media"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str] = mapped_column(String(128))
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("flags.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Keyring(Base):
    """Secrets the database keeps for itself, encrypted with the configured keys
    (governance_bot/storage/keyring.py): the encryption check token, which says whether this
    database holds encrypted data and whether the configured keys read it, and the key that
    turns thread keys (which can hold phone numbers) into pseudonyms."""

    __tablename__ = "keyring"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
