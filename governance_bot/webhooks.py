"""Webhook deliveries: the replay guard and the durable queue in one table.

A connector that has verified a request (its signature, or Teams' ``clientState``) answers with a
*replay key* unique to the delivery (a hash of the body, or Slack's ``event_id``) and what the
delivery carried: items parsed already, and/or *deferred* records whose reading needs platform
calls (the learner Slack's ``users.info``, Graph's message reads). :meth:`Inbox.accept` then, in
**one transaction**, claims the key and stores what the delivery carried (encrypted like every
archived item) in ``webhook_deliveries``:

* the first claim of a key inserts the row (primary key: a hash of the connector name and the
  key) valid for ``[security] webhook_replay_window_hours``; the insert is ``ON CONFLICT DO
  NOTHING``, so when several replicas receive the same delivery at once exactly one wins;
* a later claim of the same key within the window fails: the delivery is **acknowledged with the
  connector's normal success answer and not processed again** (refusing it would only make the
  platform retry, and warn). A replay by someone else gains nothing either way;
* once accepted, the delivery is the service's to finish: its items are archived and checked on
  worker threads, and the row is marked processed (and its payload removed) only then. A crash
  (a SIGKILL, a power cut) leaves it unprocessed; :meth:`Inbox.claim_due` hands it out again at
  the next start or within seconds on another replica (its claim runs out; a claim by a dead
  process on the same host is taken at once). A failed attempt (the platform API down for a
  deferred read) is tried again later with a growing pause. So a platform's "received" is never
  followed by a lost item, and its retry of a delivery already stored is answered without
  storing it twice;
* processed rows are deleted once their window has passed; unprocessed ones never are.

Past the window a replayed body would be processed again, which is harmless: the archive keys
items by platform id and content hash, never lets an older body replace a newer version
(governance_bot/storage/archive.py), and finding fingerprints stop a second flag.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from governance_bot.items import Item
from governance_bot.leases import owner_is_dead
from governance_bot.storage.db import Database
from governance_bot.storage.dp_models import WebhookDelivery

__all__ = ["Delivery", "Inbox", "ReplayGuard", "body_key", "delivery_digest"]

log = logging.getLogger(__name__)

# pauses between attempts at a delivery that failed (then the last one, for ever)
RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0)


def delivery_digest(connector: str, key: str) -> str:
    return hashlib.sha256(f"{connector}\0{key}".encode()).hexdigest()


def body_key(body: bytes) -> str:
    """The replay key of a delivery identified by its body (Meta, WhatsApp, Teams): a hash of the
    bytes, so no spelling of a header (e.g. the signature's hex in upper case) makes it new."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(slots=True)
class Delivery:
    """An accepted delivery to process: its row's digest, its connector, what it carried."""

    digest: str
    connector: str
    items: list[Item] = field(default_factory=list)
    deferred: list[Any] = field(default_factory=list)
    attempts: int = 0
    problems: list[str] = field(default_factory=list)  # items that could not be read back


class Inbox:
    """Accepted webhook deliveries in the database, shared by every replica."""

    def __init__(self, db: Database, window: timedelta, owner: str = "",
                 lease: timedelta = timedelta(seconds=60),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.window = window
        self.owner = owner
        self.lease = lease
        self.clock = clock

    # --- accepting -----------------------------------------------------------------------------
    def accept(self, connector: str, key: str, items: Sequence[Item] = (),
               deferred: Sequence[Any] = ()) -> Delivery | None:
        """Claim ``key`` and store the delivery, in one transaction; the :class:`Delivery` to
        process (claimed by this replica), or None if the key was accepted before, within the
        window."""
        digest = delivery_digest(connector, key)
        now = self.clock()
        pending = bool(items or deferred)
        payload = {"items": [i.model_dump(mode="json") for i in items],
                   "deferred": list(deferred)} if pending else None
        values: dict[str, Any] = {
            "digest": digest, "connector": connector, "received_at": now,
            "expires_at": now + self.window, "payload": payload, "attempts": 0,
            "processed_at": None if pending else now,
            "claimed_by": self.owner if pending else None,
            "claimed_until": now + self.lease if pending else None,
        }
        dialect = self.db.engine.dialect.name
        try:
            with self.db.session() as session:
                # expired rows go, but never one still waiting to be processed
                session.execute(delete(WebhookDelivery).where(
                    WebhookDelivery.expires_at <= now, WebhookDelivery.processed_at.is_not(None)))
                if dialect in ("sqlite", "postgresql"):
                    from sqlalchemy.dialects import postgresql, sqlite

                    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
                    table: Any = WebhookDelivery.__table__
                    # through the column's type, so the payload is encrypted like the archive
                    stmt: Any = insert(table).values(**values).on_conflict_do_nothing(
                        index_elements=["digest"]).returning(table.c.digest)
                    claimed = session.execute(stmt).first() is not None  # a row: inserted
                else:  # another database: the primary key still decides
                    session.add(WebhookDelivery(**values))
                    session.flush()
                    claimed = True
        except IntegrityError:
            claimed = False
        if not claimed:
            log.info("%s: a webhook delivery already accepted came again: acknowledged, not "
                     "processed", connector)
            return None
        return Delivery(digest, connector, list(items), list(deferred))

    # --- processing ----------------------------------------------------------------------------
    def claim_due(self, limit: int = 50) -> list[Delivery]:
        """Unprocessed deliveries nobody is working on (their claim ran out, or its holder is a
        dead process on this host), claimed for this replica."""
        now = self.clock()
        with self.db.session() as session:
            rows = session.execute(
                select(WebhookDelivery.digest, WebhookDelivery.claimed_by,
                       WebhookDelivery.claimed_until)
                .where(WebhookDelivery.processed_at.is_(None))
                .order_by(WebhookDelivery.received_at).limit(limit * 4)).all()
        due = [(digest, holder) for digest, holder, until in rows
               if until is None or until < now or (holder != self.owner and
                                                   owner_is_dead(holder))]
        out = []
        for digest, holder in due[:limit]:
            with self.db.session() as session:
                taken = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.digest == digest,
                           WebhookDelivery.processed_at.is_(None),
                           or_(WebhookDelivery.claimed_by.is_(None),
                               WebhookDelivery.claimed_by == holder))
                    .values(claimed_by=self.owner, claimed_until=now + self.lease)
                    .execution_options(synchronize_session=False)).rowcount == 1  # type: ignore[attr-defined]
                if not taken:
                    continue  # another replica took it meanwhile
                row = session.get(WebhookDelivery, digest)
                assert row is not None
                out.append(self._delivery(row))
        return out

    @staticmethod
    def _delivery(row: WebhookDelivery) -> Delivery:
        payload = row.payload or {}
        items, problems = [], []
        for n, data in enumerate(payload.get("items") or []):
            try:
                items.append(Item.model_validate(data))
            except ValueError as exc:  # cannot happen for what accept() stored; never fatal
                problems.append(f"stored item {n + 1}: {type(exc).__name__}")
        return Delivery(row.digest, row.connector, items, list(payload.get("deferred") or []),
                        row.attempts, problems)

    def renew(self, digest: str) -> None:
        """Keep working on a delivery whose processing is slow (a platform API that hangs)."""
        with self.db.session() as session:
            session.execute(update(WebhookDelivery).where(
                WebhookDelivery.digest == digest, WebhookDelivery.claimed_by == self.owner)
                .values(claimed_until=self.clock() + self.lease)
                .execution_options(synchronize_session=False))

    def done(self, digest: str) -> None:
        """Its items are archived and checked: keep only the digest (the replay guard)."""
        with self.db.session() as session:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.digest == digest)
                            .values(processed_at=self.clock(), payload=None, claimed_by=None,
                                    claimed_until=None, last_error=None)
                            .execution_options(synchronize_session=False))

    def retry_later(self, digest: str, error: str) -> timedelta:
        """An attempt failed: try again after a pause that grows with the attempts."""
        with self.db.session() as session:
            row = session.get(WebhookDelivery, digest)
            if row is None or row.processed_at is not None:
                return timedelta(0)
            delay = timedelta(seconds=RETRY_DELAYS[min(row.attempts, len(RETRY_DELAYS) - 1)])
            row.attempts += 1
            row.last_error = error[:2000]
            row.claimed_by = None
            row.claimed_until = self.clock() + delay
            return delay

    def pending(self) -> int:
        from sqlalchemy import func

        with self.db.session() as session:
            return int(session.execute(select(func.count()).select_from(WebhookDelivery).where(
                WebhookDelivery.processed_at.is_(None))).scalar_one())

    def failing(self) -> list[tuple[str, int, str | None]]:
        """(connector, attempts, last error) of the deliveries that failed at least twice."""
        with self.db.session() as session:
            return [(c, a, e) for c, a, e in session.execute(
                select(WebhookDelivery.connector, WebhookDelivery.attempts,
                       WebhookDelivery.last_error)
                .where(and_(WebhookDelivery.processed_at.is_(None),
                            WebhookDelivery.attempts >= 2))).all()]


class ReplayGuard(Inbox):
    """The replay check alone (a delivery processed on the spot): ``claim`` then, if the
    processing failed, ``release`` so that the platform's retry gets through."""

    def claim(self, connector: str, key: str) -> bool:
        """True if this delivery is new (and now claimed); False if it was already accepted
        within the window."""
        return self.accept(connector, key) is not None

    def release(self, connector: str, key: str) -> None:
        with self.db.session() as session:
            session.execute(delete(WebhookDelivery).where(
                WebhookDelivery.digest == delivery_digest(connector, key)))
