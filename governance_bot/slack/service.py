"""The Slack app inside ``governance-bot run``: HTTP endpoint or Socket Mode, and its jobs.

* HTTP: Slack posts events, interactions and slash commands to ``/slack/events`` on the
  service's Starlette app; bolt verifies the ``X-Slack-Signature`` (v0 HMAC-SHA256 of
  ``v0:{timestamp}:{body}`` with the signing secret) and refuses stale timestamps (401).
* Socket Mode (``[slack] mode = "socket"``): the service opens a WebSocket to Slack with the
  app-level token, so no public URL is needed (most schools sit behind NAT).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from governance_bot import leases
from governance_bot.runtime import Runtime
from governance_bot.slack.app import build_app
from governance_bot.slack.bot import SlackBot, make_client, slack_tokens
from governance_bot.slack.jobs import DigestJob, EscalationJob
from governance_bot.slack.sink import SlackSink

__all__ = ["SlackService"]

log = logging.getLogger(__name__)

ANCHOR_REFRESH_SECONDS = 5.0


class SlackService:
    def __init__(self, runtime: Runtime, *, clock: Callable[[], datetime] | None = None,
                 env: dict[str, str] | None = None):
        config = runtime.config
        bot_token, signing_secret, app_token = slack_tokens(config, env)
        kwargs: dict[str, Any] = {"registers": runtime.registers,
                                  "connectors": runtime.connectors}
        if clock is not None:
            kwargs["clock"] = clock
        # the service drains the outbox again and again (after each webhook batch and poll, and
        # every outbox_interval_seconds): a busy thread's grouped-flag count is refreshed at most
        # every few seconds, not after every reply
        kwargs["anchor_refresh_seconds"] = ANCHOR_REFRESH_SECONDS
        self.bot = SlackBot(config, runtime.db, make_client(config, bot_token), **kwargs)
        self.sink = SlackSink(self.bot)
        self.runtime = runtime
        self.lease_seconds = config.service.lease_seconds
        self.mode = config.slack.mode
        if self.mode == "http" and not signing_secret:
            raise RuntimeError("Slack over HTTP needs the signing secret: set "
                               "SLACK_SIGNING_SECRET (or [slack] signing_secret = "
                               "\"${SLACK_SIGNING_SECRET}\"), or use [slack] mode = \"socket\"")
        if self.mode == "socket" and not app_token:
            raise RuntimeError("Slack Socket Mode needs an app-level token (xapp-...): set "
                               "SLACK_APP_TOKEN")
        self.app_token = app_token
        self._signing_secret = signing_secret
        self.app: App = build_app(self.bot, signing_secret or "socket-mode-unused")
        self.escalation = EscalationJob(self.bot)
        self.digest = DigestJob(self.bot)
        self._socket: Any = None

    def routes(self) -> list[HttpRoute]:
        from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
        from slack_sdk.signature import SignatureVerifier
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import PlainTextResponse

        app = self.app
        verifier = SignatureVerifier(self._signing_secret or "")

        async def events(request: Request) -> Response:
            body = await request.body()
            # signed first (401 otherwise, as bolt would), then read: a signed request whose
            # payload Slack would never send is answered 200 with a short error, never a 500
            if self.mode == "http" and not verifier.is_valid_request(body, dict(request.headers)):
                return PlainTextResponse("invalid request", status_code=401)
            try:
                bolt_request = to_bolt_request(request, body)
                # bolt's dispatch is synchronous (database, role check): off the event loop
                bolt_response = await run_in_threadpool(app.dispatch, bolt_request)
            except Exception as exc:
                log.warning("slack: an unreadable request was answered with an error (%s)",
                            type(exc).__name__)
                return PlainTextResponse("This request could not be read.", status_code=200)
            return to_starlette_response(bolt_response)

        return [HttpRoute("/slack/events", events, methods=["POST"])]

    # --- scheduled jobs: once across replicas, through a lease in the shared database ---------
    def run_escalation(self, owner: str) -> list[tuple[int, int]] | None:
        """Escalate what is due, unless another replica is doing it right now (then None).
        The lease is released afterwards: the next round may run on any replica, and a flag
        already escalated by one replica is seen as such by the next."""
        ttl = timedelta(seconds=max(self.lease_seconds,
                                    2 * self.bot.settings.escalation_interval_seconds))
        if not leases.acquire(self.runtime.db, "job:slack-escalation", owner, ttl,
                              datetime.now(UTC)):
            return None
        try:
            return self.escalation.run()
        finally:
            leases.release(self.runtime.db, "job:slack-escalation", owner)

    def run_digest(self, owner: str) -> int | None:
        """Send the daily digest once across replicas: the lease outlives the job (12 hours), so
        a second replica's trigger a moment later finds it taken. None if it was."""
        if not leases.acquire(self.runtime.db, "job:slack-digest", owner, timedelta(hours=12),
                              datetime.now(UTC)):
            return None
        return self.digest.run()

    def run_weekly_summary(self, owner: str) -> int | None:
        """Send the case manager's weekly summary once across replicas (as the digest)."""
        if not leases.acquire(self.runtime.db, "job:slack-weekly-summary", owner,
                              timedelta(hours=12), datetime.now(UTC)):
            return None
        return self.digest.run_weekly()

    def schedule(self, scheduler: Any, owner: str) -> None:
        settings = self.bot.settings
        scheduler.add_job(self.run_escalation, "interval", args=[owner],
                          seconds=settings.escalation_interval_seconds, id="slack:escalation",
                          max_instances=1, coalesce=True)
        at = self.digest.run_time()
        scheduler.add_job(self.run_digest, "cron", args=[owner], hour=at.hour, minute=at.minute,
                          timezone=self.bot.config.organisation.timezone, id="slack:digest",
                          max_instances=1, coalesce=True)
        # the week's conversations without a second adult, the morning after the week ends
        scheduler.add_job(self.run_weekly_summary, "cron", args=[owner],
                          day_of_week=self.digest.weekly_day(), hour=at.hour, minute=at.minute,
                          timezone=self.bot.config.organisation.timezone,
                          id="slack:weekly-summary", max_instances=1, coalesce=True)

    def start_socket_mode(self) -> None:
        """Connect to Slack over a WebSocket (returns at once; runs in the background)."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        self._socket = SocketModeHandler(self.app, app_token=self.app_token)
        self._socket.connect()
        log.info("slack: Socket Mode connected")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
