"""``tiktok``: a TikTok business account through TikTok API for Business (v1.3, Accounts API).

**Tested only against the documented response shapes**: there are no recorded TikTok responses;
the parser follows the published shapes of ``/business/video/list/``, ``/business/comment/list/``
and ``/business/comment/reply/list/`` and the tests use small invented payloads
(tests/data/tiktok). Check it against a real account before relying on it.

Reads the account's videos and the comments and replies on each (``cursor``/``has_more`` paging),
newest first, back to the start of the recheck window. Moderation: hide and unhide a comment
(``/business/comment/hide/``); delete a comment the account itself wrote
(``/business/comment/delete/``: TikTok lets an account delete only its own comments).
TikTok answers errors with HTTP 200 and a ``code`` in the body; those are mapped to the HTTP
meaning (expired token: 401, too many requests: 429) so the base class retries or stops alike.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr, model_validator

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
    SocialSettings,
    listing_start,
    parse_records,
    parse_time,
)
from governance_bot.items import Item, ItemKind, Media, Person, Visibility

__all__ = ["TikTokConnector", "TikTokSettings", "comment_item", "video_item"]

log = logging.getLogger(__name__)

PLATFORM = "tiktok"
VIDEO_FIELDS = ["item_id", "create_time", "caption", "thumbnail_url", "share_url", "comments"]
ACCOUNT_FIELDS = ["username", "display_name", "is_business_account", "followers_count"]
# body codes of TikTok API for Business, as the HTTP status they mean (from its documentation)
BODY_CODES = {40100: 429, 40102: 401, 40104: 401, 40105: 401, 40001: 403, 51000: 500,
              50000: 500, 50002: 500}


class TikTokSettings(SocialSettings):
    business_id: str = Field(min_length=1, description="the account's business_id (open_id)")
    access_token: SecretStr | None = Field(
        default=None, description="access token (lasts a day); or the refresh token below")
    refresh_token: SecretStr | None = Field(default=None, description="lasts a year")
    client_id: str | None = Field(default=None, description="the developer app's id")
    client_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _some_credential(self) -> TikTokSettings:
        if self.access_token is None and self.refresh_token is None:
            raise ValueError("set refresh_token with client_id and client_secret (or "
                             "access_token for a short test)")
        if self.refresh_token is not None and (not self.client_id or self.client_secret is None):
            raise ValueError("refresh_token needs client_id and client_secret as well")
        return self
    base_url: str | None = Field(
        default=None, description="default https://business-api.tiktok.com/open_api/v1.3")
    max_videos: int = Field(default=50, ge=1, description="at most this many recent videos")


def video_item(video: dict[str, Any], account: str, business_id: str) -> Item:
    """A video of ``/business/video/list/`` as a post."""
    video_id = str(video["item_id"])
    # the cover (Business API ``thumbnail_url``; Display API ``cover_image_url``): read like a
    # photo (its text, the people in it)
    thumb = video.get("thumbnail_url") or video.get("cover_image_url")
    return Item(
        id=video_id,
        platform=PLATFORM,
        account=account,
        kind=ItemKind.post,
        author=Person(id=business_id),
        created_at=parse_time(video["create_time"]),
        visibility=Visibility.public,
        text=video.get("caption") or "",
        media=[Media(url=thumb, mime_type="image/jpeg", thumbnail=True)] if thumb else [],
        parent_id=business_id,
        thread_id=video_id,
        url=video.get("share_url"),
        raw=video,
    )


def comment_item(comment: dict[str, Any], account: str, video_id: str) -> Item:
    """A comment or reply of ``/business/comment/list/`` or ``/reply/list/``."""
    parent = comment.get("parent_comment_id")
    hidden = (comment.get("status") or "PUBLIC").upper() == "HIDDEN"
    return Item(
        id=str(comment["comment_id"]),
        platform=PLATFORM,
        account=account,
        kind=ItemKind.reply if parent else ItemKind.comment,
        author=Person(id=comment.get("unique_identifier") or comment.get("user_id"),
                      handle=comment.get("username"),
                      name=comment.get("display_name") or None),
        created_at=parse_time(comment["create_time"]),
        visibility=Visibility.private if hidden else Visibility.public,
        text=comment.get("text") or "",
        parent_id=str(parent) if parent else video_id,
        thread_id=video_id,
        raw=comment,
    )


class TikTokConnector(HttpConnector):
    type: ClassVar[str] = "tiktok"
    description: ClassVar[str] = "a TikTok business account: videos and comments (documented " \
                                 "shapes only)"
    Settings = TikTokSettings
    capabilities = frozenset({Capability.read, Capability.account_facts, Capability.hide,
                              Capability.unhide, Capability.delete})
    default_base_url: ClassVar[str] = "https://business-api.tiktok.com/open_api/v1.3"
    auth_fix: ClassVar[str] = (
        "reauthorise the TikTok account in the developer app (scopes video.list, comment.list, "
        "comment.list.manage) and set the new refresh token (or access token) in the environment "
        "variable named in the config"
    )

    settings: TikTokSettings

    def __init__(self, settings: TikTokSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self._refresh = (settings.refresh_token.get_secret_value()
                         if settings.refresh_token else None)
        self.tokens = self.token_cache(self._renew, margin=300)

    def auth_headers(self) -> dict[str, str]:
        s = self.settings
        if self._refresh is None or s.client_secret is None:
            token = s.access_token.get_secret_value() if s.access_token else ""
        else:
            token = self.tokens.get()
        return {"Access-Token": token}

    def _renew(self) -> tuple[str, float]:
        """Renew the day-long access token with the refresh token (which TikTok may rotate:
        the newest is kept for this process)."""
        s = self.settings
        assert s.client_secret is not None
        # a refused refresh token comes back as a body code meaning 401: a FatalError with the fix
        response = self.request("POST", "tt_user/oauth2/refresh_token/", auth=False, json={
            "client_id": s.client_id, "client_secret": s.client_secret.get_secret_value(),
            "grant_type": "refresh_token", "refresh_token": self._refresh,
        })
        body = self.json_of(response, "tt_user/oauth2/refresh_token/")
        data = body.get("data") if isinstance(body, dict) else None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not token:
            raise FatalError(f"{self.name} (account {self.account}): TikTok's answer had no "
                             f"access token. Fix: {self.auth_fix}.")
        self._refresh = str(data.get("refresh_token") or self._refresh)
        return str(token), float(data.get("expires_in") or 86400)

    def effective_status(self, response: httpx.Response) -> int:
        """TikTok answers most errors with HTTP 200 and ``code`` in the body."""
        if response.status_code != 200:
            return response.status_code
        try:
            body = response.json()
        except ValueError:
            return response.status_code
        code = body.get("code") if isinstance(body, dict) else None
        if not code:
            return 200
        return BODY_CODES.get(int(code), 400)

    def _pages(self, path: str, params: dict[str, Any], key: str, start: datetime | None,
               ) -> list[dict[str, Any]]:
        """Records of a newest-first listing (``cursor`` while ``has_more``), back to
        ``start`` (None: all of it)."""
        out: list[dict[str, Any]] = []
        for page in self.pages(path, params, CursorPaginator("data.cursor", more="data.has_more")):
            records = page.records(f"data.{key}")
            out.extend(records)
            if start is None or not records:
                continue
            try:
                if parse_time(records[-1]["create_time"]) < start:
                    break
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        now = datetime.fromtimestamp(self.clock(), UTC)
        start = listing_start(cursor, now, self.settings)
        business, acct = self.settings.business_id, self.account
        problems: list[str] = []
        items: list[Item] = []
        windows = [ListingWindow(start=start, end=now, parent_id=business)]
        videos = self._pages("business/video/list/", {
            "business_id": business, "fields": json.dumps(VIDEO_FIELDS), "max_count": 20,
        }, "videos", None)[: self.settings.max_videos]
        posts = list(parse_records(videos, lambda v: video_item(v, acct, business),
                                   f"{self.name}: business/video/list/", problems))
        items.extend(p for p in posts if p.created_at >= start)
        for post in posts:
            # comments arrive on older videos too: read every listed video's recent comments
            comments = self._pages("business/comment/list/", {
                "business_id": business, "video_id": post.id, "status": "ALL",
                "sort_field": "create_time", "sort_order": "desc", "max_count": 30,
            }, "comments", start)
            where = f"{self.name}: business/comment/list/ video {post.id}"

            def on_video(c: dict[str, Any], video: str = post.id) -> Item:
                return comment_item(c, acct, video)

            tops = [c for c in parse_records(comments, on_video, where, problems)
                    if c.created_at >= start]
            items.extend(tops)
            windows.append(ListingWindow(start=start, end=now, parent_id=post.id))
            for top in tops:
                if not (top.raw or {}).get("replies"):
                    continue
                replies = self._pages("business/comment/reply/list/", {
                    "business_id": business, "video_id": post.id, "comment_id": top.id,
                    "status": "ALL", "max_count": 30,
                }, "comments", None)
                items.extend(parse_records(
                    replies, on_video,
                    f"{self.name}: business/comment/reply/list/ comment {top.id}", problems))
                windows.append(ListingWindow(start=top.created_at, end=now, parent_id=top.id))
        return FetchResult(items=items, cursor={"polled_at": now.isoformat()}, windows=windows,
                           problems=problems)

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        if action not in self.moderation_actions():
            return super().moderate(item, action)
        if item.kind == ItemKind.post:
            return ModerationResult(ok=False, action=action,
                                    detail="videos are removed in the TikTok app, not the API")
        business = self.settings.business_id
        video_id = item.thread_id  # a comment's thread is its video
        if action == ModerationAction.delete:
            if not (item.raw or {}).get("owner"):
                return ModerationResult(
                    ok=False, action=action,
                    detail="TikTok lets an account delete only its own comments; hide it instead")
            self._post("business/comment/delete/", {"business_id": business,
                                                     "comment_id": item.id})
            return ModerationResult(ok=True, action=action, detail=f"deleted comment {item.id}")
        verb = "HIDE" if action == ModerationAction.hide else "UNHIDE"
        self._post("business/comment/hide/", {"business_id": business, "video_id": video_id,
                                               "comment_id": item.id, "action": verb})
        return ModerationResult(ok=True, action=action, detail=f"comment {item.id}: {verb}")

    def _post(self, path: str, body: dict[str, Any]) -> None:
        self.request("POST", path, json=body)

    def account_facts(self) -> AccountFacts:
        data = (self.get_json("business/get/", params={
            "business_id": self.settings.business_id, "fields": json.dumps(ACCOUNT_FIELDS),
        }) or {}).get("data") or {}
        if not data:
            raise FatalError(f"{self.name} (account {self.account}): TikTok returned no account "
                             "details. Fix: check business_id.")
        return AccountFacts(
            account_id=self.account,
            privacy={"is_business_account": data.get("is_business_account")},
            extra={k: data.get(k) for k in ("username", "display_name", "followers_count")},
        )
