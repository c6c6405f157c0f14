"""YouTube: recorded Data API v3 responses become items with the right ids, authors, threads,
UTC times and text; paging runs to the end; moderation sends the documented calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import FatalError, ModerationAction
from connectors.youtube import YouTubeConnector, YouTubeSettings, comment_item, thread_items
from governance_bot.items import ItemKind, Visibility
from tests.shared import require_shared
from tests.social.conftest import Sleeps
from tests.social.replay import json_response

BASE = "https://yt.test/youtube/v3"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"
pytestmark = pytest.mark.shared


def apidata(*parts: str) -> Path:
    return require_shared("fixtures", "youtube", "apidata", *parts)


def connector(client: httpx.Client, sleeps: Sleeps, **extra: Any) -> YouTubeConnector:
    settings = YouTubeSettings.model_validate({
        "name": "yt", "type": "youtube", "account": "brookfield-youtube", "channel_id": CHANNEL,
        "access_token": "ya29.secret-token", "base_url": BASE, "backfill_days": 3650,
        **extra,
    })
    return YouTubeConnector(settings, client=client, sleep=sleeps)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


COMMENT_FILES = [
    "comment_threads/comment_threads_by_video_paged_1.json",
    "comment_threads/comment_threads_by_video_paged_2.json",
    "comment_threads/comment_threads_all_to_me.json",
    "comment_threads/comment_threads_by_channel.json",
    "comment_threads/comment_threads_multi.json",
    "comment_threads/comment_thread_single.json",
    "comment_threads/comment_threads_with_search.json",
]
REPLY_FILES = [
    "comments/comments_by_parent_paged_1.json",
    "comments/comments_by_parent_paged_2.json",
    "comments/comments_multi.json",
    "comments/comments_single.json",
]


@pytest.mark.parametrize("name", COMMENT_FILES)
def test_every_recorded_comment_thread_becomes_items_true_to_the_payload(
    name: str, router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.get(f"{BASE}/commentThreads").mock(return_value=json_response(apidata(name)))
    yt = connector(client, sleeps)
    page = yt.get_json("commentThreads", params={"part": "snippet,replies"})
    assert page["items"], "the fixture holds threads"
    for thread in page["items"]:
        items = thread_items(thread, "brookfield-youtube")
        top, raw = items[0], thread["snippet"]["topLevelComment"]
        s = raw["snippet"]
        assert top.id == raw["id"] == thread["id"]
        assert top.kind == ItemKind.comment
        assert top.author.id == s["authorChannelId"]["value"]
        assert top.author.name == s["authorDisplayName"]
        assert top.created_at == utc(s["publishedAt"]) and top.created_at.tzinfo == UTC
        assert top.text == s["textOriginal"] and "<" not in top.text.replace("<3", "")
        video = thread["snippet"].get("videoId")
        assert top.parent_id == video
        assert top.thread_id == (video or thread["id"])
        assert top.visibility == Visibility.public
        if video:
            assert top.url == f"https://www.youtube.com/watch?v={video}&lc={raw['id']}"
        assert top.raw == raw


@pytest.mark.parametrize("name", REPLY_FILES)
def test_every_recorded_comment_becomes_an_item_with_its_parent(
    name: str, router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.get(f"{BASE}/comments").mock(return_value=json_response(apidata(name)))
    page = connector(client, sleeps).get_json("comments", params={"part": "snippet"})
    for raw in page["items"]:
        s = raw["snippet"]
        item = comment_item(raw, "brookfield-youtube", video_id=None, thread_id=None)
        assert item.id == raw["id"]
        assert item.author.id == s["authorChannelId"]["value"]
        assert item.created_at == utc(s["publishedAt"])
        assert item.text == s["textOriginal"]
        if "parentId" in s:
            assert item.kind == ItemKind.reply and item.parent_id == s["parentId"]
            assert item.thread_id == s["parentId"]
        else:
            assert item.kind == ItemKind.comment


def test_a_comment_whose_display_text_is_html_is_read_as_plain_text():
    page = json.loads(apidata("comment_threads/comment_threads_by_video_paged_1.json")
                      .read_text())
    raw = page["items"][0]["snippet"]["topLevelComment"]
    assert raw["snippet"]["textDisplay"].startswith("<a href=")
    del raw["snippet"]["textOriginal"]  # a payload asked for with textFormat=html only
    item = comment_item(raw, "acct", video_id="F1UP7wRCPH8", thread_id=None)
    assert item.text == "Google.com"
    assert item.author.name == "himani agarwal"
    assert item.created_at == datetime(2019, 11, 26, 15, 51, 44, tzinfo=UTC)


def test_fetch_pages_uploads_threads_and_replies_to_the_end(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    uploads = router.get(f"{BASE}/playlistItems").mock(side_effect=[
        json_response(apidata("playlist_items/playlist_items_paged_1.json")),
        json_response(apidata("playlist_items/playlist_items_paged_2.json")),
    ])
    threads = router.get(f"{BASE}/commentThreads").mock(side_effect=[
        json_response(apidata("comment_threads/comment_threads_by_video_paged_1.json")),
        json_response(apidata("comment_threads/comment_threads_by_video_paged_2.json")),
    ])
    replies = router.get(f"{BASE}/comments").mock(
        return_value=httpx.Response(200, json={"items": []}))
    result = connector(client, sleeps).fetch(None)
    assert uploads.call_count == 2 and threads.call_count == 2
    assert uploads.calls[1].request.url.params["pageToken"] == "CAoQAA"
    assert threads.calls[1].request.url.params["pageToken"].startswith("QURTSl9pMzdZ")
    # the last thread says 2 replies but carries none: they are asked for
    assert replies.calls.last.request.url.params["parentId"] == "UgwI_ylXVnzPS8Q-oAV4AaABAg"
    assert threads.calls[0].request.url.params["allThreadsRelatedToChannelId"] == CHANNEL
    assert threads.calls[0].request.headers["Authorization"] == "Bearer ya29.secret-token"
    posts = [i for i in result.items if i.kind == ItemKind.post]
    comments = [i for i in result.items if i.kind == ItemKind.comment]
    # the two recorded thread pages hold the same five threads: each is one item
    assert len(posts) == 13 and len(comments) == 5
    assert not result.problems
    first = posts[0]
    assert first.id == "CvTApw9X8aA"
    assert first.text.startswith("Welcome from Google Developers - Pittsburgh ML Summit")
    assert first.media[0].url == "https://i.ytimg.com/vi/CvTApw9X8aA/maxresdefault.jpg"
    assert first.media[0].mime_type == "image/jpeg"
    assert first.parent_id == CHANNEL and first.thread_id == "CvTApw9X8aA"
    assert first.url == "https://www.youtube.com/watch?v=CvTApw9X8aA"
    assert result.windows[0].parent_id == CHANNEL
    assert {w.parent_id for w in result.windows} >= {"F1UP7wRCPH8", *(c.id for c in comments)}
    assert result.cursor and "polled_at" in result.cursor


def test_a_thread_with_more_replies_than_listed_is_completed_from_comments_list(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.get(f"{BASE}/playlistItems").mock(return_value=httpx.Response(200, json={"items": []}))
    page = json.loads(apidata("comment_threads/comment_threads_all_to_me.json").read_text())
    thread = next(t for t in page["items"] if t["snippet"]["totalReplyCount"])
    thread["id"] = thread["snippet"]["topLevelComment"]["id"] = "Ugw5zYU6n9pmIgAZWvN4AaABAg"
    thread["snippet"]["totalReplyCount"] = 3
    router.get(f"{BASE}/commentThreads").mock(
        return_value=httpx.Response(200, json={"items": [thread]}))
    replies = router.get(f"{BASE}/comments").mock(side_effect=[
        json_response(apidata("comments/comments_by_parent_paged_1.json")),
        json_response(apidata("comments/comments_by_parent_paged_2.json")),
    ])
    result = connector(client, sleeps).fetch(None)
    assert replies.call_count == 2
    assert replies.calls[0].request.url.params["parentId"] == "Ugw5zYU6n9pmIgAZWvN4AaABAg"
    got = [i for i in result.items if i.kind == ItemKind.reply]
    assert [i.text for i in got] == ["this is the third reply!", "this is the second reply!",
                                     "hey, this is the replay"]
    assert all(i.parent_id == "Ugw5zYU6n9pmIgAZWvN4AaABAg" for i in got)


def test_a_malformed_thread_is_skipped_and_named_while_the_rest_are_read(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.get(f"{BASE}/playlistItems").mock(return_value=httpx.Response(200, json={"items": []}))
    page = json.loads(apidata("comment_threads/comment_threads_multi.json").read_text())
    del page["items"][0]["snippet"]["topLevelComment"]["snippet"]["publishedAt"]
    router.get(f"{BASE}/commentThreads").mock(return_value=httpx.Response(200, json=page))
    result = connector(client, sleeps).fetch(None)
    assert [i.id for i in result.items] == [page["items"][1]["id"]]
    assert len(result.problems) == 1
    assert "commentThreads page 1, record 0" in result.problems[0]
    assert "publishedAt" in result.problems[0]


def test_the_recorded_permission_error_is_fatal_and_names_the_account_and_fix(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.get(f"{BASE}/playlistItems").mock(
        return_value=json_response(apidata("error_permission_resp.json"), status=403))
    with pytest.raises(FatalError) as err:
        connector(client, sleeps).fetch(None)
    assert "brookfield-youtube" in str(err.value) and "Fix:" in str(err.value)
    assert "ya29" not in str(err.value)


@pytest.mark.parametrize(("action", "status"), [
    (ModerationAction.reject, "rejected"),
    (ModerationAction.hide, "rejected"),
    (ModerationAction.hold, "heldForReview"),
    (ModerationAction.unhide, "published"),
])
def test_comment_moderation_sets_the_moderation_status(
    action: ModerationAction, status: str, router: respx.Router, client: httpx.Client,
    sleeps: Sleeps,
):
    route = router.post(f"{BASE}/comments/setModerationStatus").mock(
        return_value=httpx.Response(204))
    page = json.loads(apidata("comments/comments_single.json").read_text())
    item = comment_item(page["items"][0], "acct", video_id=None, thread_id=None)
    result = connector(client, sleeps).moderate(item, action)
    assert result.ok
    params = route.calls.last.request.url.params
    assert (params["id"], params["moderationStatus"]) == (item.id, status)


def test_account_facts_report_privacy_made_for_kids_and_subscriptions(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    channel = json.loads(apidata("channels/info.json").read_text())
    channel["items"][0]["status"] = {"privacyStatus": "public", "isLinked": True,
                                     "madeForKids": False, "selfDeclaredMadeForKids": False}
    router.get(f"{BASE}/channels").mock(return_value=httpx.Response(200, json=channel))
    subs = router.get(f"{BASE}/subscriptions").mock(side_effect=[
        json_response(apidata("subscriptions/subscriptions_by_mine_p1.json")),
        json_response(apidata("subscriptions/subscriptions_by_mine_p2.json")),
    ])
    facts = connector(client, sleeps).account_facts()
    assert facts.privacy == {"privacyStatus": "public", "isLinked": True, "madeForKids": False,
                             "selfDeclaredMadeForKids": False}
    p1 = json.loads(apidata("subscriptions/subscriptions_by_mine_p1.json").read_text())
    p2 = json.loads(apidata("subscriptions/subscriptions_by_mine_p2.json").read_text())
    expected = [s["snippet"]["resourceId"]["channelId"] for s in p1["items"] + p2["items"]]
    assert facts.follows == expected and len(expected) > 0
    assert subs.call_count == 2


def test_a_refresh_token_is_exchanged_and_never_shown(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    token = router.post("https://oauth2.googleapis.com/token").mock(
        return_value=httpx.Response(200, json={"access_token": "fresh-token", "expires_in": 3599}))
    router.get(f"{BASE}/channels").mock(
        return_value=json_response(apidata("channels/info.json")))
    router.get(f"{BASE}/subscriptions").mock(return_value=httpx.Response(200, json={"items": []}))
    yt = connector(client, sleeps, access_token=None, refresh_token="1//refresh-secret",
                   client_id="cid.apps.googleusercontent.com", client_secret="csecret")
    yt.account_facts()
    assert token.call_count == 1  # reused for the second request
    form = token.calls.last.request.content.decode()
    assert "grant_type=refresh_token" in form and "refresh_token=1%2F%2Frefresh-secret" in form
    shown = repr(yt)
    assert "refresh-secret" not in shown and "csecret" not in shown and "fresh-token" not in shown


def test_a_spent_daily_quota_is_waited_for_not_fatal(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    quota = {"error": {"code": 403, "message": "quota", "errors": [
        {"domain": "youtube.quota", "reason": "quotaExceeded", "message": "quota"}]}}
    router.get(f"{BASE}/playlistItems").mock(side_effect=[
        httpx.Response(403, json=quota), httpx.Response(200, json={"items": []})])
    router.get(f"{BASE}/commentThreads").mock(return_value=httpx.Response(200, json={"items": []}))
    result = connector(client, sleeps).fetch(None)
    assert len(sleeps) == 1 and result.items == []


def test_deleting_someone_else_s_comment_is_refused_with_reject_suggested(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    delete = router.delete(f"{BASE}/comments")
    page = json.loads(apidata("comments/comments_single.json").read_text())
    item = comment_item(page["items"][0], "acct", video_id=None, thread_id=None)
    result = connector(client, sleeps).moderate(item, ModerationAction.delete)
    assert not result.ok and "reject" in result.detail and not delete.called


def test_the_channel_s_own_comment_is_deleted(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    delete = router.delete(f"{BASE}/comments").mock(return_value=httpx.Response(204))
    page = json.loads(apidata("comments/comments_single.json").read_text())
    raw = page["items"][0]
    raw["snippet"]["authorChannelId"] = {"value": CHANNEL}
    item = comment_item(raw, "acct", video_id=None, thread_id=None)
    assert connector(client, sleeps).moderate(item, ModerationAction.delete).ok
    assert delete.calls.last.request.url.params["id"] == raw["id"]


VIDEO_FILES = [
    "playlist_items/playlist_items_filter_video.json",
    "playlist_items/playlist_items_multi.json",
    "playlist_items/playlist_items_paged_1.json",
    "playlist_items/playlist_items_paged_2.json",
    "playlist_items/playlist_items_single.json",
    "search/search_by_developer.json",
    "search/search_by_event.json",
    "search/search_by_keywords_p1.json",
    "search/search_by_keywords_p2.json",
    "search/search_by_location.json",
    "search/search_by_mine.json",
    "search/search_by_related_video.json",
    "search/search_videos_by_channel.json",
    "videos/videos_info_multi.json",
    "videos/videos_info_single.json",
]


@pytest.mark.parametrize("name", VIDEO_FILES)
def test_every_recorded_video_listing_becomes_posts_true_to_the_payload(name: str):
    from connectors.youtube import video_item

    page = json.loads(apidata(name).read_text())
    assert page["items"]
    for raw in page["items"]:
        s = raw["snippet"]
        item = video_item(raw, "brookfield-youtube")
        expected_id = (s.get("resourceId") or {}).get("videoId") or (
            raw["id"]["videoId"] if isinstance(raw["id"], dict) else raw["id"])
        assert item.id == expected_id
        assert item.kind == ItemKind.post
        assert item.author.id == s["channelId"]
        assert item.created_at == utc(s["publishedAt"]) and item.created_at.tzinfo == UTC
        assert item.text.startswith(s["title"].strip())
        assert item.url == f"https://www.youtube.com/watch?v={expected_id}"
        if s.get("thumbnails"):
            assert item.media and item.media[0].url in {
                t["url"] for t in s["thumbnails"].values()}


def test_a_search_result_that_is_a_channel_is_not_taken_for_a_video():
    from connectors.youtube import video_item

    page = json.loads(apidata("search/search_channels.json").read_text())
    with pytest.raises(ValueError, match="no video id"):
        video_item(page["items"][0], "acct")
