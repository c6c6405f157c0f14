"""Leases: one replica at a time polls a connector (or runs a scheduled job).

A lease is a row with an owner and an expiry, taken with a single conditional UPDATE, which is
atomic on SQLite and PostgreSQL alike. The holder renews it while it works (a heartbeat, see
:class:`Heartbeat`), so the expiry can be short whatever the job's interval.

Owners are named by :func:`owner_identity`: host, boot and process start time as well as the PID.
A replica restarted after a crash (a SIGKILL, an OOM kill) therefore recognises the leases its
dead predecessor held on the same machine and takes them at once (:func:`owner_is_dead`), instead
of waiting for them to run out; a lease held by another machine's replica is taken only once it
has run out (it stops being renewed within a heartbeat when that replica dies).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Self

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = ["Heartbeat", "acquire", "owner_identity", "owner_is_dead", "release"]

log = logging.getLogger(__name__)


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip().replace("-", "")[:12]
    except OSError:
        return "noboot"


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/PID/stat field 22), or None if no
    such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


def owner_identity(pid: int | None = None) -> str:
    """``host:boot.start:pid`` for this process: unique across restarts and reboots, and enough
    for another process on the same host to tell whether the owner still runs."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{_boot_id()}.{_start_time(pid) or '0'}:{pid}"


def owner_is_dead(owner: str | None) -> bool:
    """True only when ``owner`` was a process on this host that is certainly gone (the machine
    rebooted, or no process with that PID and start time runs). Owners on other hosts, and
    owners named the old way (``host:pid``), are never judged dead here: their leases run out."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname() or "." not in parts[1]:
        return False
    boot, _, start = parts[1].partition(".")
    try:
        pid = int(parts[2])
    except ValueError:
        return False
    if boot != _boot_id():
        return True  # started before this machine's last boot
    return _start_time(pid) != start


def acquire(db: Database, name: str, owner: str, ttl: timedelta, now: datetime) -> bool:
    """Take or renew the lease ``name`` for ``owner`` until ``now + ttl``; False if another
    owner holds an unexpired lease (a dead owner on this host does not count)."""
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
            state = session.get(m.ConnectorState, name)
            if state is not None:
                holder = state.lease_owner
                if not owner_is_dead(holder):
                    return False
                # the holder died on this machine (we may be its restart): take it now, unless
                # another replica did so meanwhile (the owner is in the condition)
                taken = session.execute(
                    update(m.ConnectorState)
                    .where(m.ConnectorState.name == name, m.ConnectorState.lease_owner == holder)
                    .values(lease_owner=owner, lease_until=now + ttl)
                    .execution_options(synchronize_session=False)
                ).rowcount == 1  # type: ignore[attr-defined]
                if taken:
                    log.info("lease %s: taken over from %s, which is no longer running", name,
                             holder)
                return taken
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


class Beat:
    """Calls :meth:`beat` every third of ``period`` on a thread of its own for as long as the
    ``with`` block runs: what keeps a lease or a claim alive while slow work goes on. A beat
    that returns False ends the thread."""

    def __init__(self, period: timedelta, name: str) -> None:
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = max(self.period.total_seconds() / 3, 0.05)
        while not self._stop.wait(interval):
            if self.beat() is False:
                return

    def beat(self) -> bool:
        raise NotImplementedError


class Heartbeat(Beat):
    """Renews a held lease every ``ttl / 3`` on a thread of its own while a job runs, so a lease
    can be short (a dead holder is replaced quickly) however long the job takes. ``lost`` is set
    if another owner took the lease meanwhile (the job should stop without saving)."""

    def __init__(self, db: Database, name: str, owner: str, ttl: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        super().__init__(ttl, f"lease:{name}")
        self.db, self.name, self.owner, self.ttl, self.clock = db, name, owner, ttl, clock
        self.lost = threading.Event()

    def beat(self) -> bool:
        try:
            if not acquire(self.db, self.name, self.owner, self.ttl, self.clock()):
                self.lost.set()
                return False
        except SQLAlchemyError as exc:  # the database is away: the next beat tries again
            log.warning("lease %s: could not renew (%s)", self.name, type(exc).__name__)
        return True
