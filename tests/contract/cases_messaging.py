"""Contract cases for the messaging connectors that speak HTTP (Teams, Zoom, website).

Teams replays the chat listing recorded in Graph's documentation (../shared/fixtures/msgraph) at
the delta endpoint the connector polls, with the chat's members invented in Graph's documented
shape. Zoom answers from tests/fixtures/zoom (invented, in Zoom's documented shapes). The website
case serves a small invented site (robots.txt, sitemaps, pages).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import respx

from tests.contract.harness import (
    ContractCase,
    Delivery,
    GraphClientState,
    Installed,
    Webhooks,
)
from tests.msgraph_fixtures import (
    CHAT,
    CLIENT_STATE,
    SECRET,
    TEAMS_ENV,
    TOKEN,
    TUTOR_AAD,
    install_token,
    member,
    members_page,
    message,
    recorded_chat_page,
    teams_settings,
)
from tests.zoom_fixtures import SECRET as ZOOM_SECRET
from tests.zoom_fixtures import TOKEN as ZOOM_TOKEN
from tests.zoom_fixtures import ZOOM_ENV, report_split, zoom_settings
from tests.zoom_fixtures import install as install_zoom
from tests.zoom_fixtures import load as zoom_fixture


def _delta_url(base_url: str) -> str:
    return f"{base_url}/users/{TUTOR_AAD}/chats/getAllMessages/delta"


def _recorded_messages() -> list[dict[str, Any]]:
    """The recorded messages a person wrote (the third is a system event, read as nothing)."""
    return list(recorded_chat_page()["value"])


def _page(messages: list[dict[str, Any]], **links: str) -> dict[str, Any]:
    page = copy.deepcopy(recorded_chat_page())
    page.pop("@odata.nextLink", None)
    page["value"] = messages
    page["@odata.count"] = len(messages)
    page.update({f"@odata.{k}": v for k, v in links.items()})
    return page


def _members(router: respx.MockRouter) -> None:
    router.get(url__regex=r"/chats/[^/]+/members$").mock(return_value=httpx.Response(
        200, json=members_page(
            member("8ea0e38b-efb3-4757-924a-5f94061cf8c2", "Robin Kline",
                   "robin.kline@brookfield.example.org"),
            member("1fb8890f-423e-4154-8fbf-db6809bc8756", "Sam Okoye",
                   "sam.okoye@students.brookfield.example.org"))))


def _ids(messages: list[dict[str, Any]]) -> set[str]:
    return {f"{m['chatId']}:{m['id']}" for m in messages if m.get("messageType") == "message"}


def teams_page(router: respx.MockRouter, base_url: str) -> Installed:
    first = install_token(router, base_url)
    messages = _recorded_messages()
    router.get(_delta_url(base_url)).mock(return_value=httpx.Response(
        200, json=_page(messages, deltaLink=f"{_delta_url(base_url)}?$deltatoken=d1")))
    _members(router)
    return Installed(ids=_ids(messages), first=first)


def teams_pages(router: respx.MockRouter, base_url: str) -> Installed:
    first = install_token(router, base_url)
    one, two, system = _recorded_messages()
    delta = _delta_url(base_url)
    router.get(delta, params={"$skiptoken": "p2"}).mock(return_value=httpx.Response(
        200, json=_page([two, system], deltaLink=f"{delta}?$deltatoken=d1")))
    router.get(delta, params={"$top": "50"}).mock(return_value=httpx.Response(
        200, json=_page([one], nextLink=f"{delta}?$skiptoken=p2")))
    _members(router)
    return Installed(ids=_ids([one, two]), first=first)


def teams_malformed(router: respx.MockRouter, base_url: str) -> Installed:
    first = install_token(router, base_url)
    good, other, _ = _recorded_messages()
    bad = copy.deepcopy(good)
    bad["id"] = "1615943825999"
    # the malformed timestamp as published in Graph's own documentation sample
    bad["createdDateTime"] = "2021-03-1706:47:05.123Z"
    router.get(_delta_url(base_url)).mock(return_value=httpx.Response(
        200, json=_page([good, bad, other], deltaLink=f"{_delta_url(base_url)}?$deltatoken=d")))
    _members(router)
    return Installed(ids=_ids([good, other]), first=first, where="1615943825999")


def _zoom_meetings() -> list[dict[str, Any]]:
    return list(zoom_fixture("report_meetings_tutor.json")["meetings"])


def zoom_page(router: respx.MockRouter, base_url: str) -> Installed:
    meetings = _zoom_meetings()
    first = install_zoom(router, base_url, report_split(meetings))
    return Installed(ids={m["uuid"] for m in meetings}, first=first)


def zoom_pages(router: respx.MockRouter, base_url: str) -> Installed:
    meetings = _zoom_meetings()
    first = install_zoom(router, base_url, report_split(meetings[:1], meetings[1:]))
    return Installed(ids={m["uuid"] for m in meetings}, first=first)


def zoom_malformed(router: respx.MockRouter, base_url: str) -> Installed:
    meetings = _zoom_meetings()
    bad = {**meetings[0], "uuid": "BrokenStartTime0000==", "start_time": "10/03/2026 4pm"}
    first = install_zoom(router, base_url, report_split([bad, *meetings[1:]]))
    return Installed(ids={m["uuid"] for m in meetings[1:]}, first=first,
                     where="BrokenStartTime0000==")


def _origin(base_url: str) -> str:
    url = httpx.URL(base_url)
    return f"{url.scheme}://{url.host}"


def _html(title: str, links: list[str]) -> httpx.Response:
    anchors = "".join(f'<a href="{link}">{link}</a>' for link in links)
    return httpx.Response(200, text=f"<html><head><title>{title}</title></head><body>"
                                     f"<p>{title} news</p>{anchors}</body></html>",
                          headers={"content-type": "text/html; charset=utf-8"})


def _robots(router: respx.MockRouter, base_url: str, sitemaps: list[str]) -> respx.Route:
    lines = ["User-agent: *", "Disallow: /private/", *(f"Sitemap: {s}" for s in sitemaps)]
    return router.get(f"{_origin(base_url)}/robots.txt").mock(
        return_value=httpx.Response(200, text="\n".join(lines) + "\n"))


def _urlset(*urls: str) -> httpx.Response:
    body = "".join(f"<url><loc>{u}</loc></url>" for u in urls)
    return httpx.Response(200, text='<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.'
                                    f'org/schemas/sitemap/0.9">{body}</urlset>')


def website_page(router: respx.MockRouter, base_url: str) -> Installed:
    first = _robots(router, base_url, [])
    router.get(f"{_origin(base_url)}/sitemap.xml").mock(return_value=httpx.Response(404))
    router.get(f"{base_url}/").mock(return_value=_html("Home", ["a", "b", "/private/x"]))
    router.get(f"{base_url}/a").mock(return_value=_html("A", []))
    router.get(f"{base_url}/b").mock(return_value=_html("B", ["/api/a"]))
    return Installed(ids={f"{base_url}/", f"{base_url}/a", f"{base_url}/b"}, first=first)


def website_pages(router: respx.MockRouter, base_url: str) -> Installed:
    origin = _origin(base_url)
    first = _robots(router, base_url, [f"{origin}/sitemap-index.xml"])
    router.get(f"{origin}/sitemap-index.xml").mock(return_value=httpx.Response(
        200, text='<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/'
                  f'sitemap/0.9"><sitemap><loc>{origin}/s1.xml</loc></sitemap>'
                  f"<sitemap><loc>{origin}/s2.xml</loc></sitemap></sitemapindex>"))
    router.get(f"{origin}/s1.xml").mock(return_value=_urlset(f"{base_url}/a"))
    router.get(f"{origin}/s2.xml").mock(return_value=_urlset(f"{base_url}/b"))
    router.get(f"{base_url}/").mock(return_value=_html("Home", []))
    router.get(f"{base_url}/a").mock(return_value=_html("A", []))
    router.get(f"{base_url}/b").mock(return_value=_html("B", []))
    return Installed(ids={f"{base_url}/", f"{base_url}/a", f"{base_url}/b"}, first=first)


def website_malformed(router: respx.MockRouter, base_url: str) -> Installed:
    origin = _origin(base_url)
    first = _robots(router, base_url, [f"{origin}/broken-sitemap.xml"])
    router.get(f"{origin}/broken-sitemap.xml").mock(
        return_value=httpx.Response(200, text="<urlset><url><loc>unclosed"))
    router.get(f"{base_url}/").mock(return_value=_html("Home", ["a"]))
    router.get(f"{base_url}/a").mock(return_value=_html("A", []))
    return Installed(ids={f"{base_url}/", f"{base_url}/a"}, first=first,
                     where="broken-sitemap.xml")


def teams_notifications() -> list[Delivery]:
    """Change notifications in Graph's documented shape, each naming one chat message."""
    def note(mid: str) -> Delivery:
        resource = f"chats('{CHAT}')/messages('{mid}')"
        body = json.dumps({"value": [{
            "subscriptionId": "sub-contract", "changeType": "created",
            "clientState": CLIENT_STATE, "tenantId": "contoso-tenant-0001",
            "subscriptionExpirationDateTime": "2026-03-11T00:00:00Z", "resource": resource,
            "resourceData": {"id": mid, "@odata.type": "#Microsoft.Graph.chatMessage",
                             "@odata.id": resource}}]}).encode()
        return Delivery(body=body, ids={f"{CHAT}:{mid}"})

    return [note("1700000000200"), note("1700000000201")]


def teams_webhook_routes(router: respx.MockRouter, base_url: str) -> None:
    """The token, the chat's members and the messages the notifications name."""
    install_token(router, base_url)
    _members(router)

    def answer(request: httpx.Request, mid: str) -> httpx.Response:
        return httpx.Response(200, json=message(mid, "2026-03-10T16:00:00Z",
                                                "Your draft is marked, see the comments"))

    router.get(url__regex=r"/chats\('[^']+'\)/messages\('(?P<mid>\d+)'\)$").mock(
        side_effect=answer)


CASES = [
    ContractCase(
        id="teams",
        type="teams",
        settings=lambda base_url: teams_settings(base_url),
        env=dict(TEAMS_ENV),
        secrets=(SECRET, CLIENT_STATE, TOKEN),
        required=("tenant_id", "client_id", "client_secret"),
        invalid={"page_size": 500, "channels": ["not-a-team-and-channel"]},
        page=teams_page,
        pages=teams_pages,
        malformed=teams_malformed,
        account="brookfield-teams",
        secret_key="client_secret",
        webhooks=Webhooks(signer=GraphClientState(CLIENT_STATE),
                          deliveries=lambda: teams_notifications(), routes=teams_webhook_routes),
    ),
    ContractCase(
        id="zoom",
        type="zoom",
        settings=lambda base_url: zoom_settings(base_url),
        env=dict(ZOOM_ENV),
        secrets=(ZOOM_SECRET, ZOOM_TOKEN),
        required=("account_id", "client_id", "client_secret", "users"),
        invalid={"lookback_days": 0, "page_size": 1000},
        page=zoom_page,
        pages=zoom_pages,
        malformed=zoom_malformed,
        account="brookfield-zoom",
        secret_key="client_secret",
    ),
    ContractCase(
        id="website",
        type="website",
        settings=lambda base_url: {"type": "website", "start_url": f"{base_url}/",
                                   "delay_seconds": 0.25},
        env={},
        secrets=(),
        required=("start_url",),
        invalid={"start_url": "ftp://files.example.org/", "max_pages": 0},
        page=website_page,
        pages=website_pages,
        malformed=website_malformed,
        account="brookfield-website",
    ),
]
