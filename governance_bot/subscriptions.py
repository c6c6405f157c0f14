"""Webhook subscriptions the service keeps alive itself: Microsoft Graph change notifications for
the Teams connector.

Policy duty: staff-learner messages are checked on every channel, promptly (P1 "What we expect of
our staff", P2 "Communicating with students"). Polling alone reads Teams every few minutes;
change notifications bring a message in seconds, but a Graph subscription expires (at most three
days for chatMessage) and Graph may remove it. This module makes sure none lapses unnoticed:

* ``sync`` (at service start, and then every ``check_interval``) creates the subscriptions the
  connector needs (one per listed staff member's chats, one per listed channel), renews those
  past half their lifetime, re-creates any Graph no longer has (404 on renewal) and deletes those
  for users or channels no longer configured;
* ``handle`` acts on Graph's lifecycle notifications: ``reauthorizationRequired`` reauthorises
  the subscription (or re-creates it if Graph has dropped it), ``subscriptionRemoved`` re-creates
  it, and both that and ``missed`` ask for a **catch-up poll** (the delta query reads everything
  since the last poll, so nothing sent while notifications were not flowing is missed).

The subscription ids and expiries live in the ``connector_state`` row ``job:subscriptions:<name>``
(its ``cursor`` column; no table of its own), which is also the lease that lets one replica at a
time change them (governance_bot/service.py). A failure (a missing permission, a notification
URL Graph cannot reach) is logged as an error naming the account, the permission or the URL;
the connector keeps polling meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from connectors.base import Connector, ConnectorError, SubscriptionEvent
from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = [
    "STATE_PREFIX",
    "SubscribingConnector",
    "SubscriptionManager",
    "SubscriptionReport",
    "managers_for",
    "state_name",
]

log = logging.getLogger(__name__)

STATE_PREFIX = "job:subscriptions:"


def state_name(connector: str) -> str:
    """The connector_state row (and lease) holding a connector's subscriptions."""
    return f"{STATE_PREFIX}{connector}"


class _Subscription(Protocol):
    id: str
    resource: str
    expires: datetime


@runtime_checkable
class SubscribingConnector(Protocol):
    """A connector whose webhook needs subscriptions the service creates and renews (Teams)."""

    @property
    def name(self) -> str: ...

    @property
    def account(self) -> str: ...

    @property
    def settings(self) -> Any: ...

    def subscription_resources(self) -> list[str]: ...

    def create_subscription(self, resource: str, notification_url: str, expires: datetime
                            ) -> _Subscription: ...

    def renew_subscription(self, subscription_id: str, resource: str, expires: datetime
                           ) -> _Subscription | None: ...

    def reauthorize_subscription(self, subscription_id: str, resource: str) -> bool: ...

    def delete_subscription(self, subscription_id: str, resource: str) -> None: ...


@dataclass(slots=True)
class SubscriptionReport:
    created: list[str] = field(default_factory=list)  # resources
    renewed: list[str] = field(default_factory=list)
    reauthorized: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # notifications may have been lost: poll now rather than at the next interval
    catch_up: bool = False


class SubscriptionManager:
    def __init__(self, db: Database, connector: SubscribingConnector, notification_url: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.db = db
        self.connector = connector
        self.notification_url = notification_url
        self.clock = clock

    @property
    def name(self) -> str:
        return self.connector.name

    @property
    def lifetime(self) -> timedelta:
        return timedelta(minutes=int(self.connector.settings.subscription_minutes))

    @property
    def check_interval(self) -> timedelta:
        """How often ``sync`` runs: a quarter of the lifetime, at most hourly, so a subscription
        is renewed at half its life with time to spare for a retry or two."""
        return min(timedelta(hours=1), self.lifetime / 4)

    # --- stored state -------------------------------------------------------------------------
    def load(self) -> dict[str, dict[str, Any]]:
        """resource -> {"id", "expires" (ISO 8601), "url"}."""
        with self.db.session() as session:
            state = session.get(m.ConnectorState, state_name(self.name))
            cursor = dict(state.cursor or {}) if state is not None else {}
        subs = cursor.get("subscriptions")
        return {str(k): dict(v) for k, v in subs.items()} if isinstance(subs, dict) else {}

    def _save(self, subs: dict[str, dict[str, Any]], problems: list[str]) -> None:
        with self.db.session() as session:
            state = session.get(m.ConnectorState, state_name(self.name))
            if state is None:
                state = m.ConnectorState(name=state_name(self.name))
                session.add(state)
            state.cursor = {"subscriptions": subs}
            state.last_poll_at = self.clock()
            state.last_error = "\n".join(problems) or None

    def _last_problems(self) -> set[str]:
        with self.db.session() as session:
            state = session.get(m.ConnectorState, state_name(self.name))
            text = state.last_error if state is not None else None
        return set(text.splitlines()) if text else set()

    # --- Graph calls, recorded ----------------------------------------------------------------
    def _record(self, subs: dict[str, dict[str, Any]], sub: _Subscription) -> None:
        subs[sub.resource] = {"id": sub.id, "expires": sub.expires.astimezone(UTC).isoformat(),
                              "url": self.notification_url}

    def _create(self, subs: dict[str, dict[str, Any]], resource: str,
                report: SubscriptionReport) -> None:
        sub = self.connector.create_subscription(resource, self.notification_url,
                                                 self.clock() + self.lifetime)
        self._record(subs, sub)
        report.created.append(resource)
        log.info("%s: subscribed to change notifications for %s (subscription %s, until %s)",
                 self.name, resource, sub.id, sub.expires.isoformat())

    def _renew_or_recreate(self, subs: dict[str, dict[str, Any]], resource: str,
                           report: SubscriptionReport) -> None:
        entry = subs[resource]
        sub = self.connector.renew_subscription(str(entry["id"]), resource,
                                                self.clock() + self.lifetime)
        if sub is not None:
            self._record(subs, sub)
            report.renewed.append(resource)
            return
        log.warning("%s: Graph no longer has subscription %s for %s; creating a new one and "
                    "catching up by polling", self.name, entry["id"], resource)
        del subs[resource]
        report.catch_up = True
        self._create(subs, resource, report)

    # --- the two entry points -----------------------------------------------------------------
    def sync(self, renew_all: bool = False) -> SubscriptionReport:
        """Create missing subscriptions, renew those past half their life (all of them with
        ``renew_all``: at start, which also finds any Graph removed while the service was down),
        re-create those Graph lost, and delete those no longer configured."""
        report = SubscriptionReport()
        subs = self.load()
        wanted = self.connector.subscription_resources()
        for resource in [r for r in subs if r not in wanted
                         or subs[r].get("url") != self.notification_url]:
            self._attempt(report, self._remove, subs, resource)
        due = self.clock() + self.lifetime / 2
        for resource in wanted:
            entry = subs.get(resource)
            if entry is None:
                self._attempt(report, self._create, subs, resource)
            elif renew_all or _expiry(entry) <= due:
                self._attempt(report, self._renew_or_recreate, subs, resource)
        self._finish(subs, report)
        return report

    def handle(self, events: Iterable[SubscriptionEvent]) -> SubscriptionReport:
        """Act on Graph's lifecycle notifications."""
        report = SubscriptionReport()
        subs = self.load()
        by_id = {str(v.get("id")): r for r, v in subs.items()}
        unknown_removed = False
        for event in events:
            resource = by_id.get(event.subscription_id)
            if event.event == "missed":
                report.catch_up = True
            elif event.event == "subscriptionRemoved":
                report.catch_up = True
                if resource is None:
                    unknown_removed = True
                    continue
                by_id.pop(event.subscription_id, None)  # the same notice twice: one new one
                self._attempt(report, self._replace, subs, resource)
            elif event.event == "reauthorizationRequired":
                if resource is None:
                    log.info("%s: reauthorisation asked for subscription %s, which this service "
                             "did not create; left alone", self.name, event.subscription_id)
                    continue
                self._attempt(report, self._reauthorize, subs, resource)
            else:
                log.warning("%s: unknown Graph lifecycle notification %r for subscription %s",
                            self.name, event.event, event.subscription_id)
        self._finish(subs, report)
        if unknown_removed:
            # a subscription we had lost track of: make sure every resource has one
            again = self.sync()
            report.created += again.created
            report.problems += again.problems
        return report

    def remove_all(self) -> SubscriptionReport:
        """Delete every subscription this service made for the connector (`connectors
        unsubscribe`)."""
        report = SubscriptionReport()
        subs = self.load()
        for resource in list(subs):
            self._attempt(report, self._remove, subs, resource)
        self._finish(subs, report)
        return report

    # --- helpers ------------------------------------------------------------------------------
    def _reauthorize(self, subs: dict[str, dict[str, Any]], resource: str,
                     report: SubscriptionReport) -> None:
        if self.connector.reauthorize_subscription(str(subs[resource]["id"]), resource):
            report.reauthorized.append(resource)
            return
        del subs[resource]  # Graph dropped it meanwhile
        report.catch_up = True
        self._create(subs, resource, report)

    def _replace(self, subs: dict[str, dict[str, Any]], resource: str,
                 report: SubscriptionReport) -> None:
        """A new subscription for one Graph says it removed. The old one is deleted first (Graph
        answers 404 when it really is gone), so a forged notice cannot leave two running."""
        old = subs.pop(resource)
        try:
            self.connector.delete_subscription(str(old["id"]), resource)
        except ConnectorError as exc:
            log.info("%s: could not delete subscription %s: %s", self.name, old["id"], exc)
        self._create(subs, resource, report)

    def _remove(self, subs: dict[str, dict[str, Any]], resource: str,
                report: SubscriptionReport) -> None:
        self.connector.delete_subscription(str(subs[resource]["id"]), resource)
        del subs[resource]
        report.removed.append(resource)

    def _attempt(self, report: SubscriptionReport,
                 action: Callable[[dict[str, dict[str, Any]], str, SubscriptionReport], None],
                 subs: dict[str, dict[str, Any]], resource: str) -> None:
        try:
            action(subs, resource, report)
        except ConnectorError as exc:  # one resource failing never stops the others
            report.problems.append(str(exc))

    def _finish(self, subs: dict[str, dict[str, Any]], report: SubscriptionReport) -> None:
        before = self._last_problems()
        for problem in report.problems:
            # an error the first time; repeated every check until fixed, but quieter
            log.log(logging.WARNING if problem in before else logging.ERROR, "%s", problem)
        self._save(subs, report.problems)


def _expiry(entry: dict[str, Any]) -> datetime:
    try:
        when = datetime.fromisoformat(str(entry.get("expires")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)  # unreadable: renew now
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def managers_for(db: Database, connectors: Iterable[Connector], public_url: str | None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 ) -> dict[str, SubscriptionManager]:
    """A manager for each connector that needs subscriptions and has ``subscribe`` on; none
    without ``[service] public_url`` (said once in the log)."""
    wanted = [c for c in connectors if isinstance(c, SubscribingConnector)
              and getattr(c.settings, "subscribe", False)]
    if not wanted:
        return {}
    if not public_url:
        for c in wanted:
            log.info("%s: change notifications are off until [service] public_url is set to the "
                     "service's https:// address; new messages are read by polling every %s s",
                     c.name, c.settings.poll_interval_seconds)
        return {}
    base = public_url.rstrip("/")
    return {c.name: SubscriptionManager(db, c, f"{base}/webhooks/{quote(c.name, safe='')}",
                                        clock)
            for c in wanted}
