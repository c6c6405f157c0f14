"""The console's queue page with 10,000 flags: time from request to the whole page received.

A database is filled with N flags (items, findings and flags written in bulk, spread over the
example organisation's accounts, categories, severities, routes and statuses), the service's
HTTP application (console mounted) runs under uvicorn on a loopback port, and a client signed in
as the DSL (and as an account manager) fetches queue pages over HTTP: the default queue, a
filtered one, one sorted by severity, a later page. Each request goes through the whole stack:
the session lookup, the authorisation scope, the counts, the page of rows, the audit event, the
template. Target: p95 < 300 ms on this machine.

    .venv/bin/python bench/bench_console.py [--flags 10000] [--requests 100] [--pg URL]
        [--out bench/RESULTS-console.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from governance_bot.config import Config  # noqa: E402
from governance_bot.console.sessions import COOKIE  # noqa: E402
from governance_bot.runtime import Runtime  # noqa: E402
from governance_bot.service import Service  # noqa: E402
from governance_bot.storage import models as m  # noqa: E402

ACCOUNTS = ["brookfield-facebook", "brookfield-instagram", "brookfield-x", "brookfield-teams",
            "brookfield-email"]
KINDS = [("safeguarding", "dsl", 4), ("safeguarding", "dsl", 5), ("learner_pii",
         "account_managers", 3), ("toxicity", "account_managers", 3), ("tone", "digest", 2),
         ("out_of_hours", "dsl", 3), ("unapproved_photo", "account_managers", 3),
         ("accountability", "dsl", 4)]
STATUSES = ["open"] * 5 + ["acknowledged", "actioned", "dismissed", "closed", "escalated"]


def fill(rt: Runtime, n: int) -> None:
    rng = random.Random(7)
    t0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    items, flags, findings = [], [], []
    for i in range(1, n + 1):
        account = ACCOUNTS[i % len(ACCOUNTS)]
        category, route, severity = KINDS[rng.randrange(len(KINDS))]
        at = t0 + timedelta(minutes=47 * i)
        items.append({"id": i, "key": f"facebook:{account}:b{i}", "platform": "facebook",
                      "account": account, "native_id": f"b{i}", "kind": "comment",
                      "thread_key": f"t{i // 3}", "parent_id": None, "created_at": at,
                      "first_seen_at": at, "last_seen_at": at, "deleted_at": None,
                      "current_version": 1, "content_hash": f"{i:064x}"})
        flags.append({"id": i, "item_id": i, "account": account, "thread_key": f"t{i // 3}",
                      "category": category, "severity": severity, "route": route,
                      "status": STATUSES[rng.randrange(len(STATUSES))], "created_at": at,
                      "updated_at": at, "item_created_at": at, "acknowledged_at": None,
                      "acknowledged_by": None, "assigned_to": None, "escalation_level": 0,
                      "legal_hold": False})
        subject = "staff:S006>learner:L003" if category == "accountability" else None
        findings.append({"flag_id": i, "item_id": i, "fingerprint": f"{i:064x}",
                         "rule_id": category, "category": category, "severity": severity,
                         "score": 0.9, "route": route, "subject": subject, "evidence": {},
                         "explanation": "an invented finding", "item_created_at": at,
                         "created_at": at})
    with rt.db.session() as s:
        s.execute(insert(m.ItemRecord), items)
        s.execute(insert(m.Flag), flags)
        s.execute(insert(m.Finding), findings)


def serve(rt: Runtime, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(uvicorn.Config(Service(rt).http_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread


def measure(client: httpx.Client, path: str, requests: int) -> list[float]:
    for _ in range(5):  # warm-up: templates compiled, statements cached
        assert client.get(path).status_code == 200
    out = []
    for _ in range(requests):
        t = time.perf_counter()
        resp = client.get(path)
        out.append((time.perf_counter() - t) * 1000)
        assert resp.status_code == 200 and "Case " in resp.text, resp.text[:300]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--pg", help="a PostgreSQL URL (a fresh, empty database)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-console.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        url = args.pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        config = Config(database={"url": url},
                        registers={"file": ROOT / "examples" / "registers.toml"},
                        detection={"disabled_rules": ["safeguarding", "images", "toxicity"]},
                        service={"host": "127.0.0.1", "port": port},
                        console={"session_secret": "bench"})
        rt = Runtime.from_config(config, with_connectors=False)
        t = time.perf_counter()
        fill(rt, args.flags)
        filled = time.perf_counter() - t
        server, thread = serve(rt, port)
        from governance_bot.console.sessions import SessionStore

        store = SessionStore(rt.db, timedelta(hours=1), timedelta(hours=10))
        rows = []
        try:
            for who, staff_id, paths in (
                    ("DSL", "S001", ["/", "/?severity=4", "/?sort=severity&status=all",
                                     "/?status=all&page=40"]),
                    ("manager", "S004", ["/", "/?account=brookfield-x"])):
                token, _ = store.start(staff_id, f"{staff_id}@bench", "dev", datetime.now(UTC))
                with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                                  cookies={COOKIE: token}, timeout=30) as client:
                    for path in paths:
                        ms = sorted(measure(client, path, args.requests))
                        p95 = ms[int(0.95 * (len(ms) - 1))]
                        rows.append((who, path, statistics.median(ms), p95, ms[-1]))
                        print(f"{who:8} {path:32} p50 {statistics.median(ms):6.1f} ms  "
                              f"p95 {p95:6.1f} ms  max {ms[-1]:6.1f} ms", flush=True)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            rt.close()
    backend = "PostgreSQL" if args.pg else "SQLite"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores (shared)"
    new = not args.out.exists()
    with args.out.open("a", encoding="utf-8") as fh:
        if new:
            fh.write("# Console: the queue page\n\nTime from request to the whole page received, "
                     "over HTTP on a loopback port (uvicorn serving the service's application "
                     "with the console; the client in the same process). Target: p95 < 300 ms "
                     "with 10,000 flags.\nRun: `.venv/bin/python bench/bench_console.py "
                     "[--pg URL]`.\n\n| date | machine | backend | flags | who | page | p50 ms "
                     "| p95 ms | max ms |\n|---|---|---|---|---|---|---|---|---|\n")
        for who, path, p50, p95, worst in rows:
            fh.write(f"| {stamp} | {machine} | {backend} | {args.flags} | {who} | `{path}` | "
                     f"{p50:.1f} | {p95:.1f} | {worst:.1f} |\n")
    print(f"filled {args.flags} flags in {filled:.1f} s; results appended to {args.out}")


if __name__ == "__main__":
    main()
