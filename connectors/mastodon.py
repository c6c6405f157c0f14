"""``mastodon``: an organisation's Mastodon account on any instance (Mastodon REST API v1).

Reads the account's own statuses (``/api/v1/accounts/:id/statuses``), the replies under each of
them (``/api/v1/statuses/:id/context``), mentions (``/api/v1/notifications?types[]=mention``) and
direct-message conversations (``/api/v1/conversations``), following ``Link: rel="next"`` to the
end of the recheck window. Visibility: public and unlisted -> public, private -> followers,
direct -> direct.

Everything a reader sees is in the item's text (docs/items.md): the status body (all its HTML
structure), then the content warning, the poll options, the quoted post (with its id), the link
card's title and description and the media descriptions (alt text), each a labelled part. The
``sensitive`` mark, the language and the quoted post's id are kept on the item. A mention
notification without a status, or a conversation without a last status, is counted and reported
as a problem. ``thread_id`` is the root of the conversation (the first of a status's ancestors),
whichever listing the status came from.

Moderation: delete the account's own status. Account facts: locked, discoverable, indexable,
noindex, group, the default post visibility, who may quote the account's posts and the accounts it
follows. Rate limits: ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` are honoured before the
limit is hit; 429 + Retry-After by the base class.

Token: an access token of an application created under Preferences > Development on the
instance, scopes ``read`` and ``write:statuses``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
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
    LinkHeaderPaginator,
    ListingWindow,
    ModerationAction,
    ModerationResult,
    SocialSettings,
    guess_mime,
    html_to_text,
    listing_start,
    parse_records,
    parse_time,
    report_skipped,
    thumbnail_ref,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility, visible_text

__all__ = ["MastodonConnector", "MastodonSettings", "status_item"]

log = logging.getLogger(__name__)

PLATFORM = "mastodon"
VISIBILITY = {
    "public": Visibility.public,
    "unlisted": Visibility.public,
    "private": Visibility.followers,
    "direct": Visibility.direct,
}
# Mastodon gives the kind of a file, not its type: a wildcard where the file name does not say
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
    # an uncached remote file ("unknown", served from /media_proxy/<id>/original) says its type
    # only in the remote URL's file name, if anywhere: never a guessed family
    if kind == "unknown":
        mime = guess_mime(attachment.get("remote_url"))
    else:
        family = MEDIA_MIME.get(kind)
        guessed = guess_mime(url)
        if family and guessed and guessed.split("/")[0] == family.split("/")[0]:
            mime = guessed
        else:
            mime = family
    return Media(url=url, mime_type=mime, alt_text=attachment.get("description") or None)


# attachments whose preview_url is a still of the moving picture (an image's is a small copy)
_HAS_STILL = frozenset({"video", "gifv"})


def _media_list(attachments: list[dict[str, Any]]) -> list[Media]:
    """The attachments in order (their index is the alt text's ``ref``), then a thumbnail per
    video or GIF from its ``preview_url``."""
    media = [_media(a) for a in attachments]
    for a in attachments:
        if a.get("type") in _HAS_STILL:
            still = thumbnail_ref(a.get("preview_url"))
            if still is not None:
                media.append(still)
    return media


def _quoted(status: dict[str, Any]) -> tuple[str | None, str]:
    """The quoted post of a quote post: its id and what a reader sees of it."""
    quote = status.get("quote")
    if not isinstance(quote, dict):
        return None, ""
    inner = quote.get("quoted_status")
    if isinstance(inner, dict):
        who = (inner.get("account") or {}).get("acct")
        body = html_to_text(inner.get("content"))
        warning = inner.get("spoiler_text") or ""
        shown = "\n".join(t for t in (f"@{who}:" if who else "", warning, body) if t)
        return (str(inner["id"]) if inner.get("id") else None), shown
    quoted_id = quote.get("quoted_status_id")
    return (str(quoted_id) if quoted_id else None), ""


def status_item(status: dict[str, Any], account: str, *, own_id: str | None = None,
                thread_id: str | None = None) -> Item | None:
    """One Mastodon status as an item (a boost of someone else's status is not ours: None).

    ``own_id`` is the organisation's account id: its top-level statuses get it as ``parent_id``
    so a complete listing of them can be reported as one listing window. ``thread_id`` is the
    conversation's root when the caller knows it; a status that is not a reply is its own root."""
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
    poll: dict[str, Any] = status["poll"] if isinstance(status.get("poll"), dict) else {}
    options = "\n".join(str(o.get("title")) for o in poll.get("options") or []
                        if isinstance(o, dict) and o.get("title"))
    card: dict[str, Any] = status["card"] if isinstance(status.get("card"), dict) else {}
    card_text = "\n".join(str(card[k]) for k in ("title", "description") if card.get(k))
    quoted_id, quoted_text = _quoted(status)
    attachments = [a for a in status.get("media_attachments") or [] if isinstance(a, dict)]
    extras: list[tuple[str, str | None, str | None]] = [
        ("content warning", status.get("spoiler_text"), None),
        ("poll options", options, str(poll["id"]) if poll.get("id") else None),
        ("quoted post", quoted_text, quoted_id),
        ("link card", card_text, card.get("url")),
        *(("alt text", a.get("description"), str(index))
          for index, a in enumerate(attachments)),
    ]
    recipients = [Person(id=str(m["id"]), handle=m.get("acct"))
                  for m in status.get("mentions") or []]
    # own direct messages are not in the account's status listing, so they stay out of its window
    if (parent is None and own_id is not None and author.id == own_id
            and visibility != Visibility.direct):
        parent = own_id
    status_id = str(status["id"])
    return Item.model_validate({
        "id": status_id,
        "platform": PLATFORM,
        "account": account,
        "kind": kind,
        "author": author,
        "recipients": recipients,
        "created_at": parse_time(status["created_at"]),
        "edited_at": parse_time(status["edited_at"]) if status.get("edited_at") else None,
        "visibility": visibility,
        **visible_text(html_to_text(status.get("content")), extras),
        "media": _media_list(attachments),
        "parent_id": str(parent) if parent else None,
        "thread_id": thread_id or (status_id if not status.get("in_reply_to_id") else None),
        "url": status.get("url") or status.get("uri"),
        "raw": status,
        "sensitive": bool(status.get("sensitive")),
        "language": status.get("language"),
        "quoted_id": quoted_id,
    })


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
            wait = parse_time(reset).timestamp() - self.clock()
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

    def _listing(self, path: str, params: dict[str, Any], start: datetime | None) -> list[Any]:
        """Every record of a newest-first listing back to ``start`` (None: all of it)."""
        out: list[Any] = []
        for page in self.pages(path, params, LinkHeaderPaginator()):
            records = page.records(None)
            out.extend(records)
            oldest = _record_time(records[-1]) if records else None
            if start is not None and oldest is not None and oldest < start:
                break
        return out

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = listing_start(cursor, now, self.settings)
        me = self.me()
        own_id = str(me["id"])
        acct = self.account
        problems: list[str] = []
        items: dict[str, Item] = {}
        roots: dict[str, str] = {}  # status id -> the root of its conversation
        windows = [ListingWindow(start=start, end=now, parent_id=own_id)]

        def add(found: Any) -> None:
            for item in found:
                known = items.get(item.id)
                if known is not None and known.thread_id and not item.thread_id:
                    item = item.model_copy(update={"thread_id": known.thread_id})
                items[item.id] = item

        def parse(thread: str | None = None) -> Callable[[dict[str, Any]], Item | None]:
            return lambda s: status_item(s, acct, own_id=own_id, thread_id=thread)

        path = f"/api/v1/accounts/{own_id}/statuses"
        own = list(parse_records(self._listing(path, {"limit": 40}, start), parse(),
                                 f"{self.name}: {path}", problems, connector=self.name))
        own = [i for i in own if i.created_at >= start]
        add(own)

        # the whole tree under each recent own status (so deletions are seen), and the root of
        # each own reply
        reply_since = max(start, now - timedelta(days=self.settings.replies_lookback_days))
        for status in own:
            if status.kind == ItemKind.direct_message:
                continue
            recent = status.created_at >= reply_since
            if not recent and status.thread_id:
                continue
            context = self._context(status.id)
            if context is None:
                continue  # deleted since it was listed: the next poll's window sees it gone
            ancestors, descendants = context
            root = str(ancestors[0]["id"]) if ancestors and isinstance(ancestors[0], dict) \
                and ancestors[0].get("id") else status.id
            roots[status.id] = root
            add([status.model_copy(update={"thread_id": root})])
            if not recent:
                continue
            where = f"{self.name}: /api/v1/statuses/{status.id}/context"
            tree = list(parse_records(descendants, parse(root), where, problems,
                                      connector=self.name))
            add(tree)
            roots.update((i.id, root) for i in tree)
            # the context is the whole tree: every node's replies are listed completely
            for node in [status, *tree]:
                windows.append(ListingWindow(start=node.created_at, end=now, parent_id=node.id))

        notes = self._listing("/api/v1/notifications", {"types[]": "mention", "limit": 40}, start)
        mentions = [n for n in notes if isinstance(n, dict) and n.get("type") == "mention"]
        without = sum(1 for n in mentions if not isinstance(n.get("status"), dict))
        if without:
            report_skipped(log, self.name, problems, f"{self.name}: /api/v1/notifications",
                           f"{without} mention notification(s) without a status (deleted, or "
                           "not visible to this token): nothing to read")
        add(self._rooted(parse_records(
            [n["status"] for n in mentions if isinstance(n.get("status"), dict)],
            parse(), f"{self.name}: /api/v1/notifications", problems, connector=self.name),
            roots, items))

        if self.settings.read_direct_messages:
            add(self._conversations(start, roots, items, problems, own_id))

        return FetchResult(items=list(items.values()), cursor={"polled_at": now.isoformat()},
                           windows=windows, problems=problems)

    def _context(self, status_id: str) -> tuple[list[Any], list[Any]] | None:
        """A status's ancestors (root first) and descendants; None when it is gone."""
        context = self.get_json(f"/api/v1/statuses/{status_id}/context", allow_404=True)
        if not isinstance(context, dict):
            return None
        return (list(context.get("ancestors") or []), list(context.get("descendants") or []))

    def _rooted(self, found: Any, roots: dict[str, str], known: dict[str, Item]) -> list[Item]:
        """Replies given their conversation's root: from a context already read, else their own
        context's first ancestor."""
        out: list[Item] = []
        for item in found:
            if item.thread_id is None:
                root = roots.get(item.id) or (known[item.id].thread_id
                                              if item.id in known else None)
                if root is None:
                    context = self._context(item.id)
                    ancestors = context[0] if context else []
                    first = ancestors[0] if ancestors and isinstance(ancestors[0], dict) else {}
                    root = str(first.get("id") or item.parent_id or item.id)
                    roots[item.id] = root
                item = item.model_copy(update={"thread_id": root})
            out.append(item)
        return out

    def _conversations(self, start: datetime, roots: dict[str, str], known: dict[str, Item],
                       problems: list[str], own_id: str) -> list[Item]:
        """Direct-message conversations: each one's whole exchange (the last status's context),
        rooted at its first message."""
        acct = self.account
        convs = self._listing("/api/v1/conversations", {"limit": 40}, start)
        without = sum(1 for c in convs if isinstance(c, dict)
                      and not isinstance(c.get("last_status"), dict))
        if without:
            report_skipped(log, self.name, problems, f"{self.name}: /api/v1/conversations",
                           f"{without} conversation(s) without a last status (deleted, or not "
                           "visible to this token): nothing to read")
        out: list[Item] = []
        lasts = [c["last_status"] for c in convs if isinstance(c, dict)
                 and isinstance(c.get("last_status"), dict)]
        where = f"{self.name}: /api/v1/conversations"
        for last in parse_records(lasts, lambda s: status_item(s, acct, own_id=own_id), where,
                                  problems, connector=self.name):
            if last.created_at < start:
                out.append(last)
                continue
            context = self._context(last.id)
            if context is None:
                out.append(last)
                continue
            ancestors, descendants = context
            root = str(ancestors[0]["id"]) if ancestors and isinstance(ancestors[0], dict) \
                and ancestors[0].get("id") else last.id
            out.append(last.model_copy(update={"thread_id": root}))
            where = f"{self.name}: /api/v1/statuses/{last.id}/context"
            exchange = list(parse_records(
                [*ancestors, *descendants],
                functools.partial(_status_in, acct, own_id, root),
                where, problems, connector=self.name))
            out.extend(exchange)
            roots.update((i.id, root) for i in [last, *exchange])
        return self._rooted(out, roots, known)

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
        if self.request("DELETE", f"/api/v1/statuses/{item.id}", allow_404=True) is None:
            return ModerationResult(ok=True, action=action, detail="already gone")
        return ModerationResult(ok=True, action=action, detail=f"deleted status {item.id}")

    # -- account facts ------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        me = self.me()
        source = me.get("source") or {}
        privacy = {
            "locked": me.get("locked"),
            "discoverable": me.get("discoverable"),
            "indexable": me.get("indexable"),
            "noindex": me.get("noindex"),
            "group": me.get("group"),
            "hide_collections": me.get("hide_collections", source.get("hide_collections")),
            "default_visibility": source.get("privacy"),
            "quote_policy": source.get("quote_policy"),
            "bot": me.get("bot"),
        }
        following = self._listing(f"/api/v1/accounts/{me['id']}/following", {"limit": 80}, None)
        return AccountFacts(
            account_id=self.account,
            # a setting the instance did not report is left out: the audit reports it unknown
            privacy={k: v for k, v in privacy.items() if v is not None},
            follows=[str(a.get("acct")) for a in following
                     if isinstance(a, dict) and a.get("acct")],
            extra={"acct": me.get("acct"), "url": me.get("url")},
        )


def _status_in(account: str, own_id: str, root: str, status: dict[str, Any]) -> Item | None:
    return status_item(status, account, own_id=own_id, thread_id=root)


def _record_time(record: Any) -> datetime | None:
    """When a listed record happened (status, notification or conversation)."""
    if not isinstance(record, dict):
        return None
    value = record.get("created_at") or (record.get("last_status") or {}).get("created_at")
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None
