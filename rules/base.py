"""What a detector is, what it returns, and what it may look at.

Detectors only return findings; storing, flagging and notifying happen elsewhere, so a detector can
run in ``classify`` (no database) exactly as it runs in the service.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from governance_bot.findings import Finding

if TYPE_CHECKING:
    from governance_bot.config import Config
    from governance_bot.items import Item
    from governance_bot.registers import RegisterIndex

__all__ = [
    "DetectionContext",
    "Detector",
    "DetectorBase",
    "DetectorUnavailable",
    "History",
    "batches_alone",
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


class DetectorBase(ABC):
    """What every detector of the project is: built from its rule pack (``from_pack``), reading
    one item with its context (``detect``), and able to take a batch (``detect_batch``: by
    default one item after another; model-backed rules embed or score the whole batch at once).

    ``batch_safe``: whether the items of a batch may be judged together before any of them is
    recorded. Rules that count earlier findings (repeated out-of-hours contact) are not: the
    engine runs them one item at a time, in order."""

    rule_id: ClassVar[str]
    batch_safe: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_pack(cls, pack: dict[str, Any], config: Config) -> Self:
        """The detector built from its rule pack (``rules/packs/<rule_id>.toml``) and the
        configuration; a bad pack raises :class:`rules.packs.PackError` naming file and key."""

    @abstractmethod
    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        """The findings on ``item`` (possibly none)."""

    def detect_batch(self, items: Sequence[Item], ctx: DetectionContext
                     ) -> list[list[Finding]]:
        """The findings on each of ``items``, in order."""
        return [list(self.detect(item, ctx)) for item in items]


def batches_alone(detector: object) -> bool:
    """Whether the engine may run ``detector`` over a whole batch before recording any of it:
    a :class:`DetectorBase` says so with ``batch_safe``; any other object by having a
    ``detect_batch``."""
    if isinstance(detector, DetectorBase):
        return detector.batch_safe
    return getattr(detector, "detect_batch", None) is not None
