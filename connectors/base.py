"""The connector protocol and the HTTP plumbing every platform module shares.

Exceptions, by what the caller should do::

    ConnectorError
    ├── RetriableError   try again later (429, 5xx, network); ``retry_after`` seconds if known
    ├── FatalError       stop polling this account until a person fixes it (401/403, bad config)
    └── SkippableRecord  one record could not be read; log it with its source, go on

A platform module declares its settings, endpoints and parsing; paging, retries, rate limits and
cursors live here so every connector behaves the same (tests/contract).
"""

from __future__ import annotations

import builtins
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from governance_bot.items import Item

__all__ = [
    "AccountFacts",
    "Capability",
    "Connector",
    "ConnectorError",
    "ConnectorSettings",
    "FatalError",
    "FetchResult",
    "HttpConnector",
    "ListingWindow",
    "ModerationAction",
    "ModerationResult",
    "RetriableError",
    "SkippableRecord",
    "SubscriptionEvent",
    "WebhookRequest",
    "WebhookResponse",
]

log = logging.getLogger(__name__)


class ConnectorError(Exception):
    """Base of every connector failure."""


class RetriableError(ConnectorError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(ConnectorError):
    """Needs a person: the message names the account and the fix."""


class SkippableRecord(ConnectorError):
    """One record is unreadable; the message says where it came from and what is wrong."""


class Capability(StrEnum):
    read = "read"
    direct_messages = "direct_messages"
    webhook = "webhook"
    account_facts = "account_facts"
    # moderation actions a connector may declare; the Slack flow offers only these
    hide = "hide"
    unhide = "unhide"
    delete = "delete"
    hide_reply = "hide_reply"
    reject = "reject"
    hold = "hold"
    restrict_replies = "restrict_replies"


class ModerationAction(StrEnum):
    hide = "hide"
    unhide = "unhide"
    delete = "delete"
    hide_reply = "hide_reply"
    reject = "reject"
    hold = "hold"
    restrict_replies = "restrict_replies"


@dataclass(slots=True)
class ModerationResult:
    ok: bool
    action: ModerationAction
    detail: str = ""


@dataclass(slots=True)
class AccountFacts:
    """What a platform reports about an account, for the weekly audit."""

    account_id: str
    # admins: {id, name, email, role, two_factor}
    admins: list[dict[str, Any]] = field(default_factory=list)
    privacy: dict[str, Any] = field(default_factory=dict)  # setting -> value as reported
    follows: list[str] = field(default_factory=list)  # handles/ids this account follows
    meetings: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ListingWindow:
    """The time range a fetch listed *completely*: archived items in it that were not listed
    are marked deleted."""

    start: datetime
    end: datetime
    parent_id: str | None = None  # a complete listing of one thread's replies


@dataclass(slots=True)
class FetchResult:
    items: list[Item]
    cursor: dict[str, Any] | None
    windows: list[ListingWindow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class WebhookRequest:
    method: str
    path: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class SubscriptionEvent:
    """A platform's notice about the webhook subscription itself rather than about content, e.g.
    Microsoft Graph's lifecycle notifications: ``event`` is "reauthorizationRequired",
    "subscriptionRemoved" or "missed". The service acts on it (governance_bot/subscriptions.py)."""

    subscription_id: str
    event: str


@dataclass(slots=True)
class WebhookResponse:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    items: list[Item] = field(default_factory=list)
    # set once the request's signature is checked: unique per delivery (e.g. the signature);
    # the service acknowledges a key seen before without processing it (governance_bot/webhooks.py)
    replay_key: str | None = None
    # notices about the subscription itself, handled by the service after the answer is sent
    subscription_events: list[SubscriptionEvent] = field(default_factory=list)
    # verified records whose reading needs platform calls (e.g. Slack users.info, Graph reads):
    # JSON values the service stores with the delivery and hands to ``deferred_items`` on a
    # worker thread, so the HTTP answer never waits for a platform (governance_bot/webhooks.py)
    deferred: list[Any] = field(default_factory=list)


class ConnectorSettings(BaseModel):
    """Options every connector takes; a platform adds its own fields in a subclass."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="a unique name for this connector instance")
    type: str = Field(min_length=1, description="which connector: see `connectors list`")
    account: str = Field(min_length=1, description="account_id from the accounts register")
    enabled: bool = True
    poll_interval_seconds: int = Field(default=300, ge=5)
    base_url: str | None = Field(default=None, description="override for tests or self-hosting")
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0)

    def masked(self) -> dict[str, Any]:
        """The settings with every secret shown as ``**********``."""
        out: dict[str, Any] = {}
        for key, value in self:
            out[key] = "**********" if isinstance(value, SecretStr) else value
        return out


class Connector:
    """Base class of every connector. Subclasses set ``type``, ``Settings`` and ``capabilities``
    and implement ``fetch``; the optional capabilities have default implementations that say no."""

    type: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Settings: ClassVar[builtins.type[ConnectorSettings]] = ConnectorSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.read})

    def __init__(self, settings: ConnectorSettings, **_: Any):
        self.settings = settings

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def account(self) -> str:
        return self.settings.account

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings.masked()}>"

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        raise NotImplementedError

    def moderation_actions(self) -> frozenset[ModerationAction]:
        names = {a.value for a in ModerationAction}
        return frozenset(ModerationAction(c.value) for c in self.capabilities if c.value in names)

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        raise FatalError(f"{self.name}: {self.type} cannot {action.value} items")

    def account_facts(self) -> AccountFacts | None:
        return None

    def handle_webhook(self, request: WebhookRequest) -> WebhookResponse:
        """Verify a request and say what it carries. No platform calls here: records that need
        them go in ``WebhookResponse.deferred`` (read later by :meth:`deferred_items`)."""
        return WebhookResponse(status=404, body=b"this connector takes no webhooks")

    def read_webhook(self, request: WebhookRequest) -> WebhookResponse:
        """:meth:`handle_webhook` with its deferred records read at once (for tests and callers
        without the service's queue)."""
        response = self.handle_webhook(request)
        if response.deferred:
            items, _problems = self.deferred_items(response.deferred)
            response = replace(response, items=[*response.items, *items], deferred=[])
        return response

    def deferred_items(self, deferred: list[Any]) -> tuple[list[Item], list[str]]:
        """Items from the ``deferred`` records of a verified delivery (platform calls allowed:
        this runs on a worker, with the client's timeouts), and a problem line per record that
        cannot be read. A ``RetriableError`` makes the service try the delivery again later."""
        return [], [f"{self.name}: {len(deferred)} deferred record(s) this connector cannot "
                    "read"] if deferred else []

    def close(self) -> None:
        return None


def _retry_after_seconds(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date) or X's x-rate-limit-reset."""
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
                return max(0.0, when.timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = response.headers.get("x-rate-limit-reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None


class HttpConnector(Connector):
    """A connector that talks HTTP: retries, rate limits and paging live here.

    The ``httpx.Client`` is passed in (tests hand one whose transport replays recorded responses).
    """

    default_base_url: ClassVar[str] = ""
    auth_fix: ClassVar[str] = "check the access token in the environment and its permissions"

    def __init__(
        self,
        settings: ConnectorSettings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ):
        super().__init__(settings, **kwargs)
        self.base_url = (settings.base_url or self.default_base_url).rstrip("/")
        self._own_client = client is None
        self.client = client or httpx.Client(timeout=settings.timeout_seconds)
        self.sleep = sleep
        self.clock = clock

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request (subclasses; secrets never logged)."""
        return {}

    def effective_status(self, response: httpx.Response) -> int:
        """The HTTP status to act on. Platforms that signal expired tokens or rate limits in the
        body (Graph API error codes in a 400) map them to 401/429 here."""
        return response.status_code

    def check_rate_limit(self, response: httpx.Response) -> float | None:
        """Seconds to pause *before the next request* when a platform says usage is near its
        limit (Graph's X-App-Usage, X's x-rate-limit-remaining). None: no pause."""
        remaining = response.headers.get("x-rate-limit-remaining")
        if remaining is not None and remaining.strip() == "0":
            return _retry_after_seconds(response, self.clock())
        return None

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request, waiting and retrying on 429/5xx/network errors; raise FatalError on
        401/403 and other 4xx with a message naming the account and the fix."""
        url = self.url(path)
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        attempt = 0
        while True:
            try:
                response = self.client.request(method, url, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.settings.max_retries:
                    raise RetriableError(
                        f"{self.name}: network error talking to {self.type}: "
                        f"{type(exc).__name__}"
                    ) from exc
                self._backoff(attempt, None)
                attempt += 1
                continue
            status = self.effective_status(response)
            if status < 400:
                pause = self.check_rate_limit(response)
                if pause:
                    log.info("%s: near the rate limit, pausing %.0fs", self.name, pause)
                    self.sleep(pause)
                return response
            if status in (401, 403):
                raise FatalError(
                    f"{self.name} (account {self.account}): {self.type} refused the credentials "
                    f"(HTTP {status}). Fix: {self.auth_fix}."
                )
            if status == 429 or status >= 500:
                wait = _retry_after_seconds(response, self.clock())
                if attempt >= self.settings.max_retries:
                    raise RetriableError(
                        f"{self.name}: {self.type} still answering HTTP {status} after "
                        f"{attempt + 1} tries",
                        retry_after=wait,
                    )
                log.warning(
                    "%s: HTTP %d from %s, retrying in %s",
                    self.name, status, self.type, f"{wait:.0f}s" if wait is not None else "backoff",
                )
                self._backoff(attempt, wait)
                attempt += 1
                continue
            raise FatalError(
                f"{self.name} (account {self.account}): {self.type} rejected the request "
                f"{method} {httpx.URL(url).path} (HTTP {status}). Fix: check the connector "
                f"settings (ids, permissions)."
            )

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise RetriableError(f"{self.name}: {self.type} sent a body that is not JSON") from exc

    def _backoff(self, attempt: int, wait: float | None) -> None:
        if wait is None:
            wait = min(60.0, (2**attempt) * 0.5) * (1 + random.random() * 0.1)
        self.sleep(wait)

    def paginate(
        self,
        path: str,
        next_page: Callable[[Any], str | dict[str, Any] | None],
        params: dict[str, Any] | None = None,
        max_pages: int = 1000,
    ) -> Iterator[Any]:
        """Yield each page's JSON. ``next_page(page)`` returns the next URL, new params, or None."""
        current_path, current_params = path, dict(params or {})
        for _ in range(max_pages):
            page = self.get_json(current_path, params=current_params or None)
            yield page
            nxt = next_page(page)
            if not nxt:
                return
            if isinstance(nxt, str):
                current_path, current_params = nxt, {}
            else:
                current_params = {**current_params, **nxt}


def utc_now() -> datetime:
    return datetime.now(UTC)
