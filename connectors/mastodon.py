"""``mastodon``: an organisation's Mastodon account on any instance (Mastodon REST API v1).

Reads the account's own statuses (``/api/v1/accounts/:id/statuses``), the replies under each of
them (``/api/v1/statuses/:id/context``), mentions (``/api/v1/notifications?types[]=mention``) and
direct-message conversations (``/api/v1/conversations``), following ``Link: rel="next"`` to the
end of the recheck window. Status HTML becomes plain text. Visibility: public and unlisted ->
public, private -> followers, direct -> direct.

Moderation: delete the account's own status. Account facts: locked, discoverable, indexable, the
default post visibility and the accounts it follows. Rate limits: ``X-RateLimit-Remaining`` /
``X-RateLimit-Reset`` are honoured before the limit is hit; 429 + Retry-After by the base class.

Token: an access token of an application created under Preferences > Development on the
instance, scopes ``read`` and ``write:statuses``.
"""

from __future__ import annotations

import logging
import mimetypes
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from connectors.base import (
    AccountFacts,
    Capability,
    FatalError,
    FetchResult,
    HttpConnector,
    ListingWindow,
    ModerationAction,
    ModerationResult,
)
from connectors.social_common import (
    SocialSettings,
    html_to_text,
    is_not_found,
    listing_start,
    parse_records,
    to_utc,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility

__all__ = ["MastodonConnector", "MastodonSettings", "status_item"]

log = logging.getLogger(__name__)

PLATFORM = "mastodon"
VISIBILITY = {
    "public": Visibility.public,
    "unlisted": Visibility.public,
    "private": Visibility.followers,
    "direct": Visibility.direct,
}
MEDIA_MIME = {"image": "image/*", "gifv": "video/mp4", "video": "video/*", "audio": "audio/*"}
# pause when this few requests are left in the window, rather than run into 429s
LOW_REMAINING = 2


class MastodonSettings(SocialSettings):
    base_url: str = Field(min_length=8, description="the instance, e.g. https://mastodon.social")
    access_token: SecretStr = Field(description="application access token (read, write:statuses)")
    read_direct_messages: bool = True
    replies_lookback_days: int = Field(
        default=14, ge=1, le=365, description="check replies under own statuses this recent"
    )


def _person(account: dict[str, Any]) -> Person:
    return Person(id=str(account["id"]), handle=account.get("acct") or account.get("username"),
                  name=account.get("display_name") or None)


def _media(attachment: dict[str, Any]) -> Media:
    kind = attachment.get("type") or ""
    url = attachment.get("url") or attachment.get("remote_url")
    # Mastodon gives the kind, not the MIME type: the file name says which image/video type
    guessed = mimetypes.guess_type(httpx.URL(url).path)[0] if url else None
    family = MEDIA_MIME.get(kind, "").split("/")[0]
    mime = guessed if guessed and guessed.startswith(f"{family}/") else MEDIA_MIME.get(kind)
    return Media(url=url, mime_type=mime, alt_text=attachment.get("description"))


def status_item(status: dict[str, Any], account: str, *, own_id: str | None = None,
                thread_id: str | None = None) -> Item | None:
    """One Mastodon status as an item (a boost of someone else's status is not ours: None).

    ``own_id`` is the organisation's account id: its top-level statuses get it as ``parent_id``
    so a complete listing of them can be reported as one listing window."""
    if status.get("reblog"):
        return None
    author = _person(status["account"])
    visibility = VISIBILITY.get(status.get("visibility") or "public", Visibility.public)
    parent = status.get("in_reply_to_id")
    if visibility == Visibility.direct:
        kind = ItemKind.direct_message
    elif parent:
        kind = ItemKind.reply
    else:
        kind = ItemKind.post
    text = html_to_text(status.get("content"))
    warning = status.get("spoiler_text")
    if warning:
        text = f"{warning}\n\n{text}" if text else warning
    recipients = [Person(id=str(m["id"]), handle=m.get("acct"))
                  for m in status.get("mentions") or []]
    # own direct messages are not in the account's status listing, so they stay out of its window
    if (parent is None and own_id is not None and author.id == own_id
            and visibility != Visibility.direct):
        parent = own_id
    return Item(
        id=str(status["id"]),
        platform=PLATFORM,
        account=account,
        kind=kind,
        author=author,
        recipients=recipients,
        created_at=to_utc(status["created_at"]),
        edited_at=to_utc(status["edited_at"]) if status.get("edited_at") else None,
        visibility=visibility,
        text=text,
        media=[_media(a) for a in status.get("media_attachments") or []],
        parent_id=str(parent) if parent else None,
        thread_id=thread_id or (str(status["id"]) if not status.get("in_reply_to_id") else None),
        url=status.get("url") or status.get("uri"),
        raw=status,
    )


class MastodonConnector(HttpConnector):
    type: ClassVar[str] = "mastodon"
    description: ClassVar[str] = "a Mastodon account: statuses, replies, mentions, DMs"
    Settings = MastodonSettings
    capabilities = frozenset({Capability.read, Capability.direct_messages,
                              Capability.account_facts, Capability.delete})
    auth_fix: ClassVar[str] = (
        "create a new access token under Preferences > Development on the instance (scopes read "
        "and write:statuses) and set it in the environment variable named in the config"
    )

    settings: MastodonSettings

    def __init__(self, settings: MastodonSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self._me: dict[str, Any] | None = None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.access_token.get_secret_value()}"}

    def check_rate_limit(self, response: httpx.Response) -> float | None:
        """Mastodon's ``X-RateLimit-Remaining``/``X-RateLimit-Reset`` (an ISO time): when the
        window is nearly spent, wait for it to reset."""
        remaining = response.headers.get("x-ratelimit-remaining")
        reset = response.headers.get("x-ratelimit-reset")
        if remaining is None or reset is None:
            return None
        try:
            if int(remaining.strip()) > LOW_REMAINING:
                return None
            wait = to_utc(reset).timestamp() - self.clock()
        except ValueError:
            return None
        return max(0.0, wait) or None

    # -- reading ------------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        if self._me is None:
            me = self.get_json("/api/v1/accounts/verify_credentials")
            if not isinstance(me, dict) or "id" not in me:
                raise FatalError(f"{self.name} (account {self.account}): the instance did not "
                                 "say whose token this is. Fix: check base_url.")
            self._me = me
        return self._me

    def _listing(self, path: str, params: dict[str, Any], start: datetime, where: str,
                 stop_on_old: bool = True) -> list[Any]:
        """Every record of a newest-first listing back to ``start`` (Link rel="next")."""
        out: list[Any] = []
        url: str | None = path
        query: dict[str, Any] | None = params
        for _ in range(1000):
            if url is None:
                break
            response = self.request("GET", url, params=query)
            try:
                page = response.json()
            except ValueError as exc:
                raise FatalError(f"{self.name}: {where} answered with a body that is not JSON. "
                                 "Fix: check base_url.") from exc
            if not isinstance(page, list) or not page:
                break
            out.extend(page)
            oldest = _record_time(page[-1])
            if stop_on_old and oldest is not None and oldest < start:
                break
            url = response.links.get("next", {}).get("url")
            query = None
        return out

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = listing_start(cursor, now, self.settings)
        me = self.me()
        own_id = str(me["id"])
        acct = self.account
        problems: list[str] = []
        items: dict[str, Item] = {}
        windows = [ListingWindow(start=start, end=now, parent_id=own_id)]

        def add(found: Any) -> None:
            for item in found:
                items[item.id] = item

        statuses = self._listing(f"/api/v1/accounts/{own_id}/statuses", {"limit": 40}, start,
                                 "statuses")
        own = list(parse_records(statuses, lambda s: status_item(s, acct, own_id=own_id),
                                 f"{self.name}: /api/v1/accounts/{own_id}/statuses", problems))
        add(i for i in own if i.created_at >= start)

        # replies under the account's recent statuses: the whole tree, so deletions are seen
        reply_since = max(start, now - timedelta(days=self.settings.replies_lookback_days))
        for status in own:
            if status.created_at < reply_since or status.kind == ItemKind.direct_message:
                continue
            try:
                context = self.get_json(f"/api/v1/statuses/{status.id}/context")
            except FatalError as exc:
                if not is_not_found(exc):
                    raise
                continue  # deleted since it was listed: the next poll's window sees it gone
            thread = status.thread_id or status.id
            descendants = (context or {}).get("descendants") or []

            def reply(s: dict[str, Any], thread: str = thread) -> Item | None:
                return status_item(s, acct, thread_id=thread)

            tree = list(parse_records(descendants, reply,
                                      f"{self.name}: /api/v1/statuses/{status.id}/context",
                                      problems))
            add(tree)
            # the context is the whole tree: every node's replies are listed completely
            for node in [status, *tree]:
                windows.append(ListingWindow(start=node.created_at, end=now, parent_id=node.id))

        notes = self._listing("/api/v1/notifications", {"types[]": "mention", "limit": 40},
                              start, "notifications")
        add(parse_records(
            [n.get("status") for n in notes if n.get("type") == "mention" and n.get("status")],
            lambda s: status_item(s, acct, own_id=own_id),
            f"{self.name}: /api/v1/notifications", problems))

        if self.settings.read_direct_messages:
            convs = self._listing("/api/v1/conversations", {"limit": 40}, start, "conversations",
                                  stop_on_old=True)
            lasts = list(parse_records(
                [c.get("last_status") for c in convs if c.get("last_status")],
                lambda s: status_item(s, acct, own_id=own_id),
                f"{self.name}: /api/v1/conversations", problems))
            add(lasts)
            # a conversation lists only its last message: the whole exchange is its context
            for last in lasts:
                if last.created_at < start:
                    continue
                try:
                    context = self.get_json(f"/api/v1/statuses/{last.id}/context")
                except FatalError as exc:
                    if not is_not_found(exc):
                        raise
                    continue
                earlier = [*(context or {}).get("ancestors", []),
                           *(context or {}).get("descendants", [])]
                add(parse_records(earlier, lambda s: status_item(s, acct, own_id=own_id),
                                  f"{self.name}: /api/v1/statuses/{last.id}/context", problems))

        return FetchResult(items=list(items.values()), cursor={"polled_at": now.isoformat()},
                           windows=windows, problems=problems)

    # -- moderation ---------------------------------------------------------------------------

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        if action != ModerationAction.delete:
            return super().moderate(item, action)
        own_id = str(self.me()["id"])
        if item.author.id != own_id:
            return ModerationResult(
                ok=False, action=action,
                detail="Mastodon lets an account delete only its own statuses; report or block "
                       "the author on the instance instead",
            )
        try:
            self.request("DELETE", f"/api/v1/statuses/{item.id}")
        except FatalError as exc:
            if is_not_found(exc):
                return ModerationResult(ok=True, action=action, detail="already gone")
            raise
        return ModerationResult(ok=True, action=action, detail=f"deleted status {item.id}")

    # -- account facts ------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        me = self.me()
        source = me.get("source") or {}
        privacy = {
            "locked": me.get("locked"),
            "discoverable": me.get("discoverable"),
            "indexable": me.get("indexable"),
            "hide_collections": me.get("hide_collections"),
            "default_visibility": source.get("privacy"),
            "bot": me.get("bot"),
        }
        following = self._listing(f"/api/v1/accounts/{me['id']}/following", {"limit": 80},
                                  datetime.min.replace(tzinfo=UTC), "following",
                                  stop_on_old=False)
        return AccountFacts(
            account_id=self.account,
            privacy={k: v for k, v in privacy.items() if v is not None},
            follows=[str(a.get("acct")) for a in following if a.get("acct")],
            extra={"acct": me.get("acct"), "url": me.get("url")},
        )


def _record_time(record: Any) -> datetime | None:
    """When a listed record happened (status, notification or conversation)."""
    if not isinstance(record, dict):
        return None
    value = record.get("created_at") or (record.get("last_status") or {}).get("created_at")
    try:
        return to_utc(value) if value else None
    except ValueError:
        return None
