"""Decisions on flags and who may take them.

Policy duties enforced here:

* only the flagged account's designated managers decide on its removals (Remove, Keep,
  Escalate to DSL); only the DSL and deputies act on safeguarding flags (Acknowledge, Record
  outcome, Assign to deputy); anyone else is refused and the attempt is audited;
* a removal needs an explanation, is carried out through the platform where it allows, and
  records who is to be informed (the learner named, their guardian and their employer) and how;
* every decision is written to the tamper-evident audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.base import ModerationAction
from governance_bot.findings import Route
from governance_bot.flags import FlagStatus
from governance_bot.items import Role
from governance_bot.registers import RegisterIndex, StaffMember
from governance_bot.slack.bot import OUTCOME_NAMES, SlackBot, moderation_actions
from governance_bot.slack.render import DSL_ACTIONS, MANAGER_ACTIONS
from governance_bot.storage import auditlog
from governance_bot.storage import models as m

__all__ = ["InformCandidate", "Refused", "authorise", "inform_candidates"]

log = logging.getLogger(__name__)

INFORM_METHODS = {"email": "email", "phone": "phone call", "letter": "letter",
                  "in_person": "in person", "not_yet": "not informed yet"}


class Refused(Exception):
    """The clicker may not take this action; the message is shown to them."""


def authorise(registers: RegisterIndex, flag: m.Flag, action: str, slack_user_id: str
              ) -> StaffMember:
    """The staff member behind ``slack_user_id`` if they may take ``action`` on ``flag``."""
    staff = next((s for s in registers.staff.values()
                  if s.slack_user_id == slack_user_id and s.active), None)
    if staff is None:
        raise Refused("You are not in the staff register as an active member of staff, so you "
                      "cannot act on flags.")
    safeguarding_ids = {s.staff_id for s in registers.safeguarding_contacts()}
    if action in MANAGER_ACTIONS:
        if flag.route == Route.dsl.value:
            raise Refused(f"Flag #{flag.id} is a safeguarding flag: only the DSL and deputies "
                          "may act on it.")
        managers = {s.staff_id for s in registers.managers(flag.account) if s.active}
        if staff.staff_id not in managers:
            raise Refused(f"Only the designated managers of {flag.account} may decide on its "
                          "removals.")
        return staff
    if action in DSL_ACTIONS:
        if staff.staff_id not in safeguarding_ids:
            raise Refused("Only the DSL and deputies may act on safeguarding flags.")
        return staff
    raise Refused(f"unknown action {action!r}")


@dataclass(frozen=True, slots=True)
class InformCandidate:
    relation: str  # learner, guardian, employer
    learner_id: str
    label: str
    contact: str


def learners_named(flag_findings: list[m.Finding], item_people: list[tuple[Role | None,
                   str | None]]) -> list[str]:
    ids: list[str] = []
    for f in flag_findings:
        entry = (f.evidence or {}).get("register_entry") or ""
        for part in [entry, *(f.subject or "").split(">")]:
            if part.startswith("learner:"):
                lid = part.split(":", 1)[1]
                if lid not in ids:
                    ids.append(lid)
    for role, rid in item_people:
        if role == Role.learner and rid and rid not in ids:
            ids.append(rid)
    return ids


def inform_candidates(registers: RegisterIndex, learner_ids: list[str]) -> list[InformCandidate]:
    """The people a removal must be explained to, from the registers, in a stable order."""
    out: list[InformCandidate] = []
    for lid in learner_ids:
        lr = registers.learners.get(lid)
        if lr is None:
            continue
        contact = lr.email or (lr.handles[0] if lr.handles else "no contact in the register")
        out.append(InformCandidate("learner", lid, f"Learner: {lr.full_name}", contact))
        for g in lr.guardian_contacts:
            out.append(InformCandidate("guardian", lid, f"Guardian of {lr.first_name}: {g}", g))
        if lr.employer:
            out.append(InformCandidate("employer", lid, f"Employer of {lr.first_name}: "
                                       f"{lr.employer}", lr.employer))
    return out


class Decisions:
    """Carries out decisions: database, audit log, platform moderation, then every message."""

    def __init__(self, bot: SlackBot):
        self.bot = bot

    def _record(self, session: Any, flag: m.Flag, staff: StaffMember, action: str,
                slack_user: str | None, *, reason: str | None = None, outcome: str | None = None,
                data: dict[str, Any] | None = None, now: datetime) -> m.FlagDecision:
        decision = m.FlagDecision(flag_id=flag.id, action=action, staff_id=staff.staff_id,
                                  slack_user_id=slack_user, reason=reason, outcome=outcome,
                                  data=data or {}, created_at=now)
        session.add(decision)
        session.flush()
        audit = {"staff_id": staff.staff_id, "slack_user_id": slack_user,
                 **({"outcome": outcome} if outcome else {}), **(data or {})}
        if reason is not None:
            audit["reason"] = reason
        auditlog.append(session, f"staff:{staff.staff_id}", f"flag.{action}", f"flag:{flag.id}",
                        audit, at=now)
        flag.updated_at = now
        return decision

    def refused(self, flag_id: int | None, action: str, slack_user: str, why: str) -> None:
        with self.bot.db.session() as session:
            auditlog.append(session, f"slack:{slack_user}", "slack.refused",
                            f"flag:{flag_id}" if flag_id else None,
                            {"action": action, "slack_user_id": slack_user, "why": why},
                            at=self.bot.clock())

    def remove(self, flag_id: int, staff: StaffMember, slack_user: str | None, *,
               moderation: str, reason: str, informed: list[tuple[InformCandidate, str]]
               ) -> m.FlagDecision:
        """Carry out a removal through the account's connector and record it."""
        if not reason.strip():
            raise Refused("The policy requires an explanation for every removal.")
        now = self.bot.clock()
        with self.bot.db.session() as session:
            current, _findings, item, _record = self.bot.load(session, flag_id)
            account = current.account
            if current.status in (FlagStatus.actioned, FlagStatus.dismissed, FlagStatus.closed):
                raise Refused(f"Flag #{flag_id} was already decided ({current.status}).")
        platform_ok, detail = False, "no platform connector can moderate this account"
        connector = self.bot.connector_for(account)
        if moderation != "manual" and connector is not None:
            try:
                action = ModerationAction(moderation)
                if action not in moderation_actions(connector):
                    raise ValueError(f"{connector.name} cannot {moderation}")
                result = connector.moderate(item, action)
                platform_ok, detail = result.ok, result.detail
            except Exception as exc:  # the platform refused or failed: recorded, done by hand
                platform_ok, detail = False, f"{type(exc).__name__}: {exc}"
                log.warning("removal of flag #%d through %s failed: %s", flag_id,
                            connector.name, type(exc).__name__)
        with self.bot.db.session() as session:
            flag = session.get(m.Flag, flag_id)
            assert flag is not None
            decision = self._record(session, flag, staff, "remove", slack_user, reason=reason,
                                    data={"moderation": moderation, "platform_ok": platform_ok,
                                          "platform_detail": detail[:300],
                                          "informed_count": len(informed)}, now=now)
            for cand, method in informed:
                session.add(m.InformedPerson(
                    flag_id=flag_id, decision_id=decision.id, relation=cand.relation,
                    register_id=cand.learner_id, contact=cand.contact,
                    method=method, informed_by=staff.staff_id, informed_at=now))
            if informed:
                auditlog.append(session, f"staff:{staff.staff_id}", "flag.informed",
                                f"flag:{flag_id}",
                                {"people": [{"relation": c.relation, "learner_id": c.learner_id,
                                             "method": meth} for c, meth in informed]}, at=now)
            flag.status = FlagStatus.actioned.value
        self.bot.refresh(flag_id)
        return decision

    def keep(self, flag_id: int, staff: StaffMember, slack_user: str | None, reason: str
             ) -> None:
        if not reason.strip():
            raise Refused("Say why the item is kept.")
        now = self.bot.clock()
        with self.bot.db.session() as session:
            flag = self._open_flag(session, flag_id)
            self._record(session, flag, staff, "keep", slack_user, reason=reason, now=now)
            flag.status = FlagStatus.dismissed.value
        self.bot.refresh(flag_id)

    def escalate(self, flag_id: int, staff: StaffMember, slack_user: str | None) -> None:
        now = self.bot.clock()
        with self.bot.db.session() as session:
            flag = self._open_flag(session, flag_id)
            self._record(session, flag, staff, "escalate", slack_user, now=now)
            flag.status = FlagStatus.escalated.value
            # the DSL sees it through the outbox: a Slack outage delays it, never loses it
            session.add(m.OutboxMessage(flag_id=flag_id, kind="flag_escalated",
                                        route=Route.dsl.value, payload={"flag_id": flag_id},
                                        created_at=now, available_at=now))
        self.bot.refresh(flag_id)

    def acknowledge(self, flag_id: int, staff: StaffMember, slack_user: str | None) -> None:
        now = self.bot.clock()
        with self.bot.db.session() as session:
            flag = self._open_flag(session, flag_id)
            if flag.acknowledged_at is not None:
                raise Refused(f"Flag #{flag_id} was already acknowledged by "
                              f"{self.bot.staff_name(flag.acknowledged_by)}.")
            self._record(session, flag, staff, "acknowledge", slack_user, now=now)
            flag.acknowledged_at, flag.acknowledged_by = now, staff.staff_id
            flag.status = FlagStatus.acknowledged.value
        self.bot.refresh(flag_id)

    def record_outcome(self, flag_id: int, staff: StaffMember, slack_user: str | None,
                       outcome: str, note: str) -> None:
        if outcome not in OUTCOME_NAMES:
            raise Refused(f"unknown outcome {outcome!r}")
        now = self.bot.clock()
        with self.bot.db.session() as session:
            flag = self._open_flag(session, flag_id)
            self._record(session, flag, staff, "outcome", slack_user, reason=note or None,
                         outcome=outcome, now=now)
            if flag.acknowledged_at is None:
                flag.acknowledged_at, flag.acknowledged_by = now, staff.staff_id
            flag.status = (FlagStatus.acknowledged.value if outcome == "monitoring"
                           else FlagStatus.closed.value)
        self.bot.refresh(flag_id)

    def assign(self, flag_id: int, staff: StaffMember, slack_user: str | None, assignee: str
               ) -> None:
        deputies = {s.staff_id for s in self.bot.registers.safeguarding_contacts()}
        if assignee not in deputies:
            raise Refused("Flags can be assigned only to the DSL or a deputy.")
        now = self.bot.clock()
        with self.bot.db.session() as session:
            flag = self._open_flag(session, flag_id)
            self._record(session, flag, staff, "assign", slack_user,
                         data={"assignee": assignee}, now=now)
            flag.assigned_to = assignee
        self.bot.refresh(flag_id)

    @staticmethod
    def _open_flag(session: Any, flag_id: int) -> m.Flag:
        flag = session.get(m.Flag, flag_id)
        if flag is None:
            raise Refused(f"There is no flag #{flag_id}.")
        if flag.status in (FlagStatus.actioned.value, FlagStatus.dismissed.value,
                           FlagStatus.closed.value):
            raise Refused(f"Flag #{flag_id} was already decided ({flag.status}).")
        assert isinstance(flag, m.Flag)
        return flag
