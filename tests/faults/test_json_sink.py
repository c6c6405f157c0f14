"""The JSON sink writes each notification exactly once, whatever a crash interrupts (issue 17,
row 15).

Before: the sink appended a flag's line before the outbox marked the message delivered; a crash in
between (the line on disk, the mark never committed) made the next drain deliver it again, and
the file held the line twice. The process is killed (``os._exit``, as SIGKILL would) right after
the sink has written its third line, before the delivery is committed; another process then
drains the outbox.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import os, sys
from pathlib import Path
from typing import Any
from governance_bot.config import load_config
from governance_bot.runtime import Runtime

crash_after = int(sys.argv[2])
rt = Runtime.from_config(load_config(Path(sys.argv[1]), env={}))
sender = rt.sender()
if crash_after:
    real = sender.sink.deliver
    written = [0]

    def deliver(view):
        real(view)
        written[0] += 1
        if written[0] == crash_after:
            os._exit(9)  # killed after the line is on disk, before the delivery commits

    sender.sink.deliver = deliver
print("delivered", sender.drain())
"""


def test_a_crash_between_the_line_and_the_commit_never_duplicates_a_line(tmp_path: Path) -> None:
    registers = ROOT / "examples" / "registers.toml"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///gb.db"\n[registers]\nfile = "{registers}"\n'
        '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n'
        '[delivery]\nsink = "json"\njson_path = "flags.jsonl"\n'
        '[service]\nlease_seconds = 1\n')  # the dead process's claims run out at once
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({
        "id": f"p{i}", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",
        "author": {"id": "104000000001"}, "created_at": "2026-11-20T10:00:00+00:00",
        "text": f"Well done to Jayden Price for the match report {i}!"}) + "\n" for i in range(6)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    env["PYTHONPATH"] = str(ROOT)
    # archive and flag the items, without delivering (the outbox keeps them)
    subprocess.run([sys.executable, "-c",
                    "import sys; from pathlib import Path; "
                    "from governance_bot.config import load_config; "
                    "from governance_bot.runtime import Runtime; from connectors.jsonl import "
                    "read_items; rt = Runtime.from_config(load_config(Path(sys.argv[1]), "
                    "env={})); rt.pipeline.process_many(p for _f, _l, p in "
                    "read_items(Path(sys.argv[2])))", str(config), str(items)],
                   cwd=tmp_path, env=env, check=True, timeout=300)
    crashed = subprocess.run([sys.executable, "-c", SCRIPT, str(config), "3"], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=300)
    assert crashed.returncode == 9, crashed.stderr
    time.sleep(1.5)
    finished = subprocess.run([sys.executable, "-c", SCRIPT, str(config), "0"], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    lines = [json.loads(line) for line in (tmp_path / "flags.jsonl").read_text().splitlines()
             if line.strip()]
    per_delivery = Counter(line["delivery_key"] for line in lines)
    print(f"{len(lines)} lines for {len(per_delivery)} notifications after the crash: "
          f"{dict(Counter(per_delivery.values()))}")
    assert len(per_delivery) == 6
    assert set(per_delivery.values()) == {1}, per_delivery  # every notification exactly once
    assert stat.S_IMODE((tmp_path / "flags.jsonl").stat().st_mode) == 0o600


class _View:
    """What the sink reads of a notification (the outbox builds the real FlagView)."""

    def __init__(self, flag_id: int) -> None:
        from types import SimpleNamespace

        from governance_bot.findings import Route

        self.flag = SimpleNamespace(id=flag_id)
        self.route = Route.account_managers
        self.kind = "flag_created"

    def to_dict(self) -> dict[str, object]:
        return {"flag_id": self.flag.id, "route": self.route.value, "kind": self.kind}


def test_a_line_cut_short_by_a_crash_is_replaced_by_the_whole_line(tmp_path: Path) -> None:
    from governance_bot.sinks.console import JsonSink

    class Sink(JsonSink):  # one line per notification, whatever the audiences
        def lines(self, view: Any) -> list[dict[str, Any]]:
            return [view.to_dict()]

    path = tmp_path / "flags.jsonl"
    Sink(path).deliver(_View(1))  # type: ignore[arg-type]
    with path.open("a") as fh:
        fh.write('{"flag_id": 2, "route": "account_man')  # the power went mid-write
    again = Sink(path)  # the next start
    again.deliver(_View(2))  # type: ignore[arg-type]
    again.deliver(_View(1))  # type: ignore[arg-type]  # redelivered after a lost commit
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["delivery_key"] for line in lines] == [
        "flag-1:account_managers:flag_created/0", "flag-2:account_managers:flag_created/0"]
