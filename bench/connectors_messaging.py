"""Messaging connectors (email, Teams, WhatsApp, Zoom, Slack, website): parse throughput.

Each parser turns platform payloads into normalised items (what a poll or a webhook costs in
CPU, without the network): email (MIME, plain+HTML+attachment), Teams chatMessage (HTML body),
WhatsApp webhook bodies, Zoom past meetings, Slack messages and website pages. ``--imap`` also
times a real fetch from a private Dovecot (tests/imap_server.py), where installed.
The payloads are invented (the example organisation) or the recorded samples in ../shared.
Measured side by side in one run.

    .venv/bin/python bench/run.py connectors_messaging [--n 5000] [--imap]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench.harness import REPO, Bench, Skip
from connectors.imap import parse_message
from connectors.slack_workspace import (
    SlackWorkspaceConnector,
    SlackWorkspaceSettings,
)
from connectors.teams import parse_chat_message
from connectors.website import WebsiteConnector, WebsiteSettings
from connectors.whatsapp import parse_webhook
from connectors.zoom import meeting_item
from governance_bot.items import Person


def email_bytes(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Daniel Mensah <d.mensah@brookfield.example.org>"
    msg["To"] = "jayden.price@students.brookfield.example.org"
    msg["Cc"] = "s.carrington@brookfield.example.org"
    msg["Subject"] = f"Coursework feedback {n}"
    msg["Date"] = format_datetime(datetime(2026, 3, 10, 9, n % 60, tzinfo=UTC))
    msg["Message-ID"] = f"<bench-{n}@brookfield.example.org>"
    msg["References"] = "<root@brookfield.example.org>"
    body = "Well done on the draft. Please look at section two again. " * 8
    msg.set_content(body)
    msg.add_alternative(f"<html><body><p>{body}</p><p><b>Mr Mensah</b></p></body></html>",
                        subtype="html")
    msg.add_attachment(b"%PDF-1.4 invented " * 200, maintype="application", subtype="pdf",
                       filename="feedback.pdf")
    return msg.as_bytes()


def teams_message(n: int) -> dict[str, Any]:
    return {
        "id": str(1_700_000_000_000 + n), "replyToId": None, "messageType": "message",
        "createdDateTime": "2026-03-10T22:30:00.000Z", "lastEditedDateTime": None,
        "deletedDateTime": None, "chatId": "19:bench@unq.gbl.spaces", "channelIdentity": None,
        "from": {"user": {"id": "aad-0006", "displayName": "Daniel Mensah",
                          "userIdentityType": "aadUser"}},
        "body": {"contentType": "html",
                 "content": "<div><p>Did you finish the <b>coursework</b>?</p>"
                            "<p>Let me know tonight.</p></div>"},
        "attachments": [], "mentions": [],
    }


TEAMS_MEMBERS = [
    {"userId": "aad-0006", "displayName": "Daniel Mensah",
     "email": "d.mensah@brookfield.example.org"},
    {"userId": "aad-l003", "displayName": "Oliver Smith-Hughes",
     "email": "oliver.smithhughes@students.brookfield.example.org"},
]


def whatsapp_payloads() -> list[dict[str, Any]]:
    shared = Path(os.environ.get("GOVERNANCE_BOT_SHARED", REPO.parent / "shared"))
    folder = shared / "fixtures" / "whatsapp" / "updates"
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        out.extend(json.loads(path.read_text(encoding="utf-8")).values())
    return out


def zoom_meeting(n: int) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    report = {"uuid": f"bench{n}==", "id": 81200000000 + n, "host_id": "zhost",
              "topic": "Coursework catch-up", "user_name": "Daniel Mensah",
              "user_email": "d.mensah@brookfield.example.org",
              "start_time": "2026-03-10T16:00:00Z", "duration": 35}
    details = {"password": "", "settings": {"waiting_room": False}}
    people = [{"id": "", "name": f"Learner {k}",
               "user_email": f"learner{k}@students.brookfield.example.org"} for k in range(12)]
    return report, details, people


def slack_message(n: int) -> dict[str, Any]:
    return {"type": "message", "user": "U0TUTOR", "ts": f"1773169200.{n:06d}",
            "text": "<@U0LEARN> please bring your portfolio to room B4 tomorrow",
            "edited": {"user": "U0TUTOR", "ts": "1773169300.000000"}}


def web_page(n: int) -> str:
    paras = "".join(f"<p>News item {k}: our Year 9s had a great time on the trip.</p>"
                    for k in range(40))
    return (f"<!doctype html><html><head><title>News {n}</title><script>x=1</script>"
            f"<style>p{{}}</style></head><body><nav><a href='/'>Home</a></nav>{paras}"
            f"<footer>Brookfield Academy</footer></body></html>")


def timed(fn: Callable[[], int], repeats: int = 3) -> tuple[float, int]:
    """Best-of wall time (seconds) and how many items one run produced."""
    times = []
    produced = 0
    for _ in range(repeats):
        start = time.perf_counter()
        produced = fn()
        times.append(time.perf_counter() - start)
    return min(times), produced


def measure(n: int, with_imap: bool) -> list[tuple[str, int, float, int]]:
    results: list[tuple[str, int, float, int]] = []
    emails = [email_bytes(i) for i in range(n)]
    teams = [teams_message(i) for i in range(n)]
    wa = whatsapp_payloads()
    wa_batch = (wa * (n // max(1, len(wa)) + 1))[:n] if wa else []
    zoom = [zoom_meeting(i) for i in range(max(1, n // 10))]
    slack_msgs = [slack_message(i) for i in range(n)]
    pages = [web_page(i) for i in range(max(1, n // 10))]

    slack = SlackWorkspaceConnector(SlackWorkspaceSettings(
        name="b", type="slack_workspace", account="a", token="xoxb-bench"))
    slack._users = {"U0TUTOR": Person(id="U0TUTOR", email="d.mensah@brookfield.example.org"),
                    "U0LEARN": Person(id="U0LEARN",
                                      email="jayden.price@students.brookfield.example.org")}
    channel = {"id": "C0COHORT", "is_channel": True}
    site = WebsiteConnector(WebsiteSettings(name="w", type="website", account="a",
                                            start_url="https://www.brookfield.example.org/"))

    cases: list[tuple[str, int, Callable[[], int]]] = [
        ("email (MIME: plain+HTML+PDF)", len(emails), lambda: sum(
            1 for raw in emails if parse_message(raw, platform="email", account="a"))),
        ("Teams chatMessage (HTML body)", len(teams), lambda: sum(
            1 for m in teams if parse_chat_message(m, account="a", members=TEAMS_MEMBERS))),
        ("WhatsApp webhook bodies (recorded)", len(wa_batch), lambda: sum(
            len(parse_webhook(p, account="a")[0]) for p in wa_batch)),
        ("Zoom meeting (12 participants)", len(zoom), lambda: sum(
            1 for r, d, p in zoom if meeting_item(r, d, p, account="a"))),
        ("Slack message", len(slack_msgs), lambda: sum(
            1 for m in slack_msgs if slack.message_item(m, channel))),
        ("website page (40 paragraphs)", len(pages), lambda: sum(
            1 for i, html in enumerate(pages)
            if site._page_item(f"https://www.brookfield.example.org/p{i}", html, None))),
    ]
    for label, count, fn in cases:
        if count == 0:
            continue
        seconds, produced = timed(fn)
        results.append((label, count, seconds, produced))
    site.close()
    if with_imap:
        results.append(imap_fetch(emails[: min(500, len(emails))]))
    return results


def imap_fetch(emails: list[bytes]) -> tuple[str, int, float, int]:
    """Append to a private Dovecot and time one full fetch (connect, search, fetch, parse)."""
    import shutil
    import subprocess
    import tempfile

    from imapclient import IMAPClient

    from connectors.imap import ImapConnector, ImapSettings
    from tests import imap_server

    binary = imap_server._find_dovecot()
    if binary is None:
        raise Skip("--imap needs Dovecot (apt-get install dovecot-imapd)")
    root = Path(tempfile.mkdtemp(prefix="governance-bot-bench-dovecot-"))
    root.chmod(0o755)
    server = imap_server.DovecotServer(binary=binary, root=root, port=imap_server._free_port())
    imap_server._write_config(server)
    proc = subprocess.Popen([binary, "-F", "-c", str(server.config)])
    try:
        if not imap_server._wait_for_port(server.host, server.port, 15, proc):
            raise SystemExit("Dovecot did not start")
        admin = IMAPClient(server.host, port=server.port, ssl=False)
        admin.login("journal", server.password)
        admin.create_folder("Bench")
        for raw in emails:
            admin.append("Bench", raw)
        admin.logout()
        settings = ImapSettings(name="bench", type="imap", account="a", host=server.host,
                                port=server.port, security="none", username="journal",
                                password=server.password, folders=["Bench"], batch_size=100)
        conn = ImapConnector(settings)
        start = time.perf_counter()
        result = conn.fetch(None)
        seconds = time.perf_counter() - start
        conn.close()
        return ("email fetched from Dovecot (end to end)", len(emails), seconds,
                len(result.items))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


QUICK = ["--n", "500"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--imap", action="store_true", help="also time a real Dovecot fetch")


def run(bench: Bench, args: argparse.Namespace) -> None:
    bench.param(n=args.n, imap=args.imap)
    results = measure(args.n, args.imap)
    baseline = results[0][1] / results[0][2]
    rows = []
    for label, count, seconds, produced in results:
        per_s = produced / seconds if seconds else float("inf")
        rows.append([label, f"{produced}/{count}", seconds, per_s, f"{per_s / baseline:.2f}x"])
    bench.table("Parse throughput, best of 3 runs, one process, side by side",
                ["payload", "items", "seconds", "items/s", "vs email"], rows,
                note="WhatsApp counts items produced: status, call and template updates in the "
                     "recorded set produce none (they are skipped with a log line), so its "
                     "items/s is per useful item.")
    rates = [r[3] / r[2] for r in results if r[2]]
    bench.target("messaging parse throughput (issue 5)",
                 ", ".join(f"{r[0].split(' (')[0]} {r[3] / r[2]:,.0f}/s" for r in results
                           if r[2]) + f"; median {statistics.median(rates):,.0f} items/s", None)
