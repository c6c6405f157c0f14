"""Test helpers: an in-memory ``History`` and building items from rule-pack examples.

``MemoryHistory`` implements ``rules.base.History`` the way the pipeline's database-backed one
does: it keeps the items seen (for thread context) and the findings recorded with their subject
and item time (for repeated-contact rules).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance_bot.config import Config
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, read_toml
from rules.base import DetectionContext, Detector, Finding

__all__ = [
    "EXAMPLE_REGISTERS",
    "MemoryHistory",
    "RecordedFinding",
    "example_index",
    "example_item",
    "run_example",
]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_REGISTERS = REPO / "examples" / "registers.toml"


@dataclass(frozen=True, slots=True)
class RecordedFinding:
    rule_id: str
    subject: str
    item_time: datetime
    item_key: str


class MemoryHistory:
    """``rules.base.History`` over lists in memory."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.findings: list[RecordedFinding] = []

    def add_item(self, item: Item) -> None:
        self.items = [i for i in self.items if i.key != item.key] + [item]

    def record(self, item: Item, findings: Iterable[Finding]) -> None:
        """Remember ``item`` and its findings, as the pipeline stores them."""
        self.add_item(item)
        for f in findings:
            if f.subject:
                self.findings.append(RecordedFinding(f.rule_id, f.subject, item.created_at,
                                                     item.key))

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        earlier = [
            i for i in self.items
            if i.thread_key == item.thread_key and i.key != item.key
            and i.created_at <= item.created_at
        ]
        earlier.sort(key=lambda i: i.created_at)
        return earlier[-limit:]

    def prior_findings(
        self,
        rule_id: str,
        subject: str,
        since: datetime,
        until: datetime,
        exclude_item_key: str | None = None,
    ) -> Sequence[datetime]:
        times = {
            (f.item_key, f.item_time.astimezone(UTC)) for f in self.findings
            if f.rule_id == rule_id and f.subject == subject and since <= f.item_time <= until
            and f.item_key != exclude_item_key
        }
        return sorted(t for _, t in times)


_index_cache: dict[Path, RegisterIndex] = {}


def example_index(path: Path = EXAMPLE_REGISTERS) -> RegisterIndex:
    """The example organisation's registers (examples/registers.toml)."""
    if path not in _index_cache:
        _index_cache[path] = RegisterIndex(read_toml(path))
    return _index_cache[path]


_EXAMPLE_ONLY = {"name", "why", "learner", "expect_severity", "expect_route", "history",
                 "config", "author_handle", "author_id", "photo"}
DEFAULT_ACCOUNT = "brookfield-facebook"
DEFAULT_TIME = "2026-11-18T12:00:00+00:00"  # a Wednesday in term, at noon


def example_item(spec: dict[str, Any], index: RegisterIndex, default_id: str) -> Item:
    """An ``Item`` from a rule-pack example, with author and recipients resolved.

    Shorthands: no ``account`` means the example organisation's Facebook page; no author means
    the account itself; ``author_handle``/``author_id``; ``recipients`` as plain handles;
    ``photo = true`` attaches an image; no ``created_at`` means noon on a term-time Wednesday."""
    data = {k: v for k, v in spec.items() if k not in _EXAMPLE_ONLY}
    data.setdefault("id", default_id)
    data.setdefault("account", DEFAULT_ACCOUNT)
    data.setdefault("created_at", DEFAULT_TIME)
    data.setdefault("kind", "post")
    if "author" not in data:
        if spec.get("author_handle") or spec.get("author_id"):
            data["author"] = {"handle": spec.get("author_handle"), "id": spec.get("author_id")}
        elif data["account"] in index.accounts:
            own = index.accounts[data["account"]]
            data["author"] = {"id": own.platform_id or own.handle}
    data["recipients"] = [{"handle": r} if isinstance(r, str) else r
                          for r in data.get("recipients", [])]
    if spec.get("photo"):
        data.setdefault("media", [{"url": "https://cdn.example/1.jpg", "mime_type": "image/jpeg"}])
    account = index.accounts.get(data.get("account", ""))
    if account is None:
        raise ValueError(f"example {spec.get('name', default_id)!r}: account "
                         f"{data.get('account')!r} is not in the registers")
    data.setdefault("platform", account.platform)
    data.setdefault("visibility", "direct" if data.get("recipients") else "public")
    return index.resolve(Item.model_validate(data))


def run_example(
    detector: Detector, spec: dict[str, Any], index: RegisterIndex, name: str = "example"
) -> list[Finding]:
    """Run ``history`` (earlier items, oldest first) through ``detector`` recording findings,
    then return the findings on the example item itself."""
    history = MemoryHistory()
    for n, earlier in enumerate(spec.get("history", [])):
        defaults = {"account": spec.get("account"), "thread_id": spec.get("thread_id")}
        merged = {**{k: v for k, v in defaults.items() if v}, **earlier}
        past = example_item(merged, index, f"{name}-history-{n}")
        ctx = DetectionContext(registers=index, history=history)
        history.record(past, list(detector.detect(past, ctx)))
    item = example_item(spec, index, name)
    ctx = DetectionContext(registers=index, history=history)
    return [f.__class__(**{**_fields(f), "item_key": item.key})
            for f in detector.detect(item, ctx)]


def _fields(f: Finding) -> dict[str, Any]:
    return {name: getattr(f, name) for name in f.__dataclass_fields__}


def config_with(overrides: dict[str, Any] | None = None) -> Config:
    """The default configuration with some sections replaced (as a config file would)."""
    return Config(**(overrides or {}))
