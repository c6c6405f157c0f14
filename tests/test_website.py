"""The organisation's own website, crawled for learners' identifying details.

Policy: "website: no staff or student personal information published". The crawl must reach every
public page (sitemap and links), and behave as a polite guest: obey robots.txt, pause between
requests, never wander off the site, never download a huge page whole.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest
import respx

from connectors.registry import load
from connectors.website import WebsiteConnector, WebsiteSettings
from governance_bot.items import ItemKind, Role, Visibility
from governance_bot.registers import Account, RegisterIndex
from tests.contract.harness import SleepRecorder
from tests.helpers import example_index

SITE = "https://www.brookfield.example.org"

ROBOTS = f"""User-agent: *
Disallow: /staff-only/
Crawl-delay: 2

Sitemap: {SITE}/sitemap_index.xml
"""

SITEMAP_INDEX = f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{SITE}/sitemap-pages.xml.gz</loc></sitemap>
</sitemapindex>"""

SITEMAP = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>{SITE}/news/sports-day</loc><lastmod>2026-03-01</lastmod></url>
  <url><loc>{SITE}/about</loc></url>
  <url><loc>{SITE}/staff-only/rota</loc></url>
</urlset>"""


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><title>{title}</title>"
            f"<script>var tracking = 1;</script></head><body>{body}</body></html>")


PAGES = {
    "/": page("Brookfield Academy", '<h1>Welcome</h1><a href="/news/">News</a> '
              '<a href="/contact#map">Contact</a> <a href="https://elsewhere.example.com/x">'
              'Partner</a> <a href="/prospectus.pdf">Prospectus</a> '
              '<a href="/staff-only/rota">Rota</a> <a href="mailto:office@brookfield.example.org">'
              'Email</a> <a href="/missing">Old page</a>'),
    "/news/": page("News", '<a href="/news/sports-day">Sports day</a>'),
    "/news/sports-day": page(
        "Sports day results",
        "<p>Well done to Maisie O'Connell in Year 9, who won the 800m!</p>"
        "<p>Call her mum on 07700 900123 for photos.</p>"),
    "/about": page("About us", "<p>We are a school.</p>"),
    "/contact": page("Contact", "<p>Office: 01632 960100</p>"),
    "/staff-only/rota": page("Rota", "<p>should never be requested</p>"),
}


def site_routes(router: respx.MockRouter, pages: dict[str, str] | None = None) -> None:
    pages = PAGES if pages is None else pages
    router.get(f"{SITE}/robots.txt").mock(return_value=httpx.Response(200, text=ROBOTS))
    router.get(f"{SITE}/sitemap_index.xml").mock(
        return_value=httpx.Response(200, text=SITEMAP_INDEX))
    router.get(f"{SITE}/sitemap-pages.xml.gz").mock(return_value=httpx.Response(
        200, content=gzip.compress(SITEMAP.encode()),
        headers={"content-type": "application/x-gzip"}))
    for path, html in pages.items():
        router.get(f"{SITE}{path}").mock(return_value=httpx.Response(
            200, text=html, headers={"content-type": "text/html; charset=utf-8",
                                     "etag": f'"{abs(hash(html))}"'}))
    router.get(f"{SITE}/missing").mock(return_value=httpx.Response(404, text="gone"))


@pytest.fixture
def site() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        site_routes(router)
        yield router


def website_index() -> RegisterIndex:
    """The example organisation's registers plus its website as an official account."""
    registers = example_index().registers
    site = Account(account_id="brookfield-website", platform="website",
                   handle="www.brookfield.example.org", managers=["S004", "S005"])
    return RegisterIndex(registers.model_copy(update={"accounts": [*registers.accounts, site]}))


def crawler(sleep: SleepRecorder | None = None, **options: object) -> WebsiteConnector:
    settings = WebsiteSettings.model_validate({
        "name": "website", "type": "website", "account": "brookfield-website",
        "start_url": f"{SITE}/", **options})
    return WebsiteConnector(settings, client=httpx.Client(), sleep=sleep or SleepRecorder(),
                            clock=lambda: 1_773_158_400.0)


def requested(router: respx.MockRouter) -> list[str]:
    return [c.request.url.path for c in router.calls]


def test_every_public_page_is_read_from_the_sitemap_and_links(site: respx.MockRouter) -> None:
    result = crawler().fetch(None)
    urls = sorted(i.url or "" for i in result.items)
    assert urls == [f"{SITE}/", f"{SITE}/about", f"{SITE}/contact", f"{SITE}/news/",
                    f"{SITE}/news/sports-day"]
    assert result.problems == [f"website: {SITE}/missing: HTTP 404"]


def test_pages_are_public_posts_by_the_organisation_so_the_pii_rules_run_on_them(
    site: respx.MockRouter,
) -> None:
    items = {i.url: i for i in crawler().fetch(None).items}
    news = items[f"{SITE}/news/sports-day"]
    assert news.kind == ItemKind.post and news.visibility == Visibility.public
    assert news.text == ("Sports day results\nWell done to Maisie O'Connell in Year 9, who won "
                         "the 800m!\n\nCall her mum on 07700 900123 for photos.")
    assert "tracking" not in news.text
    resolved = website_index().resolve(news)
    assert resolved.author.role == Role.organisation


def test_the_learner_pii_rule_flags_a_learners_name_on_a_public_page(
    site: respx.MockRouter,
) -> None:
    learner_pii = pytest.importorskip(
        "rules.learner_pii", reason="the learner_pii detector (branch pii) is not merged here")
    from governance_bot.findings import Category
    from rules.base import DetectionContext
    from rules.packs import load_pack
    from tests.helpers import MemoryHistory, config_with

    items = {i.url: i for i in crawler().fetch(None).items}
    registers = website_index()
    detector = learner_pii.LearnerPiiDetector.from_pack(load_pack("learner_pii"), config_with())
    news = registers.resolve(items[f"{SITE}/news/sports-day"])
    findings = list(detector.detect(news, DetectionContext(registers, MemoryHistory())))
    assert Category.learner_pii in {f.category for f in findings}


def test_robots_txt_is_obeyed_and_its_crawl_delay_kept_between_requests(
    site: respx.MockRouter,
) -> None:
    sleep = SleepRecorder()
    crawler(sleep=sleep, delay_seconds=0.5).fetch(None)
    assert "/staff-only/rota" not in requested(site)
    assert requested(site)[0] == "/robots.txt"
    # a pause before every request after the first, as long as robots.txt asks (2 s > 0.5 s)
    assert len(sleep.waits) == len(site.calls) - 1
    assert set(sleep.waits) == {2.0}


def test_the_crawl_never_leaves_the_site_or_fetches_files(site: respx.MockRouter) -> None:
    crawler().fetch(None)
    assert all(c.request.url.host == "www.brookfield.example.org" for c in site.calls)
    assert "/prospectus.pdf" not in requested(site)


def test_a_huge_page_is_read_only_up_to_the_limit_and_reported() -> None:
    huge = page("Gallery", "<p>Our trip</p>" + "<p>" + "x" * 200_000 + "</p>")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        site_routes(router, {**PAGES, "/about": huge})
        result = crawler(max_page_bytes=20_000).fetch(None)
    about = next(i for i in result.items if i.url == f"{SITE}/about")
    assert about.text.startswith("Gallery\nOur trip")
    assert len(about.text) < 20_000
    assert any("larger than max_page_bytes" in p for p in result.problems)


def test_unchanged_pages_are_asked_for_conditionally_on_the_next_crawl(
    site: respx.MockRouter,
) -> None:
    conn = crawler()
    first = conn.fetch(None)
    assert first.cursor is not None
    etag = first.cursor["pages"][f"{SITE}/about"]["etag"]
    site.get(f"{SITE}/about").mock(return_value=httpx.Response(304))
    second = conn.fetch(first.cursor)
    about_calls = [c for c in site.calls if c.request.url.path == "/about"]
    assert about_calls[-1].request.headers["if-none-match"] == etag
    assert f"{SITE}/about" not in {i.url for i in second.items}
    assert second.cursor is not None and f"{SITE}/about" in second.cursor["pages"]


def test_max_pages_stops_the_crawl_and_says_so(site: respx.MockRouter) -> None:
    result = crawler(max_pages=2).fetch(None)
    assert len(result.items) == 2
    assert any("stopped at max_pages" in p for p in result.problems)


def test_a_site_without_robots_or_sitemap_is_crawled_from_the_start_page() -> None:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.get(f"{SITE}/robots.txt").mock(return_value=httpx.Response(404))
        router.get(f"{SITE}/sitemap.xml").mock(return_value=httpx.Response(404))
        router.get(f"{SITE}/").mock(return_value=httpx.Response(
            200, text=page("Home", "<p>hi</p>"), headers={"content-type": "text/html"}))
        result = crawler().fetch(None)
    assert [i.text for i in result.items] == ["Home\nhi"]
    assert result.problems == []


def test_the_connector_is_registered_as_website() -> None:
    assert load("website") is WebsiteConnector


def test_a_robots_txt_that_forbids_everyone_is_reported_not_silently_obeyed() -> None:
    from connectors.base import FatalError

    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.get(f"{SITE}/robots.txt").mock(return_value=httpx.Response(403))
        with pytest.raises(FatalError, match="forbids crawling the whole site"):
            crawler().fetch(None)
