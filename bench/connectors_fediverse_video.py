"""YouTube, Mastodon, Bluesky and TikTok connectors: items per second parsed and fetched.

Two measures per connector, side by side in one run:

* ``parse``: the platform payloads (already decoded JSON) to ``Item``s, the connector's own work;
* ``fetch``: a whole ``connector.fetch()`` with httpx answering from memory (respx), so JSON
  decoding, paging and the HTTP client are included.

Payloads: the recorded real responses in ../shared/fixtures (YouTube, Mastodon, Bluesky's one
thread) and the invented documented-shape payloads in tests/data (Bluesky listings, TikTok).

    GOVERNANCE_BOT_SHARED=../shared .venv/bin/python bench/run.py connectors_fediverse_video
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import respx

from bench.harness import REPO, Bench, rate, shared_dir
from connectors.base import html_to_text
from connectors.bluesky import (
    BlueskyConnector,
    BlueskySettings,
    post_item,
    thread_items,
)
from connectors.mastodon import MastodonConnector, MastodonSettings, status_item
from connectors.tiktok import (
    TikTokConnector,
    TikTokSettings,
    comment_item,
    video_item,
)
from connectors.youtube import (
    YouTubeConnector,
    YouTubeSettings,
)
from connectors.youtube import (
    comment_item as yt_comment,
)
from connectors.youtube import (
    thread_items as yt_threads,
)
from connectors.youtube import (
    video_item as yt_video,
)
from tests.social.replay import load_cassette

DATA = REPO / "tests" / "data"


def shared() -> Path:
    return shared_dir() / "fixtures"


def load(path: Path) -> Any:
    return json.loads(path.read_text())


# -- payloads ---------------------------------------------------------------------------------

def youtube_payloads(fx: Path) -> dict[str, list[Any]]:
    base = fx / "youtube" / "apidata"
    return {
        "threads": [t for p in sorted((base / "comment_threads").glob("comment_thread*.json"))
                    for t in load(p)["items"]],
        "comments": [c for p in sorted((base / "comments").glob("comments_*.json"))
                     for c in load(p)["items"]],
        "uploads": [v for p in sorted((base / "playlist_items").glob("playlist_items_*.json"))
                    for v in load(p)["items"]],
    }


def mastodon_statuses(fx: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((fx / "mastodon" / "cassettes").glob("*.yaml")):
        for it in load_cassette(path):
            try:
                body = it.json()
            except ValueError:
                continue
            for x in body if isinstance(body, list) else [body]:
                if isinstance(x, dict) and "content" in x and "account" in x and "visibility" in x:
                    out.append(x)
    return out


def bluesky_posts(fx: Path) -> list[dict[str, Any]]:
    posts = [load(fx / "bluesky" / "thread_view_post_with_embed_media.json")["thread"]["post"]]
    for name in ("getAuthorFeed_p1.json", "getAuthorFeed_p2.json"):
        posts += [e["post"] for e in load(DATA / "bluesky" / name)["feed"]]
    thread = load(DATA / "bluesky" / "getPostThread_sportsday.json")["thread"]
    posts += [r["post"] for r in thread["replies"] if "post" in r]
    return posts


# -- parse ------------------------------------------------------------------------------------

def parse_youtube(p: dict[str, list[Any]]) -> int:
    n = 0
    for t in p["threads"]:
        n += len(yt_threads(t, "a"))
    for c in p["comments"]:
        yt_comment(c, "a", video_id=None, thread_id=None)
        n += 1
    for v in p["uploads"]:
        yt_video(v, "a", "UC")
        n += 1
    return n


def parse_mastodon(statuses: list[dict[str, Any]]) -> int:
    return sum(1 for s in statuses if status_item(s, "a") is not None)


def parse_bluesky(posts: list[dict[str, Any]], thread: dict[str, Any]) -> int:
    for p in posts:
        post_item(p, "a")
    return len(posts) + len(thread_items(thread, "a")[0])


def parse_tiktok(videos: list[Any], comments: list[Any]) -> int:
    for v in videos:
        video_item(v, "a", "b")
    for c in comments:
        comment_item(c, "a", "v")
    return len(videos) + len(comments)


# -- fetch ------------------------------------------------------------------------------------

def fetch_youtube(fx: Path) -> Callable[[], int]:
    base = "https://yt.bench/youtube/v3"
    uploads = [load(fx / "youtube/apidata/playlist_items/playlist_items_paged_1.json"),
               load(fx / "youtube/apidata/playlist_items/playlist_items_paged_2.json")]
    threads = {"items": [t for p in sorted((fx / "youtube/apidata/comment_threads")
                                           .glob("comment_thread*.json"))
                         for t in load(p)["items"]]}
    for t in threads["items"]:
        t["snippet"]["totalReplyCount"] = 0
    raw_up = [json.dumps(u).encode() for u in uploads]
    raw_threads = json.dumps(threads).encode()

    def uploads_answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=raw_up[1 if "pageToken" in request.url.params else 0])

    router = respx.MockRouter(assert_all_called=False)
    router.get(f"{base}/playlistItems").mock(side_effect=uploads_answer)
    router.get(f"{base}/commentThreads").mock(
        side_effect=lambda r: httpx.Response(200, content=raw_threads))
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    conn = YouTubeConnector(YouTubeSettings.model_validate({
        "name": "b", "type": "youtube", "account": "a", "channel_id": "UC_x5XG1OV2P6uZZ5FSM9Ttw",
        "access_token": "t", "base_url": base, "backfill_days": 3650}), client=client)
    return lambda: len(conn.fetch(None).items)


def fetch_mastodon(statuses: list[dict[str, Any]]) -> Callable[[], int]:
    base = "https://masto.bench"
    own = [s for s in statuses if s["account"]["id"] == "117020565966271181"]
    me = own[0]["account"]
    pages = [own[i:i + 40] for i in range(0, len(own), 40)]
    raw = [json.dumps(p).encode() for p in pages]
    url = f"{base}/api/v1/accounts/{me['id']}/statuses"

    def listing(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("page", "0"))
        headers = {"Link": f'<{url}?page={n + 1}>; rel="next"'} if n + 1 < len(raw) else {}
        return httpx.Response(200, content=raw[n], headers=headers)

    router = respx.MockRouter(assert_all_called=False)
    router.get(f"{base}/api/v1/accounts/verify_credentials").mock(
        return_value=httpx.Response(200, json=me))
    router.get(url__startswith=url).mock(side_effect=listing)
    for path in ("notifications", "conversations"):
        router.get(url__startswith=f"{base}/api/v1/{path}").mock(
            side_effect=lambda r: httpx.Response(200, json=[]))
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    conn = MastodonConnector(MastodonSettings.model_validate({
        "name": "b", "type": "mastodon", "account": "a", "base_url": base, "access_token": "t",
        "backfill_days": 3650, "replies_lookback_days": 1}), client=client,
        clock=lambda: datetime(2026, 8, 3, tzinfo=UTC).timestamp())
    return lambda: len(conn.fetch(None).items)


def fetch_tiktok() -> Callable[[], int]:
    base = "https://tiktok.bench/open_api/v1.3"
    videos = load(DATA / "tiktok" / "video_list_p1.json")
    videos["data"]["has_more"] = False
    comments = load(DATA / "tiktok" / "comment_list_v1.json")
    for c in comments["data"]["comments"]:
        c["replies"] = 0
    comments["data"]["comments"] = comments["data"]["comments"] * 15  # a busy video
    raw_v, raw_c = json.dumps(videos).encode(), json.dumps(comments).encode()
    router = respx.MockRouter(assert_all_called=False)
    router.get(f"{base}/business/video/list/").mock(
        side_effect=lambda r: httpx.Response(200, content=raw_v))
    router.get(f"{base}/business/comment/list/").mock(
        side_effect=lambda r: httpx.Response(200, content=raw_c))
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    conn = TikTokConnector(TikTokSettings.model_validate({
        "name": "b", "type": "tiktok", "account": "a", "business_id": "b", "access_token": "t",
        "base_url": base, "backfill_days": 3650}), client=client,
        clock=lambda: datetime(2026, 11, 20, tzinfo=UTC).timestamp())
    return lambda: len(conn.fetch(None).items)


def fetch_bluesky() -> Callable[[], int]:
    base = "https://pds.bench"
    x = f"{base}/xrpc"
    feed = [load(DATA / "bluesky" / "getAuthorFeed_p1.json"),
            load(DATA / "bluesky" / "getAuthorFeed_p2.json")]
    thread = load(DATA / "bluesky" / "getPostThread_sportsday.json")
    router = respx.MockRouter(assert_all_called=False)
    router.post(f"{x}/com.atproto.server.createSession").mock(
        return_value=httpx.Response(200, json=load(DATA / "bluesky" / "createSession.json")))
    router.get(f"{x}/app.bsky.feed.getAuthorFeed").mock(side_effect=lambda r: httpx.Response(
        200, json=feed[1 if "cursor" in r.url.params else 0]))
    router.get(f"{x}/app.bsky.feed.getPostThread").mock(
        side_effect=lambda r: httpx.Response(200, json=thread))
    router.get(f"{x}/app.bsky.notification.listNotifications").mock(
        side_effect=lambda r: httpx.Response(200, json=load(DATA / "bluesky" /
                                                            "listNotifications.json")))
    client = httpx.Client(transport=httpx.MockTransport(router.handler))
    conn = BlueskyConnector(BlueskySettings.model_validate({
        "name": "b", "type": "bluesky", "account": "a", "identifier": "x.bsky.social",
        "app_password": "p", "base_url": base}), client=client,
        clock=lambda: datetime(2026, 11, 19, 12, tzinfo=UTC).timestamp())
    return lambda: len(conn.fetch(None).items)


QUICK = ["--seconds", "0.3"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measure")


def run(bench: Bench, args: argparse.Namespace) -> None:
    bench.param(seconds=args.seconds)
    fx = shared()
    yt = youtube_payloads(fx)
    statuses = mastodon_statuses(fx)
    posts = bluesky_posts(fx)
    thread = load(DATA / "bluesky" / "getPostThread_sportsday.json")["thread"]
    tt_videos = load(DATA / "tiktok" / "video_list_p1.json")["data"]["videos"]
    tt_comments = load(DATA / "tiktok" / "comment_list_v1.json")["data"]["comments"]

    measures: list[tuple[str, str, Callable[[], int], str]] = [
        ("youtube", "parse", lambda: parse_youtube(yt),
         f"{len(yt['threads'])} threads, {len(yt['comments'])} comments, "
         f"{len(yt['uploads'])} uploads (recorded)"),
        ("youtube", "fetch", fetch_youtube(fx), "2 upload pages + all recorded threads"),
        ("mastodon", "parse", lambda: parse_mastodon(statuses),
         f"{len(statuses)} statuses from every cassette (recorded)"),
        ("mastodon", "fetch", fetch_mastodon(statuses), "the test account's statuses, 40/page"),
        ("bluesky", "parse", lambda: parse_bluesky(posts, thread),
         f"{len(posts)} posts (1 recorded, rest invented) + a reply tree"),
        ("bluesky", "fetch", fetch_bluesky(), "feed (2 pages), threads, notifications"),
        ("tiktok", "parse", lambda: parse_tiktok(tt_videos, tt_comments),
         "invented documented-shape videos and comments"),
        ("tiktok", "fetch", fetch_tiktok(), "2 videos x 30 comments (invented)"),
    ]
    html = [s["content"] for s in statuses if s.get("content")]
    measures.append(("html_to_text", "lxml", lambda: sum(1 for h in html if html_to_text(h)
                                                          is not None),
                     f"{len(html)} recorded status bodies (used)"))
    try:
        from bs4 import BeautifulSoup

        def with_bs4() -> int:
            for h in html:
                soup = BeautifulSoup(h, "html.parser")
                for br in soup.find_all("br"):
                    br.replace_with("\n")
                "\n\n".join(p.get_text() for p in soup.find_all("p"))
            return len(html)

        measures.append(("html_to_text", "bs4", with_bs4,
                         "the same bodies with BeautifulSoup (html.parser), for comparison"))
    except ImportError:
        bench.note("beautifulsoup4 is not installed (bench extra): no comparison row")
    rows = []
    for name, kind, fn, what in measures:
        per_second, runs = rate(fn, args.seconds)
        rows.append([name, kind, per_second, runs, what])
    bench.table(
        f"Items per second, {args.seconds:g} s per measure, all in one run",
        ["connector", "measure", "items/s", "runs", "payloads"], rows,
        note="`parse`: decoded payloads to items (the connector's own work). `fetch`: a whole "
             "`fetch()` through httpx with responses from memory (JSON decoding, paging, "
             "client). Real polling is bound by the platforms' rate limits, not by these "
             "numbers. The `html_to_text` rows compare the HTML-to-text step (Mastodon status "
             "bodies) with lxml, which the connector uses, and BeautifulSoup, side by side.")
    by = {(n, k): r for n, k, r, _, _ in rows}
    if ("html_to_text", "bs4") in by:
        ratio = by[("html_to_text", "lxml")] / by[("html_to_text", "bs4")]
        bench.note(f"lxml vs BeautifulSoup in this run: {ratio:.1f}x faster.")
    bench.note(
        "Bluesky's `fetch` is request-bound (the sample makes one request per item: feed "
        "pages, one thread per post, notifications). Mastodon's `parse` is dominated by "
        "turning status HTML into text. Real polling is limited by the platforms' rate "
        "limits (e.g. Mastodon 300 requests per 5 minutes, YouTube 10,000 quota units a "
        "day), far below these rates.")
    bench.target("items/s parsed per social connector from fixtures (issue 4)",
                 ", ".join(f"{n} {r:,.0f}" for (n, k), r in by.items() if k == "parse")
                 + " items/s (parse)", None)
