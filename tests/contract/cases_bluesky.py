"""Contract case for the Bluesky connector. Bluesky's recorded responses in ../shared hold no
listings, so this case uses the invented lexicon-shaped listings in tests/data/bluesky."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import respx

from tests.contract.harness import ContractCase, Installed

PASSWORD = "cntr-actb-lues-kyap"
DATA = Path(__file__).resolve().parent.parent / "data" / "bluesky"


def data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def _settings(base_url: str) -> dict[str, Any]:
    return {"type": "bluesky", "identifier": "brookfieldacademy.bsky.social",
            "app_password": "${BSKY_APP_PASSWORD}", "base_url": base_url}


THREADS = {"3lsportsday01": "getPostThread_sportsday.json",
           "3lopenevening2": "getPostThread_openevening.json",
           "3lbakesale0003": "getPostThread_bakesale.json"}


def _install(router: respx.MockRouter, base_url: str, feed: list[Any],
             notifications: Any) -> respx.Route:
    x = f"{base_url}/xrpc"
    first = router.post(f"{x}/com.atproto.server.createSession").mock(
        return_value=httpx.Response(200, json=data("createSession.json")))

    def author_feed(request: httpx.Request) -> httpx.Response:
        n = 1 if request.url.params.get("cursor") else 0
        return httpx.Response(200, json=feed[n])

    def thread(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=data(THREADS[request.url.params["uri"].rsplit("/")[-1]]))

    router.get(f"{x}/app.bsky.feed.getAuthorFeed").mock(side_effect=author_feed)
    router.get(f"{x}/app.bsky.feed.getPostThread").mock(side_effect=thread)
    router.get(f"{x}/app.bsky.notification.listNotifications").mock(
        return_value=httpx.Response(200, json=notifications))
    return first


def _rkeys(*names: str) -> set[str]:
    org = data("createSession.json")["did"]
    return {f"at://{org}/app.bsky.feed.post/{n}" for n in names}


def page(router: respx.MockRouter, base_url: str) -> Installed:
    first = _install(router, base_url, [data("getAuthorFeed_p2.json")], {"notifications": []})
    return Installed(ids=_rkeys("3lbakesale0003"), first=first)


def pages(router: respx.MockRouter, base_url: str) -> Installed:
    first = _install(router, base_url,
                     [data("getAuthorFeed_p1.json"), data("getAuthorFeed_p2.json")],
                     data("listNotifications.json"))
    org_posts = _rkeys("3lsportsday01", "3lopenevening2", "3lbakesale0003")
    others = {"at://did:plc:prnt5krn6prc3exmpl7abcd2/app.bsky.feed.post/3lreplyparent1",
              "at://did:plc:vstr2nws4rdr6exmpl3qwer5/app.bsky.feed.post/3lreplynews002",
              "at://did:plc:prnt5krn6prc3exmpl7abcd2/app.bsky.feed.post/3lmention00006"}
    return Installed(ids=org_posts | others, first=first)


def malformed(router: respx.MockRouter, base_url: str) -> Installed:
    feed = data("getAuthorFeed_p1.json")
    feed.pop("cursor")
    feed["feed"][0]["post"]["record"]["createdAt"] = "not a time"
    first = _install(router, base_url, [feed], {"notifications": []})
    return Installed(ids=_rkeys("3lopenevening2"), first=first,
                     where="app.bsky.feed.getAuthorFeed, record 0")


CASES: list[ContractCase] = [
    ContractCase(
        id="bluesky",
        type="bluesky",
        settings=_settings,
        env={"BSKY_APP_PASSWORD": PASSWORD},
        secrets=(PASSWORD,),
        required=("identifier", "app_password"),
        invalid={"identifier": "x", "recheck_days": 0},
        page=page,
        pages=pages,
        malformed=malformed,
        secret_key="app_password",
    ),
]
