"""Facebook Pages and Instagram: parsing the recorded real Graph API answers in
../shared/fixtures/meta, file by file, and whole polls replayed with respx.

Every item must keep what the DSL needs to judge it: the platform's id, who wrote it, what it
answers (parent) and belongs to (thread), when (UTC), the words, the pictures, and who could see it.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import ListingWindow
from connectors.facebook import FacebookPageConnector, FacebookSettings
from connectors.facebook import parse_comment as fb_comment
from connectors.facebook import parse_message as fb_message
from connectors.facebook import parse_post as fb_post
from connectors.instagram import InstagramConnector, InstagramSettings
from connectors.instagram import parse_comment as ig_comment
from connectors.instagram import parse_media as ig_media
from governance_bot.items import ItemKind, Visibility
from tests.shared import require_shared

pytestmark = pytest.mark.shared

BASE = "https://graph.test"
API = "v21.0"
ACCOUNT = "brookfield-facebook"


def meta(rel: str) -> Any:
    path: Path = require_shared("fixtures", "meta", *rel.split("/"))
    return json.loads(path.read_text(encoding="utf-8"))


def records(rel: str) -> list[dict[str, Any]]:
    """The records of a fixture: a ``data`` list, one object, or a map of id -> object."""
    data = meta(rel)
    if isinstance(data.get("data"), list):
        return list(data["data"])
    if "id" in data:
        return [data]
    return list(data.values())


def graph_time(value: str) -> datetime:
    """Graph's "2021-07-09T19:09:52+0000", read independently of the connector's parser."""
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)


# --- Facebook: every recorded post, comment and message file ------------------------------------

FB_POST_FILES = [
    "facebook/apidata/posts/feed_fields_p1.json",
    "facebook/apidata/posts/feed_fields_p2.json",
    "facebook/apidata/posts/feeds_default_fields_p1.json",
    "facebook/apidata/posts/feeds_default_fields_p2.json",
    "facebook/apidata/posts/single_post_data.json",
    "facebook/apidata/posts/single_post_data_fields.json",
    "facebook/apidata/posts/multi_posts_data.json",
    "facebook/apidata/posts/multi_posts_data_fields.json",
    "facebook/apidata/groups/feed_p1.json",
    "facebook/apidata/groups/feed_p2.json",
    "facebook/models/post.json",
    "base/full_connecions_p1.json",
    "base/full_connecions_p2.json",
]


@pytest.mark.parametrize("rel", FB_POST_FILES)
def test_every_recorded_facebook_post_becomes_a_post_item(rel: str) -> None:
    for record in records(rel):
        item = fb_post(record, ACCOUNT)
        assert item.id == record["id"]
        assert item.platform == "facebook" and item.kind is ItemKind.post
        assert item.created_at == graph_time(record["created_time"])
        assert item.created_at.tzinfo is UTC or item.created_at.utcoffset().total_seconds() == 0
        # the message first, then what a reader sees on its attachments, each a labelled part
        message = record.get("message", "")
        if item.parts:  # the body is the text before the first part's label
            first = item.parts[0]
            body = item.text[:first.start - len(f"[{first.source}]\n")].rstrip("\n")
            assert body == message.rstrip()
        else:
            assert item.text == message
        for attachment in (record.get("attachments") or {}).get("data", []):
            if attachment.get("title"):
                assert attachment["title"] in item.text
        assert item.thread_id == item.id and item.parent_id is None
        # a post id is "{author page}_{post}": without "from" the author is that page
        assert item.author.id == (record.get("from") or {}).get("id", record["id"].split("_")[0])
        assert item.url == record.get("permalink_url")
        assert item.raw == record


FB_COMMENT_FILES = [
    "facebook/apidata/comments/comments_p1.json",
    "facebook/apidata/comments/comments_p2.json",
    "facebook/apidata/comments/comment_info.json",
    "facebook/apidata/comments/comments_info.json",
    "facebook/apidata/comments/create_resp.json",
    "facebook/models/comment.json",
]


@pytest.mark.parametrize("rel", FB_COMMENT_FILES)
def test_every_recorded_facebook_comment_becomes_a_comment_or_reply(rel: str) -> None:
    for record in records(rel):
        item = fb_comment(record, ACCOUNT, "POST1")
        assert item.kind in (ItemKind.comment, ItemKind.reply)
        assert item.created_at == graph_time(record["created_time"])
        assert item.text == record["message"]
        assert item.thread_id == "POST1"
        if "id" in record:
            assert item.id == record["id"]
        if "reply_comment_id=" in record.get("permalink_url", ""):
            assert item.kind is ItemKind.reply and item.parent_id != "POST1"
        else:
            assert item.kind is ItemKind.comment and item.parent_id == "POST1"


@pytest.mark.parametrize(("rel", "index", "expected"), [
    # recorded without "id": the id and the parent come from the permalink
    ("facebook/apidata/comments/comments_p1.json", 0,
     {"id": "10158407654328553_10158407835073553", "kind": ItemKind.comment,
      "created": "2021-08-10T18:45:03+00:00"}),
    ("facebook/apidata/comments/comments_p1.json", 5,
     {"id": "10158407654328553_10158409983033553", "kind": ItemKind.reply,
      "parent": "10158407654328553_10158407903973553", "created": "2021-08-11T23:22:14+00:00"}),
    ("facebook/models/comment.json", 0,
     {"id": "2954961744718970_2966313500250461", "author": ("2711636948859886", "Kun Liu"),
      "media": "image/jpeg", "visibility": Visibility.public,
      "created": "2021-07-23T08:35:18+00:00"}),
])
def test_facebook_comment_details(rel: str, index: int, expected: dict[str, Any]) -> None:
    item = fb_comment(records(rel)[index], ACCOUNT, "POST1")
    assert item.id == expected["id"]
    assert item.created_at.isoformat() == expected["created"]
    if "kind" in expected:
        assert item.kind is expected["kind"]
    if "parent" in expected:
        assert item.parent_id == expected["parent"]
    if "author" in expected:
        assert (item.author.id, item.author.name) == expected["author"]
    if "media" in expected:
        assert [m.mime_type for m in item.media] == [expected["media"]]
        assert item.media[0].url and item.media[0].url.startswith("https://scontent-")
    if "visibility" in expected:
        assert item.visibility is expected["visibility"]


def test_a_hidden_facebook_comment_is_not_public() -> None:
    record = copy.deepcopy(records("facebook/models/comment.json")[0])
    record["is_hidden"] = True
    assert fb_comment(record, ACCOUNT, "POST1").visibility is Visibility.private


@pytest.mark.parametrize(("rel", "index", "media", "author"), [
    ("facebook/apidata/posts/feeds_default_fields_p1.json", 0, ["image/jpeg"], "19292868552"),
    # an album: every picture of the album is referenced
    ("facebook/models/post.json", 0, ["image/jpeg"] * 7, "565225540184937"),
    ("facebook/apidata/posts/single_post_data.json", 0, [], "175154750010052"),
])
def test_facebook_post_media_and_author(rel: str, index: int, media: list[str],
                                        author: str) -> None:
    item = fb_post(records(rel)[index], ACCOUNT)
    assert [m.mime_type for m in item.media] == media
    assert all(m.url and m.url.startswith("https://") for m in item.media)
    assert item.author.id == author
    assert item.visibility is Visibility.public


FB_MESSAGE_FILES = [
    "facebook/apidata/messages/message_info.json",
    "facebook/apidata/messages/messages_info.json",
    "facebook/models/message.json",
]


@pytest.mark.parametrize("rel", FB_MESSAGE_FILES)
def test_every_recorded_messenger_message_is_a_direct_message(rel: str) -> None:
    for record in records(rel):
        item = fb_message(record, ACCOUNT, "t_587956915396498")
        assert item.id == record["id"]
        assert item.kind is ItemKind.direct_message
        assert item.visibility is Visibility.direct
        assert item.thread_id == "t_587956915396498"
        assert (item.author.id, item.author.name) == ("2711636948859886", "Kun Liu")
        assert [(p.id, p.name) for p in item.recipients] == [("2121008874780932", "MyLife")]
        assert item.author.email is None  # Messenger's "email" is a proxy address
        assert item.created_at == graph_time(record["created_time"])
        assert item.text == record.get("message", "")
        assert [m.mime_type for m in item.media] == [
            a["mime_type"] for a in record.get("attachments", {}).get("data", [])]


# --- Facebook: a whole poll replayed ------------------------------------------------------------

def fb_connector(clock: float, **extra: Any) -> FacebookPageConnector:
    settings = FacebookSettings(name="fb", type="facebook", account=ACCOUNT, page_id="19292868552",
                                access_token="page-token", base_url=BASE, **extra)
    return FacebookPageConnector(settings, client=httpx.Client(), sleep=lambda s: None,
                                 clock=lambda: clock)


def _no_next(page: dict[str, Any]) -> dict[str, Any]:
    page = copy.deepcopy(page)
    page.get("paging", {}).pop("next", None)
    return page


@respx.mock(assert_all_mocked=True)
def test_a_facebook_poll_reads_posts_comment_threads_and_messenger(
        respx_mock: respx.MockRouter) -> None:
    feed = _no_next(meta("facebook/apidata/posts/feeds_default_fields_p1.json"))
    post_id = feed["data"][0]["id"]
    c1 = meta("facebook/apidata/comments/comments_p1.json")
    c2 = _no_next(meta("facebook/apidata/comments/comments_p2.json"))
    conversations = {"data": [meta("facebook/apidata/conversations/cvs_info.json")]}
    messages = {"data": records("facebook/apidata/messages/messages_info.json")}
    respx_mock.get(f"{BASE}/{API}/19292868552/feed").respond(json=feed)
    respx_mock.get(f"{BASE}/{API}/{post_id}/comments").respond(json=c1)
    respx_mock.get(f"{BASE}/{API}/19292868552_10158407654328553/comments").respond(json=c2)
    respx_mock.get(url__regex=rf"{BASE}/{API}/\d+_\d+/comments").respond(json={"data": []})
    conv_route = respx_mock.get(f"{BASE}/{API}/19292868552/conversations").respond(
        json=conversations)
    respx_mock.get(f"{BASE}/{API}/t_587956915396498/messages").respond(json=messages)

    now = datetime(2021, 7, 25, 12, 0, tzinfo=UTC).timestamp()
    result = fb_connector(now).fetch(None)

    assert result.problems == []
    by_id = {i.id: i for i in result.items}
    posts = [i for i in result.items if i.kind is ItemKind.post]
    comments = [i for i in result.items if i.kind in (ItemKind.comment, ItemKind.reply)]
    dms = [i for i in result.items if i.kind is ItemKind.direct_message]
    assert len(posts) == 5 and len(comments) == 15 and len(dms) == 2
    assert all(c.thread_id == post_id for c in comments)
    for reply in (c for c in comments if c.kind is ItemKind.reply):
        assert reply.parent_id in by_id, "a reply's parent comment was not read"
    assert all(d.thread_id == "t_587956915396498" for d in dms)
    assert conv_route.calls.last.request.url.params["platform"] == "messenger"
    # the feed listing covered the last 30 days, each post's comments were listed completely
    assert ListingWindow(start=datetime(2021, 6, 25, 12, tzinfo=UTC),
                         end=datetime(2021, 7, 25, 12, tzinfo=UTC)) in result.windows
    assert {w.parent_id for w in result.windows if w.parent_id} == {p.id for p in posts}
    assert result.cursor and result.cursor["messages_since"].startswith("2021-07-25T12:00")
    # the token travels in the Authorization header, never in a URL
    for call in respx_mock.calls:
        assert "page-token" not in str(call.request.url)
        assert call.request.headers["authorization"] == "Bearer page-token"


@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_messenger_is_read_only_back_to_the_previous_poll(respx_mock: respx.MockRouter) -> None:
    conv = meta("facebook/apidata/conversations/cvs_info.json")  # updated 2021-07-23T09:28:50
    messages = {"data": records("facebook/apidata/messages/messages_info.json")}
    respx_mock.get(f"{BASE}/{API}/19292868552/feed").respond(json={"data": []})
    respx_mock.get(f"{BASE}/{API}/19292868552/conversations").respond(json={"data": [conv]})
    msg_route = respx_mock.get(f"{BASE}/{API}/t_587956915396498/messages").respond(json=messages)
    connector = fb_connector(datetime(2021, 7, 25, tzinfo=UTC).timestamp())
    # the previous poll was after the conversation's last update: nothing new to read
    result = connector.fetch({"messages_since": "2021-07-24T00:00:00+00:00"})
    assert result.items == [] and not msg_route.called


# --- Graph errors and usage headers -------------------------------------------------------------

@respx.mock(assert_all_mocked=True)
def test_a_recorded_graph_error_stops_with_the_account_and_the_fix(
        respx_mock: respx.MockRouter) -> None:
    from connectors.base import FatalError

    respx_mock.get(f"{BASE}/{API}/19292868552/feed").respond(400, json=meta("error.json"))
    with pytest.raises(FatalError) as err:
        fb_connector(1_700_000_000).fetch(None)
    assert ACCOUNT in str(err.value) and "Fix:" in str(err.value)


@respx.mock(assert_all_mocked=True)
def test_an_expired_page_token_says_how_to_make_a_new_one(respx_mock: respx.MockRouter) -> None:
    from connectors.base import FatalError

    error = copy.deepcopy(meta("error.json"))
    error["error"].update(code=190, message="Error validating access token")
    respx_mock.get(f"{BASE}/{API}/19292868552/feed").respond(400, json=error)
    with pytest.raises(FatalError) as err:
        fb_connector(1_700_000_000).fetch(None)
    assert "HTTP 401" in str(err.value) and "Page access token" in str(err.value)


@respx.mock(assert_all_mocked=True)
def test_graph_throttling_in_a_400_is_waited_out(respx_mock: respx.MockRouter) -> None:
    error = copy.deepcopy(meta("error.json"))
    error["error"].update(code=32, message="Page request limit reached")
    respx_mock.get(f"{BASE}/{API}/19292868552/feed").mock(side_effect=[
        httpx.Response(400, json=error), httpx.Response(200, json={"data": []})])
    waits: list[float] = []
    settings = FacebookSettings(name="fb", type="facebook", account=ACCOUNT, page_id="19292868552",
                                access_token="t", base_url=BASE, read_messages=False)
    connector = FacebookPageConnector(settings, client=httpx.Client(), sleep=waits.append,
                                      clock=lambda: 1_700_000_000)
    assert connector.fetch(None).items == []
    assert len(waits) == 1 and waits[0] > 0


@pytest.mark.parametrize(("header", "value", "pause"), [
    ("X-App-Usage", '{"call_count": 40, "total_cputime": 10, "total_time": 12}', None),
    ("X-App-Usage", '{"call_count": 96, "total_cputime": 10, "total_time": 12}', 240.0),
    ("X-Business-Use-Case-Usage",
     '{"19292868552": [{"type": "pages", "call_count": 100, "total_cputime": 20, '
     '"total_time": 30, "estimated_time_to_regain_access": 5}]}', 300.0),
])
def test_graph_usage_headers_slow_polling_before_meta_refuses(
        header: str, value: str, pause: float | None) -> None:
    connector = fb_connector(1_700_000_000)
    response = httpx.Response(200, headers={header: value}, json={"data": []})
    assert connector.check_rate_limit(response) == pause


# --- Instagram: every recorded media and comment file -------------------------------------------

IG_MEDIA_FILES = [
    "instagram/apidata/users/medias_p1.json",
    "instagram/apidata/users/medias_p2.json",
    "instagram/apidata/users/tagged_medias.json",
    "instagram/apidata/medias/media_default.json",
    "instagram/apidata/medias/medias_fields.json",
    "instagram/apidata/medias/children.json",
    "instagram/apidata/stories/stories_default.json",
    "instagram/apidata/stories/story_info.json",
    "instagram/apidata/stories/stories_info.json",
    "instagram/apidata/users/stories.json",
    "instagram/models/ig_media.json",
    "instagram/models/ig_story.json",
    "instagram_basic/apidata/user/user_medias_p1.json",
    "instagram_basic/apidata/user/user_medias_p2.json",
    "instagram_basic/apidata/media/media_info.json",
    "instagram_basic/apidata/media/medias_info.json",
    "instagram_basic/models/media_info.json",
]


@pytest.mark.parametrize("rel", IG_MEDIA_FILES)
def test_every_recorded_instagram_media_becomes_a_post(rel: str) -> None:
    for record in records(rel):
        item = ig_media(record, "brookfield-instagram")
        assert item.id == record["id"]
        assert item.kind is ItemKind.post and item.platform == "instagram"
        assert item.created_at == graph_time(record["timestamp"])
        assert item.text == record.get("caption", "")
        assert item.url == record.get("permalink")
        assert item.author.handle == record.get("username")
        assert item.visibility is Visibility.public
        children = record.get("children", {}).get("data") or [record]
        # each picture or video, and each video's cover (thumbnail_url) as a thumbnail
        assert [m.url for m in item.media] == [
            url for child in children
            for url in (child.get("media_url"), child.get("thumbnail_url")) if url]
        assert [m.url for m in item.media if m.thumbnail] == [
            c["thumbnail_url"] for c in children if c.get("thumbnail_url")]


def test_a_carousel_references_every_picture_and_video() -> None:
    album = records("instagram/apidata/users/medias_p2.json")[0]
    item = ig_media(album, "brookfield-instagram")
    assert item.text == "ALBUM"
    assert [m.mime_type for m in item.media] == ["image/jpeg", "image/jpeg", "video/mp4",
                                                 "image/jpeg"]
    assert [m.thumbnail for m in item.media] == [False, False, False, True]
    assert item.created_at.isoformat() == "2021-07-26T10:45:20+00:00"


def test_a_mention_in_someone_elses_media_is_read() -> None:
    mention = meta("instagram/apidata/users/mentioned_media.json")["mentioned_media"]
    item = ig_media(mention, "brookfield-instagram")
    assert item.id == "17889114512354744"
    assert item.text == "@ikroskun hey"
    assert [m.mime_type for m in item.media] == ["image/jpeg"]


IG_COMMENT_FILES = [
    "instagram/apidata/medias/comments_p1.json",
    "instagram/apidata/medias/comments_p2.json",
    "instagram/apidata/comments/comment_fields.json",
    "instagram/apidata/comments/comments_fields.json",
    "instagram/apidata/comments/replies.json",
    "instagram/models/ig_comment.json",
    "instagram/models/ig_reply.json",
]


@pytest.mark.parametrize("rel", IG_COMMENT_FILES)
def test_every_recorded_instagram_comment_is_read(rel: str) -> None:
    for record in records(rel):
        item = ig_comment(record, "brookfield-instagram", "MEDIA1")
        assert item.id == record["id"]
        assert item.kind is ItemKind.comment
        assert item.parent_id == "MEDIA1" and item.thread_id == "MEDIA1"
        assert item.created_at == graph_time(record["timestamp"])
        assert item.text == record["text"]
        assert item.author.handle == record.get("username")
        assert item.visibility is (Visibility.private if record.get("hidden")
                                   else Visibility.public)


def test_a_mentioning_comment_is_read() -> None:
    comment = meta("instagram/apidata/users/mentioned_comment.json")["mentioned_comment"]
    item = ig_comment(comment, "brookfield-instagram", "17889114512354744")
    assert (item.id, item.text, item.author.handle) == ("17967008497439572", "@ikroskun good",
                                                        "ikroskun")
    assert item.created_at.isoformat() == "2021-08-19T09:14:16+00:00"


@respx.mock(assert_all_mocked=True)
def test_an_instagram_poll_reads_media_comments_nested_replies_and_tags(
        respx_mock: respx.MockRouter) -> None:
    m1 = meta("instagram/apidata/users/medias_p1.json")
    m2 = _no_next(meta("instagram/apidata/users/medias_p2.json"))
    commented = m1["data"][1]["id"]
    thread = {"data": [meta("instagram/models/ig_comment.json")]}
    user = "17841406338772941"
    respx_mock.get(f"{BASE}/{API}/{user}/media", params={"after": "after"}).respond(json=m2)
    respx_mock.get(f"{BASE}/{API}/{user}/media").respond(json=m1)
    respx_mock.get(f"{BASE}/{API}/{commented}/comments").respond(json=thread)
    respx_mock.get(url__regex=rf"{BASE}/{API}/\d+/comments").respond(json={"data": []})
    respx_mock.get(f"{BASE}/{API}/{user}/tags").respond(
        json=meta("instagram/apidata/users/tagged_medias.json"))
    settings = InstagramSettings(name="ig", type="instagram", account="brookfield-instagram",
                                 ig_user_id=user, username="ikroskun", access_token="ig-token",
                                 base_url=BASE)
    connector = InstagramConnector(settings, client=httpx.Client(), sleep=lambda s: None,
                                   clock=lambda: datetime(2021, 8, 20, tzinfo=UTC).timestamp())
    result = connector.fetch(None)
    assert result.problems == []
    by_id = {i.id: i for i in result.items}
    comment, reply = by_id["17892250648466172"], by_id["17845747489952795"]
    assert comment.kind is ItemKind.comment and comment.parent_id == commented
    assert reply.kind is ItemKind.reply and reply.parent_id == comment.id
    assert reply.thread_id == commented
    own = [by_id[m["id"]] for m in m1["data"] + m2["data"]]
    assert all(p.author.id == user and p.author.handle == "ikroskun" for p in own)
    tagged = records("instagram/apidata/users/tagged_medias.json")
    assert all(t["id"] in by_id for t in tagged)
    assert result.cursor and "tags_since" in result.cursor


# --- moderation and account facts ---------------------------------------------------------------

def _comment(kind: ItemKind = ItemKind.comment, platform: str = "facebook") -> Any:
    from governance_bot.items import Item

    return Item(id="2954961744718970_2966313500250461", platform=platform, account=ACCOUNT,
                kind=kind, created_at=datetime(2021, 7, 23, tzinfo=UTC), parent_id="P",
                thread_id="P")


@pytest.mark.parametrize(("action", "method", "form"), [
    ("hide", "POST", {"is_hidden": "true"}),
    ("unhide", "POST", {"is_hidden": "false"}),
    ("delete", "DELETE", None),
])
@respx.mock(assert_all_mocked=True)
def test_facebook_comment_moderation_sends_the_graph_request(
        action: str, method: str, form: dict[str, str] | None,
        respx_mock: respx.MockRouter) -> None:
    from connectors.base import ModerationAction

    target = respx_mock.route(method=method,
                              url=f"{BASE}/{API}/2954961744718970_2966313500250461").respond(
        json={"success": True})
    result = fb_connector(1_700_000_000).moderate(_comment(), ModerationAction(action))
    assert result.ok
    request = target.calls.last.request
    if form is None:
        assert request.content == b""
    else:
        assert dict(httpx.QueryParams(request.content.decode())) == form


@pytest.mark.parametrize(("action", "method", "form"), [
    ("hide", "POST", {"hide": "true"}),
    ("unhide", "POST", {"hide": "false"}),
    ("delete", "DELETE", None),
])
@respx.mock(assert_all_mocked=True)
def test_instagram_comment_moderation_sends_the_graph_request(
        action: str, method: str, form: dict[str, str] | None,
        respx_mock: respx.MockRouter) -> None:
    from connectors.base import ModerationAction

    target = respx_mock.route(method=method, url=f"{BASE}/{API}/17892250648466172").respond(
        json={"success": True})
    settings = InstagramSettings(name="ig", type="instagram", account="brookfield-instagram",
                                 ig_user_id="1", access_token="t", base_url=BASE)
    connector = InstagramConnector(settings, client=httpx.Client())
    item = _comment(platform="instagram").model_copy(update={"id": "17892250648466172"})
    assert connector.moderate(item, ModerationAction(action)).ok
    if form is not None:
        assert dict(httpx.QueryParams(target.calls.last.request.content.decode())) == form


def test_a_refused_moderation_is_reported_not_assumed() -> None:
    from connectors.base import ModerationAction

    with respx.mock(assert_all_mocked=True) as mock:
        mock.post(f"{BASE}/{API}/2954961744718970_2966313500250461").respond(
            json={"success": False})
        result = fb_connector(1_700_000_000).moderate(_comment(), ModerationAction.hide)
    assert not result.ok and "did not confirm" in result.detail


def test_posts_and_messages_cannot_be_hidden_on_facebook() -> None:
    from connectors.base import FatalError, ModerationAction

    with pytest.raises(FatalError, match="only comments"):
        fb_connector(1).moderate(_comment(ItemKind.post), ModerationAction.hide)
    with pytest.raises(FatalError, match="Messenger"):
        fb_connector(1).moderate(_comment(ItemKind.direct_message), ModerationAction.delete)


@respx.mock(assert_all_mocked=True)
def test_facebook_account_facts_list_roles_and_business_two_factor(
        respx_mock: respx.MockRouter) -> None:
    """Page roles and business users (this project's invented payloads, shaped as the Graph API
    documents them); the Page itself from the recorded page answer."""
    page = meta("facebook/apidata/pages/single_fields_page.json")
    respx_mock.get(f"{BASE}/{API}/19292868552").respond(json=page)
    respx_mock.get(f"{BASE}/{API}/19292868552/roles").respond(json={"data": [
        {"id": "5501", "name": "Tom Ashworth", "tasks": ["MANAGE", "MODERATE", "CREATE_CONTENT"]},
        {"id": "5599", "name": "Leon Fairbairn", "tasks": ["MODERATE"]},
    ]})
    respx_mock.get(f"{BASE}/{API}/880000000001/business_users").respond(json={"data": [
        {"id": "9001", "name": "Tom Ashworth", "email": "t.ashworth@brookfield.example.org",
         "role": "ADMIN", "two_fac_status": "enabled"},
        {"id": "9002", "name": "Leon Fairbairn", "email": "l.fairbairn@brookfield.example.org",
         "role": "EMPLOYEE", "two_fac_status": "not_enabled"},
    ]})
    facts = fb_connector(1_700_000_000, business_id="880000000001").account_facts()
    roles = [(a["name"], a.get("tasks"), a["two_factor"]) for a in facts.admins]
    assert roles == [
        ("Tom Ashworth", ["MANAGE", "MODERATE", "CREATE_CONTENT"], None),
        ("Leon Fairbairn", ["MODERATE"], None),
        ("Tom Ashworth", None, True),
        ("Leon Fairbairn", None, False),
    ]
    assert facts.extra["page"]["id"] == page["id"]


@respx.mock(assert_all_mocked=True)
def test_facebook_account_facts_say_what_the_token_could_not_see(
        respx_mock: respx.MockRouter) -> None:
    respx_mock.get(f"{BASE}/{API}/19292868552").respond(
        json=meta("facebook/apidata/pages/single_fields_page.json"))
    respx_mock.get(f"{BASE}/{API}/19292868552/roles").respond(400, json=meta("error.json"))
    facts = fb_connector(1_700_000_000).account_facts()
    assert facts.admins == [] and "roles" in facts.extra["unavailable"]


@respx.mock(assert_all_mocked=True)
def test_instagram_account_facts_from_the_recorded_profile(respx_mock: respx.MockRouter) -> None:
    profile = meta("instagram/apidata/users/user_fields.json")
    respx_mock.get(f"{BASE}/{API}/{profile['id']}").respond(json=profile)
    settings = InstagramSettings(name="ig", type="instagram", account="brookfield-instagram",
                                 ig_user_id=profile["id"], access_token="t", base_url=BASE)
    facts = InstagramConnector(settings, client=httpx.Client()).account_facts()
    assert facts.privacy["public"] is True
    assert facts.extra["profile"]["username"] == "facebookfordevelopers"
    assert facts.extra["profile"]["followers_count"] == 64363


@respx.mock(assert_all_mocked=True)
def test_instagram_direct_messages_are_read_through_the_linked_page(
        respx_mock: respx.MockRouter) -> None:
    user, page = "17841406338772941", "2121008874780932"
    respx_mock.get(f"{BASE}/{API}/{user}/media").respond(json={"data": []})
    conversations = respx_mock.get(f"{BASE}/{API}/{page}/conversations").respond(
        json={"data": [meta("facebook/apidata/conversations/cvs_info.json")]})
    respx_mock.get(f"{BASE}/{API}/t_587956915396498/messages").respond(
        json={"data": records("facebook/apidata/messages/messages_info.json")})
    settings = InstagramSettings(name="ig", type="instagram", account="brookfield-instagram",
                                 ig_user_id=user, page_id=page, access_token="t",
                                 base_url=BASE, read_tags=False)
    connector = InstagramConnector(settings, client=httpx.Client(),
                                   clock=lambda: datetime(2021, 7, 25, tzinfo=UTC).timestamp())
    result = connector.fetch(None)
    assert conversations.calls.last.request.url.params["platform"] == "instagram"
    assert [i.kind for i in result.items] == [ItemKind.direct_message] * 2
    assert all(i.platform == "instagram" and i.thread_id == "t_587956915396498"
               for i in result.items)


@respx.mock(assert_all_mocked=True)
def test_a_skipped_comment_is_logged_by_where_and_what_never_by_its_text(
        respx_mock: respx.MockRouter, caplog: pytest.LogCaptureFixture) -> None:
    """A comment naming a learner arrives without its time: it is skipped, the problem says
    which page and record and what is missing, and the learner's name is not in the log."""
    import logging

    feed = {"data": [records("facebook/apidata/posts/single_post_data_fields.json")[0]]}
    bad = dict(records("facebook/models/comment.json")[0],
               message="Chloe Brennan from year 10 lives on our road")
    del bad["created_time"]
    good = records("facebook/apidata/comments/comment_info.json")[0]
    respx_mock.get(f"{BASE}/{API}/19292868552/feed").respond(json=feed)
    respx_mock.get(f"{BASE}/{API}/{feed['data'][0]['id']}/comments").respond(
        json={"data": [bad, good]})
    with caplog.at_level(logging.DEBUG):
        result = fb_connector(1_700_000_000, read_messages=False).fetch(None)
    assert {i.id for i in result.items} == {feed["data"][0]["id"], good["id"]}
    (problem,) = result.problems
    assert f"/{feed['data'][0]['id']}/comments page 1 record 1" in problem
    assert bad["id"] in problem and "created_time" in problem
    assert "Chloe" not in caplog.text and "Brennan" not in caplog.text
    assert problem in caplog.text


def test_a_malformed_item_field_is_described_without_its_value() -> None:
    from pydantic import ValidationError

    from connectors.base import describe_error
    from connectors.facebook import parse_post

    record = {"id": "4_1", "created_time": "2021-07-04T19:50:58+0000",
              "message": {"text": "Freya MacLeod's address is 4 Mill Lane"}}
    with pytest.raises(ValidationError) as err:
        parse_post(record, ACCOUNT)
    assert "Freya" in str(err.value)  # pydantic repeats the input...
    described = describe_error(err.value)
    assert "Freya" not in described and described.startswith("text:")  # ...the report does not
