"""``website``: the organisation's own public website, crawled for learners' identifying details.

Policy duty: "website: no staff or student personal information published" (P2 "Information
security"; P1 "Managing our online presence"). Each page becomes a public ``post`` item authored
by the organisation, so the learner-details rules (learner_pii and others) run on it.

How it crawls, politely:

- robots.txt is read first and obeyed for our user agent (``urllib.robotparser``), including its
  Crawl-delay; pages it disallows are never requested;
- the seeds are the start URL plus every page in the sitemaps (those named in robots.txt, else
  ``/sitemap.xml``; sitemap indexes and gzipped sitemaps are followed);
- links are followed on the same host only, breadth first, up to ``max_pages`` pages;
- one request at a time with ``delay_seconds`` (or robots.txt's Crawl-delay, if longer) between
  requests; a page larger than ``max_page_bytes`` is read only that far and reported;
- pages seen before are asked for with If-None-Match / If-Modified-Since, so an unchanged page
  costs the site a 304.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import re
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urldefrag, urljoin, urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

import httpx
from bs4 import BeautifulSoup
from pydantic import Field

from connectors.base import (
    Capability,
    ConnectorSettings,
    FatalError,
    FetchResult,
    HttpConnector,
    RetriableError,
    _retry_after_seconds,
    html_to_text,
)
from governance_bot.items import Item, ItemKind, Person, Visibility

__all__ = ["WebsiteConnector", "WebsiteSettings"]

log = logging.getLogger(__name__)

_SKIP_EXTENSIONS = re.compile(
    r"\.(?:pdf|docx?|xlsx?|pptx?|zip|gz|jpe?g|png|gif|webp|svg|ico|mp[34]|mov|avi|css|js|"
    r"woff2?|ttf|xml|json|rss|atom)$", re.IGNORECASE)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


class WebsiteSettings(ConnectorSettings):
    start_url: str = Field(pattern=r"^https?://[^/\s]+", description="the site's home page")
    sitemaps: list[str] = Field(
        default_factory=list, description="sitemap URLs (default: robots.txt's, else /sitemap.xml)"
    )
    max_pages: int = Field(default=500, ge=1, le=100_000)
    max_page_bytes: int = Field(default=2_000_000, ge=10_000)
    delay_seconds: float = Field(default=1.0, ge=0.0, description="pause between requests")
    user_agent: str = Field(default="governance-bot (safeguarding check of our own site)")
    exclude_paths: list[str] = Field(default_factory=list, description="path prefixes to skip")
    poll_interval_seconds: int = Field(default=86_400, ge=5)


@dataclass(slots=True)
class _Download:
    status: int
    body: bytes = b""
    content_type: str = ""
    headers: httpx.Headers | None = None
    truncated: bool = False


def _normalise(url: str) -> str:
    url, _ = urldefrag(url)
    parts = urlsplit(url)
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


class WebsiteConnector(HttpConnector):
    """The organisation's own website (public pages), crawled politely."""

    type: ClassVar[str] = "website"
    description: ClassVar[str] = "the organisation's own website (sitemap and same-host links)"
    Settings = WebsiteSettings
    capabilities = frozenset({Capability.read})

    settings: WebsiteSettings

    def __init__(self, settings: ConnectorSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        start = urlsplit(self.settings.start_url)
        self.origin = f"{start.scheme}://{start.netloc}".lower()
        self.host = start.netloc.lower()
        self._requests = 0
        self._delay = self.settings.delay_seconds

    # -- HTTP, one polite request at a time -------------------------------------------------------

    def _download(self, url: str, headers: dict[str, str] | None = None) -> _Download:
        attempt = 0
        while True:
            if self._requests and attempt == 0:
                self.sleep(self._delay)  # a retry has waited its backoff already
            self._requests += 1
            try:
                with self.client.stream(
                    "GET", url, headers={"User-Agent": self.settings.user_agent, **(headers or {})},
                    follow_redirects=True, timeout=self.settings.timeout_seconds,
                ) as response:
                    status = response.status_code
                    if status == 429 or status >= 500:
                        wait = _retry_after_seconds(response, self.clock())
                        if attempt >= self.settings.max_retries:
                            raise RetriableError(f"{self.name}: {url} still answering HTTP "
                                                 f"{status}", retry_after=wait)
                        self._backoff(attempt, wait)
                        attempt += 1
                        continue
                    if urlsplit(str(response.url)).netloc.lower() != self.host:
                        return _Download(status=0)  # redirected off the site: not ours to read
                    body = bytearray()
                    truncated = False
                    if status == 200:
                        for chunk in response.iter_bytes():
                            body.extend(chunk)
                            if len(body) > self.settings.max_page_bytes:
                                del body[self.settings.max_page_bytes:]
                                truncated = True
                                break
                    return _Download(status, bytes(body),
                                     response.headers.get("content-type", "").lower(),
                                     response.headers, truncated)
            except httpx.TransportError as exc:
                if attempt >= self.settings.max_retries:
                    raise RetriableError(f"{self.name}: cannot reach {self.host} "
                                         f"({type(exc).__name__})") from exc
                self._backoff(attempt, None)
                attempt += 1

    # -- robots.txt and sitemaps ----------------------------------------------------------------

    def _robots(self) -> RobotFileParser:
        robots = RobotFileParser(f"{self.origin}/robots.txt")
        got = self._download(f"{self.origin}/robots.txt")
        if got.status in (401, 403):
            # the convention reads this as "crawl nothing": say so to a person instead of
            # silently checking no page at all
            raise FatalError(
                f"{self.name} (account {self.account}): {self.origin}/robots.txt answered HTTP "
                f"{got.status}, which forbids crawling the whole site. Fix: let the user agent "
                f"'{self.settings.user_agent.split()[0]}' read the public pages, or remove this "
                f"connector.")
        if got.status == 200:
            robots.parse(got.body.decode("utf-8", "replace").splitlines())
        else:
            robots.parse([])  # no robots.txt: everything may be read
        delay = robots.crawl_delay(self.settings.user_agent)
        if delay is not None:
            self._delay = max(self.settings.delay_seconds, float(delay))
        return robots

    def _sitemap_pages(self, robots: RobotFileParser, problems: list[str]) -> list[str]:
        queue = list(self.settings.sitemaps or robots.site_maps() or
                     [f"{self.origin}/sitemap.xml"])
        pages: list[str] = []
        done: set[str] = set()
        while queue and len(done) < 50:
            url = queue.pop(0)
            if url in done:
                continue
            done.add(url)
            got = self._download(url)
            if got.status != 200:
                if self.settings.sitemaps or got.status != 404:
                    problems.append(f"{self.name}: sitemap {url}: HTTP {got.status}")
                continue
            body = got.body
            if url.endswith(".gz") or body[:2] == b"\x1f\x8b":
                try:
                    body = gzip.decompress(body)[: self.settings.max_page_bytes * 5]
                except OSError:
                    problems.append(f"{self.name}: sitemap {url}: not valid gzip")
                    continue
            try:
                root = ET.fromstring(body)
            except ET.ParseError as exc:
                problems.append(f"{self.name}: sitemap {url}: not valid XML ({exc})")
                log.warning("%s: sitemap %s is not valid XML", self.name, url)
                continue
            locs = [(el.text or "").strip() for el in root.iter(f"{_SITEMAP_NS}loc")]
            if root.tag == f"{_SITEMAP_NS}sitemapindex":
                queue.extend(loc for loc in locs if loc)
            else:
                pages.extend(loc for loc in locs if loc)
        return pages

    # -- crawling -------------------------------------------------------------------------------

    def _wanted(self, url: str, robots: RobotFileParser) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != self.host:
            return False
        if _SKIP_EXTENSIONS.search(parts.path):
            return False
        if any(parts.path.startswith(p) for p in self.settings.exclude_paths):
            return False
        return robots.can_fetch(self.settings.user_agent, url)

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        seen_before: dict[str, dict[str, str]] = dict((cursor or {}).get("pages", {}))
        self._requests = 0
        self._delay = self.settings.delay_seconds
        problems: list[str] = []
        robots = self._robots()
        queue: deque[str] = deque()
        queued: set[str] = set()
        for url in [self.settings.start_url, *self._sitemap_pages(robots, problems)]:
            url = _normalise(urljoin(self.settings.start_url, url))
            if url not in queued and self._wanted(url, robots):
                queued.add(url)
                queue.append(url)
        items: list[Item] = []
        pages: dict[str, dict[str, str]] = {}
        crawled = 0
        while queue and crawled < self.settings.max_pages:
            url = queue.popleft()
            crawled += 1
            validators = seen_before.get(url, {})
            conditional = {}
            if validators.get("etag"):
                conditional["If-None-Match"] = validators["etag"]
            if validators.get("last_modified"):
                conditional["If-Modified-Since"] = validators["last_modified"]
            got = self._download(url, conditional)
            if got.status == 304:
                pages[url] = validators
                continue  # unchanged since the last crawl; its links were followed then
            if got.status != 200:
                if got.status:
                    problems.append(f"{self.name}: {url}: HTTP {got.status}")
                    log.warning("%s: page %s answered HTTP %d", self.name, url, got.status)
                continue
            if not got.content_type.startswith(_HTML_TYPES):
                continue
            if got.truncated:
                problems.append(f"{self.name}: {url}: larger than max_page_bytes "
                                f"({self.settings.max_page_bytes}); only the start was read")
                log.warning("%s: page %s is over the size limit; read the first %d bytes",
                            self.name, url, self.settings.max_page_bytes)
            html = got.body.decode(_charset(got.content_type), "replace")
            items.append(self._page_item(url, html, got.headers))
            headers = got.headers or httpx.Headers()
            pages[url] = {k: v for k, v in (("etag", headers.get("etag", "")),
                                            ("last_modified", headers.get("last-modified", "")))
                          if v}
            for link in _links(html, url):
                if link not in queued and self._wanted(link, robots):
                    queued.add(link)
                    queue.append(link)
        if queue:
            problems.append(f"{self.name}: stopped at max_pages ({self.settings.max_pages}); "
                            f"{len(queue)} more pages were not read")
        return FetchResult(items=items, cursor={"pages": pages}, problems=problems)

    def _page_item(self, url: str, html: str, headers: httpx.Headers | None) -> Item:
        soup = BeautifulSoup(html, "html.parser")
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        body = html_to_text(html)
        if title and body.startswith(title):
            body = body[len(title):].lstrip()
        text = f"{title}\n{body}" if title else body
        created = datetime.fromtimestamp(self.clock(), UTC)
        modified = (headers or httpx.Headers()).get("last-modified")
        if modified:
            with contextlib.suppress(TypeError, ValueError):
                created = parsedate_to_datetime(modified).astimezone(UTC)
        return Item.model_validate({
            "id": url,
            "platform": "website",
            "account": self.account,
            "kind": ItemKind.post,
            "author": Person(handle=self.host, name=title or None),
            "created_at": created,
            "visibility": Visibility.public,
            "text": text,
            "url": url,
            "title": title or None,
        })


def _charset(content_type: str) -> str:
    match = re.search(r"charset=([\w-]+)", content_type)
    if match:
        try:
            "".encode(match.group(1))
            return match.group(1)
        except LookupError:
            pass
    return "utf-8"


def _links(html: str, base: str) -> list[str]:
    soup = BeautifulSoup(html, "html.parser")
    base_tag = soup.find("base", href=True)
    if base_tag is not None and isinstance(base_tag.get("href"), str):
        base = urljoin(base, str(base_tag["href"]))
    out = []
    for a in soup.find_all("a", href=True):
        href = a.get("href")
        if not isinstance(href, str) or href.startswith(("mailto:", "tel:", "javascript:")):
            continue
        out.append(_normalise(urljoin(base, href.strip())))
    return out

