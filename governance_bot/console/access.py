"""The console's one door to the authorisation module: who the viewer is, which flags they may
find, what of a case they may see and which actions they may take.

The console decides none of this itself: it asks ``governance_bot.authz`` (the same code Slack,
the sinks, digests, reports and exports ask) and shows what it is told. A flag the viewer may
not see does not exist for them: its page, its search hits and its exports all answer 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import ColumnElement, and_, false, or_, true

from governance_bot.config import Config
from governance_bot.findings import Route
from governance_bot.registers import RegisterIndex, StaffMember, StaffRole
from governance_bot.storage import models as m

__all__ = ["CaseAccess", "Viewer", "case_access", "queue_scope", "viewer_for"]

Detail = Literal["full", "excerpt", "masked"]
STAFF_CONDUCT = frozenset({"out_of_hours", "tone", "personal_account_contact", "accountability",
                           "conversation_drift", "video_session"})


@dataclass(frozen=True, slots=True)
class Viewer:
    staff: StaffMember
    safeguarding: bool  # the DSL or a deputy
    administrator: bool  # IT: system health, connectors, the audit log; no case content
    managed_accounts: frozenset[str]

    @property
    def staff_id(self) -> str:
        return self.staff.staff_id

    @property
    def role_label(self) -> str:
        if self.staff.role == StaffRole.dsl:
            return "Designated Safeguarding Lead"
        if self.safeguarding:
            return "Deputy DSL"
        if self.managed_accounts:
            return "Account manager"
        if self.administrator:
            return "Administrator"
        return "Staff"


@dataclass(frozen=True, slots=True)
class CaseAccess:
    findings: list[m.Finding]
    detail: Detail
    actions: frozenset[str] = field(default_factory=frozenset)
    sees_learner_details: bool = False  # the child's register details and chronology
    can_write_notes: bool = False


def viewer_for(registers: RegisterIndex, config: Config, staff_id: str) -> Viewer | None:
    staff = registers.staff.get(staff_id)
    if staff is None or not staff.active:
        return None
    safeguarding = staff.staff_id in {s.staff_id for s in registers.safeguarding_contacts()}
    managed = frozenset(a.account_id for a in registers.accounts.values()
                        if staff.staff_id in a.managers)
    return Viewer(staff, safeguarding, staff.staff_id in config.console.administrators, managed)


def _about(finding: m.Finding, staff_id: str) -> bool:
    return f"staff:{staff_id}" in (finding.subject or "").split(">")


def _staff_concern(finding: m.Finding) -> bool:
    return finding.category in STAFF_CONDUCT or (finding.subject or "").startswith("staff:")


def queue_scope(viewer: Viewer) -> ColumnElement[bool]:
    """The flags the viewer may find, as a condition on ``flags`` (per-finding exclusions, such as
    a concern about the viewer, are applied again by ``case_access`` on each row shown)."""
    conditions: list[ColumnElement[bool]] = []
    if viewer.safeguarding:
        conditions.append(true())
    if viewer.managed_accounts:
        conditions.append(and_(m.Flag.account.in_(sorted(viewer.managed_accounts)),
                               m.Flag.route.in_([Route.account_managers.value,
                                                 Route.digest.value])))
    return or_(*conditions) if conditions else false()


def case_access(viewer: Viewer, flag: m.Flag, findings: list[m.Finding],
                config: Config) -> CaseAccess | None:
    """What ``viewer`` may see and do on ``flag``; None: nothing (the flag does not exist for
    them)."""
    mine = [f for f in findings if not _about(f, viewer.staff_id)]
    if viewer.safeguarding:
        dsl = config.slack.dsl_content
        detail: Detail = "full" if dsl == "full" else "excerpt"
        actions = {"acknowledge", "outcome", "assign", "note"}
        if flag.route != Route.dsl.value and flag.account in viewer.managed_accounts:
            actions |= {"remove", "keep", "escalate"}
        return CaseAccess(mine, detail, frozenset(actions), sees_learner_details=True,
                          can_write_notes=True) if mine else None
    if flag.account in viewer.managed_accounts:
        shown = [f for f in mine if f.route in (Route.account_managers.value, Route.digest.value)
                 and f.category != "safeguarding" and not _staff_concern(f)]
        if not shown:
            return None
        return CaseAccess(shown, "masked", frozenset({"remove", "keep", "escalate"}))
    return None
