"""Facebook, Instagram and X connectors: items per second from recorded platform answers.

Two measures per connector, side by side in one run on one machine:

* **parse**: the connector's record parser alone, over every record of its recorded fixtures;
* **poll**: a whole ``fetch()`` through httpx (an in-process transport replaying the recorded
  pages), so paging, JSON decoding, rate-limit checks and cursor work are included.

Add a connector: append a :class:`ParseCase` (and, if it polls over HTTP, a :class:`PollCase`)
to ``PARSE_CASES`` / ``POLL_CASES`` below, or put them in a module ``bench/cases_<name>.py``
exposing ``PARSE_CASES`` and ``POLL_CASES`` lists; they are picked up automatically.

    GOVERNANCE_BOT_SHARED=../shared .venv/bin/python bench/run.py connectors_social [--seconds 1]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import Bench, shared_dir
from connectors.base import Connector
from governance_bot.items import Item


@dataclass(frozen=True, slots=True)
class ParseCase:
    name: str
    # shared dir -> (parse function, records)
    load: Callable[[Path], tuple[Callable[[dict[str, Any]], Item | None], list[dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class PollCase:
    name: str
    # shared dir -> (connector built on the given client, request handler replaying fixtures)
    build: Callable[[Path, httpx.Client], Connector]
    handler: Callable[[Path], Callable[[httpx.Request], httpx.Response]]


def _records(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data.get("data"), list):
        return [r for r in data["data"] if isinstance(r, dict)]
    if "id" in data:
        return [data]
    return [v for v in data.values() if isinstance(v, dict)]


def _cassette_json(path: Path) -> list[Any]:
    import yaml

    out = []
    for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
        body = entry["response"]["body"]["string"]
        raw = body if isinstance(body, bytes) else str(body).encode()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue
    return out


# --- Facebook ----------------------------------------------------------------------------------

def _fb_parse(shared: Path) -> tuple[Callable[[dict[str, Any]], Item | None],
                                     list[dict[str, Any]]]:
    from connectors.facebook import parse_comment, parse_post

    base = shared / "fixtures" / "meta" / "facebook"
    posts = [r for p in sorted((base / "apidata" / "posts").glob("*.json")) for r in _records(p)]
    comments = [r for p in sorted((base / "apidata" / "comments").glob("comment*.json"))
                for r in _records(p)]
    tagged = [("post", r) for r in posts] + [("comment", r) for r in comments]

    def parse(pair: Any) -> Item:
        kind, record = pair
        if kind == "post":
            return parse_post(record, "bench")
        return parse_comment(record, "bench", "P")

    return parse, tagged  # type: ignore[return-value]


def _ig_parse(shared: Path) -> tuple[Callable[[dict[str, Any]], Item | None],
                                     list[dict[str, Any]]]:
    from connectors.instagram import parse_comment, parse_media

    base = shared / "fixtures" / "meta" / "instagram" / "apidata"
    media = [r for name in ("users/medias_p1.json", "users/medias_p2.json",
                            "users/tagged_medias.json", "medias/media_default.json",
                            "stories/stories_default.json") for r in _records(base / name)]
    comments = [r for name in ("medias/comments_p1.json", "medias/comments_p2.json",
                               "comments/replies.json") for r in _records(base / name)]
    tagged = [("m", r) for r in media] + [("c", r) for r in comments]

    def parse(pair: Any) -> Item:
        kind, record = pair
        return parse_media(record, "bench") if kind == "m" else parse_comment(record, "bench", "M")

    return parse, tagged  # type: ignore[return-value]


def _x_parse(shared: Path) -> tuple[Callable[[dict[str, Any]], Item | None],
                                    list[dict[str, Any]]]:
    from connectors.x import parse_tweet

    base = shared / "fixtures" / "x" / "cassettes"
    records: list[dict[str, Any]] = []
    for name in ("test_client_get_users_tweets.yaml", "test_client_get_users_mentions.yaml",
                 "test_client_search_recent_tweets.yaml", "test_client_get_home_timeline.yaml",
                 "test_client_get_list_tweets.yaml"):
        for body in _cassette_json(base / name):
            records.extend(r for r in body.get("data") or [] if isinstance(r, dict))
    return (lambda r: parse_tweet(r, "bench")), records


# --- whole polls -------------------------------------------------------------------------------

def _no_next(page: dict[str, Any]) -> dict[str, Any]:
    page = copy.deepcopy(page)
    page.get("paging", {}).pop("next", None)
    page.get("meta", {}).pop("next_token", None)
    return page


def _fb_build(shared: Path, client: httpx.Client) -> Connector:
    from connectors.facebook import FacebookPageConnector, FacebookSettings

    settings = FacebookSettings(name="bench", type="facebook", account="bench",
                                page_id="19292868552", access_token="t",
                                base_url="https://bench.test", read_messages=False)
    return FacebookPageConnector(settings, client=client, sleep=lambda s: None)


def _fb_handler(shared: Path) -> Callable[[httpx.Request], httpx.Response]:
    base = shared / "fixtures" / "meta" / "facebook" / "apidata"
    p1 = json.loads((base / "posts" / "feeds_default_fields_p1.json").read_text())
    p2 = _no_next(json.loads((base / "posts" / "feeds_default_fields_p2.json").read_text()))
    c1 = json.loads((base / "comments" / "comments_p1.json").read_text())
    c2 = _no_next(json.loads((base / "comments" / "comments_p2.json").read_text()))

    commented = {p1["data"][0]["id"], "19292868552_10158407654328553"}  # + c1's next link

    def handle(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        if request.url.path.endswith("/feed"):
            return httpx.Response(200, json=p2 if after else p1)
        if request.url.path.split("/")[-2] in commented:  # one post has a comment thread
            return httpx.Response(200, json=c2 if after else c1)
        return httpx.Response(200, json={"data": []})

    return handle


def _ig_build(shared: Path, client: httpx.Client) -> Connector:
    from connectors.instagram import InstagramConnector, InstagramSettings

    settings = InstagramSettings(name="bench", type="instagram", account="bench",
                                 ig_user_id="17841406338772941", access_token="t",
                                 base_url="https://bench.test")
    return InstagramConnector(settings, client=client, sleep=lambda s: None)


def _ig_handler(shared: Path) -> Callable[[httpx.Request], httpx.Response]:
    base = shared / "fixtures" / "meta" / "instagram" / "apidata"
    m1 = json.loads((base / "users" / "medias_p1.json").read_text())
    m2 = _no_next(json.loads((base / "users" / "medias_p2.json").read_text()))
    c1 = json.loads((base / "medias" / "comments_p1.json").read_text())
    c2 = _no_next(json.loads((base / "medias" / "comments_p2.json").read_text()))
    tags = json.loads((base / "users" / "tagged_medias.json").read_text())

    commented = {m1["data"][1]["id"], "17846368219941692"}  # + c1's recorded next link

    def handle(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        path = request.url.path
        if path.endswith("/media"):
            return httpx.Response(200, json=m2 if after else m1)
        if path.endswith("/tags"):
            return httpx.Response(200, json=tags)
        if path.split("/")[-2] in commented:  # one media has a comment thread
            return httpx.Response(200, json=c2 if after else c1)
        return httpx.Response(200, json={"data": []})

    return handle


def _x_build(shared: Path, client: httpx.Client) -> Connector:
    from connectors.x import XConnector, XSettings

    settings = XSettings(name="bench", type="x", account="bench", user_id="783214",
                         access_token="t", base_url="https://bench.test", read_replies=False)
    return XConnector(settings, client=client, sleep=lambda s: None)


def _x_handler(shared: Path) -> Callable[[httpx.Request], httpx.Response]:
    base = shared / "fixtures" / "x" / "cassettes"
    tweets = _no_next(_cassette_json(base / "test_client_get_users_tweets.yaml")[0])
    m1 = _cassette_json(base / "test_client_get_users_mentions.yaml")[0]
    m2 = _no_next(_cassette_json(base / "test_asyncclient_get_users_mentions.yaml")[0])
    dms = {"meta": {"result_count": 0}}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/tweets"):
            return httpx.Response(200, json=tweets)
        if path.endswith("/mentions"):
            token = request.url.params.get("pagination_token")
            return httpx.Response(200, json=m2 if token else m1)
        return httpx.Response(200, json=dms)

    return handle


PARSE_CASES: list[ParseCase] = [
    ParseCase("facebook", _fb_parse),
    ParseCase("instagram", _ig_parse),
    ParseCase("x", _x_parse),
]
POLL_CASES: list[PollCase] = [
    PollCase("facebook", _fb_build, _fb_handler),
    PollCase("instagram", _ig_build, _ig_handler),
    PollCase("x", _x_build, _x_handler),
]


def _discover() -> None:
    for path in sorted(Path(__file__).parent.glob("cases_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        PARSE_CASES.extend(getattr(module, "PARSE_CASES", []))
        POLL_CASES.extend(getattr(module, "POLL_CASES", []))


def _rate(fn: Callable[[], int], seconds: float) -> tuple[float, int]:
    """Items per second of ``fn`` (which returns how many items it made), run for ~seconds."""
    fn()  # warm up (imports, caches)
    done, start = 0, time.perf_counter()
    while True:
        done += fn()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


def measure(seconds: float) -> list[dict[str, Any]]:
    shared = shared_dir()
    rows: list[dict[str, Any]] = []
    for case in PARSE_CASES:
        parse, records = case.load(shared)

        def parse_all(parse: Any = parse, records: list[Any] = records) -> int:
            return sum(1 for r in records if parse(r) is not None)

        rate, total = _rate(parse_all, seconds)
        rows.append({"connector": case.name, "measure": "parse", "records": len(records),
                     "items_per_s": rate, "items": total})
    for poll in POLL_CASES:
        client = httpx.Client(transport=httpx.MockTransport(poll.handler(shared)))
        connector = poll.build(shared, client)

        def fetch(connector: Connector = connector) -> int:
            return len(connector.fetch(None).items)

        per_poll = fetch()
        rate, total = _rate(fetch, seconds)
        rows.append({"connector": poll.name, "measure": "poll", "records": per_poll,
                     "items_per_s": rate, "items": total})
        client.close()
    return rows


QUICK = ["--seconds", "0.3"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measure")


def run(bench: Bench, args: argparse.Namespace) -> None:
    _discover()
    bench.param(seconds=args.seconds)
    rows = measure(args.seconds)
    parse_rates = {r["connector"]: r["items_per_s"] for r in rows if r["measure"] == "parse"}
    slowest = min(parse_rates.values()) if parse_rates else 1.0
    bench.table(
        "Items per second, all measures in one run",
        ["connector", "measure", "records per pass", "items/s", "ratio to slowest parser"],
        [[r["connector"], r["measure"], r["records"], r["items_per_s"],
          f"{r['items_per_s'] / slowest:.1f}x" if r["measure"] == "parse" else ""]
         for r in rows],
        note="`parse`: the record parser alone over every record of the connector's recorded "
             "fixtures. `poll`: whole `fetch()` calls through httpx with an in-process transport "
             "replaying the recorded pages (paging, JSON decoding, rate-limit checks, cursors "
             "included); one post has a two-page comment thread, the others none. A poll makes "
             "one request per post for its comments, so it is bound by HTTP request handling "
             "(httpx builds and parses each URL), not by parsing: against the real APIs network "
             "latency dominates further.")
    bench.target("items/s parsed per social connector from fixtures (issue 4)",
                 ", ".join(f"{k} {v:,.0f}" for k, v in parse_rates.items()) + " items/s (parse)",
                 None)
