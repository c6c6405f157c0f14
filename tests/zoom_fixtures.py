"""A stand-in for Zoom's API answering from tests/fixtures/zoom (invented data in Zoom's
documented response shapes), routed by the raw request path so the UUID encoding is checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import respx

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zoom"
SECRET = "zoom-client-secret-4d3c2b"
TOKEN = "zoom-invented-access-token-0123"
TUTOR = "d.mensah@brookfield.example.org"
ZOOM_ENV = {"ZOOM_CLIENT_SECRET": SECRET}


def report_split(*groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fixture report's meetings regrouped into pages linked by next_page_token."""
    base = load("report_meetings_tutor.json")
    pages = []
    for n, meetings in enumerate(groups):
        last = n == len(groups) - 1
        pages.append({**base, "page_count": len(groups), "meetings": meetings,
                      "next_page_token": "" if last else f"p{n + 1}"})
    return pages


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def zoom_settings(base_url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "zoom", "account_id": "brookfield-zoom-acct", "client_id": "zoom-app-01",
            "client_secret": "${ZOOM_CLIENT_SECRET}", "users": [TUTOR],
            "base_url": base_url, "oauth_base_url": base_url, **extra}


# raw path (after base) -> fixture file, or None for 404
PATHS: dict[str, str | None] = {
    "/report/users/d.mensah@brookfield.example.org/meetings": "report_meetings_tutor.json",
    "/meetings/81234567890": "meeting_81234567890.json",
    "/meetings/81234567891": "meeting_81234567891.json",
    "/meetings/81234567892": None,  # deleted since it took place
    "/past_meetings/aDYlohsHRtCd4ii1uC2%2BhA%3D%3D/participants": "participants_catchup.json",
    # a UUID with "/" or "//" is double-encoded, as Zoom asks
    "/past_meetings/%252FBx2kQ8rS0aQ1o%252F%252FYy3Z9w%253D%253D/participants":
        "participants_revision_p1.json",
    "/past_meetings/q1W2e3R4t5Y6u7I8o9P0aQ%3D%3D/participants": "participants_planning.json",
}


REPORT = "/report/users/d.mensah@brookfield.example.org/meetings"


def install(router: respx.MockRouter, base_url: str,
            report_pages: list[dict[str, Any]] | None = None) -> respx.Route:
    """Routes for the token and the API; returns the token route (the first request).

    ``report_pages``: the meetings report as these pages (linked by next_page_token "p<n>")
    instead of the fixture file."""
    table = dict(PATHS)
    prefix = httpx.URL(base_url).raw_path.decode().rstrip("/")
    token = router.post(f"{base_url}/oauth/token").mock(
        return_value=httpx.Response(200, json=load("oauth_token.json")))

    def answer(request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode().split("?")[0].removeprefix(prefix)
        if raw == REPORT and report_pages is not None:
            token = request.url.params.get("next_page_token", "")
            index = int(token[1:]) if token else 0
            return httpx.Response(200, json=report_pages[index])
        if raw not in table:
            return httpx.Response(404, json={"code": 3001, "message": "not found"})
        name = table[raw]
        if name is None:
            return httpx.Response(404, json={"code": 3001, "message": "Meeting does not exist"})
        if raw.endswith("/participants") and request.url.params.get("next_page_token"):
            name = name.replace("_p1", "_p2")
        return httpx.Response(200, json=load(name))

    router.get(url__startswith=base_url).mock(side_effect=answer)
    return token
