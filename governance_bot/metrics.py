"""Prometheus metrics for ``/metrics``: flags by category and status, outbox depth, poll lag per
connector (read from the database at scrape time, so every replica reports the same truth) and
the time-to-alert histogram (item first seen -> notification accepted by the sink), observed by
the outbox sender in this process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _DatabaseCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        flags = GaugeMetricFamily("governance_bot_flags", "Flags by category and status",
                                  labels=["category", "status", "severity"])
        outbox = GaugeMetricFamily("governance_bot_outbox_pending",
                                   "Notifications waiting to be delivered", labels=["route"])
        lag = GaugeMetricFamily("governance_bot_poll_lag_seconds",
                                "Seconds since each connector was last polled",
                                labels=["connector"])
        errors = GaugeMetricFamily("governance_bot_connector_error",
                                   "1 if the connector's last poll failed", labels=["connector"])
        now = datetime.now(UTC)
        with self.db.session() as session:
            for category, status, severity, count in session.execute(
                select(m.Flag.category, m.Flag.status, m.Flag.severity, func.count())
                .group_by(m.Flag.category, m.Flag.status, m.Flag.severity)
            ):
                flags.add_metric([category, status, str(severity)], count)
            for route, count in session.execute(
                select(m.OutboxMessage.route, func.count())
                .where(m.OutboxMessage.delivered_at.is_(None)).group_by(m.OutboxMessage.route)
            ):
                outbox.add_metric([route], count)
            for state in session.execute(select(m.ConnectorState)).scalars():
                if state.name.startswith("job:"):
                    continue
                if state.last_poll_at is not None:
                    lag.add_metric([state.name], (now - state.last_poll_at).total_seconds())
                errors.add_metric([state.name], 1.0 if state.last_error else 0.0)
        yield from (flags, outbox, lag, errors)


class Metrics:
    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_DatabaseCollector(db))
        self.time_to_alert = Histogram(
            "governance_bot_time_to_alert_seconds",
            "From an item first seen to its notification accepted by the sink",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=self.registry,
        )

    def observe_alert(self, first_seen: datetime, delivered: datetime) -> None:
        self.time_to_alert.observe(max(0.0, (delivered - first_seen).total_seconds()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
