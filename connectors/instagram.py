"""``instagram``: an Instagram professional account through the Instagram Graph API.

Reads the account's media (posts, reels, carousels with every child picture) from the last
``lookback_days``, every comment and reply on them (a complete listing per media, so deletions
are noticed), media the account is tagged in (``/tags``: mentions by others), and, when
``page_id`` of the linked Facebook Page is set and the token allows it, Instagram direct messages.
Moderation: hide, unhide or delete a comment. Account facts: username, follower and following
counts, biography and website (a professional account is always public). Webhooks: ``comments``
and ``mentions`` change events (see connectors/meta.py for the signature check).
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from connectors.base import (
    AccountFacts,
    Capability,
    ConnectorError,
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
from connectors.facebook import parse_message
from connectors.meta import GraphConnector, GraphSettings
from governance_bot.items import Item, ItemKind, Media, Person, Visibility

__all__ = ["InstagramConnector", "InstagramSettings", "parse_comment", "parse_media"]

log = logging.getLogger(__name__)

PLATFORM = "instagram"
CHILD_FIELDS = "id,media_type,media_url,thumbnail_url,permalink,timestamp"
MEDIA_FIELDS = (f"id,caption,media_type,media_product_type,media_url,thumbnail_url,permalink,"
                f"timestamp,username,owner,comments_count,children{{{CHILD_FIELDS}}}")
REPLY_FIELDS = "id,text,timestamp,username,from,hidden,parent_id"
COMMENT_FIELDS = f"id,text,timestamp,username,from,hidden,parent_id,replies{{{REPLY_FIELDS}}}"


class InstagramSettings(GraphSettings):
    ig_user_id: str = Field(min_length=1, pattern=r"^\d+$",
                            description="the Instagram professional account's id")
    username: str | None = Field(default=None, description="the account's @username")
    page_id: str | None = Field(
        default=None, pattern=r"^\d+$",
        description="the linked Facebook Page: needed to read Instagram direct messages",
    )
    read_comments: bool = True
    read_tags: bool = Field(default=True, description="media others tagged the account in")


def _media_refs(record: dict[str, Any]) -> list[Media]:
    out: list[Media] = []
    children = record.get("children")
    if isinstance(children, dict) and children.get("data"):
        for child in children["data"]:
            if isinstance(child, dict):
                out.extend(_media_refs(child))
        return out
    kind = str(record.get("media_type") or "").lower() or None
    ref = media_ref(record.get("media_url"), kind)
    if ref:
        out.append(ref)
    # a video's or reel's cover: read like a photo (its text, the people in it)
    still = thumbnail_ref(record.get("thumbnail_url"))
    if still is not None:
        out.append(still)
    return out


def _owner(record: dict[str, Any], default: Person | None = None) -> Person:
    owner = record.get("owner")
    owner_id = str(owner["id"]) if isinstance(owner, dict) and owner.get("id") else None
    handle = record.get("username")
    if default is not None and owner_id in (None, default.id):
        return Person(id=default.id, handle=handle or default.handle)
    return Person(id=owner_id, handle=handle)


def parse_media(record: dict[str, Any], account: str, kind: ItemKind = ItemKind.post,
                default_author: Person | None = None) -> Item:
    """A media object (post, reel, carousel, story, or media the account is tagged in);
    ``default_author`` for the account's own media listed without ``owner``."""
    media_id = record["id"]
    if not isinstance(media_id, str) or not media_id:
        raise ValueError("media id is not a string")
    return Item(
        id=media_id,
        platform=PLATFORM,
        account=account,
        kind=kind,
        author=_owner(record, default_author),
        created_at=parse_time(record["timestamp"]),
        visibility=Visibility.public,
        text=record.get("caption") or "",
        media=_media_refs(record),
        thread_id=media_id,
        url=record.get("permalink"),
        raw=record,
    )


def parse_comment(record: dict[str, Any], account: str, media_id: str,
                  parent_id: str | None = None) -> Item:
    """A comment on ``media_id``, or a reply to comment ``parent_id``."""
    comment_id = record["id"]
    if not isinstance(comment_id, str) or not comment_id:
        raise ValueError("comment id is not a string")
    parent = parent_id or (str(record["parent_id"]) if record.get("parent_id") else None)
    frm = _dict(record.get("from"))
    user = _dict(record.get("user"))
    author = Person(id=_str(frm.get("id")) or _str(user.get("id")),
                    handle=frm.get("username") or record.get("username"))
    return Item(
        id=comment_id,
        platform=PLATFORM,
        account=account,
        kind=ItemKind.reply if parent else ItemKind.comment,
        author=author,
        created_at=parse_time(record["timestamp"]),
        visibility=Visibility.private if record.get("hidden") else Visibility.public,
        text=record.get("text") or "",
        parent_id=parent or media_id,
        thread_id=media_id,
        raw=record,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


class InstagramConnector(GraphConnector):
    type: ClassVar[str] = "instagram"
    description: ClassVar[str] = "an Instagram professional account: media, comments, " \
                                 "mentions, messages (Instagram Graph API)"
    Settings = InstagramSettings
    capabilities = frozenset({
        Capability.read, Capability.direct_messages, Capability.webhook,
        Capability.account_facts, Capability.hide, Capability.unhide, Capability.delete,
    })
    auth_fix: ClassVar[str] = (
        "create a new access token for the Facebook Page linked to this Instagram account "
        "(Meta Business Suite > Settings > System users > Generate token, with "
        "instagram_basic, instagram_manage_comments, instagram_manage_messages and "
        "pages_show_list) and set it in the environment variable named by access_token"
    )
    settings: InstagramSettings

    @property
    def own(self) -> Person:
        return Person(id=self.settings.ig_user_id, handle=self.settings.username)

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        cursor = dict(cursor or {})
        s = self.settings
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = now - timedelta(days=s.lookback_days)
        items: list[Item] = []
        problems: list[str] = []
        windows: list[ListingWindow] = []

        posts: list[Item] = []
        listing = self.listing(f"{s.ig_user_id}/media", {
            "fields": MEDIA_FIELDS, "since": unix(start), "until": unix(now)})
        for _record, item in self.parse_each(
                listing, functools.partial(_media_of, self.account, self.own), problems):
            posts.append(item)
        items.extend(posts)
        windows.append(ListingWindow(start=start, end=now))

        if s.read_comments:
            for post in posts:
                items.extend(self._comments(post, problems))
                windows.append(ListingWindow(start=post.created_at, end=now, parent_id=post.id))

        if s.read_tags:
            items.extend(self._tagged(cursor, problems))
            cursor["tags_since"] = now.isoformat()

        if s.page_id:
            since = _cursor_time(cursor.get("messages_since")) or start
            items.extend(self.conversation_items(
                s.page_id, "instagram", since, problems,
                functools.partial(_message_in, self.account)))
            cursor["messages_since"] = now.isoformat()

        cursor["last_poll"] = now.isoformat()
        return FetchResult(items=dedupe(items), cursor=cursor, windows=windows,
                           problems=problems)

    def _tagged(self, cursor: dict[str, Any], problems: list[str]) -> list[Item]:
        """Media others tagged the account in, newest first: back to the previous poll, or the
        newest page on the first poll (the /tags edge has no time filter)."""
        since = _cursor_time(cursor.get("tags_since"))
        out: list[Item] = []

        def older(record: dict[str, Any]) -> bool:
            try:
                return since is not None and parse_time(record.get("timestamp")) < since
            except ValueError:
                return False  # the parser reports it

        tags = self.listing(f"{self.settings.ig_user_id}/tags", {"fields": MEDIA_FIELDS},
                            stop=older)
        for where, number, index, record in tags:
            if since is None and number > 1:
                break
            out.extend(item for _r, item in self.parse_each(
                iter([(where, number, index, record)]),
                functools.partial(_tagged_media_of, self.account), problems))
        return out

    def _comments(self, post: Item, problems: list[str]) -> list[Item]:
        out: list[Item] = []
        listing = self.listing(f"{post.id}/comments", {"fields": COMMENT_FIELDS})
        for record, item in self.parse_each(
                listing, functools.partial(_comment_on, self.account, post.id), problems):
            out.append(item)
            replies = record.get("replies")
            if not isinstance(replies, dict):
                continue
            for index, reply in enumerate(replies.get("data") or []):
                try:
                    out.append(parse_comment(reply, self.account, post.id, parent_id=item.id))
                except (KeyError, TypeError, ValueError) as exc:
                    report_skipped(log, self.name, problems,
                                   f"GET /{post.id}/comments reply {index + 1} to {item.id}",
                                   describe_error(exc))
            if isinstance(replies.get("paging"), dict) and replies["paging"].get("next"):
                # more replies than fit in the nested field: list them on their own
                more = self.listing(f"{item.id}/replies", {"fields": REPLY_FIELDS})
                out.extend(r for _rec, r in self.parse_each(
                    more, functools.partial(_reply_to, self.account, post.id, item.id),
                    problems))
        return out

    def mentioned(self, media_id: str, comment_id: str | None = None) -> Item:
        """The comment (or the caption's media) in which someone @mentioned the account, as a
        ``mentions`` webhook names it: looked up through the account's ``mentioned_*`` fields."""
        uid = self.settings.ig_user_id
        if comment_id:
            data = self.graph_get(uid, {"fields": f"mentioned_comment.comment_id({comment_id})"
                                                  "{id,text,timestamp,username,media{id}}"})
            record = data["mentioned_comment"]
            media = _dict(record.get("media")).get("id") or media_id
            return parse_comment(record, self.account, str(media))
        data = self.graph_get(uid, {"fields": f"mentioned_media.media_id({media_id})"
                                              "{id,caption,media_type,media_url,timestamp,"
                                              "username,comments_count,permalink}"})
        return parse_media(data["mentioned_media"], self.account)

    # --- moderation ----------------------------------------------------------------------------

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        if action not in self.moderation_actions():
            raise FatalError(f"{self.name}: instagram cannot {action.value} items")
        if item.kind not in (ItemKind.comment, ItemKind.reply):
            raise FatalError(f"{self.name}: only comments can be moderated on Instagram "
                             f"(item {item.id} is a {item.kind.value})")
        if action is ModerationAction.delete:
            response = self.request("DELETE", self.graph_url(item.id),
                                    params=self.proof_params() or None)
        else:
            hide = action is ModerationAction.hide
            response = self.request("POST", self.graph_url(item.id),
                                    data={"hide": "true" if hide else "false",
                                          **self.proof_params()})
        body = response.json() if response.content else {}
        ok = isinstance(body, dict) and body.get("success") is True
        log.info("%s: %s %s -> %s", self.name, action.value, item.id, "done" if ok else "refused")
        return ModerationResult(ok=ok, action=action,
                                detail="" if ok else "Instagram did not confirm the change")

    # --- account facts -------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        user = self.graph_get(self.settings.ig_user_id, {
            "fields": "id,username,name,biography,website,followers_count,follows_count,"
                      "media_count"})
        facts = AccountFacts(account_id=self.account)
        if isinstance(user, dict):
            facts.privacy = {"public": True, "account_type": "professional"}
            facts.extra["profile"] = {k: user.get(k) for k in (
                "id", "username", "name", "biography", "website", "followers_count",
                "follows_count", "media_count") if k in user}
            facts.extra["follows_list"] = "not available from the Instagram API: check by hand"
        return facts

    # --- webhooks ------------------------------------------------------------------------------

    def webhook_items(self, payload: Any, problems: list[str]) -> list[Item]:
        items: list[Item] = []
        if not isinstance(payload, dict) or payload.get("object") != "instagram":
            problems.append("webhook: not an instagram event")
            return items
        for e_index, entry in enumerate(payload.get("entry") or []):
            if not isinstance(entry, dict) or str(entry.get("id")) != self.settings.ig_user_id:
                continue
            received = _entry_time(entry)
            for c_index, change in enumerate(entry.get("changes") or []):
                where = f"webhook entry {e_index + 1} change {c_index + 1}"
                field = change.get("field") if isinstance(change, dict) else None
                value = change.get("value") if isinstance(change, dict) else None
                if field == "mentions":
                    try:
                        if not isinstance(value, dict):
                            raise ValueError("change without a value")
                        items.append(self.mentioned(str(value["media_id"]),
                                                    _str(value.get("comment_id"))))
                    except (KeyError, TypeError, ValueError, ConnectorError) as exc:
                        report_skipped(log, self.name, problems, where, describe_error(exc))
                    continue
                if field not in ("comments", "live_comments"):
                    continue
                try:
                    if not isinstance(value, dict):
                        raise ValueError("change without a value")
                    media = _dict(value.get("media"))
                    record = {"timestamp": received.isoformat(), **value}
                    items.append(parse_comment(record, self.account, str(media["id"])))
                except Exception as exc:  # one malformed record: reported, the others go on
                    report_skipped(log, self.name, problems, where, describe_error(exc))
            for m_index, event in enumerate(entry.get("messaging") or []):
                where = f"webhook entry {e_index + 1} message {m_index + 1}"
                try:
                    items.append(_messaging_event(event, self.account))
                except Exception as exc:  # one malformed record: reported, the others go on
                    report_skipped(log, self.name, problems, where, describe_error(exc))
        return items


def _messaging_event(event: Any, account: str) -> Item:
    if not isinstance(event, dict) or not isinstance(event.get("message"), dict):
        raise ValueError("not a message event")
    message = event["message"]
    media: list[Media] = []
    for att in message.get("attachments") or []:
        payload = att.get("payload") if isinstance(att, dict) else None
        ref = media_ref(payload.get("url") if isinstance(payload, dict) else None,
                        att.get("type"))
        if ref:
            media.append(ref)
    sender, recipient = event["sender"]["id"], event["recipient"]["id"]
    return Item(id=str(message["mid"]), platform=PLATFORM, account=account,
                kind=ItemKind.direct_message, author=Person(id=str(sender)),
                recipients=[Person(id=str(recipient))],
                created_at=parse_time(float(event["timestamp"]) / 1000),
                visibility=Visibility.direct, text=message.get("text") or "", media=media,
                thread_id=f"{min(sender, recipient)}:{max(sender, recipient)}", raw=event)


def _entry_time(entry: dict[str, Any]) -> datetime:
    value = entry.get("time")
    if isinstance(value, int | float):
        return parse_time(value / 1000 if value > 10**11 else value)
    return datetime.now(UTC)


def _media_of(account: str, own: Person, record: dict[str, Any]) -> Item:
    return parse_media(record, account, default_author=own)


def _tagged_media_of(account: str, record: dict[str, Any]) -> Item:
    return parse_media(record, account)


def _comment_on(account: str, media_id: str, record: dict[str, Any]) -> Item:
    return parse_comment(record, account, media_id)


def _reply_to(account: str, media_id: str, parent: str, record: dict[str, Any]) -> Item:
    return parse_comment(record, account, media_id, parent_id=parent)


def _message_in(account: str, conversation_id: str, record: dict[str, Any]) -> Item:
    return parse_message(record, account, conversation_id, platform=PLATFORM)


def _cursor_time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None
