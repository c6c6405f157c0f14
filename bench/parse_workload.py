"""The parse workload of ``bench/connectors_parse.py``, run in a child process with the tree to
measure first on ``PYTHONPATH`` (this code or a baseline commit): each connector's own parser over
recorded (or, where none exist, documented-shape) records, repeated for about ``SECONDS`` of CPU.
Prints one JSON object: connector -> records parsed per CPU second. Not a benchmark on its own."""

from __future__ import annotations

import glob
import gzip
import json
import os
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

SHARED = Path(os.environ.get("GOVERNANCE_BOT_SHARED", "../shared"))
REPO = Path(os.environ["BENCH_REPO"])  # fixtures of the current tree (tests/data)
SECONDS = float(os.environ.get("BENCH_SECONDS", "0.6"))


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _mastodon() -> tuple[Callable[[], int], int]:
    import yaml

    from connectors.mastodon import status_item

    statuses: list[dict[str, Any]] = []
    for name in ("test_home_tl.yaml", "test_status_reply.yaml", "test_conversations.yaml",
                 "test_fetch_next_previous.yaml", "test_status_post_with_quote.yaml"):
        with (SHARED / "fixtures/mastodon/cassettes" / name).open() as fh:
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for entry in data["interactions"]:
            body = entry["response"]["body"]["string"]
            try:
                parsed = json.loads(body)
            except ValueError:
                continue
            for x in parsed if isinstance(parsed, list) else [parsed]:
                if isinstance(x, dict) and "content" in x and "account" in x:
                    statuses.append(x)
                elif isinstance(x, dict) and isinstance(x.get("last_status"), dict):
                    statuses.append(x["last_status"])

    def run() -> int:
        for s in statuses:
            status_item(s, "a")
        return len(statuses)
    return run, len(statuses)


def _bluesky() -> tuple[Callable[[], int], int]:
    from connectors.bluesky import post_item

    view = _json(SHARED / "fixtures/bluesky/thread_view_post_with_embed_media.json")
    posts = [view["thread"]["post"]] * 20

    def run() -> int:
        for p in posts:
            post_item(p, "a")
        return len(posts)
    return run, len(posts)


def _x() -> tuple[Callable[[], int], int]:
    import yaml

    from connectors.x import Includes, parse_tweet

    pages: list[dict[str, Any]] = []
    for path in sorted(glob.glob(str(SHARED / "fixtures/x/cassettes/test_client_get_*.yaml"))):
        with open(path) as fh:
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for entry in data.get("interactions", []):
            body = entry["response"]["body"]["string"]
            if isinstance(body, bytes) and body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            try:
                page = json.loads(body)
            except (ValueError, TypeError):
                continue
            if isinstance(page, dict) and isinstance(page.get("data"), list):
                pages.append(page)
    count = sum(len(p["data"]) for p in pages)

    def run() -> int:
        n = 0
        for page in pages:
            includes = Includes(page.get("includes"))
            for record in page["data"]:
                try:
                    parse_tweet(record, "a", includes)
                    n += 1
                except (KeyError, ValueError):
                    pass
        return n
    return run, count


def _meta(kind: str) -> tuple[Callable[[], int], int]:
    records: list[dict[str, Any]] = []
    folder = SHARED / "fixtures/meta" / kind / "apidata"
    sources = {"facebook": [("posts", "posts/*.json"), ("comments", "comments/*.json")],
               "instagram": [("medias", "users/medias_p*.json"),
                             ("comments", "comments/comments_fields.json")]}[kind]
    for part, pattern in sources:
        for path in sorted(folder.glob(pattern)):
            body = _json(path)
            for r in body.get("data", [body]) if isinstance(body, dict) else []:
                if isinstance(r, dict):
                    records.append({"_kind": part, **r})
    if kind == "facebook":
        from connectors.facebook import parse_comment, parse_post

        def one(r: dict[str, Any]) -> Any:
            return parse_post(r, "a") if r["_kind"] == "posts" else parse_comment(r, "a", "1_2")
    else:
        from connectors.instagram import parse_comment as ig_comment
        from connectors.instagram import parse_media

        def one(r: dict[str, Any]) -> Any:
            return parse_media(r, "a") if r["_kind"] == "medias" else ig_comment(r, "a", "1")

    def run() -> int:
        n = 0
        for r in records:
            try:
                one(r)
                n += 1
            except (KeyError, TypeError, ValueError):
                pass
        return n
    return run, len(records)


def _youtube() -> tuple[Callable[[], int], int]:
    from connectors.youtube import thread_items, video_item

    threads: list[dict[str, Any]] = []
    for path in sorted((SHARED / "fixtures/youtube/apidata/comment_threads").glob("*.json")):
        threads += [t for t in _json(path).get("items", []) if "snippet" in t]
    videos: list[dict[str, Any]] = []
    for path in sorted((SHARED / "fixtures/youtube/apidata/playlist_items").glob("*.json")):
        videos += [v for v in _json(path).get("items", []) if "snippet" in v]

    def run() -> int:
        n = 0
        for t in threads:
            n += len(thread_items(t, "a"))
        for v in videos:
            video_item(v, "a")
            n += 1
        return n
    return run, len(threads) + len(videos)


def _tiktok() -> tuple[Callable[[], int], int]:
    from connectors.tiktok import comment_item, video_item

    data = REPO / "tests/data/tiktok"
    videos = [v for name in ("video_list_p1.json", "video_list_p2.json")
              for v in _json(data / name)["data"]["videos"]]
    comments = _json(data / "comment_list_v1.json")["data"]["comments"]

    def run() -> int:
        for v in videos:
            video_item(v, "a", "b")
        for c in comments:
            comment_item(c, "a", "v")
        return len(videos) + len(comments)
    return run, len(videos) + len(comments)


def _teams() -> tuple[Callable[[], int], int]:
    from connectors.teams import parse_chat_message

    messages = [m for m in _json(SHARED / "fixtures/msgraph/chat-list-messages.example1"
                                 ".response.json")["value"]]

    def run() -> int:
        n = 0
        for m in messages:
            try:
                parse_chat_message(m, account="a")
                n += 1
            except Exception:  # the recorded malformed timestamp
                pass
        return n
    return run, len(messages)


def _whatsapp() -> tuple[Callable[[], int], int]:
    from connectors.whatsapp import parse_webhook

    payloads = [_json(Path(p)) for p in sorted(glob.glob(
        str(SHARED / "fixtures/whatsapp/updates/*.json")))]

    def run() -> int:
        n = 0
        for p in payloads:
            n += len(parse_webhook(p, account="a")[0])
        return max(n, 1)
    return run, len(payloads)


def _imap() -> tuple[Callable[[], int], int]:
    from connectors.imap import parse_message

    raws = []
    for n in range(20):
        msg = EmailMessage()
        msg["From"], msg["To"] = "tutor@school.example.org", "learner@school.example.org"
        msg["Subject"], msg["Date"] = f"Homework {n}", "Tue, 17 Nov 2026 18:05:00 +0000"
        msg["Message-ID"] = f"<m{n}@school.example.org>"
        msg.set_content("Please see the attached sheet before Friday.\n" * 5)
        msg.add_alternative("<p>Please see the <b>attached</b> sheet before Friday.</p>" * 5,
                            subtype="html")
        raws.append(msg.as_bytes())

    def run() -> int:
        for raw in raws:
            parse_message(raw, platform="email", account="a")
        return len(raws)
    return run, len(raws)


def _zoom() -> tuple[Callable[[], int], int]:
    from connectors.zoom import meeting_item

    reports = [{"uuid": f"u{n}==", "id": 8000 + n, "topic": "Revision", "host_id": "h",
                "start_time": "2026-11-18T16:00:00Z", "user_email": "h@school.example.org"}
               for n in range(50)]
    people = [{"id": f"p{n}", "name": f"P {n}", "user_email": f"p{n}@x.org"} for n in range(8)]

    def run() -> int:
        for r in reports:
            meeting_item(r, {"password": "x", "settings": {"waiting_room": True}}, people,
                         account="a")
        return len(reports)
    return run, len(reports)


def _jsonl() -> tuple[Callable[[], int], int]:
    from connectors.jsonl import parse_line

    lines = (REPO / "examples/items/brookfield-facebook.jsonl").read_text().splitlines()

    def run() -> int:
        for n, line in enumerate(lines):
            parse_line(line, Path("x.jsonl"), n)
        return len(lines)
    return run, len(lines)


def _website() -> tuple[Callable[[], int], int]:
    from connectors.website import WebsiteConnector, WebsiteSettings

    site = WebsiteConnector(WebsiteSettings(name="w", type="website", account="a",
                                            start_url="https://www.school.example.org/"))
    body = ("<h2>Sports day</h2><p>Well done to <a href='/x'>everyone</a> who took part.</p>"
            "<ul><li>Year 7</li><li>Year 8</li></ul>") * 20
    page = f"<html><head><title>News</title></head><body><h1>News</h1>{body}</body></html>"

    def run() -> int:
        for n in range(10):
            site._page_item(f"https://www.school.example.org/{n}", page, None)
        return 10
    return run, 10


def _slack_workspace() -> tuple[Callable[[], int], int]:
    from connectors.slack_workspace import SlackWorkspaceConnector, SlackWorkspaceSettings

    connector = SlackWorkspaceConnector(SlackWorkspaceSettings(
        name="s", type="slack_workspace", account="a", token="xoxb-bench"))  # type: ignore[arg-type]
    messages = [{"ts": f"1795000{n:03d}.000100", "bot_id": "B1", "username": "bot",
                 "text": f"Reminder {n}: kit for Friday", "thread_ts": "1795000000.000100"}
                for n in range(50)]

    def run() -> int:
        for m in messages:
            connector.message_item(m, {"id": "C1"})
        return len(messages)
    return run, len(messages)


WORKLOADS: dict[str, Callable[[], tuple[Callable[[], int], int]]] = {
    "mastodon": _mastodon, "bluesky": _bluesky, "x": _x,
    "facebook": lambda: _meta("facebook"), "instagram": lambda: _meta("instagram"),
    "youtube": _youtube, "tiktok": _tiktok, "teams": _teams, "whatsapp": _whatsapp,
    "imap": _imap, "zoom": _zoom, "jsonl": _jsonl, "website": _website,
    "slack_workspace": _slack_workspace,
}


def main() -> None:
    only = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] else list(WORKLOADS)
    out: dict[str, float] = {}
    for name in only:
        run, _ = WORKLOADS[name]()
        run()  # warm
        done, start = 0, time.process_time()
        while time.process_time() - start < SECONDS:
            done += run()
        out[name] = done / (time.process_time() - start)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
