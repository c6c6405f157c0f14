"""TikTok (documented response shapes only: tests/data/tiktok is invented, see its README):
videos and comments become items; paging on cursor/has_more; errors in the body are treated as
their HTTP meaning; hide/unhide/delete send the documented calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import FatalError, ModerationAction
from connectors.tiktok import TikTokConnector, TikTokSettings, comment_item
from governance_bot.items import ItemKind, Visibility
from tests.social.conftest import Sleeps

BASE = "https://tiktok.test/open_api/v1.3"
DATA = Path(__file__).resolve().parent.parent / "data" / "tiktok"
TOKEN = "act.tiktok-secret-token"
BUSINESS = "-000brookfield-open-id"
NOW = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
V1 = "7439000000000000001"


def data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def ok(name: str) -> httpx.Response:
    return httpx.Response(200, json=data(name))


def connector(client: httpx.Client, sleeps: Sleeps, **extra: Any) -> TikTokConnector:
    settings = TikTokSettings.model_validate({
        "name": "tt", "type": "tiktok", "account": "brookfield-tiktok", "business_id": BUSINESS,
        "access_token": TOKEN, "base_url": BASE, **extra,
    })
    return TikTokConnector(settings, client=client, sleep=sleeps, clock=NOW.timestamp)


def install(router: respx.Router) -> dict[str, respx.Route]:
    def comments(request: httpx.Request) -> httpx.Response:
        return ok("comment_list_v1.json" if request.url.params["video_id"] == V1
                  else "comment_list_empty.json")

    return {
        "videos": router.get(f"{BASE}/business/video/list/").mock(
            side_effect=[ok("video_list_p1.json"), ok("video_list_p2.json")]),
        "comments": router.get(f"{BASE}/business/comment/list/").mock(side_effect=comments),
        "replies": router.get(f"{BASE}/business/comment/reply/list/").mock(
            return_value=ok("reply_list_c11.json")),
    }


def test_videos_comments_and_replies_are_read_with_paging(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    result = connector(client, sleeps).fetch(None)
    assert routes["videos"].call_count == 2
    first = routes["videos"].calls[0].request
    assert first.headers["Access-Token"] == TOKEN
    assert json.loads(first.url.params["fields"])[0] == "item_id"
    assert routes["videos"].calls[1].request.url.params["cursor"] == "1794916800000"
    got = {i.id: i for i in result.items}
    assert set(got) == {V1, "7438000000000000002", "7437000000000000003",
                        "7439100000000000011", "7439100000000000012", "7439100000000000013"}
    video = got[V1]
    assert (video.kind, video.parent_id, video.text) == (
        ItemKind.post, BUSINESS, "Year 7 science fair highlights #STEM")
    assert video.created_at == datetime(2026, 11, 19, 12, 0, tzinfo=UTC)
    assert video.media[0].mime_type == "image/jpeg"
    top = got["7439100000000000011"]
    assert (top.kind, top.parent_id, top.thread_id) == (ItemKind.comment, V1, V1)
    assert (top.author.id, top.author.handle, top.author.name) == (
        "uid-grandma_jean", "grandma_jean", "Jean")
    assert got["7439100000000000012"].visibility == Visibility.private  # already hidden
    reply = got["7439100000000000013"]
    assert (reply.kind, reply.parent_id) == (ItemKind.reply, "7439100000000000011")
    assert routes["replies"].calls.last.request.url.params["comment_id"] == "7439100000000000011"
    assert result.problems == []


def test_a_revoked_token_reported_in_the_body_is_fatal_with_the_fix(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.get(f"{BASE}/business/video/list/").mock(return_value=ok("error_token_revoked.json"))
    with pytest.raises(FatalError) as err:
        connector(client, sleeps).fetch(None)
    assert "brookfield-tiktok" in str(err.value) and "reauthorise" in str(err.value)
    assert TOKEN not in str(err.value)


def test_too_many_requests_in_the_body_is_retried_after_backoff(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    routes["videos"].side_effect = [ok("error_rate_limited.json"), ok("video_list_p1.json"),
                                    ok("video_list_p2.json")]
    result = connector(client, sleeps).fetch(None)
    assert len(sleeps) == 1 and sleeps[0] > 0
    assert any(i.id == V1 for i in result.items)


def test_a_comment_without_a_time_is_skipped_and_named(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    routes = install(router)
    bad = data("comment_list_v1.json")
    del bad["data"]["comments"][1]["create_time"]
    routes["comments"].side_effect = lambda request: httpx.Response(
        200, json=bad if request.url.params["video_id"] == V1 else data("comment_list_empty.json"))
    result = connector(client, sleeps).fetch(None)
    assert "7439100000000000012" not in {i.id for i in result.items}
    assert len(result.problems) == 1
    assert f"business/comment/list/ video {V1}, record 1" in result.problems[0]


@pytest.mark.parametrize(("action", "verb"), [(ModerationAction.hide, "HIDE"),
                                              (ModerationAction.unhide, "UNHIDE")])
def test_hiding_a_comment_sends_the_documented_call(
    action: ModerationAction, verb: str, router: respx.Router, client: httpx.Client,
    sleeps: Sleeps,
):
    route = router.post(f"{BASE}/business/comment/hide/").mock(return_value=ok("ok_empty.json"))
    item = comment_item(data("comment_list_v1.json")["data"]["comments"][0], "acct", V1)
    assert connector(client, sleeps).moderate(item, action).ok
    assert json.loads(route.calls.last.request.content) == {
        "business_id": BUSINESS, "video_id": V1, "comment_id": "7439100000000000011",
        "action": verb}


def test_only_the_account_s_own_comment_can_be_deleted(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    route = router.post(f"{BASE}/business/comment/delete/").mock(return_value=ok("ok_empty.json"))
    tt = connector(client, sleeps)
    stranger = comment_item(data("comment_list_v1.json")["data"]["comments"][0], "acct", V1)
    refused = tt.moderate(stranger, ModerationAction.delete)
    assert not refused.ok and "hide" in refused.detail and not route.called
    own = comment_item(data("reply_list_c11.json")["data"]["comments"][0], "acct", V1)
    assert tt.moderate(own, ModerationAction.delete).ok
    assert json.loads(route.calls.last.request.content) == {
        "business_id": BUSINESS, "comment_id": "7439100000000000013"}


def test_account_facts_report_the_business_account(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.get(f"{BASE}/business/get/").mock(return_value=ok("business_get.json"))
    facts = connector(client, sleeps).account_facts()
    assert facts.privacy == {"is_business_account": True}
    assert facts.extra["username"] == "brookfieldacademy"


@pytest.mark.parametrize("value", ["07700 900123 Maisie", "", None, "2026-13-45T99:00:00Z"])
def test_a_broken_timestamp_is_reported_without_repeating_it(value: Any):
    from connectors.base import parse_time as to_utc

    with pytest.raises(ValueError) as err:
        to_utc(value)
    assert "Maisie" not in str(err.value) and "07700" not in str(err.value)


def test_the_day_long_access_token_is_renewed_with_the_refresh_token(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    refresh = router.post(f"{BASE}/tt_user/oauth2/refresh_token/").mock(side_effect=[
        httpx.Response(200, json={"code": 0, "message": "OK", "request_id": "r", "data": {
            "access_token": "act.fresh-1", "expires_in": 86400,
            "refresh_token": "rft.rotated", "open_id": BUSINESS}}),
        httpx.Response(200, json={"code": 0, "message": "OK", "request_id": "r", "data": {
            "access_token": "act.fresh-2", "expires_in": 86400, "refresh_token": "rft.next"}}),
    ])
    account = router.get(f"{BASE}/business/get/").mock(return_value=ok("business_get.json"))
    clock = [NOW.timestamp()]
    tt = connector(client, sleeps, access_token=None, refresh_token="rft.first-secret",
                   client_id="7300000000000000000", client_secret="app-secret")
    tt.clock = lambda: clock[0]
    tt.account_facts()
    tt.account_facts()
    assert refresh.call_count == 1
    assert json.loads(refresh.calls[0].request.content) == {
        "client_id": "7300000000000000000", "client_secret": "app-secret",
        "grant_type": "refresh_token", "refresh_token": "rft.first-secret"}
    assert account.calls.last.request.headers["Access-Token"] == "act.fresh-1"
    clock[0] += 86400
    tt.account_facts()
    assert json.loads(refresh.calls[1].request.content)["refresh_token"] == "rft.rotated"
    assert account.calls.last.request.headers["Access-Token"] == "act.fresh-2"
    assert "rft." not in repr(tt) and "app-secret" not in repr(tt)


def test_a_refused_refresh_token_is_fatal_with_the_fix(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    router.post(f"{BASE}/tt_user/oauth2/refresh_token/").mock(return_value=httpx.Response(
        200, json={"code": 40105, "message": "refresh token invalid", "request_id": "r",
                   "data": {}}))
    tt = connector(client, sleeps, access_token=None, refresh_token="rft.old",
                   client_id="7300000000000000000", client_secret="app-secret")
    with pytest.raises(FatalError) as err:
        tt.fetch(None)
    assert "reauthorise" in str(err.value) and "rft.old" not in str(err.value)


def test_credentials_must_be_given_one_way_or_the_other():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="refresh_token"):
        TikTokSettings.model_validate({"name": "t", "type": "tiktok", "account": "a",
                                       "business_id": "b"})
    with pytest.raises(ValidationError, match="client_id and client_secret"):
        TikTokSettings.model_validate({"name": "t", "type": "tiktok", "account": "a",
                                       "business_id": "b", "refresh_token": "r"})
