"""``teams``: Microsoft Teams chats and channel messages, read through Microsoft Graph.

Policy duty: staff-learner messages are checked on every channel (P1 "What we expect of our
staff", P2 "Communicating with students"): hours, personal accounts, tone and accountability.

What is read (application permissions, client-credentials sign-in):

- chats (one-to-one, group and meeting chats) of the listed staff members:
  ``GET /users/{id}/chats/getAllMessages/delta`` (Chat.Read.All); each chat's members
  (``GET /chats/{id}/members``) become the recipients, with their email where Graph gives it;
- channel messages of the listed channels: ``GET /teams/{t}/channels/{c}/messages/delta``
  (ChannelMessage.Read.All), and each message's replies (``.../messages/{id}/replies``).

Delta links are the cursor, so each poll reads only what was added or changed; an expired delta
link (HTTP 410) starts that listing again (the archive merges repeats by id). A message Graph
reports as deleted (``deletedDateTime``) is passed on with ``deleted_at`` set, so the archive
keeps the copy it already had and records the deletion.

Change notifications (``handle_webhook``): Graph's validation handshake is answered by echoing
``validationToken`` as text/plain; each notification's ``clientState`` must equal the configured
secret (others are dropped and logged); the changed message is then read with a GET. Lifecycle
notifications (``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``) are handed to the
service as ``SubscriptionEvent``s. The subscriptions themselves are created, renewed and
re-created by the service (governance_bot/subscriptions.py) through ``create_subscription``,
``renew_subscription``, ``reauthorize_subscription`` and ``delete_subscription`` here: one per
listed staff member's chats and one per listed channel, matching what polling reads.

Authors and recipients carry ``id = "teams:<Azure AD object id>"`` (put that in the staff
register's ``platform_ids``) and their email when Graph reports it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
import lxml.html
from lxml.etree import ParserError
from pydantic import Field, SecretStr, model_validator

from connectors.base import (
    Capability,
    ConnectorError,
    ConnectorSettings,
    FetchResult,
    HttpConnector,
    MediaFetchError,
    MediaRequest,
    NextUrlPaginator,
    NotFound,
    Page,
    PageRequest,
    RetriableError,
    SkippableRecord,
    SubscriptionEvent,
    WebhookRequest,
    WebhookResponse,
    follow_pages,
    html_to_text,
    parse_time,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility, visible_text

__all__ = [
    "GraphSubscription",
    "NotificationUrlRejected",
    "SubscriptionError",
    "TeamsConnector",
    "TeamsSettings",
    "parse_chat_message",
]

log = logging.getLogger(__name__)

GRAPH = "https://graph.microsoft.com/v1.0"
LOGIN = "https://login.microsoftonline.com"
_CHANNEL = re.compile(r"^[^/\s]+/[^/\s]+$")
# what a subscription reports: new messages, edits and deletions (chatMessage supports all three)
CHANGE_TYPES = "created,updated,deleted"


class TeamsSettings(ConnectorSettings):
    tenant_id: str = Field(min_length=1, description="the Microsoft 365 tenant (directory) id")
    client_id: str = Field(min_length=1, description="the app registration's application id")
    client_secret: SecretStr = Field(description='"${ENV_VAR}" holding the app\'s client secret')
    users: list[str] = Field(
        default_factory=list,
        description="Azure AD object ids or UPNs of staff whose chats are read",
    )
    channels: list[str] = Field(
        default_factory=list, description='channels to read, each "team-id/channel-id"'
    )
    client_state: SecretStr | None = Field(
        default=None, description="the secret given when subscribing to change notifications"
    )
    subscribe: bool = Field(
        default=True, description="with [service] public_url set, the service creates and renews "
        "the Graph change-notification subscriptions for these users and channels itself")
    subscription_minutes: int = Field(
        default=4200, ge=15, le=4320, description="how long each subscription is asked for "
        "before it is renewed (Graph allows at most 4320 minutes, three days, for chatMessage)")
    payment_model: Literal["B"] | None = Field(
        default=None, description='"B" to subscribe to staff chats under Microsoft\'s metered '
        "payment model B; unset: Graph's evaluation mode (a small monthly allowance)")
    login_base_url: str | None = Field(default=None, description="override for tests")
    page_size: int = Field(default=50, ge=1, le=50)
    read_replies: bool = True

    @model_validator(mode="after")
    def _something_to_read(self) -> TeamsSettings:
        if not self.users and not self.channels:
            raise ValueError("give at least one of users (whose chats are read) or channels")
        for channel in self.channels:
            if not _CHANNEL.match(channel):
                raise ValueError(f"channels: {channel!r} is not \"team-id/channel-id\"")
        return self


def _person(identity: dict[str, Any] | None, emails: dict[str, str]) -> Person | None:
    """A Graph identitySet (``from`` or a mention) as a Person; None for no user."""
    if not isinstance(identity, dict):
        return None
    user = identity.get("user")
    if isinstance(user, dict) and user.get("id"):
        aad = str(user["id"])
        return Person(id=f"teams:{aad}", name=user.get("displayName"), email=emails.get(aad))
    app = identity.get("application")
    if isinstance(app, dict) and app.get("id"):
        return Person(id=f"teams-app:{app['id']}", name=app.get("displayName"))
    return None


def _inline_images(html: str) -> list[Media]:
    if "<img" not in html.lower():
        return []
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (ParserError, ValueError):
        return []
    return [Media(url=img.get("src"), alt_text=img.get("alt") or None)
            for img in root.iter("img") if img.get("src")]


_CARD_TEXT_KEYS = ("text", "title", "subtitle", "value", "altText", "placeholder", "label")


def _card_strings(node: Any, out: list[str]) -> None:
    """Every string a reader sees in an Adaptive Card, hero card or quoted message (their
    ``text``, ``title``, ``subtitle``... fields, depth first, in order)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _CARD_TEXT_KEYS and isinstance(value, str) and value.strip():
                out.append(html_to_text(value) if "<" in value else value.strip())
            elif isinstance(value, dict | list):
                _card_strings(value, out)
    elif isinstance(node, list):
        for value in node:
            _card_strings(value, out)


def _attachment_text(att: dict[str, Any]) -> str:
    """The text a reader sees in a message attachment: a card's texts, a quoted message's
    preview (``messageReference``: sender and preview)."""
    content = att.get("content")
    if isinstance(content, str) and content.strip().startswith(("{", "[")):
        try:
            content = json.loads(content)
        except ValueError:
            return ""
    if not isinstance(content, dict | list):
        return ""
    if isinstance(content, dict) and "messagePreview" in content:
        sender = ((content.get("messageSender") or {}).get("user") or {}).get("displayName")
        preview = str(content.get("messagePreview") or "")
        return "\n".join(t for t in (f"{sender}:" if sender else "", preview) if t)
    found: list[str] = []
    _card_strings(content, found)
    return "\n".join(found)


def parse_chat_message(
    message: dict[str, Any],
    *,
    account: str,
    platform: str = "teams",
    members: list[dict[str, Any]] | None = None,
    channel: str | None = None,
) -> Item | None:
    """One Graph chatMessage to an Item; None for system events; SkippableRecord if unreadable.

    ``members``: the chat's conversationMembers (recipients); ``channel``: "team/channel" for a
    channel message."""
    if not isinstance(message, dict) or not message.get("id"):
        raise SkippableRecord("a message without an id")
    native = str(message["id"])
    if message.get("messageType", "message") != "message":
        return None  # system events: members added, chat renamed...
    try:
        created = parse_time(message.get("createdDateTime"))
    except ValueError as exc:
        raise SkippableRecord(f"message {native}: createdDateTime: {exc}") from None
    emails = {}
    for m in members or []:
        if m.get("userId") and m.get("email"):
            emails[str(m["userId"])] = str(m["email"]).lower()
    author = _person(message.get("from"), emails)
    if author is None:
        return None  # no person or app wrote it (a system notice)
    chat_id = message.get("chatId")
    container = chat_id or (message.get("channelIdentity") or {}).get("channelId") or channel
    if not container:
        raise SkippableRecord(f"message {native}: neither chatId nor channelIdentity")
    reply_to = message.get("replyToId")
    body = message.get("body") or {}
    content = str(body.get("content") or "")
    is_html = str(body.get("contentType", "text")).lower() == "html"
    text = html_to_text(content) if is_html else content.strip()
    media = _inline_images(content) if is_html else []
    extras: list[tuple[str, str | None, str | None]] = [("subject", message.get("subject"), None)]
    for index, att in enumerate(message.get("attachments") or []):
        if not isinstance(att, dict):
            continue
        kind = str(att.get("contentType") or "")
        shown = _attachment_text(att)
        if kind == "messageReference":  # a quoted message: what the reader sees of it
            extras.append(("quoted post", shown, str(att.get("id") or "") or None))
            continue
        if kind.startswith("application/vnd.microsoft.card"):
            extras.append(("card", shown, str(index)))
            continue
        extras.append(("attachment", att.get("name") or shown, str(index)))
        media.append(Media.model_validate({
            "url": att.get("contentUrl"),
            "mime_type": kind if "/" in kind else None,
            "filename": att.get("name"),
            "attachment_type": kind or None,
        }))
    if chat_id:
        recipients = [
            Person(id=f"teams:{m['userId']}", name=m.get("displayName"),
                   email=(str(m["email"]).lower() if m.get("email") else None))
            for m in members or []
            if m.get("userId") and f"teams:{m['userId']}" != author.id
        ]
        visibility = Visibility.direct if len(recipients) == 1 else Visibility.private
    else:
        recipients = []
        for mention in message.get("mentions") or []:
            person = _person((mention or {}).get("mentioned"), emails)
            if person is not None and person.id != author.id:
                recipients.append(person)
        visibility = Visibility.private
    edited = message.get("lastEditedDateTime")
    deleted = message.get("deletedDateTime")
    data: dict[str, Any] = {
        "id": f"{container}:{native}",
        "platform": platform,
        "account": account,
        "kind": ItemKind.reply if reply_to else ItemKind.chat_message,
        "author": author,
        "recipients": recipients,
        "created_at": created,
        "edited_at": parse_time(edited) if edited else None,
        "visibility": visibility,
        **visible_text(text, extras),
        "media": media,
        "parent_id": f"{container}:{reply_to}" if reply_to else None,
        "thread_id": container if chat_id else f"{container}:{reply_to or native}",
        "url": message.get("webUrl"),
        "raw": message,
    }
    if deleted:
        data["deleted_at"] = parse_time(deleted).isoformat()
    if channel:
        data["channel"] = channel
    return Item.model_validate(data)


class SubscriptionError(ConnectorError):
    """Graph would not create, renew or reauthorise a change-notification subscription. The
    message names the connector, the account, the resource and the fix; polling goes on."""


class NotificationUrlRejected(SubscriptionError):
    """Graph could not validate the notification URL (it must reach the service over HTTPS)."""


@dataclass(slots=True)
class GraphSubscription:
    """A change-notification subscription as Graph reports it."""

    id: str
    resource: str
    expires: datetime


def graph_time(when: datetime) -> str:
    """An aware datetime as Graph's UTC timestamp (``2026-11-21T09:00:00Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    """Graph's error ``code`` and ``message`` (shortened), or the HTTP status when the body has
    none."""
    try:
        error = response.json().get("error") or {}
        code, message = str(error.get("code") or ""), str(error.get("message") or "")
    except (ValueError, AttributeError):
        code, message = "", ""
    return code or f"HTTP {response.status_code}", message[:300]


def _is_subscription_call(response: httpx.Response) -> bool:
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built by hand, with no request
        return False
    return "/subscriptions" in path


class TeamsConnector(HttpConnector):
    """Microsoft Teams chats and channel messages via Microsoft Graph (delta queries, change
    notifications)."""

    type: ClassVar[str] = "teams"
    description: ClassVar[str] = "Microsoft Teams chats and channel messages (Microsoft Graph)"
    Settings = TeamsSettings
    capabilities = frozenset({Capability.read, Capability.direct_messages, Capability.webhook})
    default_base_url: ClassVar[str] = GRAPH
    auth_fix: ClassVar[str] = (
        "check tenant_id, client_id and the client secret in the environment, and that the app "
        "has admin consent for Chat.Read.All and ChannelMessage.Read.All"
    )

    settings: TeamsSettings

    def __init__(self, settings: ConnectorSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self.tokens = self.token_cache(self._sign_in)
        self._members: dict[str, list[dict[str, Any]]] = {}

    # -- sign-in ------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get()}"}

    def _sign_in(self) -> tuple[str, float]:
        """OAuth 2.0 client credentials against the tenant's Entra ID."""
        s = self.settings
        login = (s.login_base_url or LOGIN).rstrip("/")
        return self.client_credentials(
            f"{login}/{quote(s.tenant_id, safe='')}/oauth2/v2.0/token", data={
                "client_id": s.client_id,
                "client_secret": s.client_secret.get_secret_value(),
                "scope": "https://graph.microsoft.com/.default",
                "grant_type": "client_credentials",
            })

    def media_request(self, media: Media) -> MediaRequest | None:
        """Pictures pasted into a message are Graph "hosted contents": read with the app's token
        (``.../hostedContents/{id}/$value``; the token goes only to Graph). Other inline images
        are public links. A file shared from OneDrive or SharePoint is not downloaded."""
        if getattr(media, "attachment_type", None) == "reference":
            raise MediaFetchError("a file shared from OneDrive or SharePoint is not downloaded "
                                  "(its content is not read)", retriable=False)
        if not media.url:
            return None
        url = httpx.URL(media.url)
        graph = httpx.URL(self.base_url)
        if url.host == graph.host and "/hostedContents/" in url.path:
            return MediaRequest(media.url, headers=self.auth_headers(),
                                auth_hosts=frozenset({graph.host}))
        return super().media_request(media)

    def effective_status(self, response: httpx.Response) -> int:
        # 410 Gone from a delta link means "start the listing again": handled by the caller;
        # so are a subscription call's 400 (URL validation), 403 (permission) and 404 (gone)
        if response.status_code == 410:
            return 200
        if response.status_code in (400, 403, 404) and _is_subscription_call(response):
            return 200
        return response.status_code

    def graph(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    # -- polling ------------------------------------------------------------------------------

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        cursor = dict(cursor or {})
        chats: dict[str, str] = dict(cursor.get("chats", {}))
        channels: dict[str, str] = dict(cursor.get("channels", {}))
        items: list[Item] = []
        problems: list[str] = []
        seen: set[str] = set()
        self._members = {}
        for user in self.settings.users:
            start = f"users/{quote(user, safe='')}/chats/getAllMessages/delta"
            chats[user] = self._delta(start, chats.get(user), None, items, problems, seen)
        for channel in self.settings.channels:
            team, chan = channel.split("/", 1)
            start = f"teams/{quote(team, safe='')}/channels/{quote(chan, safe='')}/messages/delta"
            channels[channel] = self._delta(start, channels.get(channel), channel, items,
                                            problems, seen)
        return FetchResult(items=items, cursor={"chats": chats, "channels": channels},
                           problems=problems)

    def _delta(self, start: str, link: str | None, channel: str | None, items: list[Item],
               problems: list[str], seen: set[str]) -> str:
        """Follow a delta round to its end; return the new delta link. An expired delta link
        (410) starts the listing again, once."""
        first = PageRequest(link, {}) if link else PageRequest(start, {"$top": self.page_size})
        for _attempt in range(2):
            delta: str | None = None
            for page in self._graph_pages(first):
                if page.response is not None and page.response.status_code == 410:
                    log.info("%s: a delta link expired; listing %s again", self.name, start)
                    first = PageRequest(start, {"$top": self.page_size})
                    break
                for message in page.records("value"):
                    self._take(message, channel, start, items, problems, seen)
                    if channel and self.settings.read_replies and isinstance(message, dict):
                        self._replies(message, channel, items, problems, seen)
                found = _dig_str(page.body, "@odata.deltaLink")
                delta = found or delta
            else:
                return delta or link or start
        raise RetriableError(f"{self.name}: {start}: Graph kept refusing its delta links (410)")

    @property
    def page_size(self) -> int:
        return self.settings.page_size

    def _graph_pages(self, first: PageRequest) -> Iterator[Page]:
        """A Graph listing, following ``@odata.nextLink``; a 410 page is handed back as it is."""

        def get(request: PageRequest) -> tuple[Any, httpx.Response | None]:
            response = self.request("GET", request.url, params=request.params or None)
            if response.status_code == 410:
                return None, response
            return self.json_of(response, request.url), response

        return follow_pages(get, first, NextUrlPaginator("@odata.nextLink"), name=self.name,
                            max_pages=10_000)

    def _replies(self, message: dict[str, Any], channel: str, items: list[Item],
                 problems: list[str], seen: set[str]) -> None:
        if not message.get("id") or message.get("replyToId"):
            return
        team, chan = channel.split("/", 1)
        path = (f"teams/{quote(team, safe='')}/channels/{quote(chan, safe='')}/messages/"
                f"{quote(str(message['id']), safe='')}/replies")
        for page in self._graph_pages(PageRequest(path, {"$top": self.page_size})):
            for reply in page.records("value"):
                self._take(reply, channel, path, items, problems, seen)

    def _chat_members(self, chat_id: str) -> list[dict[str, Any]]:
        if chat_id not in self._members:
            page = self.graph(f"chats/{quote(chat_id, safe='')}/members").json()
            self._members[chat_id] = [m for m in page.get("value", []) if isinstance(m, dict)]
        return self._members[chat_id]

    def _take(self, message: Any, channel: str | None, where: str, items: list[Item],
              problems: list[str], seen: set[str]) -> None:
        try:
            if not isinstance(message, dict):
                raise SkippableRecord("a message that is not an object")
            chat_id = message.get("chatId")
            members = self._chat_members(str(chat_id)) if chat_id and not channel else None
            item = parse_chat_message(message, account=self.account, members=members,
                                      channel=channel)
        except SkippableRecord as exc:
            problems.append(f"{self.name}: {where}: {exc}")
            log.warning("%s: skipped a record from %s: %s", self.name, where, exc)
            return
        if item is None or item.id in seen:
            return
        seen.add(item.id)
        items.append(item)

    # -- change-notification subscriptions (created and renewed by governance_bot/subscriptions.py)

    def subscription_resources(self) -> list[str]:
        """The Graph resources to subscribe to: each listed staff member's chats and each listed
        channel, matching what ``fetch`` reads."""
        model = f"?model={self.settings.payment_model}" if self.settings.payment_model else ""
        resources = [f"/users/{quote(u, safe='@.')}/chats/getAllMessages{model}"
                     for u in self.settings.users]
        for channel in self.settings.channels:
            team, chan = channel.split("/", 1)
            resources.append(f"/teams/{quote(team, safe='')}/channels/{quote(chan, safe='@:.')}"
                             "/messages")
        return resources

    def _permission_for(self, resource: str) -> str:
        if resource.startswith("/users/") or resource.startswith("/chats"):
            return "Chat.Read.All"
        return ("ChannelMessage.Read.All (or, with resource-specific consent, "
                "ChannelMessage.Read.Group granted in that team)")

    def _subscription_call(self, method: str, path: str, resource: str, url: str | None = None,
                           body: dict[str, Any] | None = None) -> httpx.Response | None:
        """Send a /subscriptions request; None for 404; SubscriptionError for 400 and 403."""
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        response = self.request(method, path, **kwargs)
        status = response.status_code
        if status == 404:
            return None
        where = f"{self.name} (account {self.account})"
        if status == 403:
            code, _ = _graph_error(response)
            raise SubscriptionError(
                f"{where}: Microsoft Graph refused change notifications for {resource} "
                f"(HTTP 403, {code}): the app lacks the application permission "
                f"{self._permission_for(resource)}. Fix: in Entra ID, App registrations -> the "
                f"app -> API permissions, add it and grant admin consent. Until then messages "
                f"are still read by polling, every {self.settings.poll_interval_seconds} s.")
        if status == 400:
            code, message = _graph_error(response)
            text = f"{code} {message}".lower()
            if url is not None and ("validation" in text or "notificationurl" in text
                                    or "notification url" in text):
                raise NotificationUrlRejected(
                    f"{where}: Microsoft Graph could not validate the notification URL {url} "
                    f"({code}: {message}). Fix: the URL must be publicly reachable from the "
                    f"internet over HTTPS (a trusted certificate) and `governance-bot run` must "
                    f"be answering there; check [service] public_url and the reverse proxy. "
                    f"Until then messages are still read by polling.")
            raise SubscriptionError(
                f"{where}: Microsoft Graph rejected the subscription request for {resource} "
                f"({code}: {message}). Fix: check the connector's users and channels.")
        return response

    def _subscription_from(self, response: httpx.Response, resource: str) -> GraphSubscription:
        try:
            data = response.json()
            return GraphSubscription(id=str(data["id"]), resource=resource,
                                     expires=parse_time(data["expirationDateTime"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise SubscriptionError(f"{self.name}: Graph answered a subscription request for "
                                    f"{resource} without an id and expiry") from exc

    def create_subscription(self, resource: str, notification_url: str, expires: datetime
                            ) -> GraphSubscription:
        """``POST /subscriptions``: change notifications (and lifecycle notifications) for
        ``resource`` to ``notification_url``, signed with the configured client_state."""
        secret = self.settings.client_state
        if secret is None:
            raise SubscriptionError(
                f"{self.name} (account {self.account}): change notifications need a shared "
                f'secret. Fix: set client_state = "${{TEAMS_CLIENT_STATE}}" in the connector and '
                f"a random value in that environment variable.")
        body = {
            "changeType": CHANGE_TYPES,
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": notification_url,
            "resource": resource,
            "expirationDateTime": graph_time(expires),
            "clientState": secret.get_secret_value(),
            "latestSupportedTlsVersion": "v1_2",
        }
        response = self._subscription_call("POST", "subscriptions", resource, notification_url,
                                           body)
        if response is None:
            raise SubscriptionError(
                f"{self.name} (account {self.account}): Graph says {resource} does not exist "
                f"(HTTP 404). Fix: check the user and channel ids in the connector.")
        return self._subscription_from(response, resource)

    def renew_subscription(self, subscription_id: str, resource: str, expires: datetime
                           ) -> GraphSubscription | None:
        """``PATCH /subscriptions/{id}`` with a later expiry (which also reauthorises it); None
        if Graph no longer has it."""
        response = self._subscription_call(
            "PATCH", f"subscriptions/{quote(subscription_id, safe='')}", resource,
            body={"expirationDateTime": graph_time(expires)})
        return None if response is None else self._subscription_from(response, resource)

    def reauthorize_subscription(self, subscription_id: str, resource: str) -> bool:
        """``POST /subscriptions/{id}/reauthorize``; False if Graph no longer has it."""
        response = self._subscription_call(
            "POST", f"subscriptions/{quote(subscription_id, safe='')}/reauthorize", resource)
        return response is not None

    def delete_subscription(self, subscription_id: str, resource: str) -> None:
        """``DELETE /subscriptions/{id}``; one already gone is fine."""
        self._subscription_call("DELETE", f"subscriptions/{quote(subscription_id, safe='')}",
                                resource)

    # -- change notifications -----------------------------------------------------------------

    def handle_webhook(self, request: WebhookRequest) -> WebhookResponse:
        token = request.query.get("validationToken")
        if token is not None:
            # Graph's subscription handshake: echo the token, as plain text, within 10 seconds
            return WebhookResponse(status=200, body=token.encode(), content_type="text/plain")
        if request.method.upper() != "POST":
            return WebhookResponse(status=405, body=b"POST only")
        expected = self.settings.client_state
        if expected is None:
            log.warning("%s: change notification refused: no client_state configured", self.name)
            return WebhookResponse(status=403, body=b"client_state not configured")
        try:
            payload = json.loads(request.body)
            notifications = payload["value"]
            if not isinstance(notifications, list):
                raise TypeError
        except (ValueError, KeyError, TypeError, RecursionError):
            log.warning("%s: change notification that is not Graph JSON (%d bytes)", self.name,
                        len(request.body))
            return WebhookResponse(status=400, body=b"not a Graph notification")
        secret = expected.get_secret_value().encode()
        valid = [n for n in notifications if isinstance(n, dict) and hmac.compare_digest(
            str(n.get("clientState", "")).encode(), secret)]
        if len(valid) < len(notifications):
            log.warning("%s: %d change notification(s) with a wrong clientState dropped",
                        self.name, len(notifications) - len(valid))
        if not valid:
            return WebhookResponse(status=403, body=b"wrong clientState")
        items: list[Item] = []
        deferred: list[Any] = []
        events: list[SubscriptionEvent] = []
        for note in valid:
            if note.get("lifecycleEvent"):
                # about the subscription, not a message: the service re-creates, reauthorises
                # or catches up after answering (Graph wants the answer within seconds)
                event = SubscriptionEvent(subscription_id=str(note.get("subscriptionId") or ""),
                                          event=str(note["lifecycleEvent"]))
                log.info("%s: Graph lifecycle notification %s for subscription %s", self.name,
                         event.event, event.subscription_id)
                events.append(event)
                continue
            # the message is read from Graph on the service's worker, not before answering
            # (Graph wants the answer within three seconds); the clientState is not kept. Only
            # a chat or channel message resource is read: anything else (a full URL to another
            # host above all, which would carry the Graph token there) is refused
            resource = note.get("resource")
            if isinstance(resource, str) and _MESSAGE_RESOURCE.fullmatch(resource):
                deferred.append({"resource": resource})
            elif resource is not None:
                log.warning("%s: a change notification for a resource that is not a chat or "
                            "channel message was skipped", self.name)
        # the same notification body delivered again is acknowledged, not reprocessed
        digest = hashlib.sha256(request.body).hexdigest()
        return WebhookResponse(status=202, body=b"", items=items, replay_key=digest,
                               subscription_events=events, deferred=deferred)

    def deferred_items(self, deferred: list[Any]) -> tuple[list[Item], list[str]]:
        items: list[Item] = []
        problems: list[str] = []
        seen: set[str] = set()
        for note in deferred:
            if not isinstance(note, dict):
                continue
            try:  # each notification alone: one unreadable message never holds up the others
                items.extend(self._notified(note, problems, seen))
            except NotFound:
                problems.append(f"{self.name}: {note.get('resource')}: not found (gone before it "
                                "could be read; the next poll's delta query sees the deletion)")
            except ValueError as exc:  # Graph's answer was not JSON
                problems.append(f"{self.name}: {note.get('resource')}: unreadable answer "
                                f"({type(exc).__name__})")
        return items, problems

    def _notified(self, note: dict[str, Any], problems: list[str], seen: set[str]
                  ) -> Iterator[Item]:
        resource = str(note.get("resource") or "")
        if not resource:
            return
        if not _MESSAGE_RESOURCE.fullmatch(resource):  # a delivery stored before the check
            problems.append(f"{self.name}: a notified resource that is not a chat or channel "
                            "message was not read")
            return
        channel = _channel_of(resource)
        # a deleted message is still returned, with deletedDateTime set
        message = self.graph(resource).json()
        found: list[Item] = []
        self._take(message, channel, resource, found, problems, seen)
        yield from found


def _dig_str(body: Any, key: str) -> str | None:
    value = body.get(key) if isinstance(body, dict) else None
    return str(value) if value else None


# chats('C')/messages('M'), teams('T')/channels('C')/messages('M') and a reply under one
_MESSAGE_RESOURCE = re.compile(
    r"/?(chats\('[^'/?#]+'\)|teams\('[^'/?#]+'\)/channels\('[^'/?#]+'\))"
    r"/messages\('[^'/?#]+'\)(/replies\('[^'/?#]+'\))?")


def _channel_of(resource: str) -> str | None:
    """"teams('T')/channels('C')/messages('M')" -> "T/C"; None for a chat resource."""
    match = re.match(r"^/?teams\('([^']+)'\)/channels\('([^']+)'\)", resource)
    return f"{match.group(1)}/{match.group(2)}" if match else None
