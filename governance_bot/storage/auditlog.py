"""The append-only, tamper-evident audit log.

Each event's hash covers its own fields and the previous event's hash, so changing or deleting
any row breaks the chain from there on; ``audit_head`` keeps the newest link so that deleting the
last rows is caught too. ``verify`` names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance_bot.storage.models import AuditEvent, AuditHead

__all__ = ["GENESIS", "VerifyResult", "append", "batched", "verify"]

GENESIS = "0" * 64
_PENDING = "governance_bot.audit.pending"  # Session.info key: events waiting for batched()


def _event_hash(prev_hash: str, seq: int, created_at: datetime, actor: str, action: str,
                subject: str | None, data: dict[str, Any]) -> str:
    body = json.dumps(
        {
            "prev": prev_hash,
            "seq": seq,
            "at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "data": data,
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def append(session: Session, actor: str, action: str, subject: str | None = None,
           data: dict[str, Any] | None = None, at: datetime | None = None) -> AuditEvent:
    """Add one event at the end of the chain, in the caller's transaction (inside
    :func:`batched`, when the block ends)."""
    data = json.loads(json.dumps(data or {}, default=str))
    created_at = (at or datetime.now(UTC)).astimezone(UTC)
    # Round-trip precision: some backends keep microseconds, none keep more.
    created_at = created_at.replace(microsecond=created_at.microsecond)
    event = AuditEvent(created_at=created_at, actor=actor, action=action, subject=subject,
                       data=data)
    pending: list[AuditEvent] | None = session.info.get(_PENDING)
    if pending is not None:
        pending.append(event)
    else:
        _chain(session, [event])
    return event


@contextmanager
def batched(session: Session) -> Iterator[None]:
    """Within the block, events appended to ``session`` are chained and written together when
    it ends: in the same transaction and order, with one read and one update of the chain's
    head instead of one per event (so, on PostgreSQL, the head's row lock is taken at the end
    of the block rather than at its first event). If the block raises, its events are not
    written (the caller's transaction is being rolled back). A nested block joins the outer
    one."""
    if _PENDING in session.info:
        yield
        return
    pending: list[AuditEvent] = []
    session.info[_PENDING] = pending
    try:
        yield
    finally:
        del session.info[_PENDING]
    if pending:
        _chain(session, pending)


def _chain(session: Session, events: list[AuditEvent]) -> None:
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
        session.flush()
    for event in events:
        seq = head.seq + 1
        event.seq, event.prev_hash = seq, head.hash
        event.hash = _event_hash(head.hash, seq, event.created_at, event.actor, event.action,
                                 event.subject, event.data)
        session.add(event)
        head.seq, head.hash = seq, event.hash
    session.flush()


@dataclass(slots=True)
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    broken_seq: int | None = None


def verify(session: Session) -> VerifyResult:
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    for event in rows:
        if event.seq != expected_seq:
            return VerifyResult(False, checked, f"event {expected_seq} is missing "
                                f"(the next event found is {event.seq})", expected_seq)
        if event.prev_hash != prev_hash:
            return VerifyResult(False, checked, f"event {event.seq} does not link to the event "
                                "before it", event.seq)
        digest = _event_hash(prev_hash, event.seq, event.created_at, event.actor, event.action,
                             event.subject, event.data)
        if digest != event.hash:
            return VerifyResult(False, checked, f"event {event.seq} ({event.action}) was changed "
                                "after it was written", event.seq)
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != checked or head_hash != prev_hash:
        return VerifyResult(False, checked, f"the log ends at event {checked} but its head "
                            f"records event {head_seq}: events after {checked} were deleted",
                            checked + 1)
    return VerifyResult(True, checked)
