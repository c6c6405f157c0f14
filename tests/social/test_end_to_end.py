"""End to end, per platform: a recorded (or, for TikTok, documented-shape) response with a
learner's details edited into a copy -> the connector's items -> the detection engine with the
example registers -> a learner_pii flag for the account managers -> the removal a designated
manager approves -> the exact HTTP call the platform receives.

Policy: "no identifying details of learners (name, phone number...) posted" on official accounts;
"remove inappropriate posts ... explain why" (P1 "Managing our online presence"; P2)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import Connector, ModerationAction
from connectors.bluesky import BlueskyConnector, BlueskySettings
from connectors.mastodon import MastodonConnector, MastodonSettings
from connectors.tiktok import TikTokConnector, TikTokSettings
from connectors.youtube import YouTubeConnector, YouTubeSettings
from governance_bot.classify import Classifier, registers_from_config
from governance_bot.config import Config
from governance_bot.findings import Category, Finding, Route
from governance_bot.history import MemoryHistory
from governance_bot.items import Item
from rules.engine import DetectionEngine
from tests.shared import require_shared
from tests.social.replay import load_cassette

DATA = Path(__file__).resolve().parent.parent / "data"
# the order a "remove" decision in Slack tries a platform's actions in
REMOVAL_PREFERENCE = [ModerationAction.reject, ModerationAction.hide,
                      ModerationAction.hide_reply, ModerationAction.delete]


@pytest.fixture
def classifier(make_config: Callable[..., Config]) -> Classifier:
    config = make_config()
    return Classifier(DetectionEngine.from_config(config, only=["learner_pii"]),
                      registers_from_config(config), MemoryHistory())


def flagged(classifier: Classifier, items: list[Item]) -> list[tuple[Item, list[Finding]]]:
    out = []
    for item in items:
        findings = [f for f in classifier.classify(item) if f.category == Category.learner_pii]
        if findings:
            out.append((item, findings))
    return out


def removal(connector: Connector, item: Item) -> ModerationAction:
    """What the Slack flow offers for "remove" on this item: the first action the connector can
    do (a reply on Bluesky is hidden; a post of the account's own is deleted)."""
    actions = connector.moderation_actions()
    if isinstance(connector, BlueskyConnector) and item.kind.value == "post":
        return ModerationAction.delete
    return next(a for a in REMOVAL_PREFERENCE if a in actions)


@pytest.mark.shared
def test_youtube_a_comment_naming_a_learner_with_a_phone_number_is_rejected(
    classifier: Classifier, router: respx.Router, client: httpx.Client,
):
    base = "https://yt.test/youtube/v3"
    page = json.loads(require_shared("fixtures", "youtube", "apidata", "comment_threads",
                                     "comment_threads_multi.json").read_text())
    page = copy.deepcopy(page)
    target = page["items"][1]
    target["snippet"]["topLevelComment"]["snippet"]["textOriginal"] = (
        "Maisie O'Connell was brilliant in the match, text her on 07700 900123")
    router.get(f"{base}/playlistItems").mock(return_value=httpx.Response(200, json={"items": []}))
    router.get(f"{base}/commentThreads").mock(return_value=httpx.Response(200, json=page))
    moderate = router.post(f"{base}/comments/setModerationStatus").mock(
        return_value=httpx.Response(204))
    yt = YouTubeConnector(YouTubeSettings.model_validate({
        "name": "yt", "type": "youtube", "account": "brookfield-youtube",
        "channel_id": "UC_x5XG1OV2P6uZZ5FSM9Ttw", "access_token": "t", "base_url": base,
        "backfill_days": 3650}), client=client, sleep=lambda s: None)

    hits = flagged(classifier, yt.fetch(None).items)
    assert [item.id for item, _ in hits] == [target["id"]]  # the untouched comment is clean
    item, findings = hits[0]
    assert {f.route for f in findings} == {Route.account_managers}
    assert any(f.evidence.register_entry == "learner:L002" for f in findings)

    action = removal(yt, item)
    assert action == ModerationAction.reject
    assert yt.moderate(item, action).ok
    request = moderate.calls.last.request
    assert request.method == "POST"
    assert request.url.path == "/youtube/v3/comments/setModerationStatus"
    assert dict(request.url.params) == {"id": target["id"], "moderationStatus": "rejected"}


@pytest.mark.shared
def test_mastodon_the_school_s_own_post_naming_a_learner_is_deleted(
    classifier: Classifier, router: respx.Router, client: httpx.Client,
):
    base = "http://localhost:3000"
    recorded = load_cassette(require_shared("fixtures", "mastodon", "cassettes",
                                            "test_fetch_next_previous.yaml"))
    me = next(i for i in recorded if i.uri.endswith("verify_credentials")).json()
    page = next(i for i in recorded if i.uri.endswith("/statuses?limit=5")).json()
    page = copy.deepcopy(page)
    target = page[3]
    target["content"] = ("<p>Congratulations to <a href=\"#\">Jayden Price</a> on his county "
                         "trial!</p>")
    router.get(f"{base}/api/v1/accounts/verify_credentials").mock(
        return_value=httpx.Response(200, json=me))
    router.get(url__startswith=f"{base}/api/v1/accounts/{me['id']}/statuses").mock(
        return_value=httpx.Response(200, json=page))
    router.get(url__regex=rf"{base}/api/v1/statuses/\d+/context").mock(
        return_value=httpx.Response(200, json={"ancestors": [], "descendants": []}))
    for path in ("notifications", "conversations"):
        router.get(url__startswith=f"{base}/api/v1/{path}").mock(
            return_value=httpx.Response(200, json=[]))
    delete = router.delete(f"{base}/api/v1/statuses/{target['id']}").mock(
        return_value=httpx.Response(200, json=target))
    masto = MastodonConnector(MastodonSettings.model_validate({
        "name": "m", "type": "mastodon", "account": "brookfield-mastodon", "base_url": base,
        "access_token": "t", "backfill_days": 3650}), client=client, sleep=lambda s: None,
        clock=lambda: datetime(2026, 8, 2, tzinfo=UTC).timestamp())

    hits = flagged(classifier, masto.fetch(None).items)
    assert [item.id for item, _ in hits] == [target["id"]]
    item, findings = hits[0]
    assert item.text == "Congratulations to Jayden Price on his county trial!"
    assert any(f.evidence.register_entry == "learner:L001" for f in findings)
    assert {f.route for f in findings} == {Route.account_managers}

    action = removal(masto, item)
    assert action == ModerationAction.delete
    assert masto.moderate(item, action).ok
    assert delete.call_count == 1
    assert delete.calls.last.request.method == "DELETE"


def _bluesky(router: respx.Router, client: httpx.Client, feed: dict[str, Any],
             thread: dict[str, Any]) -> BlueskyConnector:
    x = "https://pds.test/xrpc"
    router.post(f"{x}/com.atproto.server.createSession").mock(return_value=httpx.Response(
        200, json=json.loads((DATA / "bluesky" / "createSession.json").read_text())))
    router.get(f"{x}/app.bsky.feed.getAuthorFeed").mock(return_value=httpx.Response(200,
                                                                                    json=feed))
    router.get(f"{x}/app.bsky.feed.getPostThread").mock(return_value=httpx.Response(200,
                                                                                    json=thread))
    router.get(f"{x}/app.bsky.notification.listNotifications").mock(
        return_value=httpx.Response(200, json={"notifications": []}))
    return BlueskyConnector(BlueskySettings.model_validate({
        "name": "b", "type": "bluesky", "account": "brookfield-bluesky",
        "identifier": "brookfieldacademy.bsky.social", "app_password": "p",
        "base_url": "https://pds.test"}), client=client, sleep=lambda s: None,
        clock=lambda: datetime(2026, 11, 19, 12, tzinfo=UTC).timestamp())


def _bsky_data(name: str) -> Any:
    return json.loads((DATA / "bluesky" / name).read_text())


def test_bluesky_a_reply_naming_a_learner_is_hidden_with_the_threadgate(
    classifier: Classifier, router: respx.Router, client: httpx.Client,
):
    feed = {"feed": _bsky_data("getAuthorFeed_p1.json")["feed"][:1]}
    thread = _bsky_data("getPostThread_sportsday.json")
    reply = thread["thread"]["replies"][0]["post"]
    reply["record"]["text"] = "Olly Smith-Hughes won the relay! His number is 07700 900456"
    put = router.post("https://pds.test/xrpc/com.atproto.repo.putRecord").mock(
        return_value=httpx.Response(200, json={}))
    bsky = _bluesky(router, client, feed, thread)

    hits = flagged(classifier, bsky.fetch(None).items)
    assert [item.id for item, _ in hits] == [reply["uri"]]
    item, findings = hits[0]
    assert any(f.evidence.register_entry == "learner:L003" for f in findings)

    action = removal(bsky, item)
    assert action == ModerationAction.hide_reply
    assert bsky.moderate(item, action).ok
    body = json.loads(put.calls.last.request.content)
    root = thread["thread"]["post"]["uri"]
    assert body["collection"] == "app.bsky.feed.threadgate"
    assert body["rkey"] == root.rsplit("/", 1)[1]
    assert body["record"]["post"] == root and body["record"]["hiddenReplies"] == [reply["uri"]]


def test_bluesky_the_school_s_own_post_naming_a_learner_is_deleted(
    classifier: Classifier, router: respx.Router, client: httpx.Client,
):
    feed = {"feed": _bsky_data("getAuthorFeed_p1.json")["feed"][:1]}
    post = feed["feed"][0]["post"]
    post["record"]["text"] = "Well done Maisie O'Connell, player of the match!"
    thread = _bsky_data("getPostThread_sportsday.json")
    thread["thread"]["replies"] = []
    thread["thread"]["post"] = post  # the thread view shows the same post
    delete = router.post("https://pds.test/xrpc/com.atproto.repo.deleteRecord").mock(
        return_value=httpx.Response(200, json={}))
    bsky = _bluesky(router, client, feed, thread)

    hits = flagged(classifier, bsky.fetch(None).items)
    assert [item.id for item, _ in hits] == [post["uri"]]
    item, _ = hits[0]
    assert bsky.moderate(item, removal(bsky, item)).ok
    assert json.loads(delete.calls.last.request.content) == {
        "repo": "did:plc:brkfld7acdmy2schl3exmpl4", "collection": "app.bsky.feed.post",
        "rkey": "3lsportsday01"}


def test_tiktok_a_comment_naming_a_learner_is_hidden(
    classifier: Classifier, router: respx.Router, client: httpx.Client,
):
    base = "https://tiktok.test/open_api/v1.3"
    videos = json.loads((DATA / "tiktok" / "video_list_p2.json").read_text())
    comments = json.loads((DATA / "tiktok" / "comment_list_v1.json").read_text())
    video_id = videos["data"]["videos"][0]["item_id"]
    for c in comments["data"]["comments"]:
        c["video_id"], c["replies"] = video_id, 0
    target = comments["data"]["comments"][0]  # a public comment
    target["text"] = "That's Jayden Price from 9B in the thumbnail"
    router.get(f"{base}/business/video/list/").mock(return_value=httpx.Response(200,
                                                                                json=videos))
    router.get(f"{base}/business/comment/list/").mock(return_value=httpx.Response(200,
                                                                                  json=comments))
    hide = router.post(f"{base}/business/comment/hide/").mock(return_value=httpx.Response(
        200, json={"code": 0, "message": "OK", "request_id": "r", "data": {}}))
    tt = TikTokConnector(TikTokSettings.model_validate({
        "name": "t", "type": "tiktok", "account": "brookfield-tiktok", "business_id": "-000b",
        "access_token": "t", "base_url": base, "backfill_days": 3650}), client=client,
        sleep=lambda s: None, clock=lambda: datetime(2026, 11, 19, 15, tzinfo=UTC).timestamp())

    hits = flagged(classifier, tt.fetch(None).items)
    assert [item.id for item, _ in hits] == [target["comment_id"]]
    item, _ = hits[0]
    action = removal(tt, item)
    assert action == ModerationAction.hide
    assert tt.moderate(item, action).ok
    assert json.loads(hide.calls.last.request.content) == {
        "business_id": "-000b", "video_id": video_id, "comment_id": target["comment_id"],
        "action": "HIDE"}
