"""``governance-bot run``: the long-running service.

APScheduler polls each connector at its own interval and drains the outbox; an HTTP server
(uvicorn + Starlette) serves ``/healthz`` and each connector's webhook at ``/webhooks/<name>``.

Nothing slow runs on the HTTP event loop. A webhook request's body is read with a size cap while
it arrives; the connector verifies it on a worker thread; the delivery (with its items, or the
records still to be read from the platform) is stored with its replay claim in one transaction
(governance_bot/webhooks.py); then its items are read, archived and checked on workers (one pool
per connector, so a platform whose API hangs delays only its own deliveries), and the answer
waits for that only up to ``[service] webhook_answer_seconds``. A delivery a crash left
unfinished, and any item version archived but not checked, is taken up at start and every few
seconds (``recover``), so every item is checked exactly once whatever happened.
With ``[service] public_url`` set, the Teams connectors' Graph subscriptions are created at start,
renewed before they expire and re-created after Graph's lifecycle notifications, once across
replicas (governance_bot/subscriptions.py).
SIGTERM or Ctrl-C stops polling, lets running jobs finish and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
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
from governance_bot.webhooks import Delivery, Inbox, body_key

__all__ = ["Service"]

log = logging.getLogger(__name__)

WEBHOOK_BATCH = 64  # items per pipeline call when webhook deliveries queue up
_instances = itertools.count()
_instances_lock = threading.Lock()


class LeaseLost(Exception):
    """This replica's polling lease was taken over by another replica during a scan."""


class BodyTooLarge(Exception):
    """A request body passed ``[service] max_body_bytes`` while it was being read."""


class BodyLimit:
    """ASGI middleware: a request whose body passes ``limit`` bytes is answered 413 without
    being read further: at once when its declared length is over the limit, and, for a body
    streamed without one, as soon as the count passes it (the app is told the client left, and
    whatever it raises about that is not logged as an error)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen, over, started = 0, False, False

        async def counted() -> Any:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        log.warning("%s %s refused: the body passed %d bytes (not read further)",
                    scope.get("method"), scope.get("path"), self.limit)
        await Response(b"request body too large", status_code=413,
                       headers={"Connection": "close"})(scope, receive, send)


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes: a declared length over it
    is refused before a byte is read, and a body sent without one is counted as it streams in,
    so a 200 MB POST never reaches memory (unsigned bodies are refused only after reading)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class Service:
    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.scheduler = BackgroundScheduler(timezone="UTC")
        # host, boot, process start and PID: a restart recognises its dead predecessor's leases
        # (a second service in one process, as in tests, is told apart by a suffix)
        with _instances_lock:
            number = next(_instances)
        self.owner = leases.owner_identity() + (f"#{number}" if number else "")
        self.lease = timedelta(seconds=runtime.config.service.lease_seconds)
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
        # accepted webhook deliveries: the replay guard and a durable queue in one table
        self.inbox = Inbox(runtime.db, timedelta(
            hours=runtime.config.security.webhook_replay_window_hours), self.owner, self.lease)
        self.replay_guard = self.inbox  # the name older tests and tools use
        # webhook items: batched on one worker thread, off the HTTP event loop
        self.ingest = IngestWorker(start=self._begin_batch, after_batch=lambda _: self.drain(),
                                   max_batch=WEBHOOK_BATCH)
        self.max_body = runtime.config.service.max_body_bytes
        self.answer_seconds = runtime.config.service.webhook_answer_seconds
        self._by_name = {c.name: c for c in runtime.connectors}
        # connectors verify requests here, off the event loop
        self._receivers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook")
        # a delivery's records are read and its items checked on its connector's own workers
        self._workers: dict[str, ThreadPoolExecutor] = {}
        self._workers_lock = threading.Lock()
        self._in_flight: set[str] = set()  # deliveries this process is working on
        # marking deliveries processed, off the pipeline's thread
        self._bookkeeping = ThreadPoolExecutor(max_workers=2, thread_name_prefix="deliveries")

    def _begin_batch(self, items: list[Item]) -> Callable[[], ScanReport]:
        """Archive a webhook batch and start its models; the returned step records it."""
        with self._lock:
            pending = self.rt.pipeline.begin(items)

        def finish() -> ScanReport:
            with self._lock:
                return self.rt.pipeline.finish(pending)

        return finish

    # --- webhook deliveries -------------------------------------------------------------------
    def _worker_for(self, connector: str) -> ThreadPoolExecutor:
        with self._workers_lock:
            if connector not in self._workers:
                self._workers[connector] = ThreadPoolExecutor(
                    max_workers=2, thread_name_prefix=f"deliveries:{connector}")
            return self._workers[connector]

    def process(self, delivery: Delivery) -> Future[None]:
        """Finish an accepted delivery: read its deferred records on its connector's workers (if
        it has any), check its items in the webhook batches, then mark it processed (or keep it
        for another attempt). The future is done when it is settled either way."""
        settled: Future[None] = Future()
        with self._workers_lock:
            if delivery.digest in self._in_flight:
                settled.set_result(None)
                return settled
            self._in_flight.add(delivery.digest)
        try:
            if delivery.deferred:
                self._worker_for(delivery.connector).submit(self._read_then_check, delivery,
                                                            settled)
            else:  # items only (Meta, WhatsApp): straight to the batches, no thread waits
                self._check(delivery, delivery.items, delivery.problems, settled)
        except RuntimeError:  # shutting down: it stays stored, for the next start
            self._settle(delivery, settled)
        return settled

    def _read_then_check(self, delivery: Delivery, settled: Future[None]) -> None:
        connector = self._by_name.get(delivery.connector)
        try:
            if connector is None:
                raise ConnectorError("no connector of that name in the config")
            # platform calls: on this worker, with the connector's timeouts
            items, problems = connector.deferred_items(delivery.deferred)
        except ConnectorError as exc:
            self._retry(delivery, f"cannot be read from the platform yet ({exc})")
            self._settle(delivery, settled)
            return
        except Exception as exc:  # a last resort: kept, tried again
            self._retry(delivery, f"failed ({type(exc).__name__}: {exc})")
            self._settle(delivery, settled)
            return
        self._check(delivery, [*delivery.items, *items], [*delivery.problems, *problems],
                    settled)

    def _check(self, delivery: Delivery, items: list[Item], problems: list[str],
               settled: Future[None]) -> None:
        for problem in problems:
            log.warning("%s: skipped a record: %s", delivery.connector, problem)
        if not items:
            self._bookkeeping.submit(self._complete, delivery, None, settled)
            return
        checked = self.ingest.submit(items)
        checked.add_done_callback(
            lambda done: self._bookkeeping.submit(self._complete, delivery, done, settled))

    def _complete(self, delivery: Delivery, checked: Future[ScanReport] | None,
                  settled: Future[None]) -> None:
        try:
            error = checked.exception() if checked is not None else None
            if error is not None:
                self._retry(delivery, f"failed ({type(error).__name__}: {error})")
            elif checked is not None and checked.result().failed:
                report = checked.result()
                self._retry(delivery, f"{report.failed} item(s) could not be stored or checked "
                            f"({'; '.join(report.problems)[:500]})")
            else:
                self.inbox.done(delivery.digest)
        except Exception as exc:  # the database went away: the claim runs out, it comes back
            log.warning("%s: a webhook delivery's outcome could not be recorded (%s); it is "
                        "taken up again", delivery.connector, type(exc).__name__)
        finally:
            self._settle(delivery, settled)

    def _retry(self, delivery: Delivery, why: str) -> None:
        try:
            delay = self.inbox.retry_later(delivery.digest, why)
        except Exception as exc:
            log.warning("%s: a stored webhook delivery %s; could not record it (%s)",
                        delivery.connector, why, type(exc).__name__)
            return
        log.warning("%s: a stored webhook delivery %s; kept, tried again in %.0f s",
                    delivery.connector, why, delay.total_seconds())

    def _settle(self, delivery: Delivery, settled: Future[None]) -> None:
        with self._workers_lock:
            self._in_flight.discard(delivery.digest)
        if not settled.done():
            settled.set_result(None)

    def recover(self) -> None:
        """At start and every few seconds: deliveries a crash left unfinished (here or on a
        replica that died), then item versions archived but never checked."""
        try:
            for delivery in self.inbox.claim_due():
                self.process(delivery)
            with self._lock:
                report = self.rt.pipeline.recheck(self.lease)
        except SQLAlchemyError as exc:
            log.warning("recovery could not reach the database (%s); tried again shortly",
                        type(exc).__name__)
            return
        if report.items:
            log.info("recovered: %d item(s) checked, %d new flags", report.items,
                     report.flags_created)
            self.drain()

    # --- jobs ---------------------------------------------------------------------------------
    def poll(self, connector: Connector) -> None:
        if connector.name in self.paused:
            return
        # a short lease kept alive by a heartbeat, whatever the poll interval: a replica that
        # dies mid-scan is replaced within lease_seconds (at once by its own restart)
        ttl = self.lease
        if not leases.acquire(self.rt.db, connector.name, self.owner, ttl, datetime.now(UTC)):
            return  # another replica is polling this connector
        beat = leases.Heartbeat(self.rt.db, connector.name, self.owner, ttl)
        renewed = [time.monotonic()]

        def keep_lease(_: int) -> None:
            # if another replica took the lease (this one stalled past it, e.g. the database was
            # away), stop without saving the cursor: the heartbeat notices between batches, and
            # each batch checks too once a third of the lease has passed
            if beat.lost.is_set():
                raise LeaseLost(connector.name)
            if time.monotonic() - renewed[0] < ttl.total_seconds() / 3:
                return
            if not leases.acquire(self.rt.db, connector.name, self.owner, ttl,
                                  datetime.now(UTC)):
                raise LeaseLost(connector.name)
            renewed[0] = time.monotonic()

        try:
            with beat:
                # the platform calls outside the pipeline's lock: a platform that hangs delays
                # its own poll only, never the webhook deliveries checked meanwhile
                result = connector.fetch(self.rt.pipeline.load_cursor(connector.name))
                with self._lock:
                    report = self.rt.pipeline.apply_fetch(connector, result, keep_lease)
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

    def anchor_audit_log(self) -> None:
        """Write the audit log's head outside the database (one replica per interval)."""
        from governance_bot.audit_anchor import anchor

        minutes = self.rt.config.audit_log.anchor_minutes
        if not leases.acquire(self.rt.db, "job:audit-anchor", self.owner,
                              timedelta(minutes=minutes) - timedelta(seconds=5),
                              datetime.now(UTC)):
            return
        anchor(self.rt.config, self.rt.db,
               slack_client=self.slack.bot.client if self.slack is not None else None)

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
        self.scheduler.add_job(self.anchor_audit_log, "interval",
                               minutes=self.rt.config.audit_log.anchor_minutes,
                               id="audit-anchor", max_instances=1, coalesce=True,
                               next_run_time=datetime.now(UTC))
        self.scheduler.add_job(self.recover, "interval",
                               seconds=max(1.0, min(10.0, self.lease.total_seconds() / 2)),
                               id="recover", max_instances=1, coalesce=True,
                               next_run_time=datetime.now(UTC))
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
            # database reads on a thread: the event loop only ever waits for I/O it owns
            pending = await run_in_threadpool(self.sender.pending)
            return JSONResponse({"status": "ok", "paused_connectors": sorted(self.paused),
                                 "outbox_pending": pending})

        async def webhook(request: Request) -> Response:
            connector = by_name.get(request.path_params["name"])
            if connector is None:
                return Response("unknown connector", status_code=404)
            try:
                body = await read_capped(request, self.max_body)
            except BodyTooLarge:
                log.warning("%s: webhook refused: the body passed %d bytes (not read further)",
                            connector.name, self.max_body)
                return Response(b"request body too large", status_code=413,
                                headers={"Connection": "close"})
            req = WebhookRequest(method=request.method, path=request.url.path,
                                 headers=dict(request.headers), query=dict(request.query_params),
                                 body=body)
            loop = asyncio.get_running_loop()
            try:
                resp = await loop.run_in_executor(self._receivers, connector.handle_webhook, req)
            except Exception as exc:  # a connector's bug must not become a 500 and a traceback
                log.error("%s: the webhook could not be read (%s; %d bytes, body not logged)",
                          connector.name, type(exc).__name__, len(body))
                return Response(b"unreadable request", status_code=400)
            if resp.subscription_events:
                # acted on in the background: Graph wants its answer within seconds
                self.later(self.subscription_events, connector, list(resp.subscription_events))
            answer = Response(resp.body, status_code=resp.status, media_type=resp.content_type)
            if resp.status >= 300 or not (resp.items or resp.deferred):
                return answer
            key = resp.replay_key or body_key(body)
            try:  # the replay claim and the delivery's content, stored in one transaction
                delivery = await loop.run_in_executor(
                    self._receivers, self.inbox.accept, connector.name, key, resp.items,
                    resp.deferred)
            except SQLAlchemyError as exc:
                log.warning("%s: a webhook delivery could not be stored (%s); the platform is "
                            "asked to send it again", connector.name, type(exc).__name__)
                return Response(b"not stored; please retry", status_code=503)
            if delivery is not None:
                finished = asyncio.wrap_future(self.process(delivery))
                # answered once checked, or once the platform's deadline nears: it is stored
                await asyncio.wait([finished], timeout=self.answer_seconds)
            return answer

        async def metrics(_: Request) -> Response:
            return Response(await run_in_threadpool(self.metrics.render),
                            media_type=CONTENT_TYPE)

        routes: list[Any] = [
            Route("/healthz", healthz),
            Route("/metrics", metrics),
            Route("/webhooks/{name}", webhook, methods=["GET", "POST"]),
        ]
        if self.slack is not None:
            routes.extend(self.slack.routes())  # /slack/events
        # every route's body capped while it arrives (/slack/events, the console's forms): the
        # webhooks also read theirs with read_capped, which logs which connector was concerned
        middleware: list[Any] = [Middleware(BodyLimit, limit=self.max_body)]
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
            self.close_workers()
            self.ingest.close()
            self._bookkeeping.shutdown(wait=True)
            self.scheduler.shutdown(wait=True)
            if self.slack is not None:
                self.slack.close()
            self.drain()
            log.info("stopped")

    def close_workers(self) -> None:
        """Let the delivery workers finish what they hold (what they do not finish stays stored
        and is taken up at the next start)."""
        self._receivers.shutdown(wait=True)
        with self._workers_lock:
            workers = list(self._workers.values())
        for pool in workers:
            pool.shutdown(wait=True)

    def close(self) -> None:
        """Stop the workers (``run_forever`` does this on SIGTERM; tests call it)."""
        self.close_workers()
        self.ingest.close()
        self._bookkeeping.shutdown(wait=True)


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
