"""The replay guard for inbound webhooks, shared by every connector and every replica.

Meta's ``X-Hub-Signature-256`` (and WhatsApp's, which is the same) signs the body but carries no
timestamp, so a captured delivery stays valid for ever. A connector that has checked a request's
signature puts a *replay key* on its ``WebhookResponse`` (for Meta: the signature itself, which is
unique to the body); the service then **claims** the key here before processing the items:

* the first claim of a key inserts a row in ``webhook_deliveries`` (primary key: a hash of the
  connector name and the key) valid for ``[security] webhook_replay_window_hours``; the insert is
  ``ON CONFLICT DO NOTHING``, so when several replicas receive the same delivery at once exactly
  one of them wins, through the database;
* a later claim of the same key within the window fails: the delivery is **acknowledged with the
  connector's normal success answer (200) and not processed again**. Meta retries a delivery
  that was not acknowledged, and keeps failing subscriptions under review: refusing a duplicate
  would make it retry (and warn) for nothing, while acknowledging it costs nothing. A replay by
  someone else gains nothing either way;
* if processing a claimed delivery fails, the claim is released, so the platform's retry is
  processed;
* expired rows are deleted on the next claim.

Past the window a replayed body would be processed again, which is harmless: the archive keys
items by platform id and content hash (an identical item is "unchanged") and finding
fingerprints stop a second flag.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from governance_bot.storage.db import Database
from governance_bot.storage.dp_models import WebhookDelivery

__all__ = ["ReplayGuard", "delivery_digest"]

log = logging.getLogger(__name__)


def delivery_digest(connector: str, key: str) -> str:
    return hashlib.sha256(f"{connector}\0{key}".encode()).hexdigest()


class ReplayGuard:
    def __init__(self, db: Database, window: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.window = window
        self.clock = clock

    def claim(self, connector: str, key: str) -> bool:
        """True if this delivery is new (and now claimed); False if it was already accepted
        within the window."""
        digest = delivery_digest(connector, key)
        now = self.clock()
        values: dict[str, Any] = {"digest": digest, "connector": connector, "received_at": now,
                                  "expires_at": now + self.window}
        dialect = self.db.engine.dialect.name
        try:
            with self.db.session() as session:
                session.execute(delete(WebhookDelivery).where(WebhookDelivery.expires_at <= now))
                if dialect in ("sqlite", "postgresql"):
                    from sqlalchemy.dialects import postgresql, sqlite

                    insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
                    table: Any = WebhookDelivery.__table__
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
        return claimed

    def release(self, connector: str, key: str) -> None:
        """Forget a claim whose processing failed, so that the platform's retry is processed."""
        with self.db.session() as session:
            session.execute(delete(WebhookDelivery).where(
                WebhookDelivery.digest == delivery_digest(connector, key)))
