"""Contract case for the YouTube connector, replaying recorded real Data API v3 answers from
../shared/fixtures/youtube."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from tests.contract.harness import ContractCase, Installed
from tests.shared import require_shared

TOKEN = "ya29.contract-youtube-token-0123456789"
CHANNEL = "UC_x5XG1OV2P6uZZ5FSM9Ttw"


def recorded(path: str) -> Any:
    return json.loads(require_shared("fixtures", "youtube", "apidata", path).read_text())


def _settings(base_url: str) -> dict[str, Any]:
    return {"type": "youtube", "channel_id": CHANNEL, "access_token": "${YT_TOKEN}",
            "base_url": base_url, "backfill_days": 3650}


def _by_page_token(pages: list[Any]) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("pageToken")
        for i, page in enumerate(pages[:-1]):
            if page.get("nextPageToken") == token:
                return httpx.Response(200, json=pages[i + 1])
        return httpx.Response(200, json=pages[0])
    return answer


def _ids(uploads: list[Any], threads: list[Any]) -> set[str]:
    return ({u["snippet"]["resourceId"]["videoId"] for p in uploads for u in p["items"]}
            | {t["id"] for p in threads for t in p["items"]})


def page(router: respx.MockRouter, base_url: str) -> Installed:
    uploads = recorded("playlist_items/playlist_items_multi.json")
    threads = recorded("comment_threads/comment_threads_multi.json")
    first = router.get(f"{base_url}/playlistItems").mock(
        return_value=httpx.Response(200, json=uploads))
    router.get(f"{base_url}/commentThreads").mock(return_value=httpx.Response(200, json=threads))
    return Installed(ids=_ids([uploads], [threads]), first=first)


def pages(router: respx.MockRouter, base_url: str) -> Installed:
    uploads = [recorded("playlist_items/playlist_items_paged_1.json"),
               recorded("playlist_items/playlist_items_paged_2.json")]
    threads = [recorded("comment_threads/comment_threads_by_video_paged_1.json"),
               recorded("comment_threads/comment_threads_by_video_paged_2.json")]
    threads[1].pop("nextPageToken", None)
    first = router.get(f"{base_url}/playlistItems").mock(side_effect=_by_page_token(uploads))
    router.get(f"{base_url}/commentThreads").mock(side_effect=_by_page_token(threads))
    # one recorded thread counts 2 replies it does not carry: they are asked for
    router.get(f"{base_url}/comments").mock(return_value=httpx.Response(200, json={"items": []}))
    return Installed(ids=_ids(uploads, threads), first=first)


def malformed(router: respx.MockRouter, base_url: str) -> Installed:
    uploads = recorded("playlist_items/playlist_items_multi.json")
    threads = recorded("comment_threads/comment_threads_multi.json")
    del threads["items"][1]["snippet"]["topLevelComment"]["snippet"]["publishedAt"]
    first = router.get(f"{base_url}/playlistItems").mock(
        return_value=httpx.Response(200, json=uploads))
    router.get(f"{base_url}/commentThreads").mock(return_value=httpx.Response(200, json=threads))
    ids = _ids([uploads], [threads]) - {threads["items"][1]["id"]}
    return Installed(ids=ids, first=first, where="commentThreads page 1, record 1")


CASES: list[ContractCase] = [
    ContractCase(
        id="youtube",
        type="youtube",
        settings=_settings,
        env={"YT_TOKEN": TOKEN},
        secrets=(TOKEN,),
        required=("channel_id",),
        invalid={"recheck_days": 0, "poll_interval_seconds": 1, "channel_id": ""},
        page=page,
        pages=pages,
        malformed=malformed,
        secret_key="access_token",
    ),
]
