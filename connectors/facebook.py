"""``facebook``: a Facebook Page through the Graph API.

Reads the Page feed (posts by the Page and by visitors), every comment and reply on posts of the
last ``lookback_days`` (a complete listing each poll, so deleted comments are noticed), and the
Page's Messenger conversations when ``read_messages`` is on and the token allows it. Moderation:
hide, unhide or delete a comment; delete a Page post. Account facts: the people with a role on
the Page and their tasks, and, with ``business_id``, the business users and whether they use
two-factor authentication. Webhooks: ``feed`` change events (see connectors/meta.py).
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from pydantic import Field

from connectors.base import (
    AccountFacts,
    Capability,
    FatalError,
    FetchResult,
    ListingWindow,
    ModerationAction,
    ModerationResult,
    dedupe,
    describe_error,
    media_ref,
    parse_time,
    report_skipped,
    thumbnail_ref,
    unix,
)
from connectors.meta import GraphConnector, GraphSettings
from governance_bot.items import Item, ItemKind, Media, Person, Visibility, visible_text

__all__ = ["FacebookPageConnector", "FacebookSettings", "parse_comment", "parse_message",
           "parse_post"]

log = logging.getLogger(__name__)

PLATFORM = "facebook"
POST_FIELDS = ("id,message,story,created_time,updated_time,from,permalink_url,is_hidden,"
               "privacy,full_picture,attachments{media_type,type,media,url,title,description,"
               "subattachments}")
COMMENT_FIELDS = ("id,message,created_time,from,parent{id},permalink_url,is_hidden,"
                  "attachment{type,media,url,title,description}")

_PRIVACY = {
    "EVERYONE": Visibility.public,
    "ALL_FRIENDS": Visibility.followers,
    "FRIENDS_OF_FRIENDS": Visibility.followers,
    "SELF": Visibility.private,
    "CUSTOM": Visibility.private,
}


class FacebookSettings(GraphSettings):
    page_id: str = Field(min_length=1, pattern=r"^\d+$", description="the Page's numeric id")
    read_comments: bool = True
    read_messages: bool = Field(
        default=True, description="Messenger conversations (needs pages_messaging)"
    )
    business_id: str | None = Field(
        default=None, pattern=r"^\d+$",
        description="Business Manager id: lists business users with their two-factor status",
    )


def _person(data: Any) -> Person:
    if not isinstance(data, dict):
        return Person()
    return Person(id=_str(data.get("id")), name=data.get("name"), handle=data.get("username"),
                  email=None)  # Messenger's "email" is a proxy address, not a real one


def _str(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def _attachment_media(attachment: Any) -> list[Media]:
    """Media references from a post's ``attachments`` entry or a comment's ``attachment``."""
    out: list[Media] = []
    if not isinstance(attachment, dict):
        return out
    kind = attachment.get("media_type") or attachment.get("type")
    media = attachment["media"] if isinstance(attachment.get("media"), dict) else {}
    image = media.get("image")
    if _is_video(attachment):
        # a video's ``media.image`` is its still (the picture shown before it plays): read like
        # a photo; ``media.source`` is the video itself
        video = media_ref(media.get("source"), "video")
        if video:
            out.append(video)
        still = thumbnail_ref(image.get("src")) if isinstance(image, dict) else None
        if still:
            out.append(still)
    elif isinstance(image, dict):
        ref = media_ref(image.get("src"), kind)
        if ref:
            out.append(ref)
    subs = attachment.get("subattachments")
    if isinstance(subs, dict):
        for sub in subs.get("data") or []:
            out.extend(_attachment_media(sub))
    return out


_LINK_KINDS = frozenset({"share", "link", "video_share_youtube", "native_templates"})


def _is_video(attachment: dict[str, Any]) -> bool:
    kind = str(attachment.get("media_type") or attachment.get("type") or "")
    return (kind.startswith("video") and kind != "video_share_youtube") or kind in (
        "animated_image_video", "reels")


def _attachment_text(attachment: Any, index: str) -> list[tuple[str, str | None, str | None]]:
    """The text a reader sees on an attachment: a shared link's card (title, description), a
    shared post, a photo's description (its caption), and the same for each sub-attachment."""
    if not isinstance(attachment, dict):
        return []
    kind = str(attachment.get("type") or attachment.get("media_type") or "")
    shown = "\n".join(str(attachment[k]) for k in ("title", "description")
                      if isinstance(attachment.get(k), str) and attachment[k].strip())
    source = ("link card" if kind in _LINK_KINDS else
              "shared post" if kind.startswith("shared") else "caption")
    target: dict[str, Any] = attachment["target"] if isinstance(
        attachment.get("target"), dict) else {}
    out: list[tuple[str, str | None, str | None]] = [
        (source, shown, str(target.get("id") or attachment.get("url") or index))]
    subs = attachment.get("subattachments")
    if isinstance(subs, dict):
        for n, sub in enumerate(subs.get("data") or []):
            out.extend(_attachment_text(sub, f"{index}.{n}"))
    return out


def parse_post(record: dict[str, Any], account: str) -> Item:
    """A Page feed record as a post Item."""
    post_id = record["id"]
    if not isinstance(post_id, str) or not post_id:
        raise ValueError("post id is not a string")
    media: list[Media] = []
    attachments = record.get("attachments")
    if isinstance(attachments, dict):
        for att in attachments.get("data") or []:
            media.extend(_attachment_media(att))
    if not media and record.get("full_picture"):
        # without attachments, the post's picture; for a video post (``status_type``
        # added_video) that is the video's still
        if str(record.get("status_type") or "").endswith("video"):
            ref = thumbnail_ref(record["full_picture"])
        else:
            ref = media_ref(record["full_picture"], "photo")
        if ref:
            media.append(ref)
    privacy = record.get("privacy")
    visibility = Visibility.public
    if isinstance(privacy, dict) and privacy.get("value") in _PRIVACY:
        visibility = _PRIVACY[privacy["value"]]
    if record.get("is_hidden"):
        visibility = Visibility.private
    author = _person(record.get("from"))
    if author.id is None and "_" in post_id:
        author = Person(id=post_id.split("_", 1)[0])  # a Page's own post: "{page_id}_{post}"
    message, story = record.get("message") or "", record.get("story") or ""
    extras: list[tuple[str, str | None, str | None]] = [("title", story if message else "", None)]
    if isinstance(attachments, dict):
        for index, att in enumerate(attachments.get("data") or []):
            extras.extend(_attachment_text(att, str(index)))
    return Item.model_validate({
        "id": post_id,
        "platform": PLATFORM,
        "account": account,
        "kind": ItemKind.post,
        "author": author,
        "created_at": parse_time(record["created_time"]),
        "visibility": visibility,
        **visible_text(message or story, extras),
        "media": media,
        "thread_id": post_id,
        "url": record.get("permalink_url"),
        "raw": record,
    })


def _ids_from_permalink(url: str | None) -> tuple[str | None, str | None]:
    """(comment id, parent comment id) from a comment's permalink, for answers without ``id``.

    ``.../posts/{post}/?comment_id={c}`` is comment ``{post}_{c}``; with ``&reply_comment_id={r}``
    it is reply ``{post}_{r}`` to comment ``{post}_{c}``."""
    if not url:
        return None, None
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    segments = [s for s in parts.path.split("/") if s]
    post = None
    if "posts" in segments and segments.index("posts") + 1 < len(segments):
        post = segments[segments.index("posts") + 1]
    comment = next(iter(query.get("comment_id", [])), None)
    reply = next(iter(query.get("reply_comment_id", [])), None)
    if not post or not comment:
        return None, None
    if reply:
        return f"{post}_{reply}", f"{post}_{comment}"
    return f"{post}_{comment}", None


def parse_comment(record: dict[str, Any], account: str, post_id: str) -> Item:
    """A comment (or a reply to a comment) on ``post_id`` as an Item."""
    comment_id = _str(record.get("id"))
    parent_id = None
    parent = record.get("parent")
    if isinstance(parent, dict) and parent.get("id"):
        parent_id = str(parent["id"])
    derived_id, derived_parent = _ids_from_permalink(record.get("permalink_url"))
    if comment_id is None:
        comment_id = derived_id
        parent_id = parent_id or derived_parent
    if comment_id is None:
        raise ValueError("comment has neither an id nor a permalink naming one")
    is_reply = parent_id is not None
    return Item(
        id=comment_id,
        platform=PLATFORM,
        account=account,
        kind=ItemKind.reply if is_reply else ItemKind.comment,
        author=_person(record.get("from")),
        created_at=parse_time(record["created_time"]),
        visibility=Visibility.private if record.get("is_hidden") else Visibility.public,
        **visible_text(record.get("message") or "",
                       _attachment_text(record.get("attachment"), "0")),
        media=_attachment_media(record.get("attachment")),
        parent_id=parent_id or post_id,
        thread_id=post_id,
        url=record.get("permalink_url"),
        raw=record,
    )


def parse_message(record: dict[str, Any], account: str, conversation_id: str,
                  platform: str = PLATFORM) -> Item:
    """A Messenger (or Instagram) message in a Page conversation as a direct-message Item."""
    message_id = record["id"]
    if not isinstance(message_id, str) or not message_id:
        raise ValueError("message id is not a string")
    media: list[Media] = []
    attachments = record.get("attachments")
    if isinstance(attachments, dict):
        for att in attachments.get("data") or []:
            if not isinstance(att, dict):
                continue
            image: dict[str, Any] = att.get("image_data") or {}
            video: dict[str, Any] = att.get("video_data") or {}
            url = image.get("url") or video.get("url") or att.get("file_url")
            ref = media_ref(url, None, att.get("mime_type"))
            if ref:
                media.append(ref)
    to = record.get("to")
    recipients = [_person(p) for p in (to.get("data") or [])] if isinstance(to, dict) else []
    return Item(
        id=message_id,
        platform=platform,
        account=account,
        kind=ItemKind.direct_message,
        author=_person(record.get("from")),
        recipients=recipients,
        created_at=parse_time(record["created_time"]),
        visibility=Visibility.direct,
        text=record.get("message") or "",
        media=media,
        thread_id=conversation_id,
        raw=record,
    )


class FacebookPageConnector(GraphConnector):
    type: ClassVar[str] = "facebook"
    description: ClassVar[str] = "a Facebook Page: feed, comments, Messenger, roles (Graph API)"
    Settings = FacebookSettings
    capabilities = frozenset({
        Capability.read, Capability.direct_messages, Capability.webhook,
        Capability.account_facts, Capability.hide, Capability.unhide, Capability.delete,
    })
    auth_fix: ClassVar[str] = (
        "create a new Page access token for this Page (Meta Business Suite > Settings > "
        "System users > Generate token, with pages_read_engagement, pages_read_user_content, "
        "pages_manage_engagement and pages_messaging) and set it in the environment variable "
        "named by access_token"
    )
    settings: FacebookSettings

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        cursor = dict(cursor or {})
        s = self.settings
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = now - timedelta(days=s.lookback_days)
        items: list[Item] = []
        problems: list[str] = []
        windows: list[ListingWindow] = []

        posts: list[Item] = []
        feed = self.listing(f"{s.page_id}/feed",
                            {"fields": POST_FIELDS, "since": unix(start), "until": unix(now)})
        for _record, item in self.parse_each(feed, lambda r: parse_post(r, self.account),
                                             problems):
            posts.append(item)
        items.extend(posts)
        windows.append(ListingWindow(start=start, end=now))

        if s.read_comments:
            for post in posts:
                comments = self.listing(f"{post.id}/comments", {
                    "fields": COMMENT_FIELDS, "filter": "stream", "order": "chronological"})
                for _record, item in self.parse_each(
                        comments, functools.partial(_comment_on, self.account, post.id),
                        problems):
                    items.append(item)
                windows.append(ListingWindow(start=post.created_at, end=now, parent_id=post.id))

        if s.read_messages:
            since = _cursor_time(cursor.get("messages_since")) or start
            items.extend(self.conversation_items(
                s.page_id, "messenger", since, problems,
                functools.partial(_message_in, self.account)))
            cursor["messages_since"] = now.isoformat()

        cursor["last_poll"] = now.isoformat()
        return FetchResult(items=dedupe(items), cursor=cursor, windows=windows,
                           problems=problems)

    # --- moderation ----------------------------------------------------------------------------

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        if action not in self.moderation_actions():
            raise FatalError(f"{self.name}: facebook cannot {action.value} items")
        is_comment = item.kind in (ItemKind.comment, ItemKind.reply)
        if action in (ModerationAction.hide, ModerationAction.unhide):
            if not is_comment:
                raise FatalError(f"{self.name}: only comments can be hidden on a Facebook Page "
                                 f"(item {item.id} is a {item.kind.value})")
            hidden = action is ModerationAction.hide
            response = self.request("POST", self.graph_url(item.id),
                                    data={"is_hidden": "true" if hidden else "false",
                                          **self.proof_params()})
        else:  # delete: a comment, or one of the Page's own posts
            if item.kind is ItemKind.direct_message:
                raise FatalError(f"{self.name}: Messenger messages cannot be deleted by the Page")
            response = self.request("DELETE", self.graph_url(item.id),
                                    params=self.proof_params() or None)
        ok = _success(response.json() if response.content else {})
        log.info("%s: %s %s -> %s", self.name, action.value, item.id, "done" if ok else "refused")
        return ModerationResult(ok=ok, action=action,
                                detail="" if ok else "Facebook did not confirm the change")

    # --- account facts -------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        s = self.settings
        facts = AccountFacts(account_id=self.account)
        unavailable: dict[str, str] = {}
        page = self.graph_get(s.page_id, {"fields": "id,name,username,link,is_published,"
                                                    "verification_status"})
        if isinstance(page, dict):
            facts.privacy = {k: page[k] for k in ("is_published", "verification_status", "link")
                             if k in page}
            facts.extra["page"] = {k: page.get(k) for k in ("id", "name", "username")}
        try:
            for _w, _n, _i, role in self.listing(f"{s.page_id}/roles",
                                                 {"fields": "id,name,tasks,role"}):
                if isinstance(role, dict):
                    facts.admins.append({"id": _str(role.get("id")), "name": role.get("name"),
                                         "role": role.get("role"),
                                         "tasks": list(role.get("tasks") or []),
                                         "two_factor": None})
        except FatalError as exc:
            if "HTTP 401" in str(exc):
                raise
            unavailable["roles"] = str(exc)
        if s.business_id:
            try:
                for _w, _n, _i, user in self.listing(
                        f"{s.business_id}/business_users",
                        {"fields": "id,name,email,role,two_fac_status"}):
                    if isinstance(user, dict):
                        facts.admins.append({
                            "id": _str(user.get("id")), "name": user.get("name"),
                            "email": user.get("email"), "role": user.get("role"),
                            "two_factor": _two_factor(user.get("two_fac_status")),
                            "scope": "business",
                        })
            except FatalError as exc:
                if "HTTP 401" in str(exc):
                    raise
                unavailable["business_users"] = str(exc)
        if unavailable:
            facts.extra["unavailable"] = unavailable
        return facts

    # --- webhooks ------------------------------------------------------------------------------

    def webhook_items(self, payload: Any, problems: list[str]) -> list[Item]:
        return feed_webhook_items(payload, self.account, self.settings.page_id, problems,
                                  self.name)


def feed_webhook_items(payload: Any, account: str, page_id: str, problems: list[str],
                       name: str) -> list[Item]:
    """Items from a Page ``feed`` webhook: added or edited posts and comments."""
    items: list[Item] = []
    if not isinstance(payload, dict) or payload.get("object") != "page":
        problems.append("webhook: not a page event")
        return items
    for e_index, entry in enumerate(payload.get("entry") or []):
        if not isinstance(entry, dict) or str(entry.get("id")) != page_id:
            continue
        for c_index, change in enumerate(entry.get("changes") or []):
            where = f"webhook entry {e_index + 1} change {c_index + 1}"
            if not isinstance(change, dict) or change.get("field") != "feed":
                continue
            value = change.get("value")
            if not isinstance(value, dict) or value.get("verb") not in ("add", "edited"):
                continue
            try:
                items.append(_feed_value_item(value, account))
            except Exception as exc:  # one malformed record: reported, the others go on
                report_skipped(log, name, problems, where, describe_error(exc))
    return items


def _feed_value_item(value: dict[str, Any], account: str) -> Item:
    created = value.get("created_time")
    created_at = parse_time(created) if created is not None else datetime.now(UTC)
    author = _person(value.get("from"))
    photo = media_ref(value.get("photo"), "photo")
    media = [photo] if photo else []
    if value.get("item") == "comment":
        post_id = str(value["post_id"])
        parent = _str(value.get("parent_id"))
        is_reply = parent is not None and parent != post_id
        return Item(id=str(value["comment_id"]), platform=PLATFORM, account=account,
                    kind=ItemKind.reply if is_reply else ItemKind.comment, author=author,
                    created_at=created_at, text=value.get("message") or "", media=media,
                    parent_id=parent or post_id, thread_id=post_id, raw=value)
    if value.get("item") in ("status", "post", "photo", "video", "share"):
        post_id = str(value["post_id"])
        return Item(id=post_id, platform=PLATFORM, account=account, kind=ItemKind.post,
                    author=author, created_at=created_at, text=value.get("message") or "",
                    media=media, thread_id=post_id, url=value.get("link"), raw=value)
    raise ValueError(f"feed item type {value.get('item')!r} is not read")


def _comment_on(account: str, post_id: str, record: dict[str, Any]) -> Item:
    return parse_comment(record, account, post_id)


def _message_in(account: str, conversation_id: str, record: dict[str, Any]) -> Item:
    return parse_message(record, account, conversation_id)


def _two_factor(status: Any) -> bool | None:
    if not isinstance(status, str):
        return None
    if status.lower() in ("enabled", "on", "required"):
        return True
    if status.lower() in ("not_enabled", "disabled", "off", "none"):
        return False
    return None


def _success(body: Any) -> bool:
    return isinstance(body, dict) and body.get("success") is True


def _cursor_time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


