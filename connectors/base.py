"""The connector toolkit: the protocol every connector implements and everything platform
modules share, so a connector module holds only its platform's specifics (endpoints, fields,
parsing). Modelled on singer-sdk's streams.

Exceptions, by what the caller should do::

    ConnectorError
    ├── RetriableError   try again later (429, 5xx, network); ``retry_after`` seconds if known
    ├── FatalError       stop polling this account until a person fixes it (401/403, bad config)
    │   └── NotFound     the platform answered 404 (``request(allow_404=True)`` answers None)
    └── SkippableRecord  one record could not be read; log it with its source, go on

The toolkit:

* :class:`HttpConnector`: ``request`` (retries, 429/Retry-After, backoff, usage headers, 401/403
  as FatalError with the fix, ``allow_404=True`` for "already gone"), ``get_json``, ``pages``;
* paginators: :class:`NextUrlPaginator` (a URL in the body), :class:`LinkHeaderPaginator`
  (``Link: rel="next"``), :class:`CursorPaginator` and :class:`PageTokenPaginator` (a token in
  the body sent back as a query parameter), all walked by the one loop :func:`follow_pages`;
* sign-in: :meth:`HttpConnector.client_credentials` (OAuth token endpoints) and
  :class:`TokenCache` (a token kept until shortly before it expires);
* :func:`parse_time`, the one timestamp parser (a time without a zone is refused unless the
  platform documents UTC); :func:`describe_error`, the one error describer (never the record's
  content); :func:`parse_records` / :func:`report_skipped`: a skipped record is a problem line
  naming where it came from, never dropped silently;
* :func:`html_to_text`, the project's one HTML-to-text function, and media helpers
  (:func:`media_ref`, :func:`thumbnail_ref` for a video's still picture);
* fetching media: :meth:`Connector.media_request` says how to download one of the connector's
  pictures (a plain GET by default; the token where the platform needs it) and :func:`download`
  does it, streamed under a size cap and a time limit, refusing private addresses, foreign
  redirects for the token and answers that are not pictures (:class:`MediaFetchError` says why);
* :class:`SocialSettings` and :func:`listing_start`: the recheck window that makes listings
  complete, so deletions are seen.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import ipaddress
import logging
import mimetypes
import random
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal, TypeVar, overload
from urllib.parse import urlsplit

import httpx
import lxml.html
from lxml import etree
from lxml.etree import ParserError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from governance_bot.items import Item, Media

__all__ = [
    "RECORD_ERRORS",
    "AccountFacts",
    "Capability",
    "Connector",
    "ConnectorError",
    "ConnectorSettings",
    "CursorPaginator",
    "Downloaded",
    "FatalError",
    "FetchResult",
    "HttpConnector",
    "LinkHeaderPaginator",
    "ListingWindow",
    "MediaFetchError",
    "MediaRequest",
    "ModerationAction",
    "ModerationResult",
    "NextUrlPaginator",
    "NotFound",
    "Page",
    "PageRequest",
    "PageTokenPaginator",
    "Paginator",
    "RetriableError",
    "SkippableRecord",
    "SocialSettings",
    "SubscriptionEvent",
    "TokenCache",
    "WebhookRequest",
    "WebhookResponse",
    "check_address",
    "dedupe",
    "describe_error",
    "download",
    "follow_pages",
    "guess_mime",
    "host_of",
    "html_to_text",
    "listing_start",
    "media_ref",
    "parse_one",
    "parse_records",
    "parse_time",
    "report_skipped",
    "thumbnail_ref",
    "unix",
    "utc_now",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ConnectorError(Exception):
    """Base of every connector failure."""


class RetriableError(ConnectorError):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class FatalError(ConnectorError):
    """Needs a person: the message names the account and the fix."""


class NotFound(FatalError):
    """The platform answered 404 (a record deleted since it was listed, or a wrong id)."""


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


class SocialSettings(ConnectorSettings):
    """Options the social-account connectors share: the recheck window."""

    recheck_days: int = Field(
        default=7, ge=1, le=90,
        description="each poll lists the last N days completely, so edits and deletions are seen",
    )
    backfill_days: int = Field(
        default=30, ge=1, le=3650, description="how far back the first poll reads"
    )


def listing_start(cursor: dict[str, Any] | None, now: datetime, settings: SocialSettings
                  ) -> datetime:
    """Where this poll's complete listing starts: the last N days (``recheck_days``), reaching
    further back to the previous poll if that was longer ago, or ``backfill_days`` at first."""
    recheck = now - timedelta(days=settings.recheck_days)
    if not cursor or not cursor.get("polled_at"):
        return now - timedelta(days=settings.backfill_days)
    try:
        previous = parse_time(cursor["polled_at"])
    except ValueError:
        return now - timedelta(days=settings.backfill_days)
    return min(previous, recheck)


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

    @property
    def platform(self) -> str:
        """The ``platform`` of the items this connector makes."""
        return str(getattr(self.settings, "platform", None) or self.type)

    def media_request(self, media: Media) -> MediaRequest | None:
        """How to download one of this connector's pictures (the pipeline's media step calls it,
        off the polling path): by default a plain GET of its URL, as public CDNs serve them;
        None when there is nothing to fetch. A connector whose files need its token says so
        here (``MediaRequest.headers``); one that cannot fetch a picture raises
        :class:`MediaFetchError` saying why."""
        if not media.url or not media.url.startswith(("https://", "http://")):
            return None
        return MediaRequest(media.url)

    def close(self) -> None:
        return None


# --- times -----------------------------------------------------------------------------------


def parse_time(value: Any, *, naive: Literal["refuse", "utc"] = "refuse") -> datetime:
    """A platform timestamp as an aware UTC datetime: the one parser every connector uses.

    Takes ISO 8601 text (``Z``, ``+00:00`` or Graph's ``+0000``), Unix seconds (a number or a
    string of digits) and datetimes. The rule for a time **without a zone**: it is refused
    (ValueError), because reading it in the wrong zone would move a message in or out of working
    hours; a platform that documents its times as UTC says so with ``naive="utc"`` (Bluesky's
    older records). The error never repeats the value (a broken field may hold anything)."""
    if isinstance(value, str):
        try:  # Python 3.11 reads Z, +00:00 and +0000 itself: the common case, kept fast
            parsed = datetime.fromisoformat(value)
        except ValueError:
            text = value.strip()
            if text.isdigit():
                return datetime.fromtimestamp(int(text), UTC)
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"not an ISO 8601 timestamp ({len(text)} characters)") from None
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    else:
        raise ValueError(f"not a timestamp ({type(value).__name__})")
    if parsed.tzinfo is None:
        if naive != "utc":
            raise ValueError("a timestamp without a time zone (its zone is unknown)")
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def unix(dt: datetime) -> int:
    return int(dt.timestamp())


# --- describing what went wrong -----------------------------------------------------------------


def describe_error(exc: BaseException) -> str:
    """What is wrong with a record, in one line, never repeating the record's content (pydantic's
    own message quotes the input; this names the field and the fault only)."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                         for e in exc.errors())
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, SkippableRecord | ValueError | TypeError | AttributeError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return text[:160]
    return type(exc).__name__


# exceptions that mean "this one record is unreadable": skipped and reported, the rest goes on
RECORD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, ValidationError, SkippableRecord)


def report_skipped(log: logging.Logger, connector: str, problems: list[str], where: str,
                   what: str) -> None:
    """Record that one record was skipped: ``where`` names its source (endpoint, page, record
    id), ``what`` the defect. Never pass the record's text: it may hold a child's details."""
    message = f"{where}: {what}"
    problems.append(message)
    log.warning("%s: skipped an unreadable record at %s", connector, message)


def parse_records(records: Iterable[T], parse: Callable[[T], Item | list[Item] | None],
                  where: str, problems: list[str], *, connector: str = "",
                  ) -> Iterator[Item]:
    """Parse each record; one that cannot be read is noted in ``problems`` with ``where`` and its
    position (never its text) and skipped, and the others go on."""
    for index, record in enumerate(records):
        yield from parse_one(record, parse, f"{where}, record {index}", problems,
                             connector=connector)


_ID_KEYS = ("id", "uuid", "item_id", "comment_id", "ts", "uri")


def parse_one(record: T, parse: Callable[[T], Item | list[Item] | None], where: str,
              problems: list[str], *, connector: str = "") -> list[Item]:
    """Like :func:`parse_records` for one record whose position ``where`` already names."""
    try:
        parsed = parse(record)
    except RECORD_ERRORS as exc:
        # the record's own ids say which one it was (never its text)
        ids = [f"{key} {record[key]}" for key in _ID_KEYS
               if isinstance(record, dict) and isinstance(record.get(key), str | int)
               and record[key] != ""] if isinstance(record, dict) else []
        label = f"{where} ({', '.join(ids)})" if ids else where
        report_skipped(log, connector or "connector", problems, label,
                       f"skipped, {describe_error(exc)}")
        return []
    if parsed is None:
        return []
    return parsed if isinstance(parsed, list) else [parsed]


def dedupe(items: Iterable[Item]) -> list[Item]:
    """Items in order, each id once (a record seen on two pages, or by two listings)."""
    seen: set[str] = set()
    out: list[Item] = []
    for item in items:
        if item.id not in seen:
            seen.add(item.id)
            out.append(item)
    return out


# --- media -----------------------------------------------------------------------------------

_KIND_MIME = {
    "photo": "image/jpeg",
    "image": "image/jpeg",
    "carousel_album": "image/jpeg",
    "album": "image/jpeg",
    "animated_gif": "video/mp4",
    "gifv": "video/mp4",
    "video": "video/mp4",
    "video_inline": "video/mp4",
    "video_autoplay": "video/mp4",
    "reels": "video/mp4",
    "gif": "image/gif",
    "audio": "audio/mpeg",
}


def guess_mime(url: str | None, kind: str | None = None) -> str | None:
    """The media type from the URL's file name, else from the platform's media kind; a file name
    that contradicts the kind (an ``image`` served from a path without an extension, or from a
    ``.bin``) loses to the kind."""
    guessed = None
    if url:
        guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    from_kind = _KIND_MIME.get(kind.lower()) if kind else None
    if guessed and (from_kind is None or guessed.split("/")[0] == from_kind.split("/")[0]):
        return guessed
    return from_kind


def media_ref(url: str | None, kind: str | None = None, mime: str | None = None,
              **extra: Any) -> Media | None:
    """A reference to a picture or video (the pipeline's media step downloads the pictures)."""
    if not url:
        return None
    return Media(url=url, mime_type=mime or guess_mime(url, kind), **extra)


def thumbnail_ref(url: Any, **extra: Any) -> Media | None:
    """The still picture a platform shows for a video, as a media entry of its own (marked
    ``thumbnail``), so its text and the people in it are checked like a photo's."""
    if not isinstance(url, str) or not url:
        return None
    guessed = guess_mime(url)
    mime = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
    return Media(url=url, mime_type=mime, thumbnail=True, **extra)


# --- fetching media ---------------------------------------------------------------------------


class MediaFetchError(ConnectorError):
    """One picture could not be fetched. The message says why in words a person can act on; it
    never holds the URL's query (signed CDN links and tokens live there). ``retriable``: whether
    trying again later may work (a timeout, a 5xx, a rate limit) or not (404, not a picture,
    over the size cap)."""

    def __init__(self, message: str, *, retriable: bool = True):
        super().__init__(message)
        self.retriable = retriable


@dataclass(frozen=True, slots=True)
class MediaRequest:
    """How to download one media file: its URL and the headers that authenticate the request.

    ``headers`` (the platform's token) go only to ``auth_hosts`` (default: the URL's own host),
    never to another host a redirect leads to, so a link planted in a post cannot collect the
    token. ``expected_sha256`` is the file's hash where the platform states one (WhatsApp:
    base64 or hex); a download that does not match it is refused."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    auth_hosts: frozenset[str] = frozenset()
    expected_sha256: str | None = None

    def headers_for(self, url: httpx.URL) -> dict[str, str]:
        hosts = self.auth_hosts or frozenset({httpx.URL(self.url).host})
        return dict(self.headers) if url.host in hosts and url.scheme == "https" else {}


@dataclass(frozen=True, slots=True)
class Downloaded:
    content: bytes
    content_type: str | None
    host: str


# what a server may call a picture it sends: an image type, or a generic binary (object stores)
_PICTURE_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")


def host_of(url: str | None) -> str:
    """The host of a URL, for messages (never the path or query: they may carry tokens)."""
    try:
        return httpx.URL(url or "").host or "no host"
    except (httpx.InvalidURL, TypeError):
        return "an unreadable address"


# host -> (whether it is on a private or local network, until when that answer is kept): CDN
# pictures come from a handful of hosts, and one name lookup each few minutes is enough
_HOST_CHECKS: dict[str, tuple[bool, float]] = {}
_HOST_CHECK_SECONDS = 300.0


def _is_private_host(host: str, port: int) -> bool:
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        known = _HOST_CHECKS.get(host)
        now = time.monotonic()
        if known is not None and known[1] > now:
            return known[0]
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False  # does not resolve: the download fails on its own
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        private = any(not a.is_global for a in addresses)
        if len(_HOST_CHECKS) > 4096:
            _HOST_CHECKS.clear()
        _HOST_CHECKS[host] = (private, now + _HOST_CHECK_SECONDS)
        return private
    return any(not a.is_global for a in addresses)


def check_address(url: httpx.URL, allow_private: bool = False) -> None:
    """Refuse a URL that is not http(s), or whose host is (or resolves to) a loopback, private,
    link-local or reserved address: media URLs come from what people post, and the service must
    not be made to fetch from its own network (cloud metadata endpoints, admin pages). A host
    that does not resolve is left to fail on its own; a name's answer is kept five minutes."""
    if url.scheme not in ("http", "https"):
        raise MediaFetchError(f"not a web address ({url.scheme or 'no scheme'})", retriable=False)
    if allow_private:
        return
    if _is_private_host(url.host, url.port or (443 if url.scheme == "https" else 80)):
        raise MediaFetchError(
            f"{url.host} is a private or local network address; media are fetched only from "
            "the internet (set [media] allow_private_networks = true for a platform on your "
            "own network)", retriable=False)


def download(client: httpx.Client, request: MediaRequest, *, max_bytes: int,
             timeout: float, allow_private: bool = False, max_redirects: int = 3,
             clock: Callable[[], float] = time.monotonic) -> Downloaded:
    """Download one media file, streamed and refused as soon as it passes ``max_bytes``, within
    ``timeout`` seconds in all (connect, redirects and every chunk), following at most
    ``max_redirects`` redirects, each checked like the first address. The answer must call itself
    a picture (an image type or a generic binary; a login page or an error page in HTML is
    refused). Raises :class:`MediaFetchError` saying why."""
    deadline = clock() + timeout
    try:
        url = httpx.URL(request.url)
    except (httpx.InvalidURL, TypeError):
        raise MediaFetchError("the address is not a valid URL", retriable=False) from None
    for _hop in range(max_redirects + 1):
        check_address(url, allow_private)
        left = deadline - clock()
        if left <= 0:
            raise MediaFetchError(f"took longer than {timeout:g} s")
        limits = httpx.Timeout(min(left, 10.0), read=left, write=left, pool=left)
        try:
            with client.stream("GET", url, headers=request.headers_for(url), timeout=limits,
                               follow_redirects=False) as response:
                if response.is_redirect and response.headers.get("location"):
                    url = url.join(response.headers["location"])
                    continue
                _check_answer(response, url.host, max_bytes)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes(65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaFetchError(f"the file is larger than the {max_bytes:,}-byte "
                                              "limit", retriable=False)
                    if clock() > deadline:
                        raise MediaFetchError(f"took longer than {timeout:g} s")
                    chunks.append(chunk)
                content = b"".join(chunks)
        except httpx.TimeoutException:
            raise MediaFetchError(f"took longer than {timeout:g} s") from None
        except httpx.TransportError as exc:
            raise MediaFetchError(f"network error ({type(exc).__name__})") from None
        _check_hash(content, request.expected_sha256)
        return Downloaded(content, response.headers.get("content-type"), url.host)
    raise MediaFetchError(f"more than {max_redirects} redirects", retriable=False)


def _check_answer(response: httpx.Response, host: str, max_bytes: int) -> None:
    status = response.status_code
    if status in (404, 410):
        raise MediaFetchError(f"{host} answered HTTP {status}: the file is gone",
                              retriable=False)
    if status in (401, 403):
        raise MediaFetchError(f"{host} refused the request (HTTP {status}): the link expired or "
                              "the connector's token may not read files")
    if status == 429 or status >= 500:
        raise MediaFetchError(f"{host} answered HTTP {status}; tried again later")
    if status >= 300:
        raise MediaFetchError(f"{host} answered HTTP {status}", retriable=False)
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind and not kind.startswith(_PICTURE_TYPES):
        raise MediaFetchError(f"{host} sent {kind}, not a picture", retriable=False)
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise MediaFetchError(f"the file is {int(length):,} bytes, over the {max_bytes:,}-byte "
                              "limit", retriable=False)


def _check_hash(content: bytes, expected: str | None) -> None:
    """Compare with the hash the platform stated (hex, or base64 as WhatsApp sends it)."""
    if not expected:
        return
    digest = hashlib.sha256(content).digest()
    text = expected.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        matches = digest.hex() == text.lower()
    else:
        try:
            stated = base64.b64decode(text, validate=True)
        except ValueError:
            return  # not a hash we can read: nothing to compare
        if len(stated) != len(digest):
            return
        matches = stated == digest
    if not matches:
        raise MediaFetchError("the file does not match the hash the platform stated")


# --- visible text -----------------------------------------------------------------------------

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg", "title",
                        "button", "select", "iframe", "object"})
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "ul",
                         "ol", "dl", "table", "figure", "hr", "address"})
_LINES = frozenset({"div", "li", "tr", "dt", "dd", "section", "article", "header", "footer",
                    "nav", "main", "aside", "figcaption", "caption", "details", "summary",
                    "form", "fieldset", "legend", "center"})
_CELLS = frozenset({"td", "th"})
_WHITESPACE = re.compile(r"[ \t\r\n\f\v\u00a0\u200b]+")


class _TextOut:
    """Collects text in reading order: runs of white space become one space (except in
    ``<pre>``), a block boundary becomes a line break (1) or a blank line (2)."""

    __slots__ = ("breaks", "chunks", "space")

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.breaks = 0  # pending break before the next text: 0, 1 (line) or 2 (paragraph)
        self.space = False  # pending space before the next text

    def text(self, value: str | None, pre: bool = False) -> None:
        if not value:
            return
        if pre:
            self._flush()
            self.chunks.append(value)
            return
        collapsed = _WHITESPACE.sub(" ", value)
        if collapsed.startswith(" "):
            self.space = True
            collapsed = collapsed.lstrip(" ")
        if not collapsed:
            return
        self._flush()
        trailing = collapsed.endswith(" ")
        self.chunks.append(collapsed.rstrip(" ") if trailing else collapsed)
        self.space = trailing

    def _flush(self) -> None:
        if self.chunks:
            if self.breaks:
                self.chunks.append("\n" * self.breaks)
            elif self.space:
                self.chunks.append(" ")
        self.breaks = 0
        self.space = False

    def hard_break(self) -> None:
        """``<br>``: a new line even with no text between (two make a blank line)."""
        if self.chunks:
            if self.breaks >= 1:
                self.breaks = 2
            else:
                self.chunks.append("\n")
            self.space = False

    def block(self, lines: int) -> None:
        if self.chunks and self.chunks[-1].endswith("\n"):
            lines = max(0, lines - (2 if self.chunks[-1].endswith("\n\n") else 1))
        self.breaks = max(self.breaks, lines)
        self.space = False

    def result(self) -> str:
        return "".join(self.chunks).strip()


def html_to_text(html: str | None) -> str:
    """The text a person reads in an HTML fragment or page: the one HTML-to-text function of the
    project (statuses, comments, email, Teams, web pages), so a detector's spans do not depend on
    the platform.

    Block structure is kept: paragraphs, headings, lists, tables, ``<pre>`` and ``<blockquote>``
    are separated by a blank line; list items, table rows and other blocks start a new line (list
    items as ``- item``, numbered lists as ``1. item``); ``<br>`` is a line break; ``<pre>`` keeps
    its spacing; an image is its alt text; scripts, styles, the head and form controls are
    dropped; entities are decoded; links are their visible text."""
    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(html)
    except (ParserError, ValueError):
        return ""
    out = _TextOut()
    pre = 0
    lists: list[list[int]] = []  # per open list: [is_numbered, next number]
    walker = etree.iterwalk(root, events=("start", "end", "comment", "pi"))
    for event, element in walker:
        tag = element.tag
        if not isinstance(tag, str):  # comment or processing instruction: only its tail shows
            if event in ("comment", "pi"):
                out.text(element.tail, pre > 0)
            continue
        tag = tag.lower()
        if event == "start":
            if tag in _SKIP_TAGS:
                walker.skip_subtree()
                continue
            if tag in _PARAGRAPHS:
                out.block(2)
                if tag == "pre":
                    pre += 1
                elif tag in ("ul", "ol"):
                    lists.append([1 if tag == "ol" else 0, 1])
            elif tag in _LINES:
                out.block(1)
                if tag == "li":
                    if lists and lists[-1][0]:
                        out.text(f"{lists[-1][1]}. ")
                        lists[-1][1] += 1
                    else:
                        out.text("- ")
            elif tag in _CELLS:
                out.space = bool(out.chunks)
            elif tag == "br":
                out.hard_break()
            elif tag == "img":
                alt = element.get("alt")
                if alt and alt.strip():
                    out.space = True
                    out.text(alt)
                    out.space = True
            out.text(element.text, pre > 0)
        else:  # end
            if tag in _SKIP_TAGS:
                out.text(element.tail, pre > 0)
                continue
            if tag in _PARAGRAPHS:
                if tag == "pre":
                    pre -= 1
                elif tag in ("ul", "ol") and lists:
                    lists.pop()
                out.block(2)
            elif tag in _LINES:
                out.block(1)
            elif tag in _CELLS:
                out.space = True
            out.text(element.tail, pre > 0)
    return out.result()


# --- paging ----------------------------------------------------------------------------------


@dataclass(slots=True)
class PageRequest:
    """Where one page is read from: a path or URL and its query."""

    url: str
    params: dict[str, Any] = field(default_factory=dict)


def _dig(body: Any, path: str) -> Any:
    """``body["a"]["b"]`` for ``"a.b"``; None where any step is missing. A key that itself holds
    dots (Graph's ``@odata.nextLink``) is found whole."""
    if isinstance(body, dict) and path in body:
        return body[path]
    for key in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


class Paginator:
    """Where the page after this one is (singer-sdk's paginators, for the shapes platforms use).
    ``next(request, body, response)`` answers the next request, or None at the end."""

    def next(self, request: PageRequest, body: Any, response: httpx.Response | None
             ) -> PageRequest | None:
        raise NotImplementedError


class NextUrlPaginator(Paginator):
    """The body names the next page's full URL (Graph's ``paging.next``). ``clean(url)`` may
    rewrite it (e.g. drop a token the platform echoed into it) into a new request."""

    def __init__(self, path: str, clean: Callable[[str], PageRequest] | None = None):
        self.path = path
        self.clean = clean

    def next(self, request: PageRequest, body: Any, response: httpx.Response | None
             ) -> PageRequest | None:
        url = _dig(body, self.path)
        if not isinstance(url, str) or not url:
            return None
        return self.clean(url) if self.clean else PageRequest(url)


class LinkHeaderPaginator(Paginator):
    """The ``Link: <...>; rel="next"`` response header (RFC 8288; Mastodon)."""

    def next(self, request: PageRequest, body: Any, response: httpx.Response | None
             ) -> PageRequest | None:
        if response is None or (isinstance(body, list) and not body):
            return None
        url = response.links.get("next", {}).get("url")
        return PageRequest(url) if url else None


class PageTokenPaginator(Paginator):
    """A token in the body (``path``, dotted) that goes back as the query parameter ``param``
    (YouTube's ``nextPageToken``, X's ``meta.next_token``, Zoom's ``next_page_token``)."""

    def __init__(self, param: str, path: str, more: str | None = None):
        self.param = param
        self.path = path
        self.more = more  # a flag that must also be true for another page (TikTok's has_more)

    def next(self, request: PageRequest, body: Any, response: httpx.Response | None
             ) -> PageRequest | None:
        token = _dig(body, self.path)
        if token in (None, "") or (self.more is not None and not _dig(body, self.more)):
            return None
        return PageRequest(request.url, {**request.params, self.param: token})


class CursorPaginator(PageTokenPaginator):
    """A ``cursor`` in the body sent back as ``cursor`` (Bluesky, TikTok, Slack's
    ``response_metadata.next_cursor``)."""

    def __init__(self, path: str = "cursor", param: str = "cursor", more: str | None = None):
        super().__init__(param, path, more)


@dataclass(slots=True)
class Page:
    """One page of a listing: its number (from 1), where it was read, the body and response."""

    number: int
    where: str
    body: Any
    response: httpx.Response | None = None

    def records(self, key: str | None) -> list[Any]:
        """The page's records: ``body[key]`` (dotted), or the body itself when it is a list."""
        found = self.body if key is None else _dig(self.body, key)
        return found if isinstance(found, list) else []


def follow_pages(get: Callable[[PageRequest], tuple[Any, httpx.Response | None]],
                 first: PageRequest, paginator: Paginator, *, name: str = "",
                 max_pages: int = 1000) -> Iterator[Page]:
    """Each page of a listing, from ``first`` until the paginator says there is no next page
    (or ``max_pages``, logged). The one paging loop: a caller that has read enough (records older
    than its window) simply stops iterating."""
    request: PageRequest | None = first
    number = 0
    while request is not None:
        if number >= max_pages:
            log.warning("%s: stopped %s after %d pages (max_pages)", name, first.url, max_pages)
            return
        number += 1
        body, response = get(request)
        yield Page(number, f"GET {_path_of(first.url)} page {number}", body, response)
        request = paginator.next(request, body, response)


def _path_of(url: str) -> str:
    if url.startswith(("http://", "https://")):
        return httpx.URL(url).path
    return url if url.startswith("/") else f"/{url}"


# --- sign-in ----------------------------------------------------------------------------------


class TokenCache:
    """An access token kept until shortly before it expires: ``renew()`` returns a new
    ``(token, seconds it lasts)``. The one token cache connectors use (OAuth client credentials,
    refresh tokens, sessions)."""

    def __init__(self, renew: Callable[[], tuple[str, float]], clock: Callable[[], float],
                 margin: float = 60.0):
        self._renew = renew
        self._clock = clock
        self.margin = margin
        self._token: str | None = None
        self._expires = 0.0

    def get(self) -> str:
        if self._token is None or self._clock() >= self._expires - self.margin:
            self._token = None
            token, lasts = self._renew()
            self._token, self._expires = token, self._clock() + lasts
        return self._token

    @property
    def current(self) -> str | None:
        """The token held now, without renewing it."""
        return self._token

    def clear(self) -> None:
        self._token = None


# --- HTTP ------------------------------------------------------------------------------------


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

    @overload
    def request(self, method: str, path: str, *, allow_404: Literal[False] = False,
                auth: bool = True, **kwargs: Any) -> httpx.Response: ...

    @overload
    def request(self, method: str, path: str, *, allow_404: Literal[True],
                auth: bool = True, **kwargs: Any) -> httpx.Response | None: ...

    def request(self, method: str, path: str, *, allow_404: bool = False, auth: bool = True,
                **kwargs: Any) -> httpx.Response | None:
        """Send a request, waiting and retrying on 429/5xx/network errors; raise FatalError on
        401/403 and other 4xx with a message naming the account and the fix.

        ``allow_404``: a 404 answers None (a record deleted since it was listed, a removal of
        something already gone). ``auth=False``: no ``auth_headers`` (the sign-in request)."""
        url = self.url(path)
        headers = {**(self.auth_headers() if auth else {}), **(kwargs.pop("headers", None) or {})}
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
            if status == 404 and allow_404:
                log.info("%s: %s has no %s any more (404)", self.name, self.type,
                         httpx.URL(url).path)
                return None
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
            raise (NotFound if status == 404 else FatalError)(
                f"{self.name} (account {self.account}): {self.type} rejected the request "
                f"{method} {httpx.URL(url).path} (HTTP {status}). Fix: check the connector "
                f"settings (ids, permissions)."
            )

    def get_json(self, path: str, *, allow_404: bool = False, **kwargs: Any) -> Any:
        """The JSON body of a GET; None for a 404 when ``allow_404``."""
        response = self.request("GET", path, allow_404=allow_404, **kwargs)  # type: ignore[call-overload]
        return None if response is None else self.json_of(response, path)

    def json_of(self, response: httpx.Response, where: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise RetriableError(f"{self.name}: {self.type} sent a body that is not JSON "
                                 f"({_path_of(where)})") from exc

    def _backoff(self, attempt: int, wait: float | None) -> None:
        if wait is None:
            wait = min(60.0, (2**attempt) * 0.5) * (1 + random.random() * 0.1)
        self.sleep(wait)

    # --- the toolkit platform modules build on ----------------------------------------------

    def token_cache(self, renew: Callable[[], tuple[str, float]], margin: float = 60.0
                    ) -> TokenCache:
        """A :class:`TokenCache` on this connector's clock (which a test may replace)."""
        return TokenCache(renew, lambda: self.clock(), margin)

    def pages(self, path: str, params: dict[str, Any] | None, paginator: Paginator, *,
              max_pages: int = 1000) -> Iterator[Page]:
        """Each page of a paged listing (see :func:`follow_pages`), read with :meth:`request`."""

        def get(request: PageRequest) -> tuple[Any, httpx.Response | None]:
            response = self.request("GET", request.url, params=request.params or None)
            return self.json_of(response, request.url), response

        return follow_pages(get, PageRequest(path, dict(params or {})), paginator,
                            name=self.name, max_pages=max_pages)

    def client_credentials(self, url: str, *, data: dict[str, Any] | None = None,
                           params: dict[str, Any] | None = None,
                           headers: dict[str, str] | None = None,
                           json: dict[str, Any] | None = None,
                           basic: tuple[str, str] | None = None,
                           token_path: str = "access_token",
                           expires_path: str = "expires_in") -> tuple[str, float]:
        """Ask a token endpoint for an access token (OAuth 2.0 client credentials, a refresh
        token, an account-credentials grant): ``(token, seconds it lasts)`` for a
        :class:`TokenCache`. ``basic``: (client id, secret) sent as HTTP Basic. A refusal is a
        FatalError naming the account and the fix."""
        headers = dict(headers or {})
        if basic is not None:
            pair = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        response = self.request("POST", url, data=data, params=params, headers=headers,
                                json=json, auth=False)
        body = self.json_of(response, url)
        token = _dig(body, token_path)
        if not isinstance(token, str) or not token:
            raise FatalError(f"{self.name} (account {self.account}): the sign-in answer had no "
                             f"access token. Fix: {self.auth_fix}.")
        try:
            lasts = float(_dig(body, expires_path) or 3600)
        except (TypeError, ValueError):
            lasts = 3600.0
        return token, lasts
