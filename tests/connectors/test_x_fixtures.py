"""X: parsing the recorded real X API v2 answers (tweepy's VCR cassettes in
../shared/fixtures/x/cassettes), file by file, and polls, moderation and account facts replayed
with respx."""

from __future__ import annotations

import copy
import html
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.base import FatalError, ModerationAction
from connectors.x import Includes, XConnector, XSettings, parse_dm_event, parse_tweet
from governance_bot.items import Item, ItemKind, Person, Visibility
from tests.cassettes import Interaction, load_cassette, route

pytestmark = pytest.mark.shared

BASE = "https://x.test"
ACCOUNT = "brookfield-x"


def snowflake_ms(value: str) -> int:
    """Milliseconds since 1970 in an X id (documented Snowflake layout)."""
    return (int(value) >> 22) + 1288834974657


def get(name: str, path_prefix: str = "") -> Interaction:
    found = [i for i in load_cassette(name) if i.method == "GET"
             and i.url.path.startswith(path_prefix)]
    assert found, f"{name} has no GET {path_prefix}"
    return found[0]


# every recording of a v2 endpoint answering posts
TWEET_CASSETTES = [
    f"test_{client}_{name}.yaml"
    for client in ("client", "asyncclient")
    for name in ("get_users_tweets", "get_users_mentions", "search_recent_tweets",
                 "search_all_tweets", "get_tweet", "get_tweets", "get_home_timeline",
                 "get_list_tweets", "get_quote_tweets", "get_liked_tweets")
] + ["test_client_bookmarks.yaml", "test_asyncclient_bookmarks.yaml"]


@pytest.mark.parametrize("name", TWEET_CASSETTES)
def test_every_recorded_post_listing_is_read(name: str) -> None:
    interaction = get(name, "/2/")
    if "bookmarks" in name:
        interaction = get(name, "/2/users/1072250532645998596/bookmarks")
    body = interaction.json()
    data = body["data"] if isinstance(body["data"], list) else [body["data"]]
    includes = Includes(body.get("includes"))
    assert data, "the recording holds no posts"
    for record in data:
        item = parse_tweet(record, ACCOUNT, includes)
        assert item.id == record["id"] and item.platform == "x"
        assert item.text == html.unescape(record["text"])
        # recorded without tweet.fields: the time comes from the id
        assert int(item.created_at.timestamp() * 1000) == snowflake_ms(record["id"])
        assert item.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert item.thread_id == record.get("conversation_id", record["id"])
        assert item.visibility is Visibility.public
        assert item.url == f"https://x.com/i/web/status/{record['id']}"
        assert item.raw == record


@pytest.mark.parametrize(("name", "written", "escaped"), [
    ("test_client_get_list_tweets.yaml", "Q&A", "Q&amp;A"),
    ("test_client_get_home_timeline.yaml", "via @Twitter < great feature", "&lt; great"),
])
def test_a_post_reads_as_its_readers_see_it_not_html_escaped(name: str, written: str,
                                                             escaped: str) -> None:
    """X sends "&", "<" and ">" escaped as HTML; the item holds what the post shows, so the
    rules read it and Slack and the console show it (each escapes it for its own output)."""
    for interaction in load_cassette(name):
        body = interaction.json() if interaction.method == "GET" else {}
        data = body.get("data")
        for record in data if isinstance(data, list) else [data] if data else []:
            if escaped in record.get("text", ""):
                item = parse_tweet(record, ACCOUNT, Includes(body.get("includes")))
                assert written in item.text and escaped not in item.text
                return
    raise AssertionError(f"{name}: no recorded post holds {escaped!r}")


def test_the_time_of_a_recorded_post_is_read_from_its_id() -> None:
    # @TwitterDev announced the v2 API on 12 August 2020
    record = get("test_client_get_tweet.yaml").json()["data"]
    item = parse_tweet(record, ACCOUNT)
    assert item.created_at == datetime(2020, 8, 12, 17, 1, 42, 686000, tzinfo=UTC)


def test_a_full_payload_maps_authors_replies_threads_and_media() -> None:
    """A recorded mention, with the fields and expansions the connector asks for added (as the
    API returns them): author, reply-to, conversation, a photo and a video."""
    record = copy.deepcopy(get("test_client_get_users_mentions.yaml").json()["data"][0])
    record.update(
        author_id="2244994945", conversation_id="1578500000000000000",
        created_at="2022-10-07T22:43:00.000Z",
        referenced_tweets=[{"type": "replied_to", "id": "1578500000000000001"}],
        attachments={"media_keys": ["3_1", "7_2"]},
    )
    includes = Includes({
        "users": [{"id": "2244994945", "username": "TwitterDev", "name": "Twitter Dev"}],
        "media": [
            {"media_key": "3_1", "type": "photo", "url": "https://pbs.twimg.com/media/a.jpg"},
            {"media_key": "7_2", "type": "video", "preview_image_url": "https://p/b.jpg",
             "variants": [
                 {"content_type": "application/x-mpegURL", "url": "https://v/b.m3u8"},
                 {"content_type": "video/mp4", "bit_rate": 256000, "url": "https://v/lo.mp4"},
                 {"content_type": "video/mp4", "bit_rate": 832000, "url": "https://v/hi.mp4"},
             ]},
        ],
    })
    item = parse_tweet(record, ACCOUNT, includes)
    assert item.kind is ItemKind.reply
    assert (item.author.id, item.author.handle, item.author.name) == (
        "2244994945", "TwitterDev", "Twitter Dev")
    assert item.parent_id == "1578500000000000001"
    assert item.thread_id == "1578500000000000000"
    assert item.created_at == datetime(2022, 10, 7, 22, 43, tzinfo=UTC)
    # the photo and the video (its best mp4), then the video's still to read as a thumbnail
    assert [(m.url, m.mime_type, m.thumbnail) for m in item.media] == [
        ("https://pbs.twimg.com/media/a.jpg", "image/jpeg", False),
        ("https://v/hi.mp4", "video/mp4", False), ("https://p/b.jpg", "image/jpeg", True)]
    assert item.url == f"https://x.com/TwitterDev/status/{record['id']}"


def test_a_post_by_a_protected_account_is_followers_only() -> None:
    record = dict(get("test_client_get_tweet.yaml").json()["data"], author_id="99")
    includes = Includes({"users": [{"id": "99", "username": "quiet", "protected": True}]})
    assert parse_tweet(record, ACCOUNT, includes).visibility is Visibility.followers


@pytest.mark.parametrize("name", ["test_manage_and_lookup_direct_messages.yaml",
                                  "test_asyncclient_manage_and_lookup_direct_messages.yaml"])
def test_every_recorded_direct_message_event_is_read(name: str) -> None:
    listings = [i for i in load_cassette(name) if i.method == "GET" and i.json().get("data")]
    assert listings
    for interaction in listings:
        conversation = interaction.url.path.split("/")[3]
        for record in interaction.json()["data"]:
            item = parse_dm_event(dict(record, dm_conversation_id=conversation), ACCOUNT)
            assert item is not None
            assert item.id == record["id"] and item.text == record["text"]
            assert item.kind is ItemKind.direct_message
            assert item.visibility is Visibility.direct
            assert item.thread_id == conversation
            assert int(item.created_at.timestamp() * 1000) == snowflake_ms(record["id"])


def test_a_direct_message_names_sender_and_recipient() -> None:
    listing = get("test_manage_and_lookup_direct_messages.yaml", "/2/dm_conversations/").json()
    record = dict(listing["data"][0], sender_id="1072250532645998596",
                  dm_conversation_id="750362064426721281-1072250532645998596")
    own = Person(id="1072250532645998596", handle="TweepyDev")
    item = parse_dm_event(record, ACCOUNT, Includes({"users": [
        {"id": "750362064426721281", "username": "someone"}]}), own)
    assert item is not None
    assert item.author == own
    assert [(p.id, p.handle) for p in item.recipients] == [("750362064426721281", "someone")]


# --- a poll, moderation and account facts replayed -------------------------------------------

def connector(clock: float, waits: list[float] | None = None, **extra: Any) -> XConnector:
    settings = XSettings(name="x", type="x", account=ACCOUNT, user_id="783214",
                         username="Twitter", access_token="x-token", base_url=BASE, **extra)
    return XConnector(settings, client=httpx.Client(),
                      sleep=(waits.append if waits is not None else lambda s: None),
                      clock=lambda: clock)


@respx.mock(assert_all_mocked=True)
def test_an_x_poll_reads_posts_mentions_replies_and_messages(respx_mock: respx.MockRouter
                                                             ) -> None:
    tweets = get("test_client_get_users_tweets.yaml")
    mentions = get("test_client_get_users_mentions.yaml")
    replies = get("test_client_search_recent_tweets.yaml")
    dms = next(i for i in load_cassette("test_manage_and_lookup_direct_messages.yaml")
           if i.url.path == "/2/dm_events")
    own = copy.deepcopy(tweets.json())
    own["meta"].pop("next_token")
    m = copy.deepcopy(mentions.json())
    m["meta"].pop("next_token")
    r = copy.deepcopy(replies.json())
    r["meta"].pop("next_token", None)
    route(respx_mock, tweets, BASE, body=own)
    mentions_route = route(respx_mock, mentions, BASE, body=m)
    search = route(respx_mock, replies, BASE, body=r)
    route(respx_mock, dms, BASE)
    # two days after the account's newest recorded post: its conversation is searched
    newest = own["data"][0]["id"]
    now = snowflake_ms(newest) / 1000 + 2 * 86400
    result = connector(now).fetch(None)

    assert result.problems == []
    ids = {i.id for i in result.items}
    assert {t["id"] for t in own["data"] + m["data"] + r["data"]} == ids
    own_items = [i for i in result.items if i.id in {t["id"] for t in own["data"]}]
    assert all(i.author.id == "783214" and i.author.handle == "Twitter" for i in own_items)
    query = search.calls.last.request.url.params["query"]
    assert query == f"conversation_id:{newest}"
    assert result.cursor is not None
    assert result.cursor["mentions_since_id"] == m["meta"]["newest_id"]
    assert newest in result.cursor["conversations"]
    # own posts of the last 7 days and the conversation's replies were listed completely
    assert any(w.parent_id is None for w in result.windows)
    assert [w.parent_id for w in result.windows if w.parent_id] == [newest]
    # the next poll asks only for newer mentions
    connector(now + 300).fetch(result.cursor)
    assert mentions_route.calls.last.request.url.params["since_id"] == m["meta"]["newest_id"]


@respx.mock(assert_all_mocked=True)
def test_x_rate_limit_headers_pause_until_the_reset(respx_mock: respx.MockRouter) -> None:
    tweets = get("test_client_get_users_tweets.yaml")
    body = copy.deepcopy(tweets.json())
    body["meta"].pop("next_token")
    now = 1_700_000_000.0
    exhausted = httpx.Response(200, json=body, headers={
        **tweets.headers, "x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(now) + 90)})
    refused = httpx.Response(429, headers={"x-rate-limit-remaining": "0",
                                           "x-rate-limit-reset": str(int(now) + 45)})
    respx_mock.get(f"{BASE}/2/users/783214/tweets").mock(side_effect=[refused, exhausted])
    waits: list[float] = []
    result = connector(now, waits, read_mentions=False, read_replies=False,
                       read_direct_messages=False).fetch(None)
    assert waits == [45.0, 90.0]  # the 429 until its reset, then the pause before going on
    assert len(result.items) == 2


def reply_item(tweet_id: str, author: str = "2244994945") -> Item:
    return Item(id=tweet_id, platform="x", account=ACCOUNT, kind=ItemKind.reply,
                author=Person(id=author), created_at=datetime(2021, 1, 1, tzinfo=UTC),
                parent_id="1", thread_id="1")


@respx.mock(assert_all_mocked=True)
def test_hiding_and_unhiding_a_reply_replays_the_recorded_exchange(
        respx_mock: respx.MockRouter) -> None:
    hide, unhide = load_cassette("test_client_hide_and_unhide_reply.yaml")
    target = respx_mock.put(f"{BASE}{hide.url.path}").mock(
        side_effect=[hide.response(), unhide.response()])
    x = connector(1_700_000_000)
    item = reply_item(hide.url.path.split("/")[3])
    assert x.moderate(item, ModerationAction.hide_reply).ok
    assert x.moderate(item, ModerationAction.unhide).ok
    sent = [call.request for call in target.calls]
    assert [r.method for r in sent] == ["PUT", "PUT"]
    assert [json.loads(r.content) for r in sent] == [
        json.loads(hide.request_body or b""), json.loads(unhide.request_body or b"")]
    assert json.loads(sent[0].content) == {"hidden": True}
    assert all(r.headers["authorization"] == "Bearer x-token" for r in sent)


@respx.mock(assert_all_mocked=True)
def test_deleting_an_own_post_replays_the_recorded_exchange(respx_mock: respx.MockRouter
                                                            ) -> None:
    (delete,) = [i for i in load_cassette("test_client_create_and_delete_tweet.yaml")
                 if i.method == "DELETE"]
    target = respx_mock.delete(f"{BASE}{delete.url.path}").mock(return_value=delete.response())
    post = reply_item(delete.url.path.rsplit("/", 1)[1], author="783214").model_copy(
        update={"kind": ItemKind.post})
    assert connector(1_700_000_000).moderate(post, ModerationAction.delete).ok
    assert target.called


def test_someone_elses_post_cannot_be_deleted_or_a_post_hidden() -> None:
    x = connector(1_700_000_000)
    with pytest.raises(FatalError, match="only its own posts"):
        x.moderate(reply_item("5"), ModerationAction.delete)
    with pytest.raises(FatalError, match="only replies"):
        x.moderate(reply_item("5").model_copy(update={"kind": ItemKind.post}),
                   ModerationAction.hide)


@respx.mock(assert_all_mocked=True)
def test_account_facts_list_every_account_followed(respx_mock: respx.MockRouter) -> None:
    following = get("test_client_get_users_following.yaml")
    me = get("test_client_get_me.yaml")
    respx_mock.get(f"{BASE}/2/users/783214").mock(return_value=me.response(
        {"data": dict(me.json()["data"], protected=False)}))
    route(respx_mock, following, BASE)
    facts = connector(1_700_000_000).account_facts()
    listed = following.json()["data"]
    assert len(facts.follows) == len(listed) == 35
    assert facts.follows[0] == "@TwitterAsians"
    assert facts.extra["following_ids"][0] == "738118487122419712"
    assert facts.privacy == {"protected": False}
