"""Contract cases for the Meta Graph connectors, replaying recorded real Graph API answers from
../shared/fixtures/meta."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import httpx
import respx

from tests.contract.harness import ContractCase, Installed
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
    ),
]
