"""Contract case for the Mastodon connector, replaying recorded real answers of a Mastodon server
(Mastodon.py's cassettes in ../shared/fixtures/mastodon)."""

from __future__ import annotations

import copy
import re
from typing import Any

import httpx
import respx

from tests.contract.harness import ContractCase, Installed
from tests.shared import require_shared
from tests.social.replay import load_cassette

TOKEN = "contract-mastodon-token-abcdef0123"


def _recorded() -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    """The token's account and the two recorded pages of its statuses."""
    interactions = load_cassette(require_shared(
        "fixtures", "mastodon", "cassettes", "test_fetch_next_previous.yaml"))
    me = next(i for i in interactions if i.uri.endswith("verify_credentials")).json()
    pages = [i.json() for i in interactions
             if i.method == "GET" and "/statuses?limit=5" in i.uri and "min_id" not in i.uri]
    return me, pages


def _settings(base_url: str) -> dict[str, Any]:
    return {"type": "mastodon", "base_url": base_url, "access_token": "${MASTODON_TOKEN}",
            "backfill_days": 3650}


def _install(router: respx.MockRouter, base_url: str, pages: list[list[dict[str, Any]]],
             me: dict[str, Any]) -> respx.Route:
    first = router.get(f"{base_url}/api/v1/accounts/verify_credentials").mock(
        return_value=httpx.Response(200, json=me))
    statuses = f"{base_url}/api/v1/accounts/{me['id']}/statuses"

    def listing(request: httpx.Request) -> httpx.Response:
        n = 1 if request.url.params.get("max_id") else 0
        headers = {}
        if n + 1 < len(pages):
            headers["Link"] = f'<{statuses}?limit=5&max_id={pages[n][-1]["id"]}>; rel="next"'
        return httpx.Response(200, json=pages[n], headers=headers)

    router.get(url__startswith=statuses).mock(side_effect=listing)
    router.get(url__regex=re.escape(base_url) + r"/api/v1/statuses/\d+/context").mock(
        return_value=httpx.Response(200, json={"ancestors": [], "descendants": []}))
    for path in ("notifications", "conversations"):
        router.get(url__startswith=f"{base_url}/api/v1/{path}").mock(
            return_value=httpx.Response(200, json=[]))
    return first


def page(router: respx.MockRouter, base_url: str) -> Installed:
    me, pages = _recorded()
    first = _install(router, base_url, pages[:1], me)
    return Installed(ids={s["id"] for s in pages[0]}, first=first)


def pages(router: respx.MockRouter, base_url: str) -> Installed:
    me, recorded = _recorded()
    first = _install(router, base_url, recorded, me)
    return Installed(ids={s["id"] for p in recorded for s in p}, first=first)


def malformed(router: respx.MockRouter, base_url: str) -> Installed:
    me, recorded = _recorded()
    bad_page = copy.deepcopy(recorded[0])
    bad = bad_page[2]
    bad["created_at"] = "the first of August"
    first = _install(router, base_url, [bad_page], me)
    ids = {s["id"] for s in bad_page} - {bad["id"]}
    return Installed(ids=ids, first=first,
                     where=f"/api/v1/accounts/{me['id']}/statuses, record 2")


CASES: list[ContractCase] = [
    ContractCase(
        id="mastodon",
        type="mastodon",
        settings=_settings,
        env={"MASTODON_TOKEN": TOKEN},
        secrets=(TOKEN,),
        required=("base_url", "access_token"),
        invalid={"replies_lookback_days": 0, "poll_interval_seconds": 1, "base_url": "x"},
        page=page,
        pages=pages,
        malformed=malformed,
        secret_key="access_token",
    ),
]
