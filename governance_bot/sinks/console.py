"""Console and JSON sinks: the whole flow without Slack credentials."""

from __future__ import annotations

import fcntl
import json
import os
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
    """Appends one JSON object per notification to a .jsonl file (or a stream), exactly once.

    The line is written before the outbox commits the delivery, so a crash in between would
    otherwise repeat it at the next drain. Each line therefore carries a ``delivery_key`` (the
    flag, route and kind: one outbox message), and before it appends, the sink reads what was
    appended since it last looked (under an exclusive ``flock``, so processes sharing the file
    agree) and skips a key already written. A line cut short by a crash mid-write is removed
    (its delivery was not committed, so it comes again whole). Each line is written with one
    ``write`` on an append-only descriptor and flushed to disk (``fsync``) before the delivery
    is committed. The file is created readable by its owner only (0600). Readers who copy the
    file elsewhere can rely on ``delivery_key`` being unique in it.
    """

    name = "json"

    def __init__(self, path: Path | None = None, stream: TextIO | None = None):
        self.path = path
        self.stream = stream
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._read_to = 0  # how far the file has been read for keys

    @staticmethod
    def delivery_key(view: FlagView) -> str:
        return f"flag-{view.flag.id}:{view.route.value}:{view.kind}"

    def deliver(self, view: FlagView) -> None:
        key = self.delivery_key(view)
        line = json.dumps({**view.to_dict(), "delivery_key": key}, ensure_ascii=False,
                          default=str) + "\n"
        with self._lock:
            if self.path is None:
                if self.stream is not None and key not in self._keys:
                    self.stream.write(line)
                    self._keys.add(key)
                return
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._catch_up(fd)
                if key in self._keys:
                    return  # written before a crash kept the delivery from being committed
                data = line.encode("utf-8")
                if os.write(fd, data) != len(data):
                    raise OSError(f"{self.path}: short write")
                os.fsync(fd)
                self._keys.add(key)
                self._read_to = os.fstat(fd).st_size
            finally:
                os.close(fd)  # releases the lock

    def _catch_up(self, fd: int) -> None:
        """Read the keys of the lines appended since last time; drop a torn last line."""
        size = os.fstat(fd).st_size
        if size < self._read_to:  # the file was replaced or truncated: read it all again
            self._keys.clear()
            self._read_to = 0
        if size == self._read_to:
            return
        data = os.pread(fd, size - self._read_to, self._read_to)
        complete = data.rfind(b"\n") + 1
        for raw in data[:complete].splitlines():
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # not ours to judge: readers skip what is not JSON
            if isinstance(record, dict) and isinstance(record.get("delivery_key"), str):
                self._keys.add(record["delivery_key"])
        if complete < len(data):  # a line cut short by a crash: its delivery comes again
            os.ftruncate(fd, self._read_to + complete)
        self._read_to += complete
