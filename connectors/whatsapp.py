"""``whatsapp``: the organisation's WhatsApp Business number, through the Cloud API's webhooks.

Policy duty: staff-learner messages are checked on every channel (P1 "What we expect of our
staff", "Using mobile phones"; P2 "Communicating with students").

The Cloud API keeps no message history to poll: messages arrive only as webhooks, so ``fetch``
reads nothing and the webhook is the connector. Every POST must carry ``X-Hub-Signature-256``
(an HMAC of the body with the app secret); unsigned or wrongly signed bodies get 403. The
subscription handshake (GET with ``hub.verify_token``) is answered with the challenge.

What becomes an item: messages from people (text, media with caption, location, shared contact
cards, button and list replies, orders, reactions), messages the business sent from the WhatsApp
Business app (``smb_message_echoes``), edits (the original message id, new text, ``edited_at``)
and deletions (the original message id with ``deleted_at``). Everything else (delivery statuses,
calls, template and account updates, system notices, unsupported types) is skipped with an
INFO log line naming its type, never its content.

People: a WhatsApp user is ``Person(id=<wa_id>, handle="+<wa_id>")``: put learners' and staff's
numbers in the registers' handles in international format ("+447700900123").
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from connectors.base import (
    Capability,
    ConnectorSettings,
    FetchResult,
    HttpConnector,
    MediaFetchError,
    MediaRequest,
    SkippableRecord,
    WebhookRequest,
    WebhookResponse,
    parse_time,
)
from connectors.meta import check_signature, verify_subscription
from governance_bot.items import Item, ItemKind, Media, Person, Visibility

__all__ = ["WhatsAppConnector", "WhatsAppSettings", "parse_webhook"]

log = logging.getLogger(__name__)

_MEDIA_TYPES = ("image", "video", "audio", "document", "sticker")


class WhatsAppSettings(ConnectorSettings):
    app_secret: SecretStr = Field(description='"${ENV_VAR}": the Meta app secret (signatures)')
    verify_token: SecretStr = Field(description='"${ENV_VAR}": the webhook verify token you chose')
    phone_number_id: str | None = Field(
        default=None, description="only accept webhooks for this business phone number id"
    )
    platform: str = "whatsapp"
    access_token: SecretStr | None = Field(
        default=None, description='"${ENV_VAR}": a Cloud API access token (a system user\'s, '
        'with whatsapp_business_messaging); needed to read the pictures people send')
    api_version: str = Field(default="v21.0", pattern=r"^v\d+\.\d+$")


# where the Cloud API serves media files (the token goes nowhere else)
_MEDIA_HOSTS = (".fbsbx.com", ".facebook.com", ".whatsapp.net")


def _meta_host(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme == "https" and parsed.host.endswith(_MEDIA_HOSTS)


def _person(wa_id: str | None, name: str | None = None) -> Person:
    digits = str(wa_id or "").lstrip("+")
    return Person(id=digits or None, handle=f"+{digits}" if digits else None, name=name)


def _content(message: dict[str, Any]) -> tuple[str, list[Media]] | None:
    """Text and media of one message body; None for a type that carries nothing to check."""
    kind = message.get("type")
    body = message.get(kind) if isinstance(kind, str) else None
    body = body if isinstance(body, dict) else {}
    if kind == "text":
        return str(body.get("body", "")), []
    if kind in _MEDIA_TYPES:
        media = Media.model_validate({
            "url": body.get("url"),
            "mime_type": body.get("mime_type"),
            "media_id": body.get("id"),
            "platform_sha256": body.get("sha256"),
            "filename": body.get("filename"),
        })
        return str(body.get("caption") or ""), [media]
    if kind == "location":
        parts = [str(body[k]) for k in ("name", "address") if body.get(k)]
        coords = f"{body.get('latitude')},{body.get('longitude')}"
        return " ".join([*parts, f"(location {coords})"]), []
    if kind == "contacts":
        cards = message.get("contacts") or []
        lines = []
        for card in cards:
            name = (card.get("name") or {}).get("formatted_name") or ""
            phones = ", ".join(str(p.get("phone")) for p in card.get("phones") or [])
            lines.append(f"{name} {phones}".strip())
        return "\n".join(lines), []
    if kind == "interactive":
        for key in ("button_reply", "list_reply", "nfm_reply", "call_permission_reply"):
            reply = body.get(key)
            if isinstance(reply, dict):
                texts = [str(reply[k]) for k in ("title", "description", "body", "response")
                         if reply.get(k)]
                return " ".join(texts), []
        return None
    if kind == "button":
        return str(body.get("text", "")), []
    if kind == "order":
        products = ", ".join(str(p.get("product_retailer_id"))
                             for p in body.get("product_items") or [])
        return " ".join(filter(None, [str(body.get("text") or ""), products])), []
    if kind == "reaction":
        emoji = body.get("emoji")
        return (str(emoji), []) if emoji else None
    return None


def _item(message: dict[str, Any], *, account: str, platform: str, business: Person,
          contact_names: dict[str, str | None], outgoing: bool) -> Item | None:
    native = message.get("id")
    if not native:
        raise SkippableRecord("a message without an id")
    try:
        created = parse_time(int(message["timestamp"]))
    except (KeyError, ValueError, TypeError):
        raise SkippableRecord(f"message {native}: no readable timestamp") from None
    kind = message.get("type")
    user_id = str(message.get("to") if outgoing else message.get("from") or "")
    user = _person(user_id, contact_names.get(user_id))
    author, recipient = (business, user) if outgoing else (user, business)
    extra: dict[str, Any] = {}
    item_id = str(native)
    parent = (message.get("context") or {}).get("id")
    if kind == "revoke":
        original = (message.get("revoke") or {}).get("original_message_id")
        if not original:
            raise SkippableRecord(f"message {native}: a deletion without original_message_id")
        item_id, text = str(original), ""
        media: list[Media] = []
        extra["deleted_at"] = created.isoformat()
    elif kind == "edit":
        edit = message.get("edit") or {}
        original, inner = edit.get("original_message_id"), edit.get("message")
        if not original or not isinstance(inner, dict):
            raise SkippableRecord(f"message {native}: an edit without the original or new text")
        found = _content(inner)
        if found is None:
            return None
        item_id, (text, media) = str(original), found
        extra["edited_at"] = created
        parent = (inner.get("context") or {}).get("id") or parent
    else:
        found = _content(message)
        if found is None:
            return None
        text, media = found
        if kind == "reaction":
            parent = (message.get("reaction") or {}).get("message_id")
    return Item.model_validate({
        "id": item_id,
        "platform": platform,
        "account": account,
        "kind": ItemKind.direct_message,
        "author": author,
        "recipients": [recipient],
        "created_at": created,
        "visibility": Visibility.direct,
        "text": text,
        "media": media,
        "parent_id": parent,
        "thread_id": f"{business.id}:{user.id}",
        "raw": message,
        "message_type": kind,
        **extra,
    })


def _records(value: Any, problems: list[str] | None = None, where: str = ""
             ) -> list[dict[str, Any]]:
    """The JSON objects of a list (anything else in it is reported when ``problems`` is given)."""
    if not isinstance(value, list):
        return []
    bad = [v for v in value if not isinstance(v, dict)]
    if bad and problems is not None:
        problems.append(f"{where}: {len(bad)} record(s) that are not JSON objects")
        log.warning("%s: %d record(s) that are not JSON objects skipped", where, len(bad))
    return [v for v in value if isinstance(v, dict)]


def _name(contact: dict[str, Any]) -> str | None:
    profile = contact.get("profile")
    name = profile.get("name") if isinstance(profile, dict) else None
    return str(name) if name else None


def parse_webhook(payload: Any, *, account: str, platform: str = "whatsapp",
                  phone_number_id: str | None = None, name: str = "whatsapp"
                  ) -> tuple[list[Item], list[str]]:
    """Items from one webhook body, and a problem line per unreadable message."""
    items: list[Item] = []
    problems: list[str] = []
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        log.info("%s: skipped a webhook that is not for a WhatsApp Business account", name)
        return items, problems
    for entry in _records(payload.get("entry")):
        for change in _records(entry.get("changes")):
            field = change.get("field")
            raw_value = change.get("value")
            value: dict[str, Any] = raw_value if isinstance(raw_value, dict) else {}
            messages = _records(value.get("messages"), problems, f"{name}: webhook {field}")
            echoes = _records(value.get("message_echoes"), problems, f"{name}: webhook {field}")
            if not messages and not echoes:
                what = ("statuses" if value.get("statuses") else
                        "calls" if value.get("calls") else field)
                log.info("%s: skipped a %s update (no message in it)", name, what)
                continue
            raw_metadata = value.get("metadata")
            metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
            if phone_number_id and metadata.get("phone_number_id") != phone_number_id:
                log.info("%s: skipped a message for another business number", name)
                continue
            number = metadata.get("phone_number_id")
            display = metadata.get("display_phone_number")
            business = Person(id=str(number) if number else None,
                              handle=f"+{display}" if display else None)
            names = {str(c.get("wa_id")): _name(c) for c in _records(value.get("contacts"))
                     if c.get("wa_id")}
            for message, outgoing in [*((m, False) for m in messages),
                                      *((m, True) for m in echoes)]:
                try:
                    item = _item(message, account=account, platform=platform,
                                 business=business, contact_names=names, outgoing=outgoing)
                except SkippableRecord as exc:
                    problems.append(f"{name}: webhook {field}: {exc}")
                    log.warning("%s: skipped a record from webhook %s: %s", name, field, exc)
                    continue
                except Exception as exc:  # one malformed message: reported, the others go on
                    what = f"message {message.get('id') or '(no id)'}: a malformed " \
                        f"{message.get('type')!r} message ({type(exc).__name__})"
                    problems.append(f"{name}: webhook {field}: {what}")
                    log.warning("%s: skipped a record from webhook %s: %s", name, field, what)
                    continue
                if item is None:
                    log.info("%s: skipped a %r message (nothing to check in it)", name,
                             message.get("type"))
                    continue
                items.append(item)
    return items, problems


class WhatsAppConnector(HttpConnector):
    """The organisation's WhatsApp Business number (Cloud API webhooks)."""

    type: ClassVar[str] = "whatsapp"
    description: ClassVar[str] = "WhatsApp Business Cloud API (webhooks)"
    Settings = WhatsAppSettings
    capabilities = frozenset({Capability.read, Capability.direct_messages, Capability.webhook})
    default_base_url: ClassVar[str] = "https://graph.facebook.com"

    settings: WhatsAppSettings

    def media_request(self, media: Media) -> MediaRequest | None:
        """A picture sent to the number: the webhook names it by id; ``GET /{media-id}`` answers
        a short-lived URL (and the file's hash), which is downloaded with the same token. The
        token goes only to Graph and Meta's media hosts."""
        media_id = getattr(media, "media_id", None)
        if not media_id and not media.url:
            return None
        token = self.settings.access_token
        if token is None:
            raise MediaFetchError(
                "set access_token on the whatsapp connector (a Cloud API token) so the pictures "
                "people send can be read", retriable=False)
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        expected = getattr(media, "platform_sha256", None)
        url = media.url if media.url and _meta_host(media.url) else None
        if url is None:
            url, stated = self._media_url(str(media_id), headers)
            expected = stated or expected
        host = httpx.URL(url).host
        return MediaRequest(url, headers=headers if _meta_host(url) else {},
                            auth_hosts=frozenset({host}), expected_sha256=expected)

    def _media_url(self, media_id: str, headers: dict[str, str]) -> tuple[str, str | None]:
        """The download URL and stated hash of a media id (one request, no retries: the media
        step tries the picture again later)."""
        where = f"{self.base_url}/{self.settings.api_version}/{media_id}"
        try:
            response = self.client.get(where, headers=headers,
                                       timeout=min(10.0, self.settings.timeout_seconds))
        except httpx.HTTPError as exc:
            raise MediaFetchError(f"WhatsApp's media lookup failed ({type(exc).__name__})"
                                  ) from None
        if response.status_code in (400, 404):
            raise MediaFetchError(f"WhatsApp no longer has media id {media_id} (HTTP "
                                  f"{response.status_code}; media ids last 30 days)",
                                  retriable=False)
        if response.status_code in (401, 403):
            raise MediaFetchError(f"WhatsApp refused the access token (HTTP "
                                  f"{response.status_code}); check access_token")
        if response.status_code >= 300:
            raise MediaFetchError(f"WhatsApp's media lookup answered HTTP "
                                  f"{response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise MediaFetchError("WhatsApp's media lookup answered something that is not "
                                  "JSON") from None
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url.startswith("https://"):
            raise MediaFetchError("WhatsApp's media lookup named no file URL", retriable=False)
        stated = body.get("sha256")
        return url, stated if isinstance(stated, str) else None

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        # the Cloud API has no history endpoint: everything arrives through handle_webhook
        return FetchResult(items=[], cursor=dict(cursor or {}))

    def handle_webhook(self, request: WebhookRequest) -> WebhookResponse:
        if request.method.upper() == "GET":
            return verify_subscription(request, self.settings.verify_token, self.name)
        if not check_signature(request, self.settings.app_secret):
            log.warning("%s: webhook POST refused: missing or wrong X-Hub-Signature-256 "
                        "(%d bytes, body not logged)", self.name, len(request.body))
            return WebhookResponse(status=403, body=b"bad signature")
        try:
            payload = json.loads(request.body)
        except (ValueError, RecursionError):
            log.warning("%s: a signed webhook body that is not JSON", self.name)
            return WebhookResponse(status=400, body=b"not JSON")
        items, _problems = parse_webhook(payload, account=self.account,
                                         platform=self.settings.platform,
                                         phone_number_id=self.settings.phone_number_id,
                                         name=self.name)
        # the body identifies the delivery (a hash of it: the signature's hex may come in upper
        # case, which the check accepts): a re-delivery is acknowledged, not reprocessed
        return WebhookResponse(status=200, body=b"EVENT_RECEIVED", items=items,
                               replay_key="sha256:" + hashlib.sha256(request.body).hexdigest())

