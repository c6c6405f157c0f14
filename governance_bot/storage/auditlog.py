"""The append-only, tamper-evident audit log.

Each event's hash covers its own fields and the previous event's hash, so changing or deleting
any row breaks the chain from there on; ``audit_head`` keeps the newest link so that deleting the
last rows is caught too.

With encryption keys configured the chain is **keyed**: each event is sealed with an
HMAC-SHA256 under a key derived from the configured keys (HKDF; it never meets the database and
rotates with them), and carries the key's id. Someone who can write to the database but does not
hold the key cannot rewrite an event, or the whole log, and recompute the hashes: the seals
would not verify. Without keys the seal is a plain SHA-256 (``verify`` says so).

What a chain inside the database cannot show on its own (the last events deleted with the head
moved back, or both tables emptied) the **anchors** show: the head is written at intervals
outside the database (governance_bot/audit_anchor.py), and :func:`check_anchors` compares them
with the log. :func:`cross_check` then confirms that every flag, decision and notification in
the database has its audit events (a log emptied or cut short leaves flags without events).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance_bot.storage import crypto
from governance_bot.storage.models import AuditEvent, AuditHead, Flag, FlagDecision, OutboxMessage

__all__ = ["GENESIS", "CheckReport", "VerifyResult", "anchor_record", "append", "batched",
           "check_anchors", "cross_check", "reseal", "signing_key", "verify"]

GENESIS = "0" * 64
_PENDING = "governance_bot.audit.pending"  # Session.info key: events waiting for batched()
_PURPOSE = b"governance-bot audit log v1"
_keys_cache: tuple[tuple[str, ...], list[tuple[str, bytes]]] | None = None


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"governance-bot audit key id\0" + key).hexdigest()[:16]


def audit_keys() -> list[tuple[str, bytes]]:
    """(key id, key) derived from each configured encryption key, newest first."""
    global _keys_cache
    current = tuple(crypto._keys)
    if _keys_cache is None or _keys_cache[0] != current:
        _keys_cache = (current, [(_key_id(k), k) for k in crypto.derived_keys(_PURPOSE)])
    return _keys_cache[1]


def signing_key() -> tuple[str, bytes] | None:
    """The key new events are sealed with (None: no keys configured, plain hashes)."""
    keys = audit_keys()
    return keys[0] if keys else None


def _event_hash(prev_hash: str, seq: int, created_at: datetime, actor: str, action: str,
                subject: str | None, data: dict[str, Any],
                key: tuple[str, bytes] | None = None) -> str:
    fields: dict[str, Any] = {
        "prev": prev_hash,
        "seq": seq,
        "at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "data": data,
    }
    if key is not None:
        fields["key"] = key[0]
    body = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str).encode()
    if key is None:
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key[1], body, hashlib.sha256).hexdigest()


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
    key = signing_key()
    for event in events:
        seq = head.seq + 1
        event.seq, event.prev_hash = seq, head.hash
        event.key_id = key[0] if key else None
        event.hash = _event_hash(head.hash, seq, event.created_at, event.actor, event.action,
                                 event.subject, event.data, key)
        session.add(event)
        head.seq, head.hash = seq, event.hash
    session.flush()


@dataclass(slots=True)
class VerifyResult:
    ok: bool
    checked: int
    problem: str | None = None
    broken_seq: int | None = None
    keyed: int = 0  # events sealed with a key
    unkeyed: int = 0  # events with a plain hash (no key configured when they were written)
    notes: list[str] = field(default_factory=list)


def verify(session: Session) -> VerifyResult:
    """Check every link and seal in order and the head; the first problem found is reported."""
    keys = dict(audit_keys())
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    keyed = unkeyed = 0
    rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()
    for event in rows:
        if event.seq != expected_seq:
            return VerifyResult(False, checked, f"event {expected_seq} is missing "
                                f"(the next event found is {event.seq})", expected_seq,
                                keyed, unkeyed)
        if event.prev_hash != prev_hash:
            return VerifyResult(False, checked, f"event {event.seq} does not link to the event "
                                "before it", event.seq, keyed, unkeyed)
        key: tuple[str, bytes] | None = None
        if event.key_id is None:
            if keyed:  # a plain hash after sealed events: rewritten by someone without the key
                return VerifyResult(False, checked, f"event {event.seq} ({event.action}) has a "
                                    "plain hash after events sealed with the key: it was "
                                    "rewritten without the key", event.seq, keyed, unkeyed)
            unkeyed += 1
        else:
            secret = keys.get(event.key_id)
            if secret is None:
                why = ("no encryption key is configured, so its seal cannot be checked. Fix: "
                       "set GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS" if not keys else
                       "none of the configured keys is the one it was sealed with. Fix: "
                       "configure that key too (after the new one) until `governance-bot keys "
                       "rotate` has re-sealed the log")
                return VerifyResult(False, checked, f"event {event.seq} was sealed with key "
                                    f"{event.key_id}: {why}", event.seq, keyed, unkeyed)
            key = (event.key_id, secret)
            keyed += 1
        digest = _event_hash(prev_hash, event.seq, event.created_at, event.actor, event.action,
                             event.subject, event.data, key)
        if not hmac.compare_digest(digest, event.hash):
            return VerifyResult(False, checked, f"event {event.seq} ({event.action}) was changed "
                                "after it was written", event.seq, keyed, unkeyed)
        prev_hash, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if head_seq != checked or head_hash != prev_hash:
        return VerifyResult(False, checked, f"the log ends at event {checked} but its head "
                            f"records event {head_seq}: events after {checked} were deleted",
                            checked + 1, keyed, unkeyed)
    result = VerifyResult(True, checked, keyed=keyed, unkeyed=unkeyed)
    if unkeyed and keys:
        result.notes.append(f"{unkeyed} event(s) have plain hashes: written before the keys "
                            "were set (`governance-bot keys rotate` seals them with the key), or "
                            "rewritten by someone without the key (the anchors tell which)")
    elif unkeyed and not keys:
        result.notes.append("no encryption keys are configured, so the log has plain hashes: "
                            "someone able to write to the database could rewrite it whole; "
                            "the anchors and the cross-check still show a cut or emptied log")
    return result


def reseal(session: Session) -> int:
    """Seal every event again with the first configured key (``keys rotate``), after checking
    the whole log with the keys it was sealed with: a log that does not verify is never
    re-sealed (that would hide the tampering). Returns how many events were sealed."""
    result = verify(session)
    if not result.ok:
        raise ValueError(f"the audit log does not verify ({result.problem}); it was not "
                         "re-sealed")
    key = signing_key()
    if key is None:
        raise ValueError("no encryption key is configured")
    prev = GENESIS
    count = 0
    for event in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars():
        event.prev_hash = prev
        event.key_id = key[0]
        event.hash = _event_hash(prev, event.seq, event.created_at, event.actor, event.action,
                                 event.subject, event.data, key)
        prev = event.hash
        count += 1
    head = session.get(AuditHead, 1)
    if head is not None:
        head.hash = prev
    session.flush()
    return count


# --- anchors -----------------------------------------------------------------------------------
def anchor_record(session: Session, now: datetime, resealed: bool = False
                  ) -> dict[str, Any] | None:
    """The head as an anchor line's fields, sealed with the key (None for an empty log).
    ``resealed`` marks the anchor written after ``keys rotate`` re-sealed the log: every hash
    changed then, so anchors written before it can only be checked for their events' presence
    (the mark is sealed with the key, so nobody without it can write one)."""
    head = session.get(AuditHead, 1)
    if head is None or head.seq == 0:
        return None
    key = signing_key()
    record: dict[str, Any] = {"anchored_at": now.astimezone(UTC).isoformat(timespec="seconds"),
                              "seq": head.seq, "hash": head.hash,
                              "key_id": key[0] if key else None}
    if resealed and key is not None:
        record["resealed"] = True
    record["mac"] = _anchor_mac(record, key[1]) if key else None
    return record


def _anchor_mac(record: dict[str, Any], key: bytes) -> str:
    fields = ["anchored_at", "seq", "hash", "key_id"]
    if "resealed" in record:  # older lines have no mark, and their seal is unchanged
        fields.append("resealed")
    body = json.dumps({k: record[k] for k in fields}, sort_keys=True).encode()
    return hmac.new(key, b"anchor\0" + body, hashlib.sha256).hexdigest()


def _reseals(lines: list[str], keys: dict[str, bytes]) -> list[int]:
    """The line numbers of the anchors written for a re-sealing whose seal verifies with a
    configured key, oldest first."""
    found: list[int] = []
    for number, line in enumerate(lines, start=1):
        try:
            anchor = json.loads(line)
            if not isinstance(anchor, dict) or anchor.get("resealed") is not True:
                continue
            key = keys.get(str(anchor.get("key_id")))
            if key is not None and hmac.compare_digest(str(anchor.get("mac")),
                                                       _anchor_mac(anchor, key)):
                found.append(number)
        except (ValueError, KeyError, TypeError):
            continue
    return found


def _uncommitted(session: Session, line: str) -> bool:
    """Whether a re-sealing's anchor names a head the log does not hold: its event is there,
    sealed with the same key with another hash, or with a plain hash (a log that had only plain
    hashes when keys were first set) (``keys rotate`` writes the anchor before the re-sealing
    commits; killed in between, the log kept its earlier seals)."""
    anchor = json.loads(line)
    event = session.execute(select(AuditEvent.hash, AuditEvent.key_id).where(
        AuditEvent.seq == int(anchor["seq"]))).first()
    if event is None:
        return False
    if event.key_id is None:
        return anchor.get("key_id") is not None
    return (event.key_id == anchor.get("key_id")
            and not hmac.compare_digest(event.hash, str(anchor["hash"])))


@dataclass(slots=True)
class CheckReport:
    """What ``audit-log verify`` found, in full."""

    chain: VerifyResult
    anchors_checked: int = 0
    anchor_problems: list[str] = field(default_factory=list)
    anchor_notes: list[str] = field(default_factory=list)
    cross_counts: dict[str, int] = field(default_factory=dict)
    cross_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.anchor_problems and not self.cross_problems


def check_anchors(session: Session, lines: list[str], source: str, report: CheckReport) -> None:
    """Compare the anchor lines (oldest first) with the log."""
    keys = dict(audit_keys())
    if not any(line.strip() for line in lines):
        if report.chain.checked:
            report.anchor_problems.append(
                f"{source} holds no anchor although the log has {report.chain.checked} "
                "event(s): it was removed or emptied (or the log was never anchored), so a cut "
                "or emptied log cannot be ruled out")
        return
    reseals = _reseals(lines, keys)
    checked, problems, notes = _compare_anchors(session, lines, source, keys,
                                                reseals[-1] if reseals else 0, set())
    # re-sealings whose anchor was written but which never committed (the newest first): the
    # log still has the seals of before, so it is compared as if they had not been started;
    # only if it then matches every anchor is that what happened
    pending: set[int] = set()
    while problems and reseals and _uncommitted(session, lines[reseals[-1] - 1]):
        pending.add(reseals.pop())
        again = _compare_anchors(session, lines, source, keys, reseals[-1] if reseals else 0,
                                 pending)
        if not again[1]:
            checked, problems, notes = again
            notes.append(
                f"{source}:{','.join(str(n) for n in sorted(pending))}: `keys rotate` was "
                "stopped before its re-sealing was committed: the log still has its earlier "
                "seals, and they match the anchors. Run `governance-bot keys rotate` again.")
            break
    report.anchors_checked += checked
    report.anchor_problems += problems
    report.anchor_notes += notes


def _compare_anchors(session: Session, lines: list[str], source: str, keys: dict[str, bytes],
                     resealed_at: int, skip: set[int]) -> tuple[int, list[str], list[str]]:
    """Each anchor line compared with the log: how many were checked, the problems, the notes.
    ``resealed_at``: the line of the last re-sealing (lines before it are checked for their
    events only); ``skip``: lines of re-sealings that were never committed."""
    problems: list[str] = []
    notes: list[str] = []
    checked = 0
    head = session.get(AuditHead, 1)
    last_seq = int(session.execute(select(func.max(AuditEvent.seq))).scalar_one() or 0)
    missing: tuple[int, str] | None = None
    if resealed_at:
        notes.append(
            f"{source}:{resealed_at}: the log was re-sealed (`keys rotate`); the "
            f"{resealed_at - 1} line(s) before it are checked for their events only (every "
            "hash changed when it was re-sealed)")
    for number, line in enumerate(lines, start=1):
        if not line.strip() or number in skip:
            continue
        try:
            anchor = json.loads(line)
            seq, digest = int(anchor["seq"]), str(anchor["hash"])
            key_id, at = anchor.get("key_id"), str(anchor.get("anchored_at"))
        except (ValueError, KeyError, TypeError):
            problems.append(f"{source}:{number}: not an anchor line (the file was edited)")
            continue
        checked += 1
        key = keys.get(key_id) if key_id else None
        if key is not None and not hmac.compare_digest(str(anchor.get("mac")),
                                                       _anchor_mac(anchor, key)):
            problems.append(f"{source}:{number}: the anchor of event {seq} was altered or "
                            "forged (its seal does not verify)")
            continue
        if key_id and key is None:
            notes.append(f"{source}:{number}: sealed with key {key_id}, which is not "
                         "configured: only checked for its event")
        event = session.execute(select(AuditEvent.hash, AuditEvent.key_id).where(
            AuditEvent.seq == seq)).first()
        if event is None:
            if missing is None or seq > missing[0]:
                missing = (seq, at)
            continue
        if number >= resealed_at and event.key_id == key_id and \
                not hmac.compare_digest(event.hash, digest):
            problems.append(
                f"event {seq} differs from its anchor of {at} ({source}:{number}): the log was "
                "rewritten")
        elif key_id and event.key_id is None:
            # sealed when anchored, a plain hash now: re-written by someone without the key
            # (a key rotation re-seals with a key, never without one)
            problems.append(
                f"event {seq} was sealed with key {key_id} when it was anchored on {at} "
                f"({source}:{number}) and has a plain hash now: the log was rewritten")
    if missing is not None:
        seq, at = missing
        head_seq = head.seq if head is not None else 0
        problems.append(
            f"the log holds {last_seq} event(s) (its head says {head_seq}) but event {seq} was "
            f"anchored on {at}: events {last_seq + 1}-{seq} at least were deleted"
            + (" and the head moved back" if head_seq < seq else ""))
    return checked, problems, notes


def read_anchor_file(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


# --- cross-check -------------------------------------------------------------------------------
def cross_check(session: Session, report: CheckReport, limit: int = 10) -> None:
    """Every flag has its ``flag.created`` event, every decision its ``flag.<action>`` event by
    the same person, every notification the event of the flag change that made it; and every
    flag an event names is in the database."""
    events = Counter((action, subject, actor) for action, subject, actor in session.execute(
        select(AuditEvent.action, AuditEvent.subject, AuditEvent.actor).where(
            AuditEvent.action.like("flag.%"))).all())
    by_subject: dict[tuple[str, str | None], int] = Counter()
    for (action, subject, _actor), n in events.items():
        by_subject[(action, subject)] += n
    flags = set(session.execute(select(Flag.id)).scalars())
    missing = sorted(f for f in flags if not by_subject.get(("flag.created", f"flag:{f}")))
    if missing:
        report.cross_problems.append(
            f"{len(missing)} flag(s) have no flag.created event: "
            f"{', '.join(str(f) for f in missing[:limit])}"
            + (" ..." if len(missing) > limit else ""))
    named = {subject for (action, subject) in by_subject if action == "flag.created"}
    ghosts = sorted(int(s.split(":", 1)[1]) for s in named
                    if s and s.startswith("flag:") and s[5:].isdigit()
                    and int(s[5:]) not in flags)
    if ghosts:
        report.cross_problems.append(
            f"{len(ghosts)} flag(s) have audit events but no row (deleted from the database): "
            f"{', '.join(str(f) for f in ghosts[:limit])}" + (" ..." if len(ghosts) > limit
                                                             else ""))
    decisions = Counter((f"flag.{action}", f"flag:{flag_id}", f"staff:{staff}")
                        for flag_id, action, staff in session.execute(
                            select(FlagDecision.flag_id, FlagDecision.action,
                                   FlagDecision.staff_id)).all())
    unrecorded = [key for key, n in decisions.items() if events.get(key, 0) < n]
    if unrecorded:
        report.cross_problems.append(
            f"{len(unrecorded)} decision(s) have no audit event: "
            + ", ".join(f"{a} on {s} by {who}" for a, s, who in sorted(unrecorded)[:limit]))
    notices = session.execute(select(OutboxMessage.flag_id, OutboxMessage.kind).where(
        OutboxMessage.flag_id.is_not(None))).all()
    orphan = sorted({flag_id for flag_id, kind in notices if flag_id is not None and (
                     not by_subject.get(("flag.created", f"flag:{flag_id}"))
                     or (kind == "flag_updated"
                         and not by_subject.get(("flag.updated", f"flag:{flag_id}"))))})
    if orphan:
        report.cross_problems.append(
            f"notifications of {len(orphan)} flag(s) have no event of the flag change that made "
            f"them: {', '.join(str(f) for f in orphan[:limit])}")
    report.cross_counts = {"flags": len(flags), "decisions": sum(decisions.values()),
                           "notifications": len(notices)}
