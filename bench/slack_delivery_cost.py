"""Slack delivery: CPU milliseconds and Web API calls per flag.

N flags (default 300) raised by the real ``learner_pii`` rule (a learner's full name in a public
comment; 1,000 learners in the register, so the managers' messages mask them) are delivered by the
real outbox sender, ``SlackSink`` and ``slack_sdk`` client to the local fake Slack Web API
(tests/slack/fake_slack.py). Half the flags are on one busy Facebook thread (each later one is
posted as a reply under the first one's message, its "anchor", whose count of grouped flags is
kept up to date), half on threads of their own.

Two ways of draining, as the service does:

* ``per-flag``: the outbox is drained after every flag (the service drains after each webhook
  batch and each poll; the load benchmark drains after every flagged item);
* ``backlog``: the flags are all waiting (after an outage, or a poll that found many) and one
  drain delivers them.

The fake Slack runs in a child process, so the CPU time measured (``time.process_time`` of this
process, around the drains only) is governance-bot's own side: outbox claims, database reads and
writes, rendering, masking and the HTTP client. API calls are counted by the fake Slack.

    .venv/bin/python bench/run.py slack_delivery_cost [--flags 300] [--anchor-refresh-seconds 5]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import multiprocessing as mp
import os
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.harness import REPO as ROOT
from bench.harness import Bench

EXAMPLE_REGISTERS = ROOT / "examples" / "registers.toml"
FIRST = ["Ada", "Bea", "Cal", "Dev", "Ela", "Finn", "Gus", "Hana", "Ivo", "Jude", "Kit", "Lila",
         "Milo", "Nia", "Otis", "Pia", "Quin", "Rhea", "Sol", "Tia", "Umar", "Vera", "Wren",
         "Xan", "Yara", "Zac", "Arlo", "Bryn", "Cleo", "Dara", "Ezra", "Faye", "Gio", "Hope",
         "Ines", "Joss", "Kai", "Luca", "Mae", "Nell"]
LAST = ["Ashdown", "Okonjo", "Pemberton", "Quayle", "Rowntree", "Bexley", "Carrow", "Dunmore",
        "Elston", "Farrant", "Gosling", "Hartwell", "Ilford", "Jessop", "Kenward", "Lumley",
        "Marlow", "Netherby", "Ormsby", "Pargeter", "Redfern", "Stansfield", "Thwaite",
        "Upfield", "Varley", "Whitlock", "Yelland", "Ackroyd", "Brindley", "Calloway"]


# --- the fake Slack, in a process of its own ---------------------------------------------------
def serve_fake(conn: Connection) -> None:
    from tests.slack.fake_slack import FakeSlack

    with FakeSlack() as fake:
        conn.send(fake.base_url)
        while True:
            command = conn.recv()
            if command == "stop":
                return
            if command == "reset":
                fake.reset()
                conn.send(True)
            elif command == "calls":
                posted = Counter(int(c.params["metadata"]["event_payload"]["flag_id"])
                                 for c in fake.calls("chat.postMessage")
                                 if isinstance(c.params.get("metadata"), dict))
                conn.send((Counter(c.method for c in fake.calls()), posted))


def write_learners(path: Path, n: int) -> list[str]:
    names = [f"{f} {s}" for s in LAST for f in FIRST][:n]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["learner_id", "first_name", "last_name", "preferred_name", "date_of_birth",
                    "email", "photo_consent", "comms_consent", "employer", "handles"])
        for i, name in enumerate(names):
            first, last = name.split(" ")
            w.writerow([f"D{i:05d}", first, last, "", f"20{10 + i % 5}-0{1 + i % 9}-1{i % 9}",
                        f"{first}.{last}.{i}@students.brookfield.example.org".lower(),
                        "yes", "yes", "", ""])
    return names


def item(i: int, names: list[str], busy: bool) -> Any:
    from governance_bot.items import Item

    thread = "104000000001_busy" if busy else f"104000000001_{i}"
    return Item.model_validate({
        "id": f"d{i}", "platform": "facebook", "account": "brookfield-facebook",
        "kind": "comment", "author": {"id": f"61000{i % 97:05d}", "name": "A Parent"},
        "created_at": datetime(2026, 11, 20, 10, 0, i % 60, tzinfo=UTC).isoformat(),
        "text": (f"Well done to {names[(i * 37) % len(names)]} on Saturday. Our Year 9 netball "
                 f"team played brilliantly against Riverside this weekend ({i})."),
        "thread_id": thread, "parent_id": thread,
        "url": f"https://facebook.example/d{i}"})


# --- one scenario ------------------------------------------------------------------------------
def scenario(mode: str, n: int, learners: int, conn: Connection, base_url: str,
             profile: cProfile.Profile | None, anchor_refresh: float) -> dict[str, Any]:
    from governance_bot.config import load_config
    from governance_bot.runtime import Runtime
    from governance_bot.slack.sink import SlackSink
    from rules.engine import DETECTORS

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_learners(folder / "learners.csv", learners)
        disabled = [r for r in DETECTORS if r != "learner_pii"]
        path = folder / "config.toml"
        path.write_text(
            f'[database]\nurl = "sqlite:///{folder / "gb.db"}"\n'
            f'[registers]\nfile = "{EXAMPLE_REGISTERS}"\nlearners = "{folder / "learners.csv"}"\n'
            f'[detection]\ndisabled_rules = {disabled!r}\n'.replace("'", '"')
            + f'[delivery]\nsink = "slack"\n[slack]\nenabled = true\napi_url = "{base_url}"\n')
        config = load_config(path)
        rt = Runtime.from_config(config)
        # as the service builds it: a busy thread's count refreshed at most every few seconds
        extra = {"anchor_refresh_seconds": anchor_refresh} if anchor_refresh else {}
        sender = rt.sender(SlackSink.from_config(config, rt.db, **extra))
        items = [item(i, names, busy=i % 2 == 0) for i in range(n)]
        rt.pipeline.process_many([item(n + 1000, names, busy=False)])  # warm-up: matchers, client
        sender.drain()
        conn.send("reset")
        conn.recv()
        cpu = wall = 0.0
        flags = 0

        def drain() -> None:
            nonlocal cpu, wall
            c0, w0 = time.process_time(), time.perf_counter()
            if profile is not None:
                profile.enable()
            sender.drain()
            if profile is not None:
                profile.disable()
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
            assert sender.pending() == 0

        if mode == "per-flag":
            for it in items:
                report = rt.pipeline.process_many([it])
                flags += report.flags_created
                drain()
        else:
            flags = rt.pipeline.process_many(items).flags_created
            drain()
        conn.send("calls")
        calls, posted = conn.recv()
        rt.close()
    twice = sum(1 for c in posted.values() if c > 1)
    return {"mode": mode, "flags": flags, "cpu_ms": 1000 * cpu / flags,
            "wall_ms": 1000 * wall / flags, "calls": sum(calls.values()) / flags,
            "by_method": {k: v / flags for k, v in sorted(calls.items())},
            "posted": len(posted), "posted_twice": twice}


QUICK = ["--flags", "60", "--learners", "200"]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--flags", type=int, default=300)
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--modes", default="per-flag,backlog")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--profile", type=Path, help="write a cProfile of the drains here")
    ap.add_argument("--anchor-refresh-seconds", type=float, default=0.0,
                    help="as the service does (5); 0: at the end of every batch")


def run(bench: Bench, args: argparse.Namespace) -> None:
    os.environ.setdefault("SLACK_BOT_TOKEN", "xoxb-bench")
    bench.param(flags=args.flags, learners=args.learners, modes=args.modes, repeat=args.repeat,
                anchor_refresh_seconds=args.anchor_refresh_seconds)
    profile = cProfile.Profile() if args.profile else None
    rows = []
    for _ in range(args.repeat):
        for mode in args.modes.split(","):
            # a fresh fake Slack (in a process of its own) for every scenario
            parent, child = mp.get_context("spawn").Pipe()
            proc = mp.get_context("spawn").Process(target=serve_fake, args=(child,),
                                                   daemon=True)
            proc.start()
            try:
                r = scenario(mode, args.flags, args.learners, parent, parent.recv(), profile,
                             args.anchor_refresh_seconds)
            finally:
                parent.send("stop")
                proc.join(5)
            mode_name = r["mode"] + (f" (anchor refresh <= 1/{args.anchor_refresh_seconds:g} s)"
                                     if args.anchor_refresh_seconds else "")
            rows.append([mode_name, r["flags"], r["cpu_ms"], r["wall_ms"], r["calls"],
                         r["posted"], r["posted_twice"],
                         ", ".join(f"{k} {v:.2f}" for k, v in r["by_method"].items())])
            if r["posted_twice"] or r["posted"] != r["flags"]:
                raise SystemExit("not every flag was posted exactly once")
    bench.table(f"{args.flags} flags (half on one thread), {args.learners} learners",
                ["drain", "flags", "CPU ms/flag", "wall ms/flag", "API calls/flag", "posted",
                 "posted twice", "calls per flag by method"], rows)
    if profile is not None:
        profile.dump_stats(str(args.profile))
