"""``jsonl``: normalised items from a file or a folder of ``*.jsonl`` files.

The format is documented in docs/items.md. A malformed line is reported (and logged at WARNING)
with file:line and what is wrong, never its content, and skipped; the rest is processed. The
cursor remembers how many lines of each file were read, so appending to a file and polling again
reads only the new lines.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from connectors.base import (
    Capability,
    Connector,
    ConnectorSettings,
    FatalError,
    FetchResult,
    ModerationAction,
    ModerationResult,
)
from governance_bot.items import Item

__all__ = ["JsonlConnector", "JsonlSettings", "LineProblem", "read_items"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LineProblem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "item"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_line(line: str, path: Path, lineno: int, defaults: dict[str, Any] | None = None
               ) -> Item | LineProblem | None:
    """One line to an item, a problem naming path:line, or None for a blank line."""
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return LineProblem(path, lineno, f"not valid JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return LineProblem(path, lineno, "not valid JSON (nested too deeply)")
    if not isinstance(data, dict):
        return LineProblem(path, lineno, "expected a JSON object")
    if defaults:
        data = {**defaults, **data}
    if not data.get("thread_id") and isinstance(data.get("parent_id") or data.get("id"), str):
        # the format lets a file leave the conversation out: the parent's, else the item's own
        data = {**data, "thread_id": data.get("parent_id") or data["id"]}
    try:
        return Item.model_validate(data)
    except ValidationError as exc:
        return LineProblem(path, lineno, _describe(exc))


def jsonl_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    return [path]


def read_items(path: Path, start_lines: dict[str, int] | None = None
               ) -> Iterator[tuple[Path, int, Item | LineProblem]]:
    """Yield (file, line number, item or problem) for every non-blank line under ``path``."""
    start_lines = start_lines or {}
    for file in jsonl_files(path):
        skip = start_lines.get(str(file), 0)
        # read as bytes and decode each line alone: a line with invalid UTF-8 is reported (a
        # replacement character could hide a learner's name from the rules), the others go on
        with file.open("rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if lineno <= skip:
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield file, lineno, LineProblem(
                        file, lineno, f"not UTF-8 text (byte {exc.start + 1} of the line); save "
                        "the file as UTF-8")
                    continue
                parsed = parse_line(line.removeprefix("\ufeff") if lineno == 1 else line,
                                    file, lineno)
                if parsed is not None:
                    yield file, lineno, parsed


def count_lines(path: Path) -> int:
    total = 0
    for file in jsonl_files(path):
        with file.open("rb") as fh:
            total += sum(1 for _ in fh)
    return total


class JsonlSettings(ConnectorSettings):
    path: Path = Field(description="a .jsonl file or a folder of them")
    removals_path: Path | None = Field(
        default=None, description="record hide/delete decisions here (one JSON line each), so "
        "the removal workflow can be run without a platform")


class JsonlConnector(Connector):
    type: ClassVar[str] = "jsonl"
    description: ClassVar[str] = "normalised items from a .jsonl file or folder"
    Settings = JsonlSettings
    capabilities = frozenset({Capability.read})

    settings: JsonlSettings

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        path = self.settings.path
        if not path.exists():
            raise FatalError(f"{self.name} (account {self.account}): {path} does not exist. "
                             "Fix: set `path` to a .jsonl file or a folder of them.")
        lines: dict[str, int] = dict((cursor or {}).get("lines", {}))
        items: list[Item] = []
        problems: list[str] = []
        for file, lineno, parsed in read_items(path, lines):
            if isinstance(parsed, LineProblem):
                problems.append(str(parsed))
                log.warning("%s: skipped %s", self.name, parsed)
            else:
                items.append(parsed)
            lines[str(file)] = max(lines.get(str(file), 0), lineno)
        return FetchResult(items=items, cursor={"lines": lines}, problems=problems)

    def moderation_actions(self) -> frozenset[ModerationAction]:
        if self.settings.removals_path is None:
            return frozenset()
        return frozenset({ModerationAction.hide, ModerationAction.delete})

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        """Record the removal locally (there is no platform behind a file)."""
        path = self.settings.removals_path
        if path is None or action not in self.moderation_actions():
            return super().moderate(item, action)
        record = {"item": item.key, "action": action.value,
                  "at": datetime.now(UTC).isoformat(timespec="seconds")}
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        return ModerationResult(ok=True, action=action, detail=f"recorded in {path.name}")
