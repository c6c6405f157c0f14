"""Bluesky: the recorded real records and thread view, and invented lexicon-shaped listings
(tests/data/bluesky, README there), become items with AT URIs, authors, reply parents and roots,
UTC times and images; deleting and hiding replies send the documented XRPC calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import FatalError, ModerationAction
from connectors.bluesky import (
    BlueskyConnector,
    BlueskySettings,
    post_item,
    thread_items,
    thread_listing,
)
from governance_bot.items import ItemKind, Visibility
from tests.shared import require_shared
from tests.social.conftest import Sleeps

PDS = "https://pds.test"
XRPC = f"{PDS}/xrpc"
DATA = Path(__file__).resolve().parent.parent / "data" / "bluesky"
PASSWORD = "abcd-efgh-ijkl-mnop"
ORG = "did:plc:brkfld7acdmy2schl3exmpl4"
NOW = datetime(2026, 11, 19, 12, 0, tzinfo=UTC)


def data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def recorded(name: str) -> Any:
    return json.loads(require_shared("fixtures", "bluesky", name).read_text())


def connector(client: httpx.Client, sleeps: Sleeps, **extra: Any) -> BlueskyConnector:
    settings = BlueskySettings.model_validate({
        "name": "bsky", "type": "bluesky", "account": "brookfield-bluesky",
        "identifier": "brookfieldacademy.bsky.social", "app_password": PASSWORD,
        "base_url": PDS, **extra,
    })
    return BlueskyConnector(settings, client=client, sleep=sleeps, clock=NOW.timestamp)


def install(router: respx.Router) -> dict[str, respx.Route]:
    threads = {
        f"at://{ORG}/app.bsky.feed.post/3lsportsday01": "getPostThread_sportsday.json",
        f"at://{ORG}/app.bsky.feed.post/3lopenevening2": "getPostThread_openevening.json",
        f"at://{ORG}/app.bsky.feed.post/3lbakesale0003": "getPostThread_bakesale.json",
    }

    def thread(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=data(threads[request.url.params["uri"]]))

    return {
        "session": router.post(f"{XRPC}/com.atproto.server.createSession").mock(
            return_value=httpx.Response(200, json=data("createSession.json"))),
        "feed": router.get(f"{XRPC}/app.bsky.feed.getAuthorFeed").mock(side_effect=[
            httpx.Response(200, json=data("getAuthorFeed_p1.json")),
            httpx.Response(200, json=data("getAuthorFeed_p2.json")),
        ]),
        "thread": router.get(f"{XRPC}/app.bsky.feed.getPostThread").mock(side_effect=thread),
        "notes": router.get(f"{XRPC}/app.bsky.notification.listNotifications").mock(
            return_value=httpx.Response(200, json=data("listNotifications.json"))),
    }


@pytest.mark.shared
def test_the_recorded_thread_view_with_an_image_becomes_a_post_with_its_media():
    view = recorded("thread_view_post_with_embed_media.json")
    items, skipped = thread_items(view["thread"], "acct")
    assert skipped == [] and len(items) == 1
    post = items[0]
    assert post.id == "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kaheyt6vpc22"
    assert post.kind == ItemKind.post
    assert (post.author.id, post.author.handle, post.author.name) == (
        "did:plc:kvwvcn5iqfooopmyzvb4qzba", "test.marshal.dev", "I love Python 3")
    assert post.created_at == datetime(2023, 9, 28, 12, 49, 36, 735000, tzinfo=UTC)
    # the post has no text of its own; a reader sees the post it quotes, so the detectors do
    (quoted,) = post.parts
    assert (quoted.source, quoted.ref) == (
        "quoted post", "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3kahesw26il2z")
    assert post.text[quoted.start:quoted.end] == "@test.marshal.dev:\ntest"
    assert post.quoted_id == quoted.ref  # type: ignore[attr-defined]
    assert [(m.url, m.mime_type) for m in post.media] == [(
        "https://cdn.bsky.app/img/feed_fullsize/plain/did:plc:kvwvcn5iqfooopmyzvb4qzba/"
        "bafkreic3cp5ky525vsukjvrzxsc2h3jka2gud74l2hgeatw2rhj2qycnmq@jpeg", "image/jpeg")]
    assert post.url == "https://bsky.app/profile/test.marshal.dev/post/3kaheyt6vpc22"
    assert post.visibility == Visibility.public and post.thread_id == post.id


@pytest.mark.shared
def test_the_recorded_post_record_with_an_offset_time_is_read_in_utc():
    record = recorded("post_record.json")
    item = post_item(record, "acct")
    assert item.id == "at://did:plc:kvwvcn5iqfooopmyzvb4qzba/app.bsky.feed.post/3k2yihcrp6f2c"
    assert item.author.id == "did:plc:kvwvcn5iqfooopmyzvb4qzba"
    assert item.text == "new text114"
    assert item.created_at == datetime(2024, 2, 22, 19, 58, 13, 903293, tzinfo=UTC)


@pytest.mark.shared
def test_a_recorded_record_that_is_not_a_post_is_refused_clearly():
    with pytest.raises(ValueError, match=r"not a post: app\.bsky\.feed\.generator"):
        post_item(recorded("feed_record.json"), "acct")


def test_fetch_signs_in_pages_the_feed_and_reads_reply_trees_and_notifications(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    result = connector(client, sleeps).fetch(None)
    sent = json.loads(routes["session"].calls.last.request.content)
    assert sent == {"identifier": "brookfieldacademy.bsky.social", "password": PASSWORD}
    assert routes["feed"].call_count == 2
    assert routes["feed"].calls[1].request.url.params["cursor"] == \
        "2026-11-17T09:30:00.000Z::bafyreip2"
    auth = routes["feed"].calls[0].request.headers["Authorization"]
    assert auth == "Bearer eyJhbGciOiJIUzI1NiJ9.invented-access.sig"
    got = {i.id.rsplit("/", 1)[1]: i for i in result.items}
    # three own posts, two replies, one mention; the repost and the like are not ours to read
    assert sorted(got) == sorted(["3lsportsday01", "3lopenevening2", "3lbakesale0003",
                                  "3lreplyparent1", "3lreplynews002", "3lmention00006"])
    sports = got["3lsportsday01"]
    assert sports.parent_id == ORG and sports.media[0].alt_text == "Relay race on the school field"
    first, second = got["3lreplyparent1"], got["3lreplynews002"]
    assert (first.kind, first.parent_id, first.thread_id) == (ItemKind.reply, sports.id, sports.id)
    assert (second.parent_id, second.thread_id) == (first.id, sports.id)
    assert second.created_at == datetime(2026, 11, 18, 16, 45, 10, 500000, tzinfo=UTC)
    assert got["3lopenevening2"].created_at == datetime(2026, 11, 17, 9, 30, tzinfo=UTC)
    assert got["3lmention00006"].author.handle == "karenprice.bsky.social"
    assert result.problems == []
    # complete listings: the account's posts, and every node of each reply tree (the deleted
    # reply in the recorded tree is simply absent, so the archive will mark it deleted)
    assert {w.parent_id for w in result.windows} == {
        ORG, sports.id, got["3lopenevening2"].id, got["3lbakesale0003"].id, first.id, second.id}


def test_a_blocked_reply_leaves_its_parent_s_listing_incomplete():
    view = data("getPostThread_sportsday.json")
    view["thread"]["replies"][0]["replies"].append(
        {"$type": "app.bsky.feed.defs#blockedPost", "uri": "at://did:plc:x/app.bsky.feed.post/3b",
         "blocked": True, "author": {"did": "did:plc:x"}})
    items, skipped, incomplete = thread_listing(view["thread"], "acct")
    assert skipped == [] and len(items) == 3
    assert incomplete == {items[1].id}


def test_a_post_with_a_broken_record_is_skipped_and_named(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    page = data("getAuthorFeed_p1.json")
    page["feed"][2]["post"]["record"]["createdAt"] = "yesterday"
    routes["feed"].side_effect = [httpx.Response(200, json=page),
                                  httpx.Response(200, json=data("getAuthorFeed_p2.json"))]
    result = connector(client, sleeps).fetch(None)
    assert not any(i.id.endswith("3lopenevening2") for i in result.items)
    assert any(i.id.endswith("3lsportsday01") for i in result.items)
    assert len(result.problems) == 1 and "app.bsky.feed.getAuthorFeed" in result.problems[0]


def test_a_wrong_app_password_is_fatal_naming_the_account_and_the_fix(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.post(f"{XRPC}/com.atproto.server.createSession").mock(return_value=httpx.Response(
        401, json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"}))
    with pytest.raises(FatalError) as err:
        connector(client, sleeps).fetch(None)
    assert "brookfield-bluesky" in str(err.value) and "app password" in str(err.value)
    assert PASSWORD not in str(err.value)


def test_deleting_an_own_post_sends_delete_record(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    install(router)
    delete = router.post(f"{XRPC}/com.atproto.repo.deleteRecord").mock(
        return_value=httpx.Response(200, json={}))
    post = post_item(data("getAuthorFeed_p1.json")["feed"][0]["post"], "acct")
    bsky = connector(client, sleeps)
    assert bsky.moderate(post, ModerationAction.delete).ok
    assert json.loads(delete.calls.last.request.content) == {
        "repo": ORG, "collection": "app.bsky.feed.post", "rkey": "3lsportsday01"}


def test_someone_else_s_post_cannot_be_deleted_only_hidden(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    install(router)
    delete = router.post(f"{XRPC}/com.atproto.repo.deleteRecord")
    items, _ = thread_items(data("getPostThread_sportsday.json")["thread"], "acct")
    reply = items[1]
    result = connector(client, sleeps).moderate(reply, ModerationAction.delete)
    assert not result.ok and "hide" in result.detail and not delete.called


def test_hiding_a_reply_adds_it_to_the_threadgate_of_the_thread(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    install(router)
    put = router.post(f"{XRPC}/com.atproto.repo.putRecord").mock(
        return_value=httpx.Response(200, json={"uri": "at://x", "cid": "y"}))
    items, _ = thread_items(data("getPostThread_sportsday.json")["thread"], "acct")
    reply = items[2]
    assert connector(client, sleeps).moderate(reply, ModerationAction.hide_reply).ok
    body = json.loads(put.calls.last.request.content)
    assert body["repo"] == ORG and body["collection"] == "app.bsky.feed.threadgate"
    assert body["rkey"] == "3lsportsday01"
    assert body["record"]["$type"] == "app.bsky.feed.threadgate"
    assert body["record"]["post"] == items[0].id
    assert body["record"]["hiddenReplies"] == [reply.id]
    assert "allow" not in body["record"]  # who may reply is left as it was


def test_hiding_keeps_an_existing_threadgate_s_rules_and_hidden_replies(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    view = data("getPostThread_sportsday.json")
    existing = {"$type": "app.bsky.feed.threadgate", "post": view["thread"]["post"]["uri"],
                "createdAt": "2026-11-18T15:05:00Z", "allow": [
                    {"$type": "app.bsky.feed.threadgate#followingRule"}],
                "hiddenReplies": ["at://did:plc:other/app.bsky.feed.post/3lold"]}
    view["threadgate"] = {"uri": "at://gate", "cid": "c", "record": existing, "lists": []}
    routes["thread"].side_effect = None
    routes["thread"].return_value = httpx.Response(200, json=view)
    put = router.post(f"{XRPC}/com.atproto.repo.putRecord").mock(
        return_value=httpx.Response(200, json={}))
    items, _ = thread_items(view["thread"], "acct")
    connector(client, sleeps).moderate(items[1], ModerationAction.hide_reply)
    record = json.loads(put.calls.last.request.content)["record"]
    assert record["allow"] == existing["allow"]
    assert record["hiddenReplies"] == [*existing["hiddenReplies"], items[1].id]
    assert record["createdAt"] == "2026-11-18T15:05:00Z"


def test_closing_a_thread_to_replies_writes_an_empty_allow_list(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    install(router)
    put = router.post(f"{XRPC}/com.atproto.repo.putRecord").mock(
        return_value=httpx.Response(200, json={}))
    items, _ = thread_items(data("getPostThread_sportsday.json")["thread"], "acct")
    connector(client, sleeps).moderate(items[1], ModerationAction.restrict_replies)
    assert json.loads(put.calls.last.request.content)["record"]["allow"] == []


def test_the_session_is_reused_then_refreshed_and_secrets_stay_hidden(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    refresh = router.post(f"{XRPC}/com.atproto.server.refreshSession").mock(
        return_value=httpx.Response(200, json=data("createSession.json")))
    clock = [NOW.timestamp()]
    bsky = connector(client, sleeps)
    bsky.clock = lambda: clock[0]
    bsky.ensure_session()
    bsky.ensure_session()
    assert routes["session"].call_count == 1 and refresh.call_count == 0
    clock[0] += 2 * 3600
    bsky.ensure_session()
    assert refresh.call_count == 1
    assert refresh.calls.last.request.headers["Authorization"].endswith("invented-refresh.sig")
    assert PASSWORD not in repr(bsky) and "invented-access" not in repr(bsky)


def test_account_facts_list_the_accounts_followed(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    install(router)
    router.get(f"{XRPC}/app.bsky.graph.getFollows").mock(side_effect=[
        httpx.Response(200, json={"follows": [{"did": "did:plc:a", "handle": "a.bsky.social"}],
                                  "cursor": "c1"}),
        httpx.Response(200, json={"follows": [{"did": "did:plc:b",
                                               "handle": "jaydenprice10.bsky.social"}]}),
    ])
    facts = connector(client, sleeps).account_facts()
    assert facts.follows == ["a.bsky.social", "jaydenprice10.bsky.social"]


def test_near_the_rate_limit_the_connector_waits_for_the_reset(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    reset = NOW.timestamp() + 42
    router.post(f"{XRPC}/com.atproto.server.createSession").mock(return_value=httpx.Response(
        200, json=data("createSession.json"),
        headers={"RateLimit-Limit": "30", "RateLimit-Remaining": "1",
                 "RateLimit-Reset": str(int(reset))}))
    connector(client, sleeps).ensure_session()
    assert sleeps == [42.0]


def test_an_expired_token_is_reported_as_refused_credentials(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    install(router)
    router.get(f"{XRPC}/app.bsky.feed.getAuthorFeed").mock(return_value=httpx.Response(
        400, json={"error": "ExpiredToken", "message": "Token has expired"}))
    with pytest.raises(FatalError, match="refused the credentials"):
        connector(client, sleeps).fetch(None)


def test_a_post_deleted_before_its_thread_is_read_does_not_stop_the_poll(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    normal = routes["thread"].side_effect

    def thread(request: httpx.Request) -> httpx.Response:
        if request.url.params["uri"].endswith("3lopenevening2"):
            return httpx.Response(400, json={"error": "NotFound", "message": "Post not found"})
        return normal(request)

    routes["thread"].side_effect = thread
    result = connector(client, sleeps).fetch(None)
    assert any(i.id.endswith("3lreplynews002") for i in result.items)
    assert not any(w.parent_id and w.parent_id.endswith("3lopenevening2") for w in result.windows)
