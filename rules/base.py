"""What a detector is, what it returns, and what it may look at.

Detectors only return findings; storing, flagging and notifying happen elsewhere, so a detector can
run in ``classify`` (no database) exactly as it runs in the service.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from governance_bot.findings import Finding

if TYPE_CHECKING:
    from governance_bot.items import Item
    from governance_bot.registers import RegisterIndex

__all__ = [
    "DetectionContext",
    "Detector",
    "DetectorUnavailable",
    "History",
]


class DetectorUnavailable(RuntimeError):
    """A detector cannot start (its model or data is missing); the message says how to fix it."""


class History(Protocol):
    """What detectors may ask about the past (thread context, repeated contact)."""

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        """Earlier items in the same thread, oldest first (not including ``item``)."""
        ...

    def prior_findings(
        self,
        rule_id: str,
        subject: str,
        since: datetime,
        until: datetime,
        exclude_item_key: str | None = None,
    ) -> Sequence[datetime]:
        """Item times (UTC) of earlier findings of ``rule_id`` about ``subject`` in
        [since, until], leaving out those on ``exclude_item_key`` (the item being checked)."""
        ...


@dataclass(slots=True)
class DetectionContext:
    registers: RegisterIndex
    history: History
    now: datetime | None = None
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Detector(Protocol):
    """A detector reads one item plus context and returns findings (possibly none)."""

    rule_id: str

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]: ...
