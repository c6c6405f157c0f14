"""``youtube``: a channel's uploads and the comments and replies on them (YouTube Data API v3).

Reads the uploads playlist (``playlistItems``), every comment thread on the channel
(``commentThreads?allThreadsRelatedToChannelId=``, replies included, ``comments?parentId=`` when
a thread has more replies than the thread listing carries), paging on ``nextPageToken`` to the end
of the recheck window. Moderation: ``comments.setModerationStatus`` (hold for review, reject,
publish again) and ``comments.delete``/``videos.delete`` for the channel's own items. Account
facts: the channel's ``status`` (privacy, made-for-kids) and the channels it subscribes to.

Auth: an OAuth access token, or a refresh token with the OAuth client id and secret (the token is
then refreshed before it expires). Scope ``https://www.googleapis.com/auth/youtube.force-ssl``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr, model_validator

from connectors.base import (
    AccountFacts,
    Capability,
    FatalError,
    FetchResult,
    HttpConnector,
    ListingWindow,
    ModerationAction,
    ModerationResult,
    NotFound,
    PageTokenPaginator,
    SocialSettings,
    html_to_text,
    listing_start,
    parse_one,
    parse_records,
    parse_time,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility, visible_text

__all__ = ["YouTubeConnector", "YouTubeSettings", "comment_item", "video_item"]

log = logging.getLogger(__name__)

PLATFORM = "youtube"
WATCH_URL = "https://www.youtube.com/watch?v="
TOKEN_URL = "https://oauth2.googleapis.com/token"
# moderationStatus values of comments.setModerationStatus, by our action
_MODERATION_STATUS = {
    ModerationAction.reject: "rejected",
    ModerationAction.hide: "rejected",
    ModerationAction.hold: "heldForReview",
    ModerationAction.unhide: "published",
}
_PRIVACY = {"public": Visibility.public, "unlisted": Visibility.public,
            "private": Visibility.private}


class YouTubeSettings(SocialSettings):
    channel_id: str = Field(min_length=2, description="the channel id, UC...")
    access_token: SecretStr | None = Field(default=None, description="OAuth access token")
    refresh_token: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    uploads_playlist_id: str | None = Field(
        default=None, description="default: the channel's uploads playlist (UU...)"
    )
    token_url: str = TOKEN_URL

    @model_validator(mode="after")
    def _some_credential(self) -> YouTubeSettings:
        if self.access_token is None and self.refresh_token is None:
            raise ValueError("set access_token, or refresh_token with client_id and client_secret")
        if self.refresh_token is not None and (not self.client_id or self.client_secret is None):
            raise ValueError("refresh_token needs client_id and client_secret as well")
        return self


def _author(snippet: dict[str, Any]) -> Person:
    name = snippet.get("authorDisplayName")
    channel = (snippet.get("authorChannelId") or {}).get("value")
    # Since 2024 the display name is the @handle; older payloads carry a plain name.
    handle = name if isinstance(name, str) and name.startswith("@") else None
    return Person(id=channel, handle=handle, name=name)


def comment_item(comment: dict[str, Any], account: str, *, video_id: str | None,
                 thread_id: str | None) -> Item:
    """One ``youtube#comment`` (top-level or reply) as an item."""
    snippet = comment["snippet"]
    comment_id = comment["id"]
    parent = snippet.get("parentId")
    video_id = video_id or snippet.get("videoId")
    created = parse_time(snippet["publishedAt"])
    updated = parse_time(snippet["updatedAt"]) if snippet.get("updatedAt") else None
    text = snippet.get("textOriginal")
    if text is None:
        text = html_to_text(snippet.get("textDisplay"))
    if parent:
        kind, parent_id = ItemKind.reply, parent
    else:
        kind, parent_id = ItemKind.comment, video_id
    return Item(
        id=comment_id,
        platform=PLATFORM,
        account=account,
        kind=kind,
        author=_author(snippet),
        created_at=created,
        edited_at=updated if updated and updated != created else None,
        visibility=Visibility.public,
        text=text,
        parent_id=parent_id,
        thread_id=video_id or thread_id or parent or comment_id,
        url=f"{WATCH_URL}{video_id}&lc={comment_id}" if video_id else None,
        raw=comment,
    )


def thread_items(thread: dict[str, Any], account: str) -> list[Item]:
    """A ``youtube#commentThread``: the top-level comment and the replies it carries."""
    snippet = thread["snippet"]
    video_id = snippet.get("videoId")
    top = comment_item(snippet["topLevelComment"], account, video_id=video_id,
                       thread_id=thread["id"])
    items = [top]
    for reply in (thread.get("replies") or {}).get("comments", []):
        items.append(comment_item(reply, account, video_id=video_id, thread_id=thread["id"]))
    return items


def _best_thumbnail(thumbnails: dict[str, Any]) -> str | None:
    for size in ("maxres", "standard", "high", "medium", "default"):
        url = (thumbnails.get(size) or {}).get("url")
        if url:
            return str(url)
    return None


def video_item(entry: dict[str, Any], account: str, channel_id: str | None = None) -> Item:
    """A ``youtube#playlistItem`` (or ``youtube#video``/``searchResult``) as a post; its
    ``parent_id`` is the channel, so a complete listing of uploads is one window."""
    snippet = entry["snippet"]
    video_id = (
        (entry.get("contentDetails") or {}).get("videoId")
        or (snippet.get("resourceId") or {}).get("videoId")
        or (entry["id"].get("videoId") if isinstance(entry["id"], dict) else entry["id"])
    )
    if not video_id:
        raise ValueError("no video id")
    published = (entry.get("contentDetails") or {}).get("videoPublishedAt") or snippet[
        "publishedAt"]
    title = snippet.get("title") or ""
    description = snippet.get("description") or ""
    thumb = _best_thumbnail(snippet.get("thumbnails") or {})
    privacy = (entry.get("status") or {}).get("privacyStatus")
    return Item(
        id=video_id,
        platform=PLATFORM,
        account=account,
        kind=ItemKind.post,
        author=Person(id=snippet.get("videoOwnerChannelId") or snippet.get("channelId"),
                      name=snippet.get("videoOwnerChannelTitle") or snippet.get("channelTitle")),
        created_at=parse_time(published),
        visibility=_PRIVACY.get(privacy or "public", Visibility.public),
        **visible_text(title, [("description", description, None)]),
        # the video's still (its text and people are read like a photo's)
        media=[Media(url=thumb, mime_type="image/jpeg", thumbnail=True)] if thumb else [],
        parent_id=channel_id or snippet.get("channelId"),
        thread_id=video_id,
        url=f"{WATCH_URL}{video_id}",
        raw=entry,
    )


class YouTubeConnector(HttpConnector):
    type: ClassVar[str] = "youtube"
    description: ClassVar[str] = "a YouTube channel: uploads, comments and replies"
    Settings = YouTubeSettings
    capabilities = frozenset({
        Capability.read, Capability.account_facts, Capability.reject, Capability.hold,
        Capability.hide, Capability.unhide, Capability.delete,
    })
    default_base_url: ClassVar[str] = "https://www.googleapis.com/youtube/v3"
    auth_fix: ClassVar[str] = (
        "renew the OAuth token of the channel owner (scope youtube.force-ssl) and set it in the "
        "environment variable named in the config"
    )

    settings: YouTubeSettings

    def __init__(self, settings: YouTubeSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self.tokens = self.token_cache(self._refresh, margin=120)

    def effective_status(self, response: httpx.Response) -> int:
        """YouTube reports a spent daily quota or a rate limit as 403: wait, don't give up."""
        if response.status_code == 403:
            try:
                errors = response.json()["error"]["errors"]
            except (ValueError, KeyError, TypeError):
                return 403
            reasons = {e.get("reason") for e in errors if isinstance(e, dict)}
            if reasons & {"quotaExceeded", "rateLimitExceeded", "userRateLimitExceeded"}:
                return 429
        return response.status_code

    # -- auth ---------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        s = self.settings
        if s.refresh_token is None and s.access_token is not None:
            return {"Authorization": f"Bearer {s.access_token.get_secret_value()}"}
        return {"Authorization": f"Bearer {self.tokens.get()}"}

    def _refresh(self) -> tuple[str, float]:
        """A new access token for the refresh token (Google's OAuth token endpoint)."""
        s = self.settings
        assert s.refresh_token is not None and s.client_secret is not None
        return self.client_credentials(s.token_url, data={
            "grant_type": "refresh_token",
            "refresh_token": s.refresh_token.get_secret_value(),
            "client_id": s.client_id or "",
            "client_secret": s.client_secret.get_secret_value(),
        })

    # -- reading ------------------------------------------------------------------------------

    @property
    def uploads_playlist(self) -> str:
        s = self.settings
        if s.uploads_playlist_id:
            return s.uploads_playlist_id
        # The uploads playlist of channel UCxyz is UUxyz (also reported as
        # contentDetails.relatedPlaylists.uploads by channels.list).
        return "UU" + s.channel_id[2:]

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[Any]:
        for page in self.pages(path, params, PageTokenPaginator("pageToken", "nextPageToken")):
            yield page.body

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        """Uploads and comment threads back to the start of the recheck window, each listing
        complete: the channel's uploads (``parent_id`` = channel id), each video's top-level
        comments, each thread's replies, so the archive can tell what was deleted."""
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = listing_start(cursor, now, self.settings)
        problems: list[str] = []
        items: list[Item] = []
        acct = self.account
        channel = self.settings.channel_id
        windows = [ListingWindow(start=start, end=now, parent_id=channel)]
        videos: set[str] = set()

        for page_no, page in enumerate(self._pages("playlistItems", {
            "part": "snippet,contentDetails,status", "playlistId": self.uploads_playlist,
            "maxResults": 50,
        })):
            older = False
            where = f"{self.name}: playlistItems page {page_no + 1}"
            for item in parse_records(page.get("items", []),
                                      lambda e: video_item(e, acct, channel), where, problems):
                if item.created_at < start:
                    older = True
                    continue
                videos.add(item.id)
                items.append(item)
            if older:  # uploads come newest first: the rest is older still
                break

        for page_no, page in enumerate(self._pages("commentThreads", {
            "part": "snippet,replies", "allThreadsRelatedToChannelId": channel,
            "maxResults": 100, "order": "time", "textFormat": "plainText",
        })):
            older = False
            where = f"{self.name}: commentThreads page {page_no + 1}"
            for index, thread in enumerate(page.get("items", [])):
                parsed = parse_one(thread, lambda t: thread_items(t, acct),
                                   f"{where}, record {index}", problems)
                if not parsed:
                    continue
                top = parsed[0]
                if top.created_at < start:
                    older = True
                    continue
                if top.parent_id:
                    videos.add(top.parent_id)
                total = thread["snippet"].get("totalReplyCount", 0) or 0
                if total > len(parsed) - 1:
                    try:
                        parsed = [top, *self._replies(top, problems)]
                    except NotFound:
                        continue  # the thread was deleted while we read it
                items.extend(parsed)
                windows.append(ListingWindow(start=top.created_at, end=now, parent_id=top.id))
            if older:  # threads come newest first
                break
        windows.extend(ListingWindow(start=start, end=now, parent_id=v) for v in sorted(videos))
        unique = list({item.id: item for item in items}.values())  # a thread on two pages
        return FetchResult(items=unique, cursor={"polled_at": now.isoformat()}, windows=windows,
                           problems=problems)

    def _replies(self, top: Item, problems: list[str]) -> list[Item]:
        """Every reply of a thread, when the thread listing carried only some of them."""
        out: list[Item] = []
        acct = self.account
        video_id = top.thread_id if top.thread_id != top.id else None
        for page_no, page in enumerate(self._pages("comments", {
            "part": "snippet", "parentId": top.id, "maxResults": 100, "textFormat": "plainText",
        })):
            out.extend(parse_records(
                page.get("items", []),
                lambda c: comment_item(c, acct, video_id=video_id, thread_id=top.id),
                f"{self.name}: replies to {top.id} page {page_no + 1}", problems,
            ))
        return out

    # -- moderation ---------------------------------------------------------------------------

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        if action not in self.moderation_actions():
            return super().moderate(item, action)
        try:
            if action == ModerationAction.delete:
                if item.author.id != self.settings.channel_id:
                    return ModerationResult(
                        ok=False, action=action,
                        detail="YouTube lets a channel delete only its own comments; reject "
                               "the comment instead",
                    )
                path = "videos" if item.kind == ItemKind.post else "comments"
                self.request("DELETE", path, params={"id": item.id})
                return ModerationResult(ok=True, action=action, detail=f"deleted {path} {item.id}")
            if item.kind == ItemKind.post:
                return ModerationResult(
                    ok=False, action=action,
                    detail="YouTube moderates comments only; a video can be deleted or made "
                           "private in YouTube Studio",
                )
            status = _MODERATION_STATUS[action]
            self.request("POST", "comments/setModerationStatus",
                         params={"id": item.id, "moderationStatus": status})
        except NotFound:
            return ModerationResult(ok=True, action=action, detail="already gone")
        return ModerationResult(ok=True, action=action, detail=f"moderationStatus={status}")

    # -- account facts ------------------------------------------------------------------------

    def account_facts(self) -> AccountFacts:
        page = self.get_json("channels", params={
            "part": "snippet,status,brandingSettings", "id": self.settings.channel_id,
        })
        channels = page.get("items") or []
        if not channels:
            raise FatalError(
                f"{self.name} (account {self.account}): YouTube has no channel "
                f"{self.settings.channel_id}. Fix: check channel_id."
            )
        channel = channels[0]
        status = channel.get("status") or {}
        privacy = {
            key: status[key]
            for key in ("privacyStatus", "isLinked", "longUploadsStatus", "madeForKids",
                        "selfDeclaredMadeForKids")
            if key in status
        }
        follows: list[str] = []
        for page in self._pages("subscriptions", {"part": "snippet", "mine": "true",
                                                  "maxResults": 50}):
            for sub in page.get("items", []):
                resource = (sub.get("snippet") or {}).get("resourceId") or {}
                if resource.get("channelId"):
                    follows.append(resource["channelId"])
        snippet = channel.get("snippet") or {}
        return AccountFacts(
            account_id=self.account,
            privacy=privacy,
            follows=follows,
            extra={"title": snippet.get("title"), "customUrl": snippet.get("customUrl")},
        )
