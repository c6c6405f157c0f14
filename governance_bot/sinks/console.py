"""Console and JSON sinks: the whole flow without Slack credentials."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TextIO

from rich.console import Console

from governance_bot.findings import Route
from governance_bot.outbox import FlagView

__all__ = ["ConsoleSink", "JsonSink"]

_ROUTE_NAMES = {
    Route.account_managers: "account managers",
    Route.dsl: "DSL and deputies",
    Route.digest: "daily digest",
    Route.record_only: "record only",
}
_SEVERITY = {1: "info", 2: "low", 3: "medium", 4: "HIGH", 5: "CRITICAL"}
_STYLE = {1: "dim", 2: "cyan", 3: "yellow", 4: "bold red", 5: "bold white on red"}


class ConsoleSink:
    """Prints one block per notification. Shows reasons and register ids, never message text."""

    name = "console"

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False)

    def deliver(self, view: FlagView) -> None:
        flag, item = view.flag, view.item
        sev = flag.severity
        who = ", ".join(s.name for s in view.recipients) or "nobody registered"
        verb = "flag" if view.kind == "flag_created" else "flag update"
        self.console.print(
            f"[{_STYLE.get(sev, '')}]{verb} #{flag.id} · severity {sev} ({_SEVERITY.get(sev)}) · "
            f"{flag.category}[/] → {_ROUTE_NAMES[view.route]} ({who})"
        )
        author = item.author.role.value if item.author.role else "unknown"
        self.console.print(
            f"   {item.platform} · {item.account} · {item.kind.value} by {author} · "
            f"{item.created_at:%Y-%m-%d %H:%M} UTC" + (f" · {item.url}" if item.url else "")
        )
        for f in view.findings:
            self.console.print(f"   - [{f.category}] {f.explanation}")


class JsonSink:
    """Appends one JSON object per notification to a .jsonl file (or a stream)."""

    name = "json"

    def __init__(self, path: Path | None = None, stream: TextIO | None = None):
        self.path = path
        self.stream = stream
        self._lock = threading.Lock()

    def deliver(self, view: FlagView) -> None:
        line = json.dumps(view.to_dict(), ensure_ascii=False, default=str)
        with self._lock:
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line + "\n")
            elif self.stream is not None:
                self.stream.write(line + "\n")
