"""Contract case for the X connector, replaying tweepy's recordings of the real X API v2
(../shared/fixtures/x/cassettes)."""

from __future__ import annotations

import copy
from typing import Any

import respx

from tests.cassettes import load_cassette, route
from tests.contract.harness import ContractCase, Installed

X_TOKEN = "x-contract-user-token-QWERTY0987654321"
USER = "783214"  # the recordings list @Twitter's posts and mentions


def _last_page(payload: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    payload.get("meta", {}).pop("next_token", None)
    return payload


def _settings(base_url: str) -> dict[str, Any]:
    return {"type": "x", "user_id": USER, "access_token": "${X_TOKEN}", "base_url": base_url}


def _dm_events(router: respx.MockRouter, base_url: str) -> None:
    interactions = load_cassette("test_manage_and_lookup_direct_messages.yaml")
    (dm_events,) = [i for i in interactions if i.url.path == "/2/dm_events"]
    route(router, dm_events, base_url)


def x_page(router: respx.MockRouter, base_url: str) -> Installed:
    (tweets,) = load_cassette("test_client_get_users_tweets.yaml")
    (mentions,) = load_cassette("test_client_get_users_mentions.yaml")
    t, m = _last_page(tweets.json()), _last_page(mentions.json())
    first = route(router, tweets, base_url, body=t)
    route(router, mentions, base_url, body=m)
    _dm_events(router, base_url)
    return Installed(ids={r["id"] for r in t["data"] + m["data"]}, first=first)


def x_pages(router: respx.MockRouter, base_url: str) -> Installed:
    """Mentions in two pages: the recorded page 1 names a next_token; page 2 is the other
    recording of the same endpoint."""
    (tweets,) = load_cassette("test_client_get_users_tweets.yaml")
    (m1,) = load_cassette("test_client_get_users_mentions.yaml")
    (m2,) = load_cassette("test_asyncclient_get_users_mentions.yaml")
    t = _last_page(tweets.json())
    first = route(router, tweets, base_url, body=t)
    token = m1.json()["meta"]["next_token"]
    route(router, m2, base_url, body=_last_page(m2.json()),
          params={"pagination_token": token})
    route(router, m1, base_url)
    _dm_events(router, base_url)
    ids = {r["id"] for r in t["data"] + m1.json()["data"] + m2.json()["data"]}
    return Installed(ids=ids, first=first)


def x_malformed(router: respx.MockRouter, base_url: str) -> Installed:
    (tweets,) = load_cassette("test_client_get_users_tweets.yaml")
    (mentions,) = load_cassette("test_client_get_users_mentions.yaml")
    t, m = _last_page(tweets.json()), _last_page(mentions.json())
    bad = m["data"][3]
    bad["id"] = "not-a-snowflake-" + bad["id"]
    first = route(router, tweets, base_url, body=t)
    route(router, mentions, base_url, body=m)
    _dm_events(router, base_url)
    ids = {r["id"] for r in t["data"] + m["data"]} - {bad["id"]}
    return Installed(ids=ids, first=first, where=bad["id"])


CASES: list[ContractCase] = [
    ContractCase(
        id="x",
        type="x",
        settings=_settings,
        env={"X_TOKEN": X_TOKEN},
        secrets=(X_TOKEN,),
        required=("user_id", "access_token"),
        invalid={"user_id": "@BrookfieldAcad", "page_size": 500, "lookback_days": 90},
        page=x_page,
        pages=x_pages,
        malformed=x_malformed,
        secret_key="access_token",
    ),
]
