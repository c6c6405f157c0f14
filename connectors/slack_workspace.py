"""``slack_workspace``: a Slack workspace where learners are members (cohort channels, DMs).

Policy duty: staff-learner messages are checked on every channel (P1 "What we expect of our
staff"; P2 "Communicating with students"), and staff do not delete messages sent to or from
organisation accounts.

This is *not* the Slack the bot reports into: it is a learner-facing workspace, read with a bot
token of an app installed there. Polling uses ``conversations.history`` per conversation the app
is a member of (or the listed ones) and ``conversations.replies`` for threads that had replies
in the last ``thread_watch_days``; the Events API (``handle_webhook``, signed requests only)
brings new messages, edits (``message_changed``) and deletions (``message_deleted``) as they
happen. A deletion is passed on with ``deleted_at`` and the last text Slack sent with it, so the
archive keeps the copy and records the deletion.

People are resolved with ``users.info``: ``Person(id=<Slack user id>, email=<profile email>)``;
staff and learners are matched to the registers by that email (scope ``users:read.email``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.signature import SignatureVerifier

from connectors.base import (
    Capability,
    Connector,
    ConnectorSettings,
    CursorPaginator,
    FatalError,
    FetchResult,
    MediaRequest,
    Page,
    PageRequest,
    RetriableError,
    SkippableRecord,
    WebhookRequest,
    WebhookResponse,
    follow_pages,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility, visible_text

__all__ = ["SlackWorkspaceConnector", "SlackWorkspaceSettings"]

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
# subtypes that are notices, not something a person wrote
_NOTICES = frozenset({
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
    "channel_archive", "channel_unarchive", "group_join", "group_leave", "group_topic",
    "group_purpose", "group_name", "pinned_item", "unpinned_item", "bot_add", "bot_remove",
    "tombstone", "huddle_thread", "channel_convert_to_private",
})
_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked",
                          "token_expired", "missing_scope", "no_permission"})


class SlackWorkspaceSettings(ConnectorSettings):
    token: SecretStr = Field(description='"${ENV_VAR}": the bot token (xoxb-...) of the app')
    signing_secret: SecretStr | None = Field(
        default=None, description='"${ENV_VAR}": the app\'s signing secret (Events API)'
    )
    channels: list[str] = Field(
        default_factory=list,
        description="conversation ids to read; empty: every one the app is a member of",
    )
    lookback_days: int = Field(default=7, ge=1, le=90, description="how far back the first poll "
                               "reads")
    thread_watch_days: int = Field(default=14, ge=0, le=90)
    platform: str = "slack_workspace"


class _RateLimitWait(RetryHandler):
    """Waits the Retry-After Slack asks for, with the connector's (injectable) sleep."""

    def __init__(self, sleep: Callable[[float], None], max_retry_count: int):
        super().__init__(max_retry_count=max_retry_count)
        self._sleep = sleep

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return response is not None and (response.status_code == 429
                                          or response.status_code >= 500)

    def prepare_for_next_attempt(self, *, state: RetryState, request: HttpRequest,
                                 response: HttpResponse | None = None,
                                 error: Exception | None = None) -> None:
        state.next_attempt_requested = True
        wait = 1.0 + random.random()
        for key, values in (response.headers if response else {}).items():
            if key.lower() == "retry-after" and values:
                with contextlib.suppress(ValueError):
                    wait = float(values[0])
        if response is not None and response.status_code >= 500:
            wait = min(30.0, 2.0 ** state.current_attempt)
        self._sleep(wait)
        state.increment_current_attempt()


def _attachment_text(att: dict[str, Any]) -> str:
    """What a reader sees in a message attachment (a link unfurl or an app's card)."""
    lines = [str(att[k]) for k in ("pretext", "author_name", "title", "text") if att.get(k)]
    for f in att.get("fields") or []:
        if isinstance(f, dict):
            lines.extend(str(f[k]) for k in ("title", "value") if f.get(k))
    if not lines and att.get("fallback"):
        lines.append(str(att["fallback"]))
    return "\n".join(lines)


def _block_text(blocks: Any) -> str:
    """The text of Block Kit blocks (rich text, sections, context), in order."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str) and node.get("type") in (
                    "text", "plain_text", "mrkdwn", "link"):
                out.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return " ".join(t.strip() for t in out if t.strip())


def _ts_time(ts: str) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)


class SlackWorkspaceConnector(Connector):
    """A learner-facing Slack workspace: channels, DMs the app can see, threads, edits, deletes."""

    type: ClassVar[str] = "slack_workspace"
    description: ClassVar[str] = "a Slack workspace where learners are members"
    Settings = SlackWorkspaceSettings
    capabilities = frozenset({Capability.read, Capability.direct_messages, Capability.webhook})

    settings: SlackWorkspaceSettings

    def __init__(self, settings: ConnectorSettings, *, client: WebClient | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self.sleep = sleep
        self.clock = clock
        s = self.settings
        self.client = client or WebClient(
            token=s.token.get_secret_value(),
            base_url=s.base_url or "https://slack.com/api/",
            timeout=int(s.timeout_seconds),
            retry_handlers=[_RateLimitWait(sleep, s.max_retries)],
        )
        self._users: dict[str, Person] = {}
        self._conversations: dict[str, dict[str, Any]] = {}
        self._members: dict[str, list[str]] = {}

    def media_request(self, media: Media) -> MediaRequest | None:
        """Slack files (``url_private``) are read with the bot token, sent only to Slack's file
        host (scope ``files:read``)."""
        request = super().media_request(media)
        if request is None:
            return None
        host = httpx.URL(request.url).host
        slack_hosts = {"files.slack.com"}
        if self.settings.base_url:  # a Slack stand-in (tests, Enterprise Grid proxies)
            slack_hosts.add(httpx.URL(self.settings.base_url).host)
        if host not in slack_hosts and not host.endswith(".slack.com"):
            return request  # an image linked from elsewhere: no token
        token = self.settings.token.get_secret_value()
        return MediaRequest(request.url, headers={"Authorization": f"Bearer {token}"},
                            auth_hosts=frozenset({host}))

    # -- Web API ------------------------------------------------------------------------------

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        try:
            response = self.client.api_call(method, http_verb="GET", params=params)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            status = exc.response.status_code if exc.response is not None else 0
            if error in _AUTH_ERRORS or status in (401, 403):
                raise FatalError(
                    f"{self.name} (account {self.account}): Slack refused the token ({error}). "
                    f"Fix: check the bot token in the environment and the app's scopes "
                    f"(channels:history, groups:history, im:history, mpim:history, "
                    f"channels:read, groups:read, im:read, mpim:read, users:read, "
                    f"users:read.email)."
                ) from None
            if error == "ratelimited" or status == 429 or status >= 500:
                raise RetriableError(
                    f"{self.name}: Slack still busy on {method} ({error or status})") from None
            raise SkippableRecord(f"{method}: {error or status}") from None
        except OSError as exc:
            raise RetriableError(f"{self.name}: cannot reach Slack ({type(exc).__name__})"
                                 ) from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def pages(self, method: str, params: dict[str, Any]) -> Iterator[Page]:
        """Each page of a Web API listing, following ``response_metadata.next_cursor`` (the
        toolkit's paging loop, through ``slack_sdk``)."""

        def get(request: PageRequest) -> tuple[Any, None]:
            return self.call(request.url, **request.params), None

        return follow_pages(get, PageRequest(method, params), CursorPaginator(
            "response_metadata.next_cursor"), name=self.name)

    def _person(self, user_id: str | None) -> Person | None:
        if not user_id:
            return None
        if user_id not in self._users:
            try:
                user = self.call("users.info", user=user_id).get("user") or {}
            except SkippableRecord:
                user = {}
            profile = user.get("profile") or {}
            email = profile.get("email")
            self._users[user_id] = Person(
                id=user_id, handle=user.get("name") or None,
                name=profile.get("real_name") or user.get("real_name") or None,
                email=str(email).lower() if email else None)
        return self._users[user_id]

    def _conversation_list(self) -> list[dict[str, Any]]:
        if self.settings.channels:
            out = []
            for channel in self.settings.channels:
                info = self.call("conversations.info", channel=channel).get("channel") or {}
                out.append(info or {"id": channel})
            return out
        found: list[dict[str, Any]] = []
        for page in self.pages("conversations.list", {
                "limit": 200, "exclude_archived": True,
                "types": "public_channel,private_channel,mpim,im"}):
            found.extend(c for c in page.records("channels")
                         if isinstance(c, dict) and (c.get("is_member") or c.get("is_im")))
        return found

    def _members_of(self, channel: dict[str, Any]) -> list[str]:
        cid = str(channel["id"])
        if cid not in self._members:
            if channel.get("is_im") and channel.get("user"):
                self._members[cid] = [str(channel["user"])]
            else:
                page = self.call("conversations.members", channel=cid, limit=1000)
                self._members[cid] = [str(m) for m in page.get("members") or []]
        return self._members[cid]

    # -- parsing ------------------------------------------------------------------------------

    def message_item(self, message: dict[str, Any], channel: dict[str, Any]) -> Item | None:
        """One Slack message to an Item; None for notices (joins, topic changes...)."""
        ts = message.get("ts")
        if not ts:
            raise SkippableRecord("a message without ts")
        subtype = message.get("subtype")
        if subtype in _NOTICES:
            return None
        cid = str(channel["id"])
        try:
            created = _ts_time(str(ts))
        except ValueError:
            raise SkippableRecord(f"message {ts}: ts is not a time") from None
        author = self._person(message.get("user")) or (
            Person(id=message.get("bot_id"), name=message.get("username"))
            if message.get("bot_id") else None)
        if author is None:
            raise SkippableRecord(f"message {ts}: no user or bot")
        direct = bool(channel.get("is_im") or channel.get("is_mpim"))
        text = str(message.get("text") or "")
        if direct:
            ids = [u for u in self._members_of(channel) if u != author.id]
        else:
            ids = [u for u in _MENTION.findall(text) if u != author.id]
        recipients = [p for p in (self._person(u) for u in dict.fromkeys(ids)) if p]
        thread_ts = message.get("thread_ts")
        is_reply = bool(thread_ts and thread_ts != ts)
        if direct:
            kind, thread = ItemKind.direct_message, cid
        else:
            kind = ItemKind.reply if is_reply else ItemKind.chat_message
            thread = f"{cid}:{thread_ts or ts}"
        files = [f for f in message.get("files") or [] if isinstance(f, dict)]
        media = [Media.model_validate({"url": f.get("url_private"), "mime_type": f.get("mimetype"),
                                       "filename": f.get("name"), "alt_text": f.get("alt_txt")})
                 for f in files]
        # a video's still (``thumb_video``), read like a photo, after the files (whose index
        # is their parts' ref)
        media += [Media(url=f["thumb_video"], mime_type="image/jpeg", thumbnail=True)
                  for f in files if isinstance(f.get("thumb_video"), str) and f["thumb_video"]]
        extras: list[tuple[str, str | None, str | None]] = []
        if not text.strip():  # a message made only of blocks shows their text
            extras.append(("card", _block_text(message.get("blocks")), None))
        for index, att in enumerate(message.get("attachments") or []):
            if isinstance(att, dict):
                extras.append(("card", _attachment_text(att), str(index)))
        for index, f in enumerate(files):
            shown = "\n".join(str(f[k]) for k in ("title", "name") if f.get(k))
            extras.append(("attachment", shown, str(index)))
            extras.append(("alt text", f.get("alt_txt"), str(index)))
        edited = (message.get("edited") or {}).get("ts")
        return Item.model_validate({
            "id": f"{cid}:{ts}",
            "platform": self.settings.platform,
            "account": self.account,
            "kind": kind,
            "author": author,
            "recipients": recipients,
            "created_at": created,
            "edited_at": _ts_time(str(edited)) if edited else None,
            "visibility": Visibility.direct if channel.get("is_im") else Visibility.private,
            **visible_text(text, extras),
            "media": media,
            "parent_id": f"{cid}:{thread_ts}" if is_reply else None,
            "thread_id": thread,
            "raw": message,
            "channel": cid,
        })

    # -- polling ------------------------------------------------------------------------------

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        latest: dict[str, str] = dict((cursor or {}).get("latest", {}))
        threads: dict[str, dict[str, str]] = {
            k: dict(v) for k, v in (cursor or {}).get("threads", {}).items()}
        self._users, self._members = {}, {}
        now = self.clock()
        first_oldest = f"{now - self.settings.lookback_days * 86400:.6f}"
        watch_from = now - self.settings.thread_watch_days * 86400
        items: list[Item] = []
        problems: list[str] = []
        seen: set[str] = set()
        for channel in self._conversation_list():
            cid = str(channel["id"])
            oldest = latest.get(cid, first_oldest)
            watched = threads.setdefault(cid, {})
            newest = oldest
            for page in self.pages("conversations.history",
                                   {"channel": cid, "oldest": oldest, "limit": 200}):
                for message in page.records("messages"):
                    self._take(message, channel, f"conversations.history {cid}", items,
                               problems, seen)
                    ts = str(message.get("ts", "0")) if isinstance(message, dict) else ""
                    try:
                        newest = max(newest, ts, key=float)
                    except ValueError:  # reported by _take; it cannot move the cursor
                        continue
                    if message.get("reply_count") and message.get("thread_ts"):
                        watched[str(message["thread_ts"])] = str(
                            message.get("latest_reply") or ts)
            for thread_ts in sorted(watched):
                self._replies(channel, thread_ts, oldest, items, problems, seen)
            latest[cid] = newest
            threads[cid] = {t: r for t, r in watched.items() if float(r) >= watch_from}
        return FetchResult(items=items, cursor={"latest": latest, "threads": threads},
                           problems=problems)

    def _replies(self, channel: dict[str, Any], thread_ts: str, oldest: str, items: list[Item],
                 problems: list[str], seen: set[str]) -> None:
        cid = str(channel["id"])
        for page in self.pages("conversations.replies",
                               {"channel": cid, "ts": thread_ts, "oldest": oldest, "limit": 200}):
            for message in page.records("messages"):
                if not isinstance(message, dict) or message.get("ts") == thread_ts:
                    continue  # the parent comes with every page; it is read from the history
                self._take(message, channel, f"conversations.replies {cid} {thread_ts}", items,
                           problems, seen)

    def _take(self, message: Any, channel: dict[str, Any], where: str, items: list[Item],
              problems: list[str], seen: set[str]) -> Item | None:
        try:
            if not isinstance(message, dict):
                raise SkippableRecord("a message that is not an object")
            item = self.message_item(message, channel)
        except SkippableRecord as exc:
            problems.append(f"{self.name}: {where}: {exc}")
            log.warning("%s: skipped a record from %s: %s", self.name, where, exc)
            return None
        if item is None or item.id in seen:
            return None
        seen.add(item.id)
        items.append(item)
        return item

    # -- Events API ---------------------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookResponse:
        secret = self.settings.signing_secret
        if secret is None:
            log.warning("%s: event refused: no signing_secret configured", self.name)
            return WebhookResponse(status=403, body=b"signing secret not configured")
        headers = {k.lower(): v for k, v in request.headers.items()}
        verifier = SignatureVerifier(secret.get_secret_value())
        if not verifier.is_valid(request.body, headers.get("x-slack-request-timestamp"),
                                 headers.get("x-slack-signature")):
            log.warning("%s: event refused: bad or stale Slack signature (%d bytes, body not "
                        "logged)", self.name, len(request.body))
            return WebhookResponse(status=401, body=b"bad signature")
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            return WebhookResponse(status=400, body=b"not JSON")
        if not isinstance(payload, dict):
            return WebhookResponse(status=400, body=b"not a Slack event")
        if payload.get("type") == "url_verification":
            return WebhookResponse(status=200, body=str(payload.get("challenge", "")).encode())
        raw_event = payload.get("event")
        event: dict[str, Any] = raw_event if isinstance(raw_event, dict) else {}
        if payload.get("type") != "event_callback" or event.get("type") != "message":
            log.info("%s: skipped a %r event", self.name, event.get("type") or payload.get("type"))
            return WebhookResponse(status=200)
        # read on the service's worker (users.info, conversations.members): Slack wants its
        # answer within three seconds, whatever its Web API is doing meanwhile
        # Slack retries an unacknowledged event with the same event_id
        event_id = payload.get("event_id")
        return WebhookResponse(status=200, deferred=[event],
                               replay_key=str(event_id) if event_id else None)

    def deferred_items(self, deferred: list[Any]) -> tuple[list[Item], list[str]]:
        items: list[Item] = []
        problems: list[str] = []
        for event in deferred:
            try:
                if not isinstance(event, dict):
                    raise SkippableRecord("an event that is not an object")
                item = self._event_item(event)
            except SkippableRecord as exc:
                problems.append(f"{self.name}: event: {exc}")
                log.warning("%s: skipped an event: %s", self.name, exc)
                continue
            if item is not None:
                items.append(item)
        return items, problems

    def _event_item(self, event: dict[str, Any]) -> Item | None:
        cid = str(event.get("channel") or "")
        if not cid:
            raise SkippableRecord("a message event without a channel")
        channel = {"id": cid, "is_im": event.get("channel_type") == "im",
                   "is_mpim": event.get("channel_type") == "mpim"}
        subtype = event.get("subtype")
        if subtype == "message_changed":
            message = dict(event.get("message") or {})
            message.setdefault("edited", {"ts": event.get("event_ts") or event.get("ts")})
            return self.message_item(message, channel)
        if subtype == "message_deleted":
            previous = dict(event.get("previous_message") or {})
            previous.setdefault("ts", event.get("deleted_ts"))
            item = self.message_item(previous, channel) if previous.get("ts") else None
            if item is None:
                return None
            when = _ts_time(str(event.get("event_ts") or event.get("ts")))
            return item.model_copy(update={"deleted_at": when.astimezone(UTC)})
        return self.message_item(event, channel)

