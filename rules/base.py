"""What a detector is, what it returns, and what it may look at.

Detectors only return findings; storing, flagging and notifying happen elsewhere, so a detector can
run in ``classify`` (no database) exactly as it runs in the service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from governance_bot.items import Item
    from governance_bot.registers import RegisterIndex

__all__ = [
    "Category",
    "DetectionContext",
    "Detector",
    "DetectorUnavailable",
    "Evidence",
    "Finding",
    "History",
    "Route",
    "Severity",
]


class DetectorUnavailable(RuntimeError):
    """A detector cannot start (its model or data is missing); the message says how to fix it."""


class Category(StrEnum):
    """The fixed vocabulary of flag categories (docs/categories.md)."""

    learner_pii = "learner_pii"
    unapproved_photo = "unapproved_photo"
    out_of_hours = "out_of_hours"
    tone = "tone"
    toxicity = "toxicity"
    safeguarding = "safeguarding"
    commerce = "commerce"
    personal_account_contact = "personal_account_contact"
    accountability = "accountability"
    conversation_drift = "conversation_drift"
    deletion = "deletion"
    video_session = "video_session"
    location = "location"
    account_audit = "account_audit"


class Severity(IntEnum):
    """The five-level grading UK school monitoring services use."""

    information = 1
    low = 2
    medium = 3
    high = 4
    critical = 5


class Route(StrEnum):
    """Who a flag goes to."""

    account_managers = "account_managers"
    dsl = "dsl"
    digest = "digest"
    record_only = "record_only"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a finding fired: character spans in the item's text and any register entry matched."""

    spans: tuple[tuple[int, int], ...] = ()
    register_entry: str | None = None  # e.g. "learner:L0042"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spans": [list(s) for s in self.spans],
            "register_entry": self.register_entry,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason an item may break the policy."""

    rule_id: str
    category: Category
    severity: Severity
    score: float
    explanation: str
    evidence: Evidence = field(default_factory=Evidence)
    route: Route | None = None  # None: the routing matrix decides
    subject: str | None = None  # who it is about, e.g. "staff:S01>learner:L07" (for repeats)
    item_key: str | None = None

    @property
    def fingerprint(self) -> str:
        """Stable across re-scans of the same item: rule, item and what was matched."""
        spans = ",".join(f"{a}-{b}" for a, b in self.evidence.spans)
        basis = "|".join(
            [self.rule_id, self.item_key or "", self.evidence.register_entry or "", spans]
        )
        return hashlib.sha256(basis.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "category": self.category.value,
            "severity": int(self.severity),
            "score": round(self.score, 4),
            "route": self.route.value if self.route else None,
            "evidence": self.evidence.to_dict(),
            "explanation": self.explanation,
            "subject": self.subject,
            "fingerprint": self.fingerprint,
        }


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
