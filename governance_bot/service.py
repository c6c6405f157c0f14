"""``governance-bot run``: the long-running service.

APScheduler polls each connector at its own interval and drains the outbox; an HTTP server
(uvicorn + Starlette) serves ``/healthz`` and each connector's webhook at ``/webhooks/<name>``.
With ``[service] public_url`` set, the Teams connectors' Graph subscriptions are created at start,
renewed before they expire and re-created after Graph's lifecycle notifications, once across
replicas (governance_bot/subscriptions.py).
SIGTERM or Ctrl-C stops polling, lets running jobs finish and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.base import (
    Connector,
    ConnectorError,
    FatalError,
    SubscriptionEvent,
    WebhookRequest,
)
from governance_bot import leases
from governance_bot.access_audit.cycle import AccessAudit
from governance_bot.ingest import IngestWorker
from governance_bot.items import Item
from governance_bot.metrics import CONTENT_TYPE, Metrics
from governance_bot.pipeline import ScanReport
from governance_bot.runtime import Runtime, freeze_startup_objects
from governance_bot.subscriptions import SubscriptionManager, managers_for, state_name
from governance_bot.webhooks import ReplayGuard

__all__ = ["Service"]

log = logging.getLogger(__name__)

WEBHOOK_BATCH = 64  # items per pipeline call when webhook deliveries queue up


class LeaseLost(Exception):
    """This replica's polling lease was taken over by another replica during a scan."""


class Service:
    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.metrics = Metrics(runtime.db)
        self.slack: Any = None
        if runtime.config.delivery.sink == "slack":
            from governance_bot.slack.service import SlackService

            self.slack = SlackService(runtime)
            self.sender = runtime.sender(self.slack.sink)
        else:
            self.sender = runtime.sender()
        self.sender.on_delivered = self.metrics.observe_alert
        self._lock = threading.Lock()  # one pipeline writer at a time in this process
        self.paused: dict[str, str] = {}
        # Teams' Graph subscriptions, kept alive by the service ([service] public_url)
        self.subscriptions: dict[str, SubscriptionManager] = managers_for(
            runtime.db, runtime.connectors, runtime.config.service.public_url)
        self.access_audit = AccessAudit(runtime.config, runtime.db, runtime.registers,
                                        connectors=runtime.connectors)
        if self.slack is not None:  # the questions and the summary go to Slack
            from governance_bot.slack.access_audit import (
                SlackAccessAuditNotifier,
                register_access_audit,
            )

            notifier = SlackAccessAuditNotifier(self.slack.bot)
            self.access_audit.notifier = notifier
            register_access_audit(self.slack.app, self.slack.bot, self.access_audit, notifier)
        self.replay_guard = ReplayGuard(runtime.db, timedelta(
            hours=runtime.config.security.webhook_replay_window_hours))
        # webhook items: batched on one worker thread, off the HTTP event loop
        self.ingest = IngestWorker(start=self._begin_batch, after_batch=lambda _: self.drain(),
                                   max_batch=WEBHOOK_BATCH)

    def _begin_batch(self, items: list[Item]) -> Callable[[], ScanReport]:
        """Archive a webhook batch and start its models; the returned step records it."""
        with self._lock:
            pending = self.rt.pipeline.begin(items)

        def finish() -> ScanReport:
            with self._lock:
                return self.rt.pipeline.finish(pending)

        return finish

    # --- jobs ---------------------------------------------------------------------------------
    def poll(self, connector: Connector) -> None:
        if connector.name in self.paused:
            return
        ttl = timedelta(seconds=max(self.rt.config.service.lease_seconds,
                                    2 * connector.settings.poll_interval_seconds))
        if not leases.acquire(self.rt.db, connector.name, self.owner, ttl, datetime.now(UTC)):
            return  # another replica is polling this connector
        renewed = [time.monotonic()]

        def keep_lease(_: int) -> None:
            # a long scan (a first backfill) renews its lease as it goes; if another replica
            # took it meanwhile (this one stalled past the lease), stop without saving the cursor
            if time.monotonic() - renewed[0] < ttl.total_seconds() / 3:
                return
            if not leases.acquire(self.rt.db, connector.name, self.owner, ttl,
                                  datetime.now(UTC)):
                raise LeaseLost(connector.name)
            renewed[0] = time.monotonic()

        try:
            with self._lock:
                report = self.rt.pipeline.scan(connector, progress=keep_lease)
            for problem in report.problems:
                log.warning("%s: skipped a record: %s", connector.name, problem)
            log.info("%s: %d items, %d new flags", connector.name, report.items,
                     report.flags_created)
        except FatalError as exc:
            self.paused[connector.name] = str(exc)
            self.rt.pipeline.save_cursor(connector.name, None, str(exc))
            log.error("%s: paused until fixed: %s", connector.name, exc)
        except ConnectorError as exc:
            self.rt.pipeline.save_cursor(connector.name, None, str(exc))
            log.warning("%s: will retry at the next poll: %s", connector.name, exc)
        except LeaseLost:
            log.warning("%s: another replica took over the polling during a long scan; this one "
                        "stopped (what it did is kept; the rest is the other replica's)",
                        connector.name)
        finally:
            leases.release(self.rt.db, connector.name, self.owner)
        self.drain()

    def keep_subscriptions(self, connector: Connector, renew_all: bool = False) -> None:
        """Create and renew a connector's webhook subscriptions (one replica at a time)."""
        manager = self.subscriptions[connector.name]
        lease = state_name(connector.name)
        ttl = timedelta(seconds=max(self.rt.config.service.lease_seconds, 300))
        if not leases.acquire(self.rt.db, lease, self.owner, ttl, datetime.now(UTC)):
            return  # another replica is at it
        try:
            report = manager.sync(renew_all=renew_all)
        except Exception:
            log.exception("%s: keeping the change-notification subscriptions failed; tried again "
                          "at the next check", connector.name)
            return
        finally:
            leases.release(self.rt.db, lease, self.owner)
        if report.catch_up:
            self.poll(connector)

    def subscription_events(self, connector: Connector, events: list[SubscriptionEvent],
                            attempt: int = 0) -> None:
        """Act on lifecycle notifications: reauthorise or re-create the subscription, then poll
        at once if notifications may have been lost (so the gap is read by the delta query)."""
        manager = self.subscriptions.get(connector.name)
        if manager is None:
            # subscriptions made by hand: nothing to re-create here, but do catch up
            if any(e.event in ("subscriptionRemoved", "missed") for e in events):
                log.warning("%s: Graph removed a subscription or missed notifications; polling "
                            "now. Set [service] public_url so the service re-creates "
                            "subscriptions itself", connector.name)
                self.poll(connector)
            return
        lease = state_name(connector.name)
        ttl = timedelta(seconds=max(self.rt.config.service.lease_seconds, 300))
        if not leases.acquire(self.rt.db, lease, self.owner, ttl, datetime.now(UTC)):
            if attempt < 20:  # the renewal job holds it for a moment: come back shortly
                self.later(self.subscription_events, connector, events, attempt + 1,
                           delay=timedelta(seconds=15))
            else:
                log.error("%s: could not act on Graph lifecycle notifications (%s): the "
                          "subscriptions stayed locked; the next check re-creates what is "
                          "missing", connector.name, ", ".join(e.event for e in events))
            return
        try:
            report = manager.handle(events)
        except Exception:
            log.exception("%s: acting on Graph lifecycle notifications failed; polling now",
                          connector.name)
            report = None
        finally:
            leases.release(self.rt.db, lease, self.owner)
        if report is None or report.catch_up:
            self.poll(connector)

    def later(self, func: Any, *args: Any, delay: timedelta = timedelta(0)) -> None:
        """Run ``func(*args)`` on the scheduler's threads, ``delay`` from now."""
        self.scheduler.add_job(func, "date", args=list(args),
                               run_date=datetime.now(UTC) + delay, misfire_grace_time=None)

    def start_access_audit(self) -> None:
        # once across replicas: the lease outlives the job, so a second replica's trigger a
        # moment later finds it taken
        if leases.acquire(self.rt.db, "job:access-audit", self.owner, timedelta(hours=12),
                          datetime.now(UTC)):
            self.access_audit.start()

    def tick_access_audit(self) -> None:
        # chasing and closing an audit run: one replica at a time (two at once would both see
        # a run as not yet chased and remind everyone twice)
        ttl = timedelta(seconds=max(self.rt.config.service.lease_seconds, 600))
        if not leases.acquire(self.rt.db, "job:access-audit-tick", self.owner, ttl,
                              datetime.now(UTC)):
            return
        try:
            self.access_audit.tick()
        finally:
            leases.release(self.rt.db, "job:access-audit-tick", self.owner)

    def drain(self) -> None:
        try:
            self.sender.drain()
        except Exception:
            log.exception("outbox drain failed; will retry")

    def schedule(self) -> None:
        for connector in self.rt.connectors:
            self.scheduler.add_job(self.poll, "interval", args=[connector],
                                   seconds=connector.settings.poll_interval_seconds,
                                   id=f"poll:{connector.name}", max_instances=1, coalesce=True,
                                   next_run_time=datetime.now(UTC))
        for name, manager in self.subscriptions.items():
            connector = next(c for c in self.rt.connectors if c.name == name)
            self.later(self.keep_subscriptions, connector, True)  # at start: renew (and check) all
            self.scheduler.add_job(self.keep_subscriptions, "interval", args=[connector],
                                   seconds=manager.check_interval.total_seconds(),
                                   id=f"subscriptions:{name}", max_instances=1, coalesce=True)
        self.scheduler.add_job(self.drain, "interval",
                               seconds=self.rt.config.service.outbox_interval_seconds,
                               id="outbox", max_instances=1, coalesce=True)
        if self.slack is not None:
            self.slack.schedule(self.scheduler, self.owner)
        audit = self.rt.config.audit
        if audit.enabled:
            self.scheduler.add_job(self.start_access_audit, "cron", day_of_week=audit.day_of_week,
                                   hour=audit.hour, minute=audit.minute,
                                   timezone=self.rt.config.organisation.timezone,
                                   id="access-audit", max_instances=1, coalesce=True)
            self.scheduler.add_job(self.tick_access_audit, "interval", minutes=5,
                                   id="access-audit-tick", max_instances=1, coalesce=True)

    # --- HTTP ---------------------------------------------------------------------------------
    def http_app(self) -> Starlette:
        by_name = {c.name: c for c in self.rt.connectors}

        async def healthz(_: Request) -> Response:
            return JSONResponse({"status": "ok", "paused_connectors": sorted(self.paused),
                                 "outbox_pending": self.sender.pending()})

        async def webhook(request: Request) -> Response:
            connector = by_name.get(request.path_params["name"])
            if connector is None:
                return Response("unknown connector", status_code=404)
            req = WebhookRequest(method=request.method, path=request.url.path,
                                 headers=dict(request.headers), query=dict(request.query_params),
                                 body=await request.body())
            resp = connector.handle_webhook(req)
            key = resp.replay_key if resp.status < 300 else None
            if key is not None and not self.replay_guard.claim(connector.name, key):
                return Response(resp.body, status_code=resp.status, media_type=resp.content_type)
            if resp.subscription_events:
                # acted on in the background: Graph wants its answer within seconds
                self.later(self.subscription_events, connector, list(resp.subscription_events))
            if resp.items:
                report = await asyncio.wrap_future(self.ingest.submit(resp.items))
                if report.problems:
                    # not stored: release the claim and ask the platform to deliver it again
                    if key is not None:
                        self.replay_guard.release(connector.name, key)
                    return Response(b"not processed; please retry", status_code=503)
            return Response(resp.body, status_code=resp.status, media_type=resp.content_type)

        async def metrics(_: Request) -> Response:
            return Response(self.metrics.render(), media_type=CONTENT_TYPE)

        routes: list[Any] = [
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Route("/webhooks/{name}", webhook, methods=["GET", "POST"]),
        ]
        if self.slack is not None:
            routes.extend(self.slack.routes())  # /slack/events
        middleware: list[Any] = []
        if self.rt.config.console.enabled:  # the case console (governance_bot/console)
            from governance_bot.console import ConsoleApp

            console = ConsoleApp(
                self.rt.config, self.rt.db, lambda: self.rt.registers,
                connectors=self.rt.connectors,
                # with Slack on, its decisions: every Slack message about a flag is re-rendered
                # after a decision taken in the console too
                decisions=self.slack.bot.decisions if self.slack is not None else None)
            routes.extend(console.routes())
            middleware.extend(console.middleware())
        return Starlette(routes=routes, middleware=middleware)

    def run_forever(self) -> None:
        frozen = freeze_startup_objects()
        log.debug("%d start-up objects set aside from the garbage collector", frozen)
        self.schedule()
        self.scheduler.start()
        if self.slack is not None and self.slack.mode == "socket":
            self.slack.start_socket_mode()
        cfg = self.rt.config.service
        log.info("governance-bot running: %d connector(s), http://%s:%d/healthz",
                 len(self.rt.connectors), cfg.host, cfg.port)
        server = _Server(uvicorn.Config(self.http_app(), host=cfg.host, port=cfg.port,
                                        log_level="warning"))
        try:
            server.run()  # returns on SIGTERM / SIGINT
        finally:
            log.info("stopping: waiting for running jobs")
            self.ingest.close()
            self.scheduler.shutdown(wait=True)
            if self.slack is not None:
                self.slack.close()
            self.drain()
            log.info("stopped")



class _Server(uvicorn.Server):
    """uvicorn's server, minus its habit of re-raising the signal after a graceful shutdown
    (which would kill the process before the scheduler and outbox are stopped cleanly)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
