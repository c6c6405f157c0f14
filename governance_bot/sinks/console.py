"""Console and JSON sinks: the whole flow without Slack credentials, with the same need to know
as Slack (``governance_bot.authz``): each block or line is for one group of people who see the
same thing, and holds only their findings (masked for the account managers and digests)."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

from governance_bot.authz import Entitlement
from governance_bot.findings import Route
from governance_bot.masking import mask_learners
from governance_bot.outbox import FlagView
from governance_bot.registers import RegisterIndex, StaffMember
from governance_bot.storage import models as m

__all__ = ["ROUTE_NAMES", "ConsoleSink", "JsonSink"]

ROUTE_NAMES = {
    Route.account_managers: "account managers",
    Route.dsl: "DSL and deputies",
    Route.case_manager: "case manager (staff conduct)",
    Route.digest: "daily digest",
    Route.case_digest: "case manager's daily summary",
    Route.record_only: "record only",
}
_SEVERITY = {1: "info", 2: "low", 3: "medium", 4: "HIGH", 5: "CRITICAL"}
_STYLE = {1: "dim", 2: "cyan", 3: "yellow", 4: "bold red", 5: "bold white on red"}


def _explanation(f: m.Finding, people: list[Entitlement], registers: RegisterIndex | None
                 ) -> str:
    if registers is not None and not people[0].child_identity:
        return mask_learners(f.explanation, registers)
    return f.explanation


class ConsoleSink:
    """Prints one block per group of people who see the same thing. Shows reasons and register
    ids, never message text."""

    name = "console"

    def __init__(self, console: Console | None = None, registers: RegisterIndex | None = None,
                 mask_learner_details: bool = True):
        self.console = console or Console(highlight=False)
        self.registers = registers
        self.mask = mask_learner_details

    def deliver(self, view: FlagView) -> None:
        flag, item = view.flag, view.item
        verb = "flag" if view.kind == "flag_created" else "flag update"
        author = item.author.role.value if item.author.role else "unknown"
        # nobody registered for this part: say so (the people of other routes are shown there)
        groups = view.audiences() if view.entitlements else [([], view.findings)]
        registers = self.registers if self.mask else None
        for people, findings in groups:
            if not findings:
                continue
            sev = max(f.severity for f in findings)
            top = max(findings, key=lambda f: f.severity)
            who = ", ".join(e.staff.name for e in people) or "nobody registered"
            self.console.print(
                f"[{_STYLE.get(sev, '')}]{verb} #{flag.id} · severity {sev} "
                f"({_SEVERITY.get(sev)}) · {top.category}[/] → {ROUTE_NAMES[view.route]} "
                f"({who})")
            self.console.print(
                f"   {item.platform} · {item.account} · {item.kind.value} by {author} · "
                f"{item.created_at:%Y-%m-%d %H:%M} UTC" + (f" · {item.url}" if item.url else ""))
            for f in findings:
                self.console.print(f"   - [{f.category}] "
                                   f"{_explanation(f, people or [_NOBODY], registers)}",
                                   markup=False)
            notes = {e.note for e in people if e.note}
            for note in sorted(notes):
                self.console.print(f"   ({note})")


class JsonSink:
    """Appends one JSON object per group of people who see the same thing to a .jsonl file (or
    a stream): only their findings, with their staff ids; each notification exactly once.

    The lines are written before the outbox commits the delivery, so a crash in between would
    otherwise repeat them at the next drain. Each line therefore carries a ``delivery_key`` (the
    flag, route and kind of one outbox message, and the line's number within it), and before it
    appends, the sink reads what was appended since it last looked (under an exclusive
    ``flock``, so processes sharing the file agree) and skips a notification already written.
    A line cut short by a crash mid-write is removed (its delivery was not committed, so it comes
    again whole). A notification's lines are written with one ``write`` on an append-only
    descriptor and flushed to disk (``fsync``) before the delivery is committed. The file is
    created readable by its owner only (0600). Readers can rely on ``delivery_key`` being
    unique in it.
    """

    name = "json"

    def __init__(self, path: Path | None = None, stream: TextIO | None = None,
                 registers: RegisterIndex | None = None, mask_learner_details: bool = True):
        self.path = path
        self.stream = stream
        self.registers = registers
        self.mask = mask_learner_details
        self._lock = threading.Lock()
        self._keys: set[str] = set()
        self._read_to = 0  # how far the file has been read for keys

    @staticmethod
    def delivery_key(view: FlagView) -> str:
        return f"flag-{view.flag.id}:{view.route.value}:{view.kind}"

    def lines(self, view: FlagView) -> list[dict[str, Any]]:
        base = view.to_dict()
        out = []
        registers = self.registers if self.mask else None
        for people, findings in (view.audiences() if view.entitlements
                                 else [([], view.findings)]):
            if not findings:
                continue
            notes = sorted({e.note for e in people if e.note})
            out.append({
                **base,
                "severity": max(f.severity for f in findings),
                "category": max(findings, key=lambda f: f.severity).category,
                "recipients": [e.staff_id for e in people],
                "view": people[0].view if people else "managers",
                "detail": people[0].detail.value if people else "masked",
                "findings": [
                    {"rule_id": f.rule_id, "category": f.category, "severity": f.severity,
                     "score": f.score, "route": f.route, "fingerprint": f.fingerprint,
                     "explanation": _explanation(f, people or [_NOBODY], registers),
                     **({"evidence": f.evidence} if people and people[0].child_identity
                        else {})}
                    for f in findings],
                **({"note": notes[0]} if notes else {}),
            })
        return out

    def deliver(self, view: FlagView) -> None:
        key = self.delivery_key(view)
        text = "".join(json.dumps({**line, "delivery_key": f"{key}/{n}"}, ensure_ascii=False,
                                  default=str) + "\n"
                       for n, line in enumerate(self.lines(view)))
        if not text:
            return
        with self._lock:
            if self.path is None:
                if self.stream is not None and key not in self._keys:
                    self.stream.write(text)
                    self._keys.add(key)
                return
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._catch_up(fd)
                if key in self._keys:
                    return  # written before a crash kept the delivery from being committed
                data = text.encode("utf-8")
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
                self._keys.add(record["delivery_key"].rsplit("/", 1)[0])
        if complete < len(data):  # a line cut short by a crash: its delivery comes again
            os.ftruncate(fd, self._read_to + complete)
        self._read_to += complete


_NOBODY = Entitlement(staff=StaffMember(staff_id="-", name="nobody"))
