"""Test helpers: building items from rule-pack examples and running them through a detector
with an in-memory history (``governance_bot.history.MemoryHistory``, as ``classify`` uses)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from governance_bot.config import Config
from governance_bot.findings import Finding
from governance_bot.history import MemoryHistory
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, read_toml
from rules.base import DetectionContext, Detector

__all__ = [
    "EXAMPLE_REGISTERS",
    "MemoryHistory",
    "example_index",
    "example_item",
    "run_example",
]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_REGISTERS = REPO / "examples" / "registers.toml"


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
    return [replace(f, item_key=item.key) for f in detector.detect(item, ctx)]


def config_with(overrides: dict[str, Any] | None = None) -> Config:
    """The default configuration with some sections replaced (as a config file would)."""
    return Config(**(overrides or {}))
