"""Draining the outbox: claim due messages, hand them to a sink, mark them delivered.

Claims are leases (``claimed_until``): a sender that dies mid-delivery leaves the message to be
picked up again when its lease runs out. A live sender renews the claims of its batch while it
works through it (``_ClaimKeeper``), so a slow delivery is never taken over and sent twice. On
PostgreSQL the claim uses ``FOR UPDATE SKIP LOCKED`` so several replicas never take the same
message. A failed delivery is retried with backoff, so a sink outage delays notifications but
loses none.

Each claim is counted on the row (``claims``, in the claim's own transaction). A message on its
first claim, whose flag has no other message that may have been tried, cannot have been shown
anywhere yet: ``FlagView.first_attempt`` tells the sink so, and the Slack sink then skips looking
for an earlier post. A sink may also have a ``flush()``: it is called after every batch (and on
a drain that found nothing to claim) for work the sink deferred, e.g. the Slack sink's refresh of
the messages further flags were grouped under, once per batch instead of once per flag.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from governance_bot.authz import Entitlement, FindingFacts, FlagFacts, NeedToKnow
from governance_bot.findings import Route
from governance_bot.items import Item
from governance_bot.leases import Beat
from governance_bot.registers import RegisterIndex, StaffMember
from governance_bot.routing import ROUTE_PRIORITY
from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = ["DeliveryError", "FlagView", "OutboxSender", "Sink", "build_flag_view", "first_attempt",
           "load_flag", "lock_message", "primary_route", "recipients_for"]

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The sink could not deliver now; the message will be retried."""


class _TransactionLost(Exception):
    """The sink's database work failed, taking the delivery's transaction with it."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class FlagView:
    """Everything a sink needs to show one flag to one audience, read fresh from the database
    at delivery and cut to what that audience may see (``governance_bot.authz``).

    ``findings`` are only those routed to this message's people (never another audience's);
    ``entitlements`` say, per person, what they receive and may do (the union over their routes:
    a person is delivered by the message of their most urgent route only, see
    :func:`primary_route`); ``all_findings`` is the whole flag, for bookkeeping only, never to
    be shown."""

    flag: m.Flag
    findings: list[m.Finding]
    item: Item
    item_record: m.ItemRecord
    route: Route
    kind: str
    recipients: list[StaffMember] = field(default_factory=list)
    # no earlier attempt can have shown this flag anywhere (the message's first claim, and no
    # other message about the flag was tried before): nothing to look for before posting
    first_attempt: bool = False
    entitlements: list[Entitlement] = field(default_factory=list)
    facts: FlagFacts | None = None
    all_findings: list[m.Finding] = field(default_factory=list)
    note: str | None = None  # about parts sent to others ("also referred elsewhere")

    def audiences(self) -> list[tuple[list[Entitlement], list[m.Finding]]]:
        """The people this message delivers to, grouped by what they see and may do (the same
        findings, detail, note and routes): (people, their findings). A person is delivered by
        the message of their most urgent route only, so each person gets one message per flag
        carrying everything they may see; someone with only a digest route, by the digest's."""
        groups: dict[tuple[frozenset[str], str, str | None, frozenset[Route]],
                     list[Entitlement]] = {}
        for e in self.entitlements:
            if primary_route(e.routes) != self.route:
                continue
            key = (e.finding_keys, e.detail.value, e.note, e.routes)
            groups.setdefault(key, []).append(e)
        out = []
        for (keys, _, _, _), people in groups.items():
            source = self.all_findings or self.findings
            out.append((people, [f for f in source if str(f.id) in keys]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "flag_id": self.flag.id,
            "kind": self.kind,
            "route": self.route.value,
            "status": self.flag.status,
            "severity": self.flag.severity,
            "category": self.flag.category,
            "platform": self.item.platform,
            "account": self.item.account,
            "item_id": self.item.id,
            "item_kind": self.item.kind.value,
            "url": self.item.url,
            "author_role": (self.item.author.role.value if self.item.author.role else "unknown"),
            "created_at": self.item.created_at.isoformat(),
            "deleted": self.item_record.deleted_at is not None,
            "recipients": [s.staff_id for s in self.recipients],
            "findings": [
                {"rule_id": f.rule_id, "category": f.category, "severity": f.severity,
                 "score": f.score, "explanation": f.explanation, "evidence": f.evidence}
                for f in self.findings
            ],
            **({"note": self.note} if self.note else {}),
        }


def primary_route(routes: Collection[Route]) -> Route:
    """A person's most urgent route for a flag: the outbox message of that route delivers
    their one message about it (which carries everything they may see)."""
    return max(routes, key=lambda r: ROUTE_PRIORITY[r]) if routes else Route.record_only


def recipients_for(route: Route, account: str, registers: RegisterIndex,
                   facts: FlagFacts | None = None,
                   need_to_know: NeedToKnow | None = None) -> list[StaffMember]:
    """The people ``route`` reaches. With the flag's ``facts``: exactly need-to-know's answer
    (never a finding's subject); without (account-level messages): the account's current
    managers, or the DSL and deputies."""
    nt = need_to_know or NeedToKnow(registers)
    if facts is not None:
        out: list[StaffMember] = []
        findings: list[FindingFacts | None] = [f for f in facts.findings if f.route == route]
        for finding in findings or [None]:
            for person in nt.recipients(route, facts, finding):
                if person not in out:
                    out.append(person)
        return out
    if route == Route.dsl:
        return registers.safeguarding_contacts()
    if route in (Route.case_manager, Route.case_digest):
        return nt.case_managers()
    if route in (Route.account_managers, Route.digest):
        return [s for s in registers.managers(account) if s.active]
    return []


# The statements of a delivery, built once (their cache keys too): building a select with its
# comparisons cost more interpreter time per flag than running it.
# plain columns and updates go to the table directly (no ORM layer): the claim changes nothing
# else, and a delivery reads them before it changes anything
_OUTBOX_TABLE = m.Base.metadata.tables[m.OutboxMessage.__tablename__]
_OUTBOX = _OUTBOX_TABLE.c
_CLAIMABLE = (
    select(_OUTBOX.id)
    .where(_OUTBOX.delivered_at.is_(None), _OUTBOX.available_at <= bindparam("now"),
           or_(_OUTBOX.claimed_until.is_(None), _OUTBOX.claimed_until < bindparam("now")))
    .order_by(_OUTBOX.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_CLAIMABLE_ON_ROUTES = _CLAIMABLE.where(_OUTBOX.route.in_(bindparam("routes", expanding=True)))
_CLAIM = (update(_OUTBOX_TABLE).where(_OUTBOX.id.in_(bindparam("ids", expanding=True)))
          .values(claimed_by=bindparam("owner"), claimed_until=bindparam("until"),
                  claims=_OUTBOX.claims + 1))
# the message (locked by ``lock_message``) delivered: no unit-of-work flush for two columns
# a live sender's claims kept from running out (``_ClaimKeeper``): the messages of its batch it
# still holds and has not delivered; one being delivered is locked by its delivery (PostgreSQL)
# and skipped, since nobody can take it meanwhile anyway
_RENEW = (update(_OUTBOX_TABLE)
          .where(_OUTBOX.id.in_(
              select(_OUTBOX.id)
              .where(_OUTBOX.id.in_(bindparam("ids", expanding=True)),
                     _OUTBOX.claimed_by == bindparam("owner"), _OUTBOX.delivered_at.is_(None))
              .with_for_update(skip_locked=True)
              .scalar_subquery()))
          .values(claimed_until=bindparam("until")))
_DELIVERED = (update(_OUTBOX_TABLE).where(_OUTBOX.id == bindparam("message_id"))
              .values(delivered_at=bindparam("at"), attempts=_OUTBOX.attempts + 1))
_LOCK_MESSAGE = (select(m.OutboxMessage).where(m.OutboxMessage.id == bindparam("message_id"))
                 .with_for_update())
_OTHERS_TRIED = (
    select(_OUTBOX.id, _OUTBOX.claims)
    .where(_OUTBOX.flag_id == bindparam("flag_id"), _OUTBOX.id != bindparam("message_id"),
           _OUTBOX.delivered_at.is_(None), _OUTBOX.claims > 0)
)
_FLAG_ITEM = (
    select(m.Flag, m.ItemRecord, m.ItemVersion)
    .join(m.ItemRecord, m.ItemRecord.id == m.Flag.item_id)
    .join(m.ItemVersion, and_(m.ItemVersion.item_id == m.ItemRecord.id,
                              m.ItemVersion.version == m.ItemRecord.current_version))
    .where(m.Flag.id == bindparam("flag_id"))
)
_FINDINGS = (select(m.Finding).where(m.Finding.flag_id == bindparam("flag_id"))
             .order_by(m.Finding.severity.desc(), m.Finding.id))


def first_attempt(session: Session, message: m.OutboxMessage,
                  untried: Collection[int] = ()) -> bool:
    """True when nothing can have shown ``message``'s flag yet: this is the message's first
    claim, and every other undelivered message about the flag is unclaimed, or is in
    ``untried`` (claimed together with this one and not attempted yet). A delivered message
    recorded what it showed in the same transaction, so it leaves nothing to find."""
    if message.claims != 1 or message.flag_id is None:
        return False
    others = session.execute(_OTHERS_TRIED, {"flag_id": message.flag_id,
                                             "message_id": message.id}).all()
    return all(claims == 1 and other in untried for other, claims in others)


def load_flag(session: Session, flag_id: int
              ) -> tuple[m.Flag, list[m.Finding], Item, m.ItemRecord] | None:
    """A flag, its findings (strongest first), its item as it is now and the item's record, in
    two queries; None if there is no such flag."""
    row = session.execute(_FLAG_ITEM, {"flag_id": flag_id}).one_or_none()
    if row is None:
        return None
    flag, record, version = row
    findings = list(session.execute(_FINDINGS, {"flag_id": flag.id}).scalars())
    return flag, findings, Item.model_validate(version.data), record


def lock_message(session: Session, message_id: int) -> m.OutboxMessage | None:
    """The outbox message, locked for the rest of ``session``'s transaction (PostgreSQL)."""
    return session.execute(_LOCK_MESSAGE, {"message_id": message_id}).scalar_one_or_none()


def build_flag_view(session: Session, message: m.OutboxMessage, registers: RegisterIndex,
                    untried: Collection[int] = (), need_to_know: NeedToKnow | None = None
                    ) -> FlagView | None:
    """The flag of ``message`` as its audience may see it (``governance_bot.authz``)."""
    if message.flag_id is None:
        return None
    loaded = load_flag(session, message.flag_id)
    if loaded is None:
        return None
    flag, findings, item, record = loaded
    route = Route(message.route)
    nt = need_to_know or NeedToKnow(registers)
    facts = FlagFacts.from_records(flag, findings, item)
    audience = nt.audience(facts)
    mine = [e for e in audience.values() if route in e.routes]
    keys = {k for e in mine for k in e.finding_keys}
    if not mine:  # nobody to receive it: say what the route holds (the sink reports nobody)
        keys = {str(f.id) for f in findings if f.route == route.value}
    visible = [f for f in findings if str(f.id) in keys]
    notes = {e.note for e in mine if e.note}
    return FlagView(flag=flag, findings=visible, item=item,
                    item_record=record, route=route, kind=message.kind,
                    recipients=[e.staff for e in mine],
                    first_attempt=first_attempt(session, message, untried),
                    entitlements=mine, facts=facts, all_findings=findings,
                    note=sorted(notes)[0] if len(notes) == 1 else (
                        "Also referred elsewhere." if notes else None))


def _rebound(nt: NeedToKnow, registers: RegisterIndex) -> NeedToKnow:
    """The same rules over newer registers (the service reloads them while running)."""
    return NeedToKnow(registers, staff_concerns_to=nt.staff_concerns_to,
                      staff_concerns_alternate=nt.staff_concerns_alternate,
                      dsl_content=nt.dsl_content.value,
                      mask_learner_details=nt.mask_learner_details,
                      administrators=sorted(nt.administrators))


class Sink(Protocol):
    """Where notifications go (console, a JSON file, Slack)."""

    name: str

    def deliver(self, view: FlagView) -> None:
        """Deliver or raise DeliveryError; must be safe to call twice for the same view."""
        ...

    # optional: ``def flush(self) -> None``, called after each batch of deliveries (and on a
    # drain with nothing to deliver) for work the sink deferred; it must not raise


class _ClaimKeeper(Beat):
    """Renews a batch's claims every third of the lease, on a thread of its own, while the
    sender works through the batch: a sender that is alive but slow (Slack rate-limiting it or
    retrying, a busy machine) keeps the messages it claimed, and another sender (a replica, or
    ``ingest`` beside ``run``) takes them over only once it has died. Without this, on SQLite
    (no row locks) a second sender could claim a message whose delivery was under way and post
    the flag a second time.

    Claims are renewed on the drain's clock (``now``, which tests may simulate) moved on by the
    time the batch has taken so far."""

    def __init__(self, db: Database, owner: str, ids: list[int], lease: timedelta,
                 now: datetime):
        super().__init__(lease, "outbox-claims")
        self.db, self.owner, self.ids, self.now = db, owner, ids, now
        self._started = time.monotonic()

    def beat(self) -> bool:
        until = self.now + timedelta(seconds=time.monotonic() - self._started) + self.period
        try:
            with self.db.session() as session:
                session.execute(_RENEW, {"ids": self.ids, "owner": self.owner, "until": until})
        except SQLAlchemyError as exc:  # the database is busy or away: the next beat tries
            log.warning("outbox: claims not renewed now (%s)", type(exc).__name__)
        return True


class OutboxSender:
    def __init__(self, db: Database, sink: Sink, registers: RegisterIndex,
                 owner: str | None = None, lease_seconds: int = 120, max_backoff: int = 900,
                 on_delivered: Callable[[datetime, datetime], None] | None = None,
                 need_to_know: NeedToKnow | None = None):
        self.db = db
        self.sink = sink
        self.registers = registers
        # who may see what; None: the default rules over ``registers``
        self.need_to_know = need_to_know
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.lease = timedelta(seconds=lease_seconds)
        self.max_backoff = max_backoff
        # called with (item first seen, delivered) for the time-to-alert histogram
        self.on_delivered = on_delivered

    def _claim(self, now: datetime, limit: int, routes: set[str] | None) -> list[int]:
        with self.db.session() as session:
            params: dict[str, Any] = {"now": now, "limit": limit}
            if routes is None:
                query = _CLAIMABLE
            else:
                query, params["routes"] = _CLAIMABLE_ON_ROUTES, sorted(routes)
            ids = list(session.execute(query, params).scalars())
            if ids:
                session.execute(_CLAIM, {"ids": ids, "owner": self.owner,
                                         "until": now + self.lease})
            return ids

    def drain(self, now: datetime | None = None, limit: int = 100,
              routes: set[str] | None = None) -> tuple[int, int]:
        """Deliver what is due. Returns (delivered, failed)."""
        delivered = failed = 0
        while True:
            now_ = now or datetime.now(UTC)
            ids = self._claim(now_, limit, routes)
            if not ids and delivered + failed == 0:
                self._flush()  # nothing to deliver: still finish what an earlier drain left
            if not ids:
                return delivered, failed
            untried = set(ids)
            with _ClaimKeeper(self.db, self.owner, ids, self.lease, now_):
                for message_id in ids:
                    untried.discard(message_id)
                    if self._deliver_one(message_id, now_, untried):
                        delivered += 1
                    else:
                        failed += 1
            self._flush()
            if len(ids) < limit or failed:
                return delivered, failed

    def _flush(self) -> None:
        flush = getattr(self.sink, "flush", None)
        if flush is None:
            return
        try:
            flush()
        except Exception:  # whatever it deferred stays marked for the next drain
            log.exception("outbox: finishing deferred work of %s failed", self.sink.name)

    def _deliver_one(self, message_id: int, now: datetime,
                     untried: Collection[int] = ()) -> bool:
        try:
            return self._deliver_in_transaction(message_id, now, untried)
        except _TransactionLost as lost:
            # the sink's own database work failed (e.g. an escalation recorded the same Slack
            # message a moment earlier): that transaction is gone, so the attempt is recorded in
            # a new one; a delivery made meanwhile by someone else stands
            with self.db.session() as session:
                message = lock_message(session, message_id)
                if message is None or message.delivered_at is not None:
                    return True
                if message.claimed_by != self.owner:
                    return True
                self._failed(message, now, lost.reason)
                return False

    def _failed(self, message: m.OutboxMessage, now: datetime, reason: str) -> None:
        message.attempts += 1
        message.last_error = reason[:500]
        backoff = min(self.max_backoff, 2 ** min(message.attempts, 10))
        # from the drain's own time, so a simulated clock drives the backoff too
        message.available_at = now + timedelta(seconds=backoff)
        message.claimed_by = message.claimed_until = None
        log.warning("outbox: delivery of message %d to %s failed (attempt %d), "
                    "retrying in %ds: %s", message.id, self.sink.name, message.attempts,
                    backoff, reason.partition(":")[0])

    def _deliver_in_transaction(self, message_id: int, now: datetime,
                                untried: Collection[int]) -> bool:
        with self.db.session() as session:
            # locked while it is delivered: a replica whose claim on it has meanwhile expired
            # skips it (SKIP LOCKED) instead of delivering it a second time
            message = lock_message(session, message_id)
            if message is None or message.delivered_at is not None:
                return True
            if message.claimed_by != self.owner:
                return True  # someone else's now
            nt = self.need_to_know
            if nt is None or nt.registers is not self.registers:
                nt = NeedToKnow(self.registers) if nt is None else _rebound(nt, self.registers)
            view = build_flag_view(session, message, self.registers, untried, nt)
            try:
                if view is not None:
                    self.sink.deliver(view)
            except SQLAlchemyError as exc:
                orig = getattr(exc, "orig", None)
                raise _TransactionLost(f"{type(exc).__name__}: {orig or 'database error'}"
                                       ) from exc
            except Exception as exc:  # a sink failure of any kind: retry later, lose nothing
                self._failed(message, now, f"{type(exc).__name__}: {exc}")
                return False
            delivered_at = datetime.now(UTC)
            session.execute(_DELIVERED, {"message_id": message.id, "at": delivered_at})
            if view is not None and self.on_delivered is not None:
                self.on_delivered(view.item_record.first_seen_at, delivered_at)
            return True

    def pending(self) -> int:
        with self.db.session() as session:
            return len(session.execute(
                select(m.OutboxMessage.id).where(m.OutboxMessage.delivered_at.is_(None))
            ).all())
