"""``bluesky``: an organisation's Bluesky account over the AT Protocol (XRPC over HTTPS).

Signs in with an app password (``com.atproto.server.createSession``, refreshed with
``refreshSession``), reads the account's posts (``app.bsky.feed.getAuthorFeed``), the whole reply
tree under each recent post (``app.bsky.feed.getPostThread``) and mentions, replies and quotes
(``app.bsky.notification.listNotifications``), paging on ``cursor``.

Moderation: delete the account's own post (``com.atproto.repo.deleteRecord``); hide a reply
under the account's own thread by adding it to the thread's threadgate ``hiddenReplies``
(``com.atproto.repo.putRecord`` of ``app.bsky.feed.threadgate``, created if there is none);
stop new replies (threadgate ``allow: []``). Bluesky has no account privacy settings; the audit
gets the accounts it follows (``app.bsky.graph.getFollows``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from connectors.base import (
    AccountFacts,
    Capability,
    CursorPaginator,
    FatalError,
    FetchResult,
    HttpConnector,
    ListingWindow,
    ModerationAction,
    ModerationResult,
    NotFound,
    SocialSettings,
    listing_start,
    parse_records,
    parse_time,
    report_skipped,
)
from governance_bot.items import Item, ItemKind, Visibility, visible_text

__all__ = ["BlueskyConnector", "BlueskySettings", "post_item", "thread_items", "thread_listing"]

log = logging.getLogger(__name__)

PLATFORM = "bluesky"
POST = "app.bsky.feed.post"
THREADGATE = "app.bsky.feed.threadgate"
SESSION_MAX_AGE = 60 * 60  # access tokens last about two hours; refresh well before
NOTIFICATION_REASONS = {"mention", "reply", "quote"}


class BlueskySettings(SocialSettings):
    identifier: str = Field(min_length=3, description="the account's handle or DID")
    app_password: SecretStr = Field(description="an app password (Settings > App passwords)")
    base_url: str | None = Field(default=None, description="the PDS; default https://bsky.social")
    replies_lookback_days: int = Field(default=14, ge=1, le=365)


def split_uri(uri: str) -> tuple[str, str, str]:
    """``at://did/collection/rkey`` -> (did, collection, rkey)."""
    if not uri.startswith("at://"):
        raise ValueError(f"not an at:// URI: {uri!r}")
    parts = uri[5:].split("/")
    if len(parts) != 3:
        raise ValueError(f"not a record URI: {uri!r}")
    return parts[0], parts[1], parts[2]


_VIDEO = "app.bsky.embed.video"


def _media(embed: dict[str, Any], view: dict[str, Any] | None, did: str
           ) -> list[dict[str, Any]]:
    """Pictures of a post (as the media entries an Item reads): each image, by the view's CDN
    URL where the API gave it, else its blob's; a video's still (the view's ``thumbnail``) as a
    thumbnail. ``embed`` is the record's embed, ``view`` the post view's."""
    inner = embed.get("media") or embed  # recordWithMedia nests the pictures in ``media``
    view = view or {}
    shown = view.get("media") or view
    out: list[dict[str, Any]] = []
    images = inner.get("images")
    if images:
        view_images = shown.get("images") or ()
        for i, image in enumerate(images):
            blob = image.get("image") or {}
            url = view_images[i].get("fullsize") if i < len(view_images) else None
            if not url:
                cid = (blob.get("ref") or {}).get("$link") or blob.get("cid")
                if cid:
                    url = f"https://cdn.bsky.app/img/feed_fullsize/plain/{did}/{cid}@jpeg"
            out.append({"url": url, "mime_type": blob.get("mimeType"),
                        "alt_text": image.get("alt") or None})
    elif str(inner.get("$type", "")).startswith(_VIDEO):
        # the video itself is an HLS playlist; its still is what a reader sees first
        still = shown.get("thumbnail")
        if isinstance(still, str) and still:
            out.append({"url": still, "mime_type": "image/jpeg", "thumbnail": True,
                        "alt_text": inner.get("alt") or None})
    return out


def _embedded(embed: dict[str, Any], view: dict[str, Any] | None
              ) -> tuple[str | None, str, str, str | None]:
    """What a post embeds besides pictures: (quoted post's URI, its text as shown, the link
    card's title and description, the card's URL). The view (``post.embed``) carries the quoted
    post's text; the record alone only its URI. A malformed embed raises (the record is then
    reported and skipped)."""
    quoted_uri, quoted_text = None, ""
    quoted = embed.get("record")
    if quoted:
        quoted_uri = quoted.get("record", quoted).get("uri")  # recordWithMedia nests it
        if view:
            shown = view.get("record")
            if shown:
                shown = shown.get("record", shown)
                text = (shown.get("value") or {}).get("text")
                if isinstance(text, str):
                    handle = (shown.get("author") or {}).get("handle")
                    quoted_text = f"@{handle}:\n{text}" if handle else text
                    quoted_uri = quoted_uri or shown.get("uri")
    external = embed.get("external") or (embed.get("media") or {}).get("external")
    if not external:
        return quoted_uri, quoted_text, "", None
    card = "\n".join(str(external[k]) for k in ("title", "description") if external.get(k))
    return quoted_uri, quoted_text, card, external.get("uri")


def post_item(post: dict[str, Any], account: str, *, own_did: str | None = None) -> Item:
    """A post view (``app.bsky.feed.defs#postView``) or a record (``getRecord`` output) as an
    item. The account's own top-level posts get its DID as ``parent_id``."""
    uri = post["uri"]
    did, collection, rkey = split_uri(uri)
    if collection != POST:
        raise ValueError(f"not a post: {collection}")
    record = post.get("record") or post.get("value")
    if not isinstance(record, dict):
        raise ValueError("no record")
    author = post.get("author") or {"did": did}
    reply = record.get("reply") or {}
    parent = (reply.get("parent") or {}).get("uri")
    root = (reply.get("root") or {}).get("uri")
    handle = author.get("handle")
    if parent:
        kind = ItemKind.reply
    else:
        kind = ItemKind.post
        if own_did is not None and author.get("did") == own_did:
            parent = own_did
    created = record.get("createdAt") or post.get("indexedAt")
    author_did = author.get("did") or did
    embed = record.get("embed")
    media: list[dict[str, Any]] = []
    quoted_uri = None
    body = record.get("text") or ""
    if embed:
        # read once, into the plain values the item's validation takes (parsing is hot)
        view = post.get("embed")
        media = _media(embed, view, author_did)
        quoted_uri, quoted_text, card, card_url = _embedded(embed, view)
        extras: list[tuple[str, str | None, str | None]] = [
            ("quoted post", quoted_text, quoted_uri), ("link card", card, card_url)]
        extras += [("alt text", m["alt_text"], str(i)) for i, m in enumerate(media)
                   if m["alt_text"]]
        shown = visible_text(body, extras)
    else:
        shown = {"text": body, "parts": []}
    return Item.model_validate({
        "id": uri,
        "platform": PLATFORM,
        "account": account,
        "kind": kind,
        "author": {"id": author_did, "handle": handle,
                   "name": author.get("displayName") or None},
        # Bluesky documents its times as UTC; older records were written without the zone
        "created_at": parse_time(created, naive="utc"),
        "visibility": Visibility.public,
        **shown,
        "media": media,
        "parent_id": parent,
        "thread_id": root or uri,
        "url": f"https://bsky.app/profile/{handle or did}/post/{rkey}",
        "raw": post,
        "quoted_id": quoted_uri,
    })


def thread_items(node: dict[str, Any], account: str, *, own_did: str | None = None
                 ) -> tuple[list[Item], list[str]]:
    """Every post in a thread view, depth first, and the replies that could not be read."""
    items, skipped, _ = thread_listing(node, account, own_did=own_did)
    return items, skipped


def thread_listing(node: dict[str, Any], account: str, *, own_did: str | None = None
                   ) -> tuple[list[Item], list[str], set[str]]:
    """Like :func:`thread_items`, plus the posts whose replies are *not* all listed.

    A not-found node is a deleted reply: nothing to read, and its parent's listing is still
    complete. A blocked node, or one that cannot be parsed, leaves its parent's replies
    incomplete, so no listing window may claim them."""
    items: list[Item] = []
    skipped: list[str] = []
    incomplete: set[str] = set()
    stack: list[tuple[dict[str, Any], str | None]] = [(node, None)]
    while stack:
        current, parent = stack.pop()
        kind = current.get("$type", "")
        if kind.endswith("#notFoundPost"):
            continue
        if "post" not in current or kind.endswith("#blockedPost"):
            if parent is not None:
                incomplete.add(parent)
            continue
        try:
            item = post_item(current["post"], account, own_did=own_did)
        except (KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{current.get('post', {}).get('uri', '?')}: {exc}")
            if parent is not None:
                incomplete.add(parent)
            continue
        items.append(item)
        stack.extend((r, item.id) for r in reversed(current.get("replies") or []))
    return items, skipped, incomplete


class BlueskyConnector(HttpConnector):
    type: ClassVar[str] = "bluesky"
    description: ClassVar[str] = "a Bluesky account: posts, replies, mentions"
    Settings = BlueskySettings
    capabilities = frozenset({Capability.read, Capability.account_facts, Capability.delete,
                              Capability.hide_reply, Capability.restrict_replies})
    default_base_url: ClassVar[str] = "https://bsky.social"
    auth_fix: ClassVar[str] = (
        "create a new app password in Bluesky (Settings > Privacy and security > App passwords) "
        "and set it in the environment variable named in the config"
    )

    settings: BlueskySettings

    def __init__(self, settings: BlueskySettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self.session = self.token_cache(self._sign_in, margin=0)
        self._refresh: str | None = None
        self.did: str | None = None
        self.handle: str | None = None

    def effective_status(self, response: httpx.Response) -> int:
        """An expired or refused token comes back as 400 ``ExpiredToken``/``InvalidToken``."""
        if response.status_code == 400:
            try:
                error = response.json().get("error")
            except (ValueError, AttributeError):
                return 400
            if error in ("ExpiredToken", "InvalidToken", "AuthenticationRequired"):
                return 401
            if error in ("NotFound", "RecordNotFound"):
                return 404
        return response.status_code

    def check_rate_limit(self, response: httpx.Response) -> float | None:
        """Bluesky's ``RateLimit-Remaining``/``RateLimit-Reset`` (Unix seconds): when the window
        is nearly spent, wait for it to reset."""
        remaining = response.headers.get("ratelimit-remaining")
        reset = response.headers.get("ratelimit-reset")
        if remaining is None or reset is None:
            return None
        try:
            if int(remaining) > 1:
                return None
            return max(0.0, float(reset) - self.clock()) or None
        except ValueError:
            return None

    # -- session ------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        token = self.session.current
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _xrpc(self, method: str) -> str:
        return f"xrpc/{method}"

    def ensure_session(self) -> None:
        self.session.get()

    def _sign_in(self) -> tuple[str, float]:
        """A session: refreshed with the refresh token while it holds, else a new sign-in."""
        if self._refresh:
            try:
                return self._take_session(self.json_of(self.request(
                    "POST", self._xrpc("com.atproto.server.refreshSession"), auth=False,
                    headers={"Authorization": f"Bearer {self._refresh}"}), "refreshSession"))
            except FatalError:
                log.info("%s: session refresh refused; signing in again", self.name)
        return self._take_session(self.json_of(self.request(
            "POST", self._xrpc("com.atproto.server.createSession"), auth=False, json={
                "identifier": self.settings.identifier,
                "password": self.settings.app_password.get_secret_value(),
            }), "createSession"))

    def _take_session(self, body: dict[str, Any]) -> tuple[str, float]:
        self._refresh = str(body.get("refreshJwt") or "") or None
        self.did = str(body["did"])
        self.handle = body.get("handle")
        return str(body["accessJwt"]), SESSION_MAX_AGE

    # -- reading ------------------------------------------------------------------------------

    def _cursor_pages(self, method: str, params: dict[str, Any], key: str,
                      start: datetime | None, time_of: Callable[[Any], datetime]
                      ) -> list[dict[str, Any]]:
        """Records of a newest-first listing paged on ``cursor``, back to ``start``."""
        out: list[dict[str, Any]] = []
        for page in self.pages(self._xrpc(method), params, CursorPaginator()):
            records = page.records(key)
            out.extend(records)
            if start is None or not records:
                continue
            try:
                oldest: datetime | None = time_of(records[-1])
            except (KeyError, TypeError, ValueError):
                oldest = None
            if oldest is not None and oldest < start:
                break
        return out

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        self.ensure_session()
        assert self.did is not None
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = listing_start(cursor, now, self.settings)
        did, acct = self.did, self.account
        problems: list[str] = []
        items: dict[str, Item] = {}
        windows = [ListingWindow(start=start, end=now, parent_id=did)]

        feed = self._cursor_pages(
            "app.bsky.feed.getAuthorFeed",
            {"actor": did, "limit": 100, "filter": "posts_with_replies"}, "feed", start,
            lambda entry: parse_time(entry["post"].get("indexedAt")
                                     or entry["post"]["record"]["createdAt"], naive="utc"),
        )
        # reposts (a "reason") are someone else's posts
        own_posts = [e["post"] for e in feed
                     if isinstance(e, dict) and "reason" not in e
                     and isinstance(e.get("post"), dict)
                     and (e["post"].get("author") or {}).get("did") == did]
        own = [i for i in parse_records(own_posts, lambda p: post_item(p, acct, own_did=did),
                                        f"{self.name}: app.bsky.feed.getAuthorFeed", problems)
               if i.created_at >= start]
        for item in own:
            items[item.id] = item

        reply_since = max(start, now - timedelta(days=self.settings.replies_lookback_days))
        for post in own:
            if post.created_at < reply_since or post.kind != ItemKind.post:
                continue
            thread = self.get_json(self._xrpc("app.bsky.feed.getPostThread"), allow_404=True,
                                   params={"uri": post.id, "depth": 1000, "parentHeight": 0})
            if thread is None:
                continue  # deleted since it was listed
            found, skipped, incomplete = thread_listing(thread.get("thread") or {}, acct,
                                                        own_did=did)
            for bad in skipped:
                report_skipped(log, self.name, problems,
                               f"{self.name}: app.bsky.feed.getPostThread {post.id}",
                               f"skipped {bad}")
            for item in found:
                items[item.id] = item
            # the thread view is the whole tree: every node's replies are listed completely
            for node in found:
                if node.id not in incomplete:
                    windows.append(ListingWindow(start=node.created_at, end=now,
                                                 parent_id=node.id))

        notes = self._cursor_pages(
            "app.bsky.notification.listNotifications", {"limit": 100}, "notifications", start,
            lambda n: parse_time(n["indexedAt"], naive="utc"),
        )
        wanted = [n for n in notes if isinstance(n, dict) and n.get("reason") in
                  NOTIFICATION_REASONS]
        for item in parse_records(
            wanted,
            lambda n: post_item({"uri": n["uri"], "cid": n.get("cid"), "author": n["author"],
                                 "record": n["record"], "indexedAt": n.get("indexedAt")}, acct),
            f"{self.name}: app.bsky.notification.listNotifications", problems,
        ):
            items.setdefault(item.id, item)

        return FetchResult(items=list(items.values()), cursor={"polled_at": now.isoformat()},
                           windows=windows, problems=problems)

    # -- moderation ---------------------------------------------------------------------------

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        if action not in self.moderation_actions():
            return super().moderate(item, action)
        self.ensure_session()
        did = self.did
        try:
            if action == ModerationAction.delete:
                author, collection, rkey = split_uri(item.id)
                if author != did:
                    return ModerationResult(
                        ok=False, action=action,
                        detail="Bluesky lets an account delete only its own posts; hide the "
                               "reply instead",
                    )
                self.request("POST", self._xrpc("com.atproto.repo.deleteRecord"),
                             json={"repo": did, "collection": collection, "rkey": rkey})
                return ModerationResult(ok=True, action=action, detail=f"deleted {item.id}")
            root = item.thread_id or item.id
            root_did, _, root_rkey = split_uri(root)
            if root_did != did:
                return ModerationResult(
                    ok=False, action=action,
                    detail="replies can be hidden only in threads the account started",
                )
            gate = self._threadgate(root)
            if action == ModerationAction.hide_reply:
                hidden = list(gate.get("hiddenReplies") or [])
                if item.id not in hidden:
                    hidden.append(item.id)
                gate["hiddenReplies"] = hidden
            else:  # restrict_replies: nobody may reply any more
                gate["allow"] = []
            self.request("POST", self._xrpc("com.atproto.repo.putRecord"), json={
                "repo": did, "collection": THREADGATE, "rkey": root_rkey, "record": gate,
            })
        except NotFound:
            return ModerationResult(ok=True, action=action, detail="already gone")
        return ModerationResult(ok=True, action=action, detail=f"threadgate on {root} updated")

    def _threadgate(self, root: str) -> dict[str, Any]:
        """The thread's threadgate record as it is now (from the thread view), or a new one."""
        thread = self.get_json(self._xrpc("app.bsky.feed.getPostThread"),
                               params={"uri": root, "depth": 0, "parentHeight": 0})
        view = thread.get("threadgate") or (thread.get("thread") or {}).get(
            "post", {}).get("threadgate") or {}
        record = dict(view.get("record") or {})
        now = datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z")
        record.setdefault("$type", THREADGATE)
        record["post"] = root
        record.setdefault("createdAt", now)
        return record

    # -- account facts ------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        self.ensure_session()
        follows = self._cursor_pages(
            "app.bsky.graph.getFollows", {"actor": self.did, "limit": 100}, "follows", None,
            lambda f: datetime.min,
        )
        return AccountFacts(
            account_id=self.account,
            follows=[str(f.get("handle") or f.get("did")) for f in follows],
            extra={"did": self.did, "handle": self.handle},
        )
