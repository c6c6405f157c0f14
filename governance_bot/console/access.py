"""The console's one door to the authorisation module: who the viewer is, which flags they may
find, what of a case they may see and which actions they may take.

The console decides none of this itself: it asks ``governance_bot.authz`` (the same
:class:`~governance_bot.authz.NeedToKnow` Slack, the sinks, digests, reports and exports ask) and
shows what it is told. A flag the viewer may not see does not exist for them: its page, its
search hits and its exports all answer 404.

The queue needs a condition the database can apply to 10,000 flags at once (the counts, the
page): :func:`queue_scope` is the routes and accounts the viewer's entitlements are made of,
without the findings about the viewer; each row shown is then checked by ``NeedToKnow`` itself
(which also knows the item's author).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import ColumnElement, and_, false, not_, or_, select

from governance_bot.authz import Action, Detail, FlagFacts, NeedToKnow
from governance_bot.config import Config
from governance_bot.findings import Route
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, StaffMember, StaffRole
from governance_bot.storage import models as m

__all__ = ["CaseAccess", "Viewer", "case_access", "need_to_know", "operator_access", "queue_scope",
           "viewer_for"]

DetailName = Literal["full", "excerpt", "masked", "summary", "none"]
# the console's names for the actions (the URL of each form)
ACTION_NAMES = {Action.acknowledge: "acknowledge", Action.record_outcome: "outcome",
                Action.assign: "assign", Action.remove: "remove", Action.keep: "keep",
                Action.escalate: "escalate", Action.preapprove_photo: "preapprove"}
CASE_ROUTES = (Route.dsl.value, Route.case_manager.value, Route.case_digest.value)
CONTENT_ROUTES = (Route.account_managers.value, Route.digest.value)


def need_to_know(config: Config, registers: RegisterIndex) -> NeedToKnow:
    """The rules for these registers (kept with them: rebuilt when the registers are)."""
    cached = registers.derived.get("console.need_to_know")
    if isinstance(cached, NeedToKnow):
        return cached
    nt = NeedToKnow.from_config(config, registers)
    registers.derived["console.need_to_know"] = nt
    return nt


@dataclass(frozen=True, slots=True)
class Viewer:
    staff: StaffMember
    nt: NeedToKnow = field(compare=False, repr=False)
    dsl_team: bool  # the DSL or a deputy
    case_manager: bool  # handles concerns about staff (the case manager or the alternate)
    administrator: bool  # IT: system health, connectors, the audit log; no case content
    managed_accounts: frozenset[str]

    @property
    def staff_id(self) -> str:
        return self.staff.staff_id

    @property
    def safeguarding(self) -> bool:
        """Handles cases (the DSL team, a case manager): sees children's identities."""
        return self.dsl_team or self.case_manager

    @property
    def role_label(self) -> str:
        if self.staff.role == StaffRole.dsl:
            return "Designated Safeguarding Lead"
        if self.dsl_team:
            return "Deputy DSL"
        if self.case_manager:
            return "Case manager"
        if self.managed_accounts:
            return "Account manager"
        if self.administrator:
            return "Administrator"
        return "Staff"


@dataclass(frozen=True, slots=True)
class CaseAccess:
    findings: list[m.Finding]
    detail: DetailName
    actions: frozenset[str] = frozenset()
    sees_learner_details: bool = False  # the child's register details and chronology
    can_write_notes: bool = False
    can_export: bool = False
    note: str | None = None  # about parts of the flag sent to others


def viewer_for(registers: RegisterIndex, config: Config, staff_id: str) -> Viewer | None:
    nt = need_to_know(config, registers)
    staff = nt.staff(staff_id)
    if staff is None:
        return None
    team = {s.staff_id for s in nt.dsl_team()}
    case = {s.staff_id for s in [*nt.case_managers(), *nt.alternates()]}
    managed = frozenset(a for a in registers.accounts
                        if staff.staff_id in {s.staff_id for s in nt.managers(a)})
    return Viewer(staff, nt, staff.staff_id in team, staff.staff_id in case,
                  nt.is_administrator(staff), managed)


def _not_about(staff_id: str) -> ColumnElement[bool]:
    me = f"staff:{staff_id}"
    return or_(m.Finding.subject.is_(None), not_(or_(
        m.Finding.subject == me, m.Finding.subject.like(f"{me}>%"),
        m.Finding.subject.like(f"%>{me}"), m.Finding.subject.like(f"%>{me}>%"))))


def queue_scope(viewer: Viewer) -> ColumnElement[bool]:
    """The flags the viewer may find, as a condition on ``flags``: a finding on a route of
    theirs that is not about them (each row shown is checked again by ``NeedToKnow``)."""
    mine = _not_about(viewer.staff_id)
    routes: list[str] = []
    if viewer.dsl_team:
        routes.append(Route.dsl.value)
    if viewer.case_manager:
        routes += [Route.case_manager.value, Route.case_digest.value]
    conditions: list[ColumnElement[bool]] = []
    if routes:
        conditions.append(m.Flag.id.in_(select(m.Finding.flag_id).where(
            m.Finding.route.in_(routes), mine)))
    if viewer.dsl_team:  # content the managers escalated to the DSL team
        conditions.append(and_(m.Flag.escalated_at.is_not(None), m.Flag.id.in_(
            select(m.Finding.flag_id).where(mine))))
    if viewer.managed_accounts:
        conditions.append(and_(m.Flag.account.in_(sorted(viewer.managed_accounts)),
                               m.Flag.id.in_(select(m.Finding.flag_id).where(
                                   m.Finding.route.in_(CONTENT_ROUTES), mine))))
    return or_(*conditions) if conditions else false()


def case_access(viewer: Viewer, flag: m.Flag, findings: list[m.Finding], item: Item
                ) -> CaseAccess | None:
    """What ``viewer`` may see and do on ``flag``; None: nothing (it does not exist for
    them)."""
    facts = FlagFacts.from_records(flag, findings, item)
    ent = viewer.nt.entitlement(viewer.staff, facts)
    if not ent.receives or Action.view_case not in ent.actions:
        return None
    keys = ent.finding_keys
    shown = [f for f in findings if str(f.id) in keys]
    detail: DetailName = Detail(ent.detail).value
    actions = frozenset(name for action, name in ACTION_NAMES.items() if action in ent.actions)
    case = ent.child_identity
    return CaseAccess(shown, detail, actions, sees_learner_details=case,
                      can_write_notes=case,
                      can_export=Action.export in ent.actions, note=ent.note)


def operator_access(nt: NeedToKnow, flag: m.Flag, findings: list[m.Finding], item: Item
                    ) -> CaseAccess | None:
    """What the operator at the command line sees of a case page without ``--as``
    (:meth:`NeedToKnow.for_operator`): a flag of content only as its account's managers see it
    (masked, never the child's identity), no actions; None for a case (the command line then
    shows only that it exists, for whom and its delivery) and for anything else."""
    ent = nt.for_operator(FlagFacts.from_records(flag, findings, item))
    if not ent.findings:
        return None
    keys = ent.finding_keys
    return CaseAccess([f for f in findings if str(f.id) in keys], Detail(ent.detail).value,
                      frozenset(), note=ent.note)
