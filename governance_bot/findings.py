"""The findings vocabulary: what a check found, how serious it is and where it goes.

This is the core's language, shared by the detectors (``rules/``), which produce findings, and by
the service (flags, routing, Slack, reports), which consumes them; it depends on nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

__all__ = ["Category", "Evidence", "Finding", "Route", "Severity"]


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
    """Who a finding goes to (docs/routing.md, "The need-to-know table")."""

    account_managers = "account_managers"  # the account's designated managers
    dsl = "dsl"  # the DSL and deputies (safeguarding; content at severity 4-5)
    case_manager = "case_manager"  # concerns about a member of staff: the case manager
    digest = "digest"  # the account managers' daily digest (low-severity content only)
    case_digest = "case_digest"  # the case manager's daily summary (low-severity staff conduct)
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
