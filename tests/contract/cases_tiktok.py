"""Contract case for the TikTok connector, on the invented payloads in tests/data/tiktok (TikTok
API for Business's documented shapes; there are no recorded TikTok responses)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import respx

from tests.contract.harness import ContractCase, Installed

TOKEN = "act.contract-tiktok-token-987654"
DATA = Path(__file__).resolve().parent.parent / "data" / "tiktok"
V1 = "7439000000000000001"


def data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def _settings(base_url: str) -> dict[str, Any]:
    return {"type": "tiktok", "business_id": "-000brookfield", "access_token": "${TIKTOK_TOKEN}",
            "base_url": base_url}


def _install(router: respx.MockRouter, base_url: str, videos: list[Any],
             comments: Any) -> respx.Route:
    def video_list(request: httpx.Request) -> httpx.Response:
        n = 1 if request.url.params.get("cursor") else 0
        return httpx.Response(200, json=videos[n])

    def comment_list(request: httpx.Request) -> httpx.Response:
        body = comments if request.url.params["video_id"] == V1 else data(
            "comment_list_empty.json")
        return httpx.Response(200, json=body)

    first = router.get(f"{base_url}/business/video/list/").mock(side_effect=video_list)
    router.get(f"{base_url}/business/comment/list/").mock(side_effect=comment_list)
    router.get(f"{base_url}/business/comment/reply/list/").mock(
        return_value=httpx.Response(200, json=data("reply_list_c11.json")))
    return first


def _one_page() -> Any:
    p1 = data("video_list_p1.json")
    p1["data"]["has_more"] = False
    return p1


def page(router: respx.MockRouter, base_url: str) -> Installed:
    first = _install(router, base_url, [_one_page()], data("comment_list_empty.json"))
    return Installed(ids={v["item_id"] for v in _one_page()["data"]["videos"]}, first=first)


def pages(router: respx.MockRouter, base_url: str) -> Installed:
    videos = [data("video_list_p1.json"), data("video_list_p2.json")]
    first = _install(router, base_url, videos, data("comment_list_v1.json"))
    ids = ({v["item_id"] for p in videos for v in p["data"]["videos"]}
           | {c["comment_id"] for c in data("comment_list_v1.json")["data"]["comments"]}
           | {c["comment_id"] for c in data("reply_list_c11.json")["data"]["comments"]})
    return Installed(ids=ids, first=first)


def malformed(router: respx.MockRouter, base_url: str) -> Installed:
    bad = _one_page()
    broken = copy.deepcopy(bad)
    del broken["data"]["videos"][1]["create_time"]
    first = _install(router, base_url, [broken], data("comment_list_empty.json"))
    return Installed(ids={V1}, first=first, where="business/video/list/, record 1")


CASES: list[ContractCase] = [
    ContractCase(
        id="tiktok",
        type="tiktok",
        settings=_settings,
        env={"TIKTOK_TOKEN": TOKEN},
        secrets=(TOKEN,),
        required=("business_id", "access_token"),
        invalid={"max_videos": 0, "poll_interval_seconds": 1},
        page=page,
        pages=pages,
        malformed=malformed,
        secret_key="access_token",
    ),
]
