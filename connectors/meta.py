"""What Facebook Pages and Instagram share: the Meta Graph API and Meta webhooks.

* :class:`GraphConnector`: the access token goes in the ``Authorization`` header (never in a URL,
  so it cannot reach a log), ``appsecret_proof`` is added when the app secret is configured,
  paging ``next`` links are followed on the configured host with any ``access_token`` removed,
  Graph's usage headers (``X-App-Usage``, ``X-Business-Use-Case-Usage``) slow polling down before
  Meta throttles it, and Graph error codes sent in a 400 (expired token 190, throttling 4/17/32/613)
  are treated like a 401 or a 429.
* Webhooks: :func:`verify_subscription` answers Meta's ``hub.challenge`` handshake and
  :func:`check_signature` checks ``X-Hub-Signature-256`` (HMAC-SHA256 of the body with the app
  secret). A request that is unsigned or mis-signed is refused with 403 and logged without its
  body.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import Field, SecretStr

from connectors.base import (
    RECORD_ERRORS,
    ConnectorSettings,
    HttpConnector,
    NextUrlPaginator,
    PageRequest,
    RetriableError,
    WebhookRequest,
    WebhookResponse,
    describe_error,
    parse_time,
    report_skipped,
)
from governance_bot.items import Item

__all__ = [
    "GraphConnector",
    "GraphSettings",
    "check_signature",
    "verify_subscription",
]

log = logging.getLogger(__name__)

# Graph error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling)
_EXPIRED_TOKEN = {190, 102, 463, 467}
_THROTTLED = {4, 17, 32, 613, 80001, 80002, 80004, 80005, 80006, 80008, 80014}
_PERMISSION = {10, *range(200, 300)}
USAGE_PAUSE_PERCENT = 90


class GraphSettings(ConnectorSettings):
    access_token: SecretStr = Field(description="Page access token, written as \"${ENV_VAR}\"")
    app_secret: SecretStr | None = Field(
        default=None,
        description="the Meta app's secret: adds appsecret_proof and checks webhook signatures",
    )
    verify_token: SecretStr | None = Field(
        default=None, description="the token typed into the app's webhook settings"
    )
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")
    lookback_days: int = Field(
        default=30, ge=1, le=365,
        description="posts this recent are listed completely on each poll (for new comments, "
                    "edits and deletions)",
    )
    page_size: int = Field(default=100, ge=1, le=100)
    max_pages: int = Field(default=50, ge=1, description="per listing, as a safety stop")


def _graph_error(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    err = body.get("error") if isinstance(body, dict) else None
    return err if isinstance(err, dict) else {}


def _usage_percent(header: str | None) -> tuple[float, float | None]:
    """Highest usage percentage in an X-App-Usage or X-Business-Use-Case-Usage header, and the
    estimated seconds to regain access if Meta says."""
    if not header:
        return 0.0, None
    try:
        data = json.loads(header)
    except ValueError:
        return 0.0, None
    entries: list[dict[str, Any]] = []
    if isinstance(data, dict) and any(k in data for k in ("call_count", "total_time")):
        entries = [data]
    elif isinstance(data, dict):
        for value in data.values():
            if isinstance(value, list):
                entries += [v for v in value if isinstance(v, dict)]
    top, regain = 0.0, None
    for entry in entries:
        for key in ("call_count", "total_cputime", "total_time"):
            value = entry.get(key)
            if isinstance(value, int | float):
                top = max(top, float(value))
        minutes = entry.get("estimated_time_to_regain_access")
        if isinstance(minutes, int | float) and minutes > 0:
            regain = max(regain or 0.0, float(minutes) * 60)
    return top, regain


class GraphConnector(HttpConnector):
    """Base of the Graph API connectors (Facebook Pages, Instagram)."""

    default_base_url: ClassVar[str] = "https://graph.facebook.com"
    settings: GraphSettings

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.access_token.get_secret_value()}"}

    def graph_url(self, node: str) -> str:
        return f"{self.base_url}/{self.settings.api_version}/{node.lstrip('/')}"

    def proof_params(self) -> dict[str, str]:
        secret = self.settings.app_secret
        if secret is None:
            return {}
        proof = hmac.new(
            secret.get_secret_value().encode(),
            self.settings.access_token.get_secret_value().encode(),
            hashlib.sha256,
        ).hexdigest()
        return {"appsecret_proof": proof}

    def effective_status(self, response: httpx.Response) -> int:
        status = response.status_code
        if 400 <= status < 500 and status != 429:
            code = _graph_error(response).get("code")
            if code in _EXPIRED_TOKEN:
                return 401
            if code in _THROTTLED:
                return 429
            if code in _PERMISSION:
                return 403
        return status

    def check_rate_limit(self, response: httpx.Response) -> float | None:
        """Pause when Meta reports usage at 90 % or more of the hourly allowance: the time Meta
        says access returns, else 60 s at 90 % plus 30 s for every point above."""
        top, regain = 0.0, None
        for header in ("x-app-usage", "x-business-use-case-usage", "x-ad-account-usage"):
            pct, wait = _usage_percent(response.headers.get(header))
            top = max(top, pct)
            if wait:
                regain = max(regain or 0.0, wait)
        if regain:
            return regain
        if top >= USAGE_PAUSE_PERCENT:
            return 60.0 * (1 + (top - USAGE_PAUSE_PERCENT) / 2)
        return None

    def graph_get(self, node: str, params: dict[str, Any] | None = None) -> Any:
        return self.get_json(self.graph_url(node), params={**(params or {}),
                                                           **self.proof_params()})

    def _next_link(self, url: str) -> PageRequest:
        """Graph's ``paging.next`` on *our* host and version, with any access token it echoed
        removed (the token travels in the header, never in a URL that could be logged)."""
        parts = urlsplit(url)
        params: dict[str, Any] = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)
                                  if k not in ("access_token", "appsecret_proof")}
        params.update(self.proof_params())
        path = parts.path
        # "/v10.0/123/feed" -> "/123/feed" on our version
        segments = path.lstrip("/").split("/", 1)
        if segments and segments[0].startswith("v") and segments[0][1:2].isdigit():
            path = segments[1] if len(segments) > 1 else ""
        return PageRequest(self.graph_url(path), params)

    def listing(self, node: str, params: dict[str, Any],
                stop: Callable[[dict[str, Any]], bool] | None = None,
                ) -> Iterator[tuple[str, int, int, Any]]:
        """Every record of a paged Graph listing as (where, page number, index, record).

        ``stop(record)`` ends the listing early (e.g. records older than the window)."""
        query: dict[str, Any] = {**params, "limit": self.settings.page_size,
                                 **self.proof_params()}
        for page in self.pages(self.graph_url(node), query,
                               NextUrlPaginator("paging.next", self._next_link),
                               max_pages=self.settings.max_pages):
            data = page.body.get("data") if isinstance(page.body, dict) else None
            where = f"GET /{node} page {page.number}"
            if not isinstance(data, list):
                raise RetriableError(f"{self.name}: {where}: the answer has no data list")
            for index, record in enumerate(data):
                if stop is not None and isinstance(record, dict) and stop(record):
                    return
                yield where, page.number, index, record

    def parse_each(self, records: Iterator[tuple[str, int, int, Any]],
                   parse: Callable[[dict[str, Any]], Item], problems: list[str]
                   ) -> Iterator[tuple[dict[str, Any], Item]]:
        """Parse each record, reporting and skipping the unreadable ones."""
        for where, _number, index, record in records:
            if not isinstance(record, dict):
                report_skipped(log, self.name, problems, f"{where} record {index + 1}",
                               "not a JSON object")
                continue
            try:
                item = parse(record)
            except RECORD_ERRORS as exc:
                rid = record.get("id")
                label = f"{where} record {index + 1}" + (f" (id {rid})" if rid else "")
                report_skipped(log, self.name, problems, label, describe_error(exc))
                continue
            yield record, item

    def conversation_items(self, page_id: str, messenger_platform: str, since: datetime,
                           problems: list[str],
                           parse: Callable[[str, dict[str, Any]], Item]) -> list[Item]:
        """Messages of the Page's conversations updated since ``since`` (newest first, so the
        listings stop at the first older record). ``parse(conversation_id, record)``."""
        out: list[Item] = []

        def older(field: str) -> Callable[[dict[str, Any]], bool]:
            def check(record: dict[str, Any]) -> bool:
                try:
                    return parse_time(record.get(field)) < since
                except ValueError:
                    return False
            return check

        conversations = self.listing(f"{page_id}/conversations",
                                     {"fields": "id,updated_time,link",
                                      "platform": messenger_platform},
                                     stop=older("updated_time"))
        for where, _n, index, conv in conversations:
            conv_id = conv.get("id") if isinstance(conv, dict) else None
            if not isinstance(conv_id, str):
                report_skipped(log, self.name, problems, f"{where} record {index + 1}",
                               "conversation without an id")
                continue
            messages = self.listing(f"{conv_id}/messages",
                                    {"fields": "id,message,created_time,from,to,attachments"},
                                    stop=older("created_time"))
            out.extend(item for _r, item in self.parse_each(
                messages, functools.partial(parse, conv_id), problems))
        return out

    # --- webhooks ------------------------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookResponse:
        if request.method.upper() == "GET":
            return verify_subscription(request, self.settings.verify_token, self.name)
        if self.settings.app_secret is None:
            log.warning("%s: webhook POST refused: no app_secret configured to check it",
                        self.name)
            return WebhookResponse(status=403, body=b"signature cannot be checked")
        if not check_signature(request, self.settings.app_secret):
            log.warning(
                "%s: webhook POST refused: %s X-Hub-Signature-256 (%d bytes, body not logged)",
                self.name,
                "missing" if not _header(request, "x-hub-signature-256") else "wrong",
                len(request.body),
            )
            return WebhookResponse(status=403, body=b"bad signature")
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            log.warning("%s: webhook POST with a signed body that is not JSON", self.name)
            return WebhookResponse(status=400, body=b"not JSON")
        problems: list[str] = []
        try:
            items = self.webhook_items(payload, problems)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # a signed event of a shape nobody documented: refused whole, body not logged
            log.warning("%s: webhook POST refused: the event has an unexpected shape (%s)",
                        self.name, type(exc).__name__)
            return WebhookResponse(status=400, body=b"unexpected event shape")
        # the body identifies the delivery: a hash of it, not the signature header as sent (its
        # hex may come in upper case, which the check accepts, and must not make a replay new)
        return WebhookResponse(status=200, body=b"EVENT_RECEIVED", items=items,
                               replay_key="sha256:" + hashlib.sha256(request.body).hexdigest())

    def webhook_items(self, payload: Any, problems: list[str]) -> list[Item]:
        """Items from a signed webhook payload (subclasses)."""
        return []




def _header(request: WebhookRequest, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name:
            return value
    return None


def verify_subscription(request: WebhookRequest, verify_token: SecretStr | None,
                        name: str) -> WebhookResponse:
    """Meta's subscription handshake: echo ``hub.challenge`` if ``hub.verify_token`` matches."""
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token", "")
    challenge = request.query.get("hub.challenge", "")
    if verify_token is None:
        log.warning("%s: webhook verification refused: no verify_token configured", name)
        return WebhookResponse(status=403, body=b"no verify token configured")
    if mode == "subscribe" and hmac.compare_digest(token.encode(),
                                                   verify_token.get_secret_value().encode()):
        log.info("%s: webhook subscription verified", name)
        return WebhookResponse(status=200, body=challenge.encode())
    log.warning("%s: webhook verification refused (mode %r, token does not match)", name, mode)
    return WebhookResponse(status=403, body=b"verification failed")


def check_signature(request: WebhookRequest, app_secret: SecretStr) -> bool:
    """True if ``X-Hub-Signature-256`` is ``sha256=<hex HMAC of the body with the app secret>``."""
    header = _header(request, "x-hub-signature-256")
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.get_secret_value().encode(), request.body,
                        hashlib.sha256).hexdigest()
    given = header.removeprefix("sha256=").strip().lower()
    if not given.isascii():
        return False  # compare_digest refuses non-ASCII text; no real signature has any
    return hmac.compare_digest(given, expected)


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Meta would send for ``body`` (used by tests)."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
