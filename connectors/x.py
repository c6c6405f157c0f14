"""``x``: an X (Twitter) account through the X API v2.

Reads the account's own posts from the last ``lookback_days`` (a complete listing each poll, so
deleted posts are noticed), mentions since the last one seen (``since_id``), every reply in the
conversations the account started in the last seven days (recent search by ``conversation_id``,
as complete per conversation as the API allows), and direct-message events since the last one
seen. Rate limits: ``x-rate-limit-remaining``/``x-rate-limit-reset`` pause polling before X
refuses, and a 429 waits until the reset time. Moderation: hide or unhide a reply to one of the
account's conversations (``PUT /2/tweets/:id/hidden``), delete one of the account's own posts.
Account facts: whether the account is protected, and every account it follows (so the audit can
spot an official account following learners).

Timestamps come from ``created_at``; where a payload lacks it (recordings made without
``tweet.fields``) the time is read from the id itself: X ids are Snowflakes whose top bits are
milliseconds since 2010-11-04T01:42:54.657Z.
"""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from connectors.base import (
    AccountFacts,
    Capability,
    ConnectorSettings,
    FatalError,
    FetchResult,
    HttpConnector,
    ListingWindow,
    ModerationAction,
    ModerationResult,
    PageTokenPaginator,
    RetriableError,
    dedupe,
    describe_error,
    media_ref,
    parse_time,
    report_skipped,
    thumbnail_ref,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility, visible_text

__all__ = ["Includes", "XConnector", "XSettings", "parse_dm_event", "parse_tweet",
           "snowflake_time"]

log = logging.getLogger(__name__)

PLATFORM = "x"
SNOWFLAKE_EPOCH_MS = 1288834974657
TWEET_FIELDS = ("id,text,created_at,author_id,conversation_id,in_reply_to_user_id,"
                "referenced_tweets,attachments,entities,edit_history_tweet_ids,note_tweet,"
                "reply_settings")
USER_FIELDS = "id,name,username,protected"
MEDIA_FIELDS = "media_key,type,url,preview_image_url,variants,alt_text"
POLL_FIELDS = "id,options,voting_status,end_datetime"
EXPANSIONS = ("author_id,attachments.media_keys,attachments.poll_ids,referenced_tweets.id,"
              "in_reply_to_user_id")
DM_FIELDS = ("id,text,created_at,event_type,sender_id,dm_conversation_id,participant_ids,"
             "attachments,referenced_tweets")
SEARCH_DAYS = 7  # recent search reaches back seven days
QUERY_LIMIT = 512  # characters in a recent-search query


class XSettings(ConnectorSettings):
    user_id: str = Field(min_length=1, pattern=r"^\d+$", description="the account's numeric id")
    username: str | None = Field(default=None, description="the account's @handle")
    access_token: SecretStr = Field(
        description="OAuth 2.0 user-context access token, written as \"${ENV_VAR}\""
    )
    lookback_days: int = Field(default=7, ge=1, le=30,
                               description="own posts this recent are listed completely")
    read_mentions: bool = True
    read_replies: bool = True
    read_direct_messages: bool = True
    page_size: int = Field(default=100, ge=5, le=100)
    max_pages: int = Field(default=20, ge=1)


def snowflake_time(snowflake: str | int) -> datetime:
    """The creation time encoded in an X id."""
    ms = (int(snowflake) >> 22) + SNOWFLAKE_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC)


class Includes:
    """The ``includes`` of an answer, indexed: users by id, media by key, tweets by id."""

    def __init__(self, includes: Any = None):
        self.users: dict[str, dict[str, Any]] = {}
        self.media: dict[str, dict[str, Any]] = {}
        self.tweets: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, dict[str, Any]] = {}
        if isinstance(includes, dict):
            for poll in includes.get("polls") or []:
                if isinstance(poll, dict) and poll.get("id"):
                    self.polls[str(poll["id"])] = poll
            for user in includes.get("users") or []:
                if isinstance(user, dict) and user.get("id"):
                    self.users[str(user["id"])] = user
            for media in includes.get("media") or []:
                if isinstance(media, dict) and media.get("media_key"):
                    self.media[str(media["media_key"])] = media
            for tweet in includes.get("tweets") or []:
                if isinstance(tweet, dict) and tweet.get("id"):
                    self.tweets[str(tweet["id"])] = tweet

    def person(self, user_id: Any, default: Person | None = None) -> Person:
        if not user_id:
            return default or Person()
        user = self.users.get(str(user_id))
        if user is None:
            if default is not None and default.id == str(user_id):
                return default
            return Person(id=str(user_id))
        return Person(id=str(user_id), handle=user.get("username"), name=user.get("name"))

    def media_refs(self, attachments: Any) -> list[Media]:
        """The attached media in order (their index is the alt text's ``ref``), then each
        video's or GIF's still (``preview_image_url``) as a thumbnail."""
        out: list[Media] = []
        stills: list[Media] = []
        if not isinstance(attachments, dict):
            return out
        for key in attachments.get("media_keys") or []:
            media = self.media.get(str(key))
            if media is None:
                out.append(Media.model_validate({"media_key": str(key)}))
                continue
            kind = str(media.get("type") or "")
            url, mime = media.get("url"), None
            if kind in ("video", "animated_gif"):
                variants = [v for v in media.get("variants") or [] if isinstance(v, dict)]
                mp4 = [v for v in variants if v.get("content_type") == "video/mp4"]
                best = max(mp4, key=lambda v: v.get("bit_rate") or 0) if mp4 else (
                    variants[0] if variants else None)
                if best:
                    url, mime = best.get("url"), best.get("content_type")
                still = thumbnail_ref(media.get("preview_image_url"), media_key=str(key))
                if still is not None:
                    stills.append(still)
            ref = media_ref(url, kind, mime, media_key=str(key),
                            alt_text=media.get("alt_text"))
            if ref:
                out.append(ref)
            elif kind in ("video", "animated_gif"):
                # no playable variant listed: keep the entry (its alt text's index) without a URL
                out.append(Media.model_validate({"media_key": str(key),
                                                 "alt_text": media.get("alt_text")}))
        return out + stills


def _ref(record: dict[str, Any], kind: str) -> str | None:
    for ref in record.get("referenced_tweets") or []:
        if isinstance(ref, dict) and ref.get("type") == kind and ref.get("id"):
            return str(ref["id"])
    return None


def _tweet_text(record: dict[str, Any]) -> str:
    """A post's text as its readers see it: X sends "&", "<" and ">" escaped as HTML ("Q&amp;A",
    "NYC &lt; London"), which the rules, Slack and the console would otherwise show and read
    as written."""
    note = record.get("note_tweet")
    text = note.get("text") if isinstance(note, dict) and note.get("text") else record.get("text")
    if not isinstance(text, str):
        raise ValueError("post text is not a string")
    return html.unescape(text) if "&" in text else text


def _visible_extras(record: dict[str, Any], includes: Includes
                    ) -> list[tuple[str, str | None, str | None]]:
    """What a reader sees besides the post's own text: the quoted post (its text when the answer
    includes it), poll options, link cards (title and description of each URL) and alt text."""
    extras: list[tuple[str, str | None, str | None]] = []
    quoted = _ref(record, "quoted")
    if quoted:
        tweet = includes.tweets.get(quoted)
        shown = ""
        if tweet is not None:
            who = includes.person(tweet.get("author_id")).handle
            with contextlib.suppress(ValueError):
                shown = "\n".join(t for t in (f"@{who}:" if who else "", _tweet_text(tweet)) if t)
        extras.append(("quoted post", shown, quoted))
    attachments: dict[str, Any] = record["attachments"] if isinstance(
        record.get("attachments"), dict) else {}
    for poll_id in attachments.get("poll_ids") or []:
        poll = includes.polls.get(str(poll_id)) or {}
        options = "\n".join(str(o.get("label")) for o in poll.get("options") or []
                            if isinstance(o, dict) and o.get("label"))
        extras.append(("poll options", options, str(poll_id)))
    entities: dict[str, Any] = record["entities"] if isinstance(
        record.get("entities"), dict) else {}
    for url in entities.get("urls") or []:
        if isinstance(url, dict):
            card = "\n".join(str(url[k]) for k in ("title", "description") if url.get(k))
            extras.append(("link card", card, url.get("expanded_url") or url.get("url")))
    return extras


def parse_tweet(record: dict[str, Any], account: str, includes: Includes | None = None,
                default_author: Person | None = None) -> Item:
    """A v2 post as an Item: a reply when it replies to another post, else a post."""
    includes = includes or Includes()
    tweet_id = record["id"]
    if not isinstance(tweet_id, str) or not tweet_id.isdigit():
        raise ValueError(f"post id {tweet_id!r} is not a numeric string")
    created = record.get("created_at")
    created_at = parse_time(created) if created is not None else snowflake_time(tweet_id)
    author = includes.person(record.get("author_id"), default_author)
    parent = _ref(record, "replied_to")
    if "text" not in record:
        raise KeyError("text")
    text = _tweet_text(record)
    media = includes.media_refs(record.get("attachments"))
    extras = [*_visible_extras(record, includes),
              *(("alt text", m.alt_text, str(i)) for i, m in enumerate(media))]
    protected = bool(includes.users.get(author.id or "", {}).get("protected"))
    history = record.get("edit_history_tweet_ids") or []
    handle = author.handle or "i/web"
    # the conversation's root: X names it on every post of the conversation
    root = record.get("conversation_id") or (includes.tweets.get(parent or "") or {}).get(
        "conversation_id") or (None if parent else tweet_id)
    return Item.model_validate({
        "id": tweet_id,
        "platform": PLATFORM,
        "account": account,
        "kind": ItemKind.reply if parent else ItemKind.post,
        "author": author,
        "created_at": created_at,
        "edited_at": created_at if len(history) > 1 else None,
        "visibility": Visibility.followers if protected else Visibility.public,
        **visible_text(text, extras),
        "media": media,
        "parent_id": parent,
        "thread_id": str(root) if root else None,
        "url": f"https://x.com/{handle}/status/{tweet_id}",
        "raw": record,
        "quoted_id": _ref(record, "quoted"),
    })


def parse_dm_event(record: dict[str, Any], account: str, includes: Includes | None = None,
                   own: Person | None = None) -> Item | None:
    """A direct-message event as an Item; None for events that are not messages (joins)."""
    includes = includes or Includes()
    event_type = record.get("event_type", "MessageCreate")
    if event_type != "MessageCreate":
        return None
    event_id = record["id"]
    if not isinstance(event_id, str) or not event_id.isdigit():
        raise ValueError(f"event id {event_id!r} is not a numeric string")
    created = record.get("created_at")
    sender = includes.person(record.get("sender_id"), own)
    participants = [str(p) for p in record.get("participant_ids") or []]
    conversation = record.get("dm_conversation_id")
    if not participants and isinstance(conversation, str) and "-" in conversation:
        participants = conversation.split("-")
    recipients = [includes.person(p, own) for p in participants if p != sender.id]
    return Item(
        id=event_id,
        platform=PLATFORM,
        account=account,
        kind=ItemKind.direct_message,
        author=sender,
        recipients=recipients,
        created_at=parse_time(created) if created is not None else snowflake_time(event_id),
        visibility=Visibility.direct,
        text=record.get("text") or "",
        media=includes.media_refs(record.get("attachments")),
        thread_id=str(conversation) if conversation else None,
        raw=record,
    )


def _newest(ids: list[str], current: str | None) -> str | None:
    values = [int(i) for i in ids if i.isdigit()] + ([int(current)] if current else [])
    return str(max(values)) if values else None


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class XConnector(HttpConnector):
    type: ClassVar[str] = "x"
    description: ClassVar[str] = "an X account: posts, mentions, replies, DMs (X API v2)"
    Settings = XSettings
    default_base_url: ClassVar[str] = "https://api.x.com"
    capabilities = frozenset({
        Capability.read, Capability.direct_messages, Capability.account_facts,
        Capability.hide, Capability.hide_reply, Capability.unhide, Capability.delete,
    })
    auth_fix: ClassVar[str] = (
        "sign in to the X developer portal as the account, create a new OAuth 2.0 user token "
        "with the scopes tweet.read users.read follows.read dm.read tweet.moderate.write "
        "tweet.write offline.access, and set it in the environment variable named by "
        "access_token"
    )
    settings: XSettings

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.access_token.get_secret_value()}"}

    @property
    def own(self) -> Person:
        return Person(id=self.settings.user_id, handle=self.settings.username)

    def listing(self, path: str, params: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """Each page of a v2 listing, following ``meta.next_token``."""
        for page in self.pages(path, params,
                               PageTokenPaginator("pagination_token", "meta.next_token"),
                               max_pages=self.settings.max_pages):
            if not isinstance(page.body, dict):
                raise RetriableError(f"{self.name}: {page.where}: not a JSON object")
            for error in page.body.get("errors") or []:
                if isinstance(error, dict) and "data" not in page.body:
                    log.info("%s: GET %s reported: %s", self.name, path, error.get("title"))
            yield page.where, page.body

    def _tweets(self, path: str, params: dict[str, Any], problems: list[str],
                default_author: Person | None = None,
                stop_at: str | None = None) -> list[Item]:
        out: list[Item] = []
        base = {"tweet.fields": TWEET_FIELDS, "user.fields": USER_FIELDS,
                "media.fields": MEDIA_FIELDS, "poll.fields": POLL_FIELDS, "expansions": EXPANSIONS,
                "max_results": self.settings.page_size, **params}
        for where, page in self.listing(path, base):
            includes = Includes(page.get("includes"))
            for index, record in enumerate(page.get("data") or []):
                if not isinstance(record, dict):
                    report_skipped(log, self.name, problems, f"{where} record {index + 1}",
                                   "not a JSON object")
                    continue
                try:
                    item = parse_tweet(record, self.account, includes, default_author)
                except (KeyError, TypeError, ValueError) as exc:
                    rid = record.get("id")
                    report_skipped(log, self.name, problems,
                                   f"{where} record {index + 1}" + (f" (id {rid})" if rid else ""),
                                   describe_error(exc))
                    continue
                out.append(item)
        return out

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        cursor = dict(cursor or {})
        s = self.settings
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = now - timedelta(days=s.lookback_days)
        items: list[Item] = []
        problems: list[str] = []
        windows: list[ListingWindow] = []

        own_posts = self._tweets(f"/2/users/{s.user_id}/tweets",
                                 {"start_time": _iso(start), "end_time": _iso(now)},
                                 problems, default_author=self.own)
        items.extend(own_posts)
        windows.append(ListingWindow(start=start, end=now))

        if s.read_mentions:
            params: dict[str, Any] = {}
            if cursor.get("mentions_since_id"):
                params["since_id"] = cursor["mentions_since_id"]
            else:
                params["start_time"] = _iso(start)
            mentions = self._tweets(f"/2/users/{s.user_id}/mentions", params, problems)
            items.extend(mentions)
            newest = _newest([m.id for m in mentions], cursor.get("mentions_since_id"))
            if newest:
                cursor["mentions_since_id"] = newest

        if s.read_replies:
            items.extend(self._replies(own_posts, cursor, now, problems, windows))

        if s.read_direct_messages:
            items.extend(self._direct_messages(cursor, start, problems))

        cursor["last_poll"] = now.isoformat()
        return FetchResult(items=dedupe(items), cursor=cursor, windows=windows,
                           problems=problems)

    def _replies(self, own_posts: list[Item], cursor: dict[str, Any], now: datetime,
                 problems: list[str], windows: list[ListingWindow]) -> list[Item]:
        """Replies in the account's own conversations of the last seven days."""
        search_start = now - timedelta(days=SEARCH_DAYS) + timedelta(minutes=1)
        conversations: dict[str, str] = {}
        for cid, when in dict(cursor.get("conversations") or {}).items():
            try:
                if parse_time(when) > search_start:
                    conversations[str(cid)] = str(when)
            except ValueError:
                log.warning("%s: cursor: conversation %s has no readable time; dropped",
                            self.name, cid)
        for post in own_posts:
            if post.created_at > search_start and post.thread_id == post.id:
                conversations[post.id] = post.created_at.isoformat()
        cursor["conversations"] = conversations
        out: list[Item] = []
        for query, ids in _conversation_queries(sorted(conversations)):
            out.extend(self._tweets("/2/tweets/search/recent",
                                    {"query": query, "start_time": _iso(search_start),
                                     "end_time": _iso(now)}, problems))
            for cid in ids:
                begun = max(parse_time(conversations[cid]), search_start)
                windows.append(ListingWindow(start=begun, end=now, parent_id=cid))
        return out

    def _direct_messages(self, cursor: dict[str, Any], start: datetime,
                         problems: list[str]) -> list[Item]:
        """DM events newest first, back to the newest one seen by the previous poll."""
        since = cursor.get("dm_since_id")
        out: list[Item] = []
        params = {"dm_event.fields": DM_FIELDS, "event_types": "MessageCreate",
                  "expansions": "sender_id,attachments.media_keys,participant_ids",
                  "user.fields": USER_FIELDS, "media.fields": MEDIA_FIELDS,
                  "max_results": self.settings.page_size}
        reached = False
        for where, page in self.listing("/2/dm_events", params):
            includes = Includes(page.get("includes"))
            for index, record in enumerate(page.get("data") or []):
                rid = record.get("id") if isinstance(record, dict) else None
                if since and isinstance(rid, str) and rid.isdigit() and int(rid) <= int(since):
                    reached = True
                    break
                try:
                    if not isinstance(record, dict):
                        raise ValueError("not a JSON object")
                    item = parse_dm_event(record, self.account, includes, self.own)
                except (KeyError, TypeError, ValueError) as exc:
                    report_skipped(log, self.name, problems,
                                   f"{where} record {index + 1}" + (f" (id {rid})" if rid else ""),
                                   describe_error(exc))
                    continue
                if item is None:
                    continue
                if not since and item.created_at < start:
                    reached = True
                    break
                out.append(item)
            if reached:
                break
        newest = _newest([i.id for i in out], since)
        if newest:
            cursor["dm_since_id"] = newest
        return out

    # --- moderation ----------------------------------------------------------------------------

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        if action in (ModerationAction.hide, ModerationAction.hide_reply,
                      ModerationAction.unhide):
            if item.kind is not ItemKind.reply:
                raise FatalError(f"{self.name}: X can hide only replies to the account's "
                                 f"conversations (item {item.id} is a {item.kind.value})")
            hidden = action is not ModerationAction.unhide
            response = self.request("PUT", f"/2/tweets/{item.id}/hidden",
                                    json={"hidden": hidden})
            data = _data(response.json())
            ok = data.get("hidden") is hidden
        elif action is ModerationAction.delete:
            if item.author.id != self.settings.user_id:
                raise FatalError(f"{self.name}: X lets the account delete only its own posts "
                                 f"(item {item.id} is by someone else); hide it instead")
            response = self.request("DELETE", f"/2/tweets/{item.id}")
            ok = _data(response.json()).get("deleted") is True
        else:
            raise FatalError(f"{self.name}: X cannot {action.value} items")
        log.info("%s: %s %s -> %s", self.name, action.value, item.id, "done" if ok else "refused")
        return ModerationResult(ok=ok, action=action,
                                detail="" if ok else "X did not confirm the change")

    # --- account facts -------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        s = self.settings
        facts = AccountFacts(account_id=self.account)
        user = _data(self.get_json(f"/2/users/{s.user_id}", params={
            "user.fields": "id,name,username,protected,verified,created_at,description,url"}))
        facts.privacy = {"protected": user.get("protected")} if user else {}
        if user:
            facts.extra["profile"] = {k: user.get(k) for k in (
                "id", "username", "name", "verified", "description", "url") if k in user}
        following: list[dict[str, Any]] = []
        for _where, page in self.listing(f"/2/users/{s.user_id}/following",
                                       {"user.fields": USER_FIELDS, "max_results": 1000}):
            following.extend(u for u in page.get("data") or [] if isinstance(u, dict))
        facts.follows = [f"@{u['username']}" if u.get("username") else str(u.get("id"))
                         for u in following]
        facts.extra["following_ids"] = [str(u.get("id")) for u in following]
        return facts


def _data(body: Any) -> dict[str, Any]:
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _conversation_queries(ids: list[str]) -> Iterator[tuple[str, list[str]]]:
    """Recent-search queries ``conversation_id:1 OR conversation_id:2 ...`` within 512 chars."""
    batch: list[str] = []
    for cid in ids:
        candidate = [*batch, cid]
        query = " OR ".join(f"conversation_id:{c}" for c in candidate)
        if len(query) > QUERY_LIMIT and batch:
            yield " OR ".join(f"conversation_id:{c}" for c in batch), batch
            batch = [cid]
        else:
            batch = candidate
    if batch:
        yield " OR ".join(f"conversation_id:{c}" for c in batch), batch
