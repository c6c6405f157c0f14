"""Plumbing shared by the fault tests: configs, invented items, replica processes, counts.

The items are posts on the example organisation's Facebook page; every third names a learner in
full (Jayden Price, examples/registers.toml), which the real ``learner_pii`` rule flags to the
account's designated managers. Everything after the item is the real pipeline and real Slack
client; only Slack itself is the local fake (tests/slack/fake_slack.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from rules.engine import DETECTORS
from tests.slack.fake_slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = ROOT / "examples" / "registers.toml"
BOT_TOKEN = "xoxb-faults-test"
# the fault tests count flags, so they run the one real rule whose findings they predict
ONLY_LEARNER_PII = [r for r in DETECTORS if r != "learner_pii"]


def item(i: int, *, prefix: str = "p", account: str = "brookfield-facebook",
         platform: str = "facebook") -> dict[str, Any]:
    """The i-th invented post; flagged (a learner's full name in public) when i % 3 == 0."""
    text = (f"Well done to Jayden Price for the match report {i}!" if i % 3 == 0
            else f"Open evening number {i} is on Thursday, all families welcome.")
    return {"id": f"{prefix}{i}", "platform": platform, "account": account, "kind": "post",
            "author": {"id": "104000000001", "name": "Brookfield Academy"},
            "created_at": "2026-11-20T10:00:00+00:00", "text": text,
            "url": f"https://facebook.example/posts/{prefix}{i}"}


def flagged(n: int) -> int:
    return len([i for i in range(n) if i % 3 == 0])


def write_items(path: Path, n: int, start: int = 0, **kw: Any) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for i in range(start, start + n):
            fh.write(json.dumps(item(i, **kw)) + "\n")


def write_config(path: Path, url: str, *, fake: FakeSlack | None = None, port: int = 8080,
                 connectors: str = "", extra: str = "", lease_seconds: int = 3,
                 rules: tuple[str, ...] = ("learner_pii",)) -> Path:
    delivery = (f'[delivery]\nsink = "slack"\n[slack]\nenabled = true\napi_url = '
                f'"{fake.base_url}"\n' if fake is not None else
                f'[delivery]\nsink = "json"\njson_path = "{path.parent / "flags.jsonl"}"\n')
    path.write_text(
        f'[database]\nurl = "{url}"\n[registers]\nfile = "{REGISTERS}"\n'
        f"[detection]\ndisabled_rules = {json.dumps([r for r in DETECTORS if r not in rules])}\n"
        f'[service]\nport = {port}\noutbox_interval_seconds = 1\nlease_seconds = {lease_seconds}\n'
        f"{delivery}{extra}\n{connectors}"
    )
    return path


def jsonl_connector(path: Path, name: str = "facebook-export", poll: int = 5) -> str:
    return (f'[[connectors]]\nname = "{name}"\ntype = "jsonl"\naccount = "brookfield-facebook"'
            f'\npath = "{path}"\npoll_interval_seconds = {poll}\n')


def env() -> dict[str, str]:
    return {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "faults-secret",
            "PYTHONPATH": str(ROOT)}


def governance_bot(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "governance_bot", *args], cwd=cwd, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Counts:
    """What the database and Slack hold after a fault: the figures the tests report."""

    items: int
    versions_per_item: Counter[int]
    flags: int
    outbox_pending: int
    posts_per_flag: Counter[int]
    via_slack: bool = False
    # flags shown in Slack: posted as a message of their own, or recorded under the alert
    # already sent for their thread (docs/routing.md, Threads)
    shown: int = 0

    @classmethod
    def read(cls, db: Database, fake: FakeSlack | None = None) -> Counts:
        with db.session() as s:
            items = s.execute(select(func.count(m.ItemRecord.id))).scalar_one()
            per_item = Counter(n for (n,) in s.execute(
                select(func.count(m.ItemVersion.id)).group_by(m.ItemVersion.item_id)))
            flags = s.execute(select(func.count(m.Flag.id))).scalar_one()
            pending = s.execute(select(func.count(m.OutboxMessage.id)).where(
                m.OutboxMessage.delivered_at.is_(None))).scalar_one()
            shown = s.execute(select(func.count(func.distinct(m.FlagMessage.flag_id)))
                              ).scalar_one()
        posts: Counter[int] = Counter()
        if fake is not None:
            for call in fake.calls("chat.postMessage"):
                meta = call.params.get("metadata")
                if isinstance(meta, dict):
                    posts[int(meta["event_payload"]["flag_id"])] += 1
        return cls(items, per_item, flags, pending, posts, fake is not None, shown)

    def report(self, title: str) -> str:
        line = (f"{title}: {self.items} items archived (versions per item: "
                f"{dict(self.versions_per_item)}), {self.flags} flags, "
                f"{self.outbox_pending} undelivered")
        if self.via_slack:
            line += (f", Slack posts per flag: {dict(Counter(self.posts_per_flag.values()))} "
                     f"over {len(self.posts_per_flag)} flags, {self.shown} flags shown")
        print(line)
        return line
