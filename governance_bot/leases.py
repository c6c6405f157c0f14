"""Leases: one replica at a time polls a connector (or runs a scheduled job).

A lease is a row with an owner and an expiry, taken with a single conditional UPDATE, which is
atomic on SQLite and PostgreSQL alike; a replica that dies simply lets its lease run out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = ["acquire", "release"]


def acquire(db: Database, name: str, owner: str, ttl: timedelta, now: datetime) -> bool:
    """Take or renew the lease ``name`` for ``owner`` until ``now + ttl``; False if another
    owner holds an unexpired lease."""
    for _ in range(2):
        with db.session() as session:
            result = session.execute(
                update(m.ConnectorState)
                .where(m.ConnectorState.name == name,
                       or_(m.ConnectorState.lease_until.is_(None),
                           m.ConnectorState.lease_until < now,
                           m.ConnectorState.lease_owner == owner))
                .values(lease_owner=owner, lease_until=now + ttl)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return True
            if session.get(m.ConnectorState, name) is not None:
                return False
        try:
            with db.session() as session:
                session.add(m.ConnectorState(name=name))
        except IntegrityError:
            pass  # another replica created it first; try the update again
    return False


def release(db: Database, name: str, owner: str) -> None:
    with db.session() as session:
        session.execute(
            update(m.ConnectorState)
            .where(m.ConnectorState.name == name, m.ConnectorState.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
