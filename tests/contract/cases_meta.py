"""Contract cases for the Meta Graph connectors, replaying recorded real Graph API answers from
../shared/fixtures/meta.

Their webhook deliveries are this project's own, shaped as Meta documents the Page ``feed`` and
Instagram ``comments`` / messaging events (the people are invented), signed like Meta signs."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import httpx
import respx

from tests.contract.harness import ContractCase, Delivery, Installed, MetaSigner, Webhooks
from tests.shared import require_shared

FB_TOKEN = "EAAGcontractPageToken0123456789abcdef"
FB_APP_SECRET = "contract-app-secret-42f1"
API = "v21.0"
FB_PAGE = "19292868552"


def meta_fixture(*parts: str) -> Any:
    path = require_shared("fixtures", "meta", *parts)
    return json.loads(path.read_text(encoding="utf-8"))


def _without_next(page: dict[str, Any]) -> dict[str, Any]:
    page = copy.deepcopy(page)
    if isinstance(page.get("paging"), dict):
        page["paging"].pop("next", None)
    return page


def _fb_settings(page_id: str) -> Any:
    def settings(base_url: str) -> dict[str, Any]:
        return {
            "type": "facebook",
            "page_id": page_id,
            "access_token": "${FB_PAGE_TOKEN}",
            "app_secret": "${FB_APP_SECRET}",
            "base_url": base_url,
            "read_messages": False,
        }
    return settings


def _empty_comments(router: respx.MockRouter, base_url: str) -> None:
    router.get(url__regex=re.escape(f"{base_url}/{API}/") + r"[^/]+/comments").mock(
        return_value=httpx.Response(200, json={"data": []}))


def _comment_ids(page: dict[str, Any]) -> set[str]:
    from connectors.facebook import parse_comment

    return {parse_comment(r, "x", "p").id for r in page["data"]}


def fb_page(router: respx.MockRouter, base_url: str) -> Installed:
    """A recorded feed (5 posts, one page); the first post has a page of 10 comments."""
    feed = _without_next(meta_fixture("facebook", "apidata", "posts", "feed_fields_p1.json"))
    comments = _without_next(meta_fixture("facebook", "apidata", "comments", "comments_p1.json"))
    first_post = feed["data"][0]["id"]
    first = router.get(f"{base_url}/{API}/{FB_PAGE}/feed").mock(
        return_value=httpx.Response(200, json=feed))
    router.get(f"{base_url}/{API}/{first_post}/comments").mock(
        return_value=httpx.Response(200, json=comments))
    _empty_comments(router, base_url)
    ids = {p["id"] for p in feed["data"]} | _comment_ids(comments)
    return Installed(ids=ids, first=first)


def fb_pages(router: respx.MockRouter, base_url: str) -> Installed:
    """Feed in two pages (recorded p1 -> p2 via paging.next) and comments in two pages."""
    p1 = meta_fixture("facebook", "apidata", "posts", "feeds_default_fields_p1.json")
    p2 = _without_next(meta_fixture("facebook", "apidata", "posts",
                                    "feeds_default_fields_p2.json"))
    c1 = meta_fixture("facebook", "apidata", "comments", "comments_p1.json")
    c2 = _without_next(meta_fixture("facebook", "apidata", "comments", "comments_p2.json"))

    def feed(request: httpx.Request) -> httpx.Response:
        assert "access_token" not in request.url.params, "the token leaked into a URL"
        return httpx.Response(200, json=p2 if request.url.params.get("after") else p1)

    first = router.get(f"{base_url}/{API}/{FB_PAGE}/feed").mock(side_effect=feed)
    post = p1["data"][0]["id"]
    router.get(f"{base_url}/{API}/{post}/comments").mock(
        return_value=httpx.Response(200, json=c1))
    # the recorded paging.next of comments page 1 names its own node; it is followed as given
    router.get(f"{base_url}/{API}/19292868552_10158407654328553/comments",
               params={"after": "after"}).mock(return_value=httpx.Response(200, json=c2))
    _empty_comments(router, base_url)
    ids = {p["id"] for p in p1["data"] + p2["data"]} | _comment_ids(c1) | _comment_ids(c2)
    return Installed(ids=ids, first=first)


def fb_malformed(router: respx.MockRouter, base_url: str) -> Installed:
    """The recorded feed with its third post's created_time corrupted."""
    feed = _without_next(meta_fixture("facebook", "apidata", "posts", "feed_fields_p1.json"))
    bad = feed["data"][2]
    bad["created_time"] = "yesterday-ish"
    first = router.get(f"{base_url}/{API}/{FB_PAGE}/feed").mock(
        return_value=httpx.Response(200, json=feed))
    _empty_comments(router, base_url)
    ids = {p["id"] for p in feed["data"]} - {bad["id"]}
    return Installed(ids=ids, first=first, where=bad["id"])


def _delivery(payload: dict[str, Any], ids: set[str]) -> Delivery:
    return Delivery(body=json.dumps(payload).encode(), ids=ids)


def fb_deliveries() -> list[Delivery]:
    def feed(value: dict[str, Any]) -> dict[str, Any]:
        return {"object": "page", "entry": [{"id": FB_PAGE, "time": 1789990000,
                                             "changes": [{"field": "feed", "value": value}]}]}

    post = f"{FB_PAGE}_900001"
    comment = {"from": {"id": "6100000000123", "name": "A. Parent"}, "item": "comment",
               "verb": "add", "created_time": 1789990000, "post_id": post, "parent_id": post,
               "comment_id": "900001_700001", "message": "Well done to the under-12s!"}
    status = {"from": {"id": FB_PAGE, "name": "Brookfield Academy"}, "item": "status",
              "verb": "add", "created_time": 1789990060, "post_id": f"{FB_PAGE}_900002",
              "message": "Open evening on Thursday from 6pm"}
    return [_delivery(feed(comment), {"900001_700001"}),
            _delivery(feed(status), {f"{FB_PAGE}_900002"})]


CASES: list[ContractCase] = [
    ContractCase(
        id="facebook",
        type="facebook",
        settings=_fb_settings(FB_PAGE),
        env={"FB_PAGE_TOKEN": FB_TOKEN, "FB_APP_SECRET": FB_APP_SECRET},
        secrets=(FB_TOKEN, FB_APP_SECRET),
        required=("page_id", "access_token"),
        invalid={"page_id": "brookfield academy", "poll_interval_seconds": 1,
                 "api_version": "latest"},
        page=fb_page,
        pages=fb_pages,
        malformed=fb_malformed,
        secret_key="access_token",
        webhooks=Webhooks(signer=MetaSigner(FB_APP_SECRET), deliveries=lambda: fb_deliveries()),
    ),
]


IG_USER = "17841406338772941"
IG_TOKEN = "IGQVcontractInstagramToken9876543210"
IG_APP_SECRET = "contract-instagram-app-secret-77d0"


def _ig_settings(base_url: str) -> dict[str, Any]:
    return {
        "type": "instagram",
        "ig_user_id": IG_USER,
        "access_token": "${IG_TOKEN}",
        "app_secret": "${IG_APP_SECRET}",
        "base_url": base_url,
    }


def ig_deliveries() -> list[Delivery]:
    comment = {"object": "instagram", "entry": [{"id": IG_USER, "time": 1789990000, "changes": [
        {"field": "comments", "value": {
            "from": {"id": "17840000000777", "username": "someone.local"},
            "media": {"id": "17900000000001", "media_product_type": "FEED"},
            "id": "17900000000555", "text": "great concert last night"}}]}]}
    message = {"object": "instagram", "entry": [{"id": IG_USER, "time": 1789990001, "messaging": [
        {"sender": {"id": "17840000000777"}, "recipient": {"id": IG_USER},
         "timestamp": 1789990001000,
         "message": {"mid": "aWdfZAG1faXRlbToxOklHcontract", "text": "what time is pick-up?"}}]}]}
    return [_delivery(comment, {"17900000000555"}),
            _delivery(message, {"aWdfZAG1faXRlbToxOklHcontract"})]


def _ig_common(router: respx.MockRouter, base_url: str) -> set[str]:
    """Comments of every other media are empty; /tags answers the recorded tagged media."""
    tags = meta_fixture("instagram", "apidata", "users", "tagged_medias.json")
    router.get(f"{base_url}/{API}/{IG_USER}/tags").mock(
        return_value=httpx.Response(200, json=tags))
    _empty_comments(router, base_url)
    return {m["id"] for m in tags["data"]}


def ig_page(router: respx.MockRouter, base_url: str) -> Installed:
    media = _without_next(meta_fixture("instagram", "apidata", "users", "medias_p1.json"))
    comments = _without_next(meta_fixture("instagram", "apidata", "medias", "comments_p1.json"))
    first = router.get(f"{base_url}/{API}/{IG_USER}/media").mock(
        return_value=httpx.Response(200, json=media))
    commented = media["data"][1]["id"]
    router.get(f"{base_url}/{API}/{commented}/comments").mock(
        return_value=httpx.Response(200, json=comments))
    ids = ({m["id"] for m in media["data"]} | {c["id"] for c in comments["data"]}
           | _ig_common(router, base_url))
    return Installed(ids=ids, first=first)


def ig_pages(router: respx.MockRouter, base_url: str) -> Installed:
    m1 = meta_fixture("instagram", "apidata", "users", "medias_p1.json")
    m2 = _without_next(meta_fixture("instagram", "apidata", "users", "medias_p2.json"))
    c1 = meta_fixture("instagram", "apidata", "medias", "comments_p1.json")
    c2 = _without_next(meta_fixture("instagram", "apidata", "medias", "comments_p2.json"))

    def media(request: httpx.Request) -> httpx.Response:
        assert "access_token" not in request.url.params, "the token leaked into a URL"
        return httpx.Response(200, json=m2 if request.url.params.get("after") else m1)

    first = router.get(f"{base_url}/{API}/{IG_USER}/media").mock(side_effect=media)
    commented = m1["data"][1]["id"]
    router.get(f"{base_url}/{API}/{commented}/comments").mock(
        return_value=httpx.Response(200, json=c1))
    # comments page 1's recorded paging.next names media 17846368219941692
    router.get(f"{base_url}/{API}/17846368219941692/comments", params={"after": "after"}).mock(
        return_value=httpx.Response(200, json=c2))
    ids = ({m["id"] for m in m1["data"] + m2["data"]}
           | {c["id"] for c in c1["data"] + c2["data"]} | _ig_common(router, base_url))
    return Installed(ids=ids, first=first)


def ig_malformed(router: respx.MockRouter, base_url: str) -> Installed:
    m1 = _without_next(meta_fixture("instagram", "apidata", "users", "medias_p1.json"))
    m2 = meta_fixture("instagram", "apidata", "users", "medias_p2.json")
    media = {"data": m1["data"] + m2["data"]}
    bad = media["data"][1]
    del bad["timestamp"]
    first = router.get(f"{base_url}/{API}/{IG_USER}/media").mock(
        return_value=httpx.Response(200, json=media))
    ids = {m["id"] for m in media["data"]} - {bad["id"]} | _ig_common(router, base_url)
    return Installed(ids=ids, first=first, where=bad["id"])


CASES.append(
    ContractCase(
        id="instagram",
        type="instagram",
        settings=_ig_settings,
        env={"IG_TOKEN": IG_TOKEN, "IG_APP_SECRET": IG_APP_SECRET},
        secrets=(IG_TOKEN, IG_APP_SECRET),
        required=("ig_user_id", "access_token"),
        invalid={"ig_user_id": "@brookfield.academy", "lookback_days": 0,
                 "page_size": 1000},
        page=ig_page,
        pages=ig_pages,
        malformed=ig_malformed,
        secret_key="access_token",
        webhooks=Webhooks(signer=MetaSigner(IG_APP_SECRET), deliveries=lambda: ig_deliveries()),
    )
)
