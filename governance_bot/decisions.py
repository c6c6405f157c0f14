"""Decisions on flags, for every front end (Slack, the web console): one service, no Slack.

Policy duties enforced here:

* only those the policy names may decide (``governance_bot.authz``): an account's designated
  managers remove or keep its posts and escalate to the DSL; the DSL team acknowledges, records
  outcomes and assigns; concerns about staff are their case manager's; a flag the managers
  escalated is the DSL team's to close. A refusal is audited (``decision.refused``);
* a removal needs an explanation, is carried out through the platform where the connector can
  do it, and records who is to be informed (named by role in the form; their contacts looked up
  from the register only now, and stored encrypted);
* every decision is written to the tamper-evident audit log.

**Race-free and idempotent.** A decision is a compare-and-set on the flag's state in one
transaction: ``UPDATE flags SET ... WHERE id = ? AND <the state the decision needs>`` (and, when
the caller passes the ``expected_version`` its form was opened at, ``AND version = ?``; every
decision bumps ``version``). Of two managers pressing Remove together one wins the update: one
platform call, one decision; the other is answered :class:`AlreadyRecorded`, and so is a form
submitted twice. The platform is called after the claim is committed (never inside a
transaction), and its result completes the same decision.

Front ends call :class:`Decisions` and show its answers; ``on_change`` listeners (the Slack app
re-rendering every message about the flag) run after each commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from connectors.base import Connector, ModerationAction
from governance_bot.authz import (
    CLOSED_STATUSES,
    NOT_YOURS,
    Action,
    FlagFacts,
    InformRole,
    NeedToKnow,
    Refused,
)
from governance_bot.findings import Route
from governance_bot.items import Item
from governance_bot.outbox import load_flag
from governance_bot.registers import StaffMember
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = [
    "INFORM_METHODS",
    "OUTCOMES",
    "AlreadyRecorded",
    "DecisionResult",
    "Decisions",
    "FlagStatus",
    "Refused",
]

log = logging.getLogger(__name__)

INFORM_METHODS = {"email": "email", "phone": "phone call", "letter": "letter",
                  "in_person": "in person", "not_yet": "not informed yet"}
OUTCOMES = {
    "social_care": "referred to children's social care",
    "police": "referred to the police",
    "ceop": "reported to CEOP",
    "iwf": "reported to the IWF",
    "lado": "referred to the LADO (allegation against staff)",
    "no_further_action": "no further action",
    "monitoring": "monitoring",
}


class FlagStatus:
    """Values of ``flags.status``."""

    open = "open"
    acknowledged = "acknowledged"
    actioned = "actioned"  # removed
    dismissed = "dismissed"  # kept
    escalated = "escalated"
    closed = "closed"


class AlreadyRecorded(Exception):
    """The decision was already taken (by this person's earlier submission or someone else's
    concurrent one): nothing new was recorded. The message says what the flag's state is."""


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """A decision recorded."""

    flag_id: int
    action: Action
    decision_id: int
    status: str  # the flag's status afterwards
    version: int  # the flag's version afterwards
    detail: str = ""  # e.g. what the platform answered
    platform_ok: bool | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


_FLAGS = m.Base.metadata.tables[m.Flag.__tablename__]
_F = _FLAGS.c


@dataclass
class Decisions:
    """Takes decisions on flags. ``need_to_know`` is called for the current rules (the registers
    can be reloaded while the service runs)."""

    db: Database
    need_to_know: Callable[[], NeedToKnow]
    connectors: Sequence[Connector] = ()
    clock: Callable[[], datetime] = _utcnow
    on_change: list[Callable[[int], object]] = field(default_factory=list)

    # --- reading ------------------------------------------------------------------------------
    def load(self, session: Session, flag_id: int
             ) -> tuple[m.Flag, list[m.Finding], Item, m.ItemRecord]:
        loaded = load_flag(session, flag_id)
        if loaded is None:
            raise Refused(NOT_YOURS.format(flag_id=flag_id))
        return loaded

    def facts(self, flag_id: int, session: Session | None = None) -> FlagFacts:
        """The flag as need-to-know reads it, now."""
        if session is not None:
            flag, findings, item, _ = self.load(session, flag_id)
            return FlagFacts.from_records(flag, findings, item)
        with self.db.session() as own:
            flag, findings, item, _ = self.load(own, flag_id)
            return FlagFacts.from_records(flag, findings, item)

    def connector_for(self, account: str) -> Connector | None:
        """The connector that can moderate ``account``'s items, if any."""
        for c in self.connectors:
            if c.account == account and c.moderation_actions():
                return c
        return None

    def moderation_options(self, account: str) -> list[str]:
        """How a removal can be done on ``account``: what its connector can do, then "manual"."""
        connector = self.connector_for(account)
        actions = sorted(a.value for a in connector.moderation_actions()) if connector else []
        return [*actions, "manual"]

    def inform_roles(self, flag_id: int) -> list[InformRole]:
        """The people to inform about a removal, by role (for the form)."""
        return self.need_to_know().inform_roles(self.facts(flag_id))

    def authorise(self, flag_id: int, actor: StaffMember | str | None, action: Action | str
                  ) -> tuple[StaffMember, FlagFacts]:
        """The actor and the flag's facts, if the actor may take ``action`` now (front ends
        check before opening a form). Raises :class:`Refused` or :class:`AlreadyRecorded`."""
        with self.db.session() as session:
            _, facts, person = self._check(session, flag_id, actor or "", Action(action), "check")
            return person, facts

    # --- recording ----------------------------------------------------------------------------
    def refused(self, flag_id: int | None, action: str, who: str, why: str,
                via: str = "slack") -> None:
        """Audit a refused attempt (``who``: e.g. "slack:U0X" or "staff:S001")."""
        with self.db.session() as session:
            auditlog.append(session, who, f"{via}.refused",
                            f"flag:{flag_id}" if flag_id else None,
                            {"action": action, "who": who, "why": why,
                             **({"slack_user_id": who.split(":", 1)[1]}
                                if who.startswith("slack:") else {})},
                            at=self.clock())

    def _check(self, session: Session, flag_id: int, actor: StaffMember | str,
               action: Action, via: str) -> tuple[m.Flag, FlagFacts, StaffMember]:
        """The flag, its facts and the actor, if the actor may take ``action`` now. Someone who
        could have taken it but finds it already taken (their own earlier submission, or a
        colleague's a moment before) gets :class:`AlreadyRecorded`; anyone else
        :class:`Refused`."""
        flag, findings, item, _ = self.load(session, flag_id)
        facts = FlagFacts.from_records(flag, findings, item)
        nt = self.need_to_know()
        try:
            person = nt.check(actor, action, facts)
        except Refused as exc:
            mine = nt.entitlement(actor, facts)
            taken = (facts.closed
                     or (action in (Action.remove, Action.keep) and facts.removal is not None)
                     or (action == Action.acknowledge and facts.acknowledged)
                     or (action == Action.escalate and facts.escalated))
            if mine.receives and taken:
                raise AlreadyRecorded(f"{exc} Nothing new was recorded.") from None
            raise
        return flag, facts, person

    def _cas(self, session: Session, flag_id: int, conditions: list[Any],
             values: dict[str, Any], expected_version: int | None, what: str) -> int:
        """Compare-and-set on the flag's row; returns the new version or raises
        :class:`AlreadyRecorded`."""
        where = [_F.id == flag_id, *conditions]
        if expected_version is not None:
            where.append(_F.version == expected_version)
        result = cast("CursorResult[Any]", session.execute(
            update(_FLAGS).where(*where)
            .values(version=_F.version + 1, **values).returning(_F.version)))
        row = result.first()
        if row is None:
            raise AlreadyRecorded(f"Flag #{flag_id}: {what} was already recorded (the flag "
                                  "changed meanwhile); nothing new was recorded.")
        return int(row[0])

    def _record(self, session: Session, flag_id: int, staff: StaffMember, action: Action,
                *, via: str, slack_user_id: str | None, reason: str | None = None,
                outcome: str | None = None, data: dict[str, Any] | None = None,
                now: datetime) -> m.FlagDecision:
        decision = m.FlagDecision(flag_id=flag_id, action=_STORED[action], staff_id=staff.staff_id,
                                  slack_user_id=slack_user_id, reason=reason, outcome=outcome,
                                  data={"via": via, **(data or {})}, created_at=now)
        session.add(decision)
        session.flush()
        audit: dict[str, Any] = {"staff_id": staff.staff_id, "via": via,
                                 **({"slack_user_id": slack_user_id} if slack_user_id else {}),
                                 **({"outcome": outcome} if outcome else {}), **(data or {})}
        if reason is not None:
            audit["reason"] = reason
        auditlog.append(session, f"staff:{staff.staff_id}", f"flag.{_STORED[action]}",
                        f"flag:{flag_id}", audit, at=now)
        return decision

    def _changed(self, flag_id: int) -> None:
        for listener in list(self.on_change):
            try:
                listener(flag_id)
            except Exception as exc:  # a listener (Slack) failing never undoes a decision
                log.warning("after the decision on flag #%d: updating its messages failed (%s); "
                            "they are brought up to date at the next change", flag_id,
                            type(exc).__name__)

    def _live(self) -> Any:
        return _F.status.notin_(sorted(CLOSED_STATUSES))

    # --- the decisions ------------------------------------------------------------------------
    def remove(self, flag_id: int, actor: StaffMember | str, *, reason: str,
               moderation: str = "manual", inform: Sequence[str] = (),
               method: str = "not_yet", expected_version: int | None = None,
               via: str = "slack", slack_user_id: str | None = None) -> DecisionResult:
        """Remove the flagged item: claim the decision (compare-and-set), call the platform
        (``moderation``: an action the account's connector offers, or "manual"), record the
        result and the people to inform (``inform``: :class:`InformRole` keys; their contacts
        are looked up now and stored encrypted; ``method``: a key of ``INFORM_METHODS``)."""
        if not reason.strip():
            raise Refused("The policy requires an explanation for every removal.")
        if method not in INFORM_METHODS:
            raise Refused(f"unknown way of informing people: {method!r}")
        now = self.clock()
        with self.db.session() as session:
            flag, facts, staff = self._check(session, flag_id, actor, Action.remove, via)
            roles = {r.key: r for r in self.need_to_know().inform_roles(facts)}
            chosen = [roles[k] for k in inform if k in roles]
            self._cas(session, flag_id, [_F.removal.is_(None), self._live()],
                      {"removal": "removing", "updated_at": now}, expected_version,
                      "a decision on this post")
            decision = self._record(session, flag_id, staff, Action.remove, via=via,
                                    slack_user_id=slack_user_id, reason=reason,
                                    data={"moderation": moderation, "platform_ok": None,
                                          "informed_count": len(chosen)}, now=now)
            decision_id, account = decision.id, flag.account
            _, _, item, _ = self.load(session, flag_id)
        platform_ok, detail = self._moderate(flag_id, account, item, moderation)
        with self.db.session() as session:
            stored = session.get(m.FlagDecision, decision_id)
            current = session.get(m.Flag, flag_id)
            assert stored is not None and current is not None
            stored.data = {**stored.data, "platform_ok": platform_ok,
                             "platform_detail": detail[:300]}
            nt = self.need_to_know()
            informed = []
            for role in chosen:
                for contact in nt.resolve_contacts(role):
                    session.add(m.InformedPerson(
                        flag_id=flag_id, decision_id=decision_id, relation=role.relation,
                        register_id=role.learner_id, contact=contact, method=method,
                        informed_by=staff.staff_id, informed_at=now))
                    informed.append({"relation": role.relation, "learner_id": role.learner_id,
                                     "method": method})
            current.removal = "removed"
            current.version += 1
            if not facts.has_case or facts.escalated:
                current.status = FlagStatus.actioned
            auditlog.append(session, f"staff:{staff.staff_id}", "flag.removal_carried_out",
                            f"flag:{flag_id}", {"moderation": moderation,
                                                "platform_ok": platform_ok,
                                                "platform_detail": detail[:300]}, at=now)
            if informed:
                auditlog.append(session, f"staff:{staff.staff_id}", "flag.informed",
                                f"flag:{flag_id}", {"people": informed}, at=now)
            status, version = current.status, current.version
        self._changed(flag_id)
        return DecisionResult(flag_id, Action.remove, decision_id, status, version, detail,
                              platform_ok)

    def _moderate(self, flag_id: int, account: str, item: Item, moderation: str
                  ) -> tuple[bool, str]:
        connector = self.connector_for(account)
        if moderation == "manual":
            return False, "to be removed by hand on the platform"
        if connector is None:
            return False, "no platform connector can moderate this account"
        try:
            action = ModerationAction(moderation)
            if action not in connector.moderation_actions():
                raise ValueError(f"{connector.name} cannot {moderation}")
            result = connector.moderate(item, action)
            return result.ok, result.detail
        except Exception as exc:  # the platform refused or failed: recorded, done by hand
            log.warning("removal of flag #%d through %s failed: %s", flag_id, connector.name,
                        type(exc).__name__)
            return False, f"{type(exc).__name__}: {exc}"

    def keep(self, flag_id: int, actor: StaffMember | str, reason: str, *,
             expected_version: int | None = None, via: str = "slack",
             slack_user_id: str | None = None) -> DecisionResult:
        """Keep the item (the managers' part; or, on an escalated flag, the DSL team's)."""
        if not reason.strip():
            raise Refused("Say why the item is kept.")
        now = self.clock()
        with self.db.session() as session:
            _, facts, staff = self._check(session, flag_id, actor, Action.keep, via)
            values: dict[str, Any] = {"removal": "kept", "updated_at": now}
            if not facts.has_case or facts.escalated:
                values["status"] = FlagStatus.dismissed
            version = self._cas(session, flag_id, [_F.removal.is_(None), self._live()], values,
                                expected_version, "a decision on this post")
            decision = self._record(session, flag_id, staff, Action.keep, via=via,
                                    slack_user_id=slack_user_id, reason=reason, now=now)
            status, decision_id = values.get("status", facts.status), decision.id
        self._changed(flag_id)
        return DecisionResult(flag_id, Action.keep, decision_id, status, version)

    def escalate(self, flag_id: int, actor: StaffMember | str, *, via: str = "slack",
                 slack_user_id: str | None = None) -> DecisionResult:
        """Hand the flag to the DSL team (their message goes through the outbox, so a Slack
        outage delays it and loses nothing)."""
        now = self.clock()
        with self.db.session() as session:
            _, _, staff = self._check(session, flag_id, actor, Action.escalate, via)
            version = self._cas(session, flag_id,
                                [_F.status == FlagStatus.open, _F.removal.is_(None),
                                 _F.escalated_at.is_(None)],
                                {"status": FlagStatus.escalated, "escalated_at": now,
                                 "route": Route.dsl.value, "updated_at": now}, None,
                                "the escalation")
            decision = self._record(session, flag_id, staff, Action.escalate, via=via,
                                    slack_user_id=slack_user_id, now=now)
            session.add(m.OutboxMessage(flag_id=flag_id, kind="flag_escalated",
                                        route=Route.dsl.value, payload={"flag_id": flag_id},
                                        created_at=now, available_at=now))
            decision_id = decision.id
        self._changed(flag_id)
        return DecisionResult(flag_id, Action.escalate, decision_id, FlagStatus.escalated,
                              version)

    def acknowledge(self, flag_id: int, actor: StaffMember | str, *, via: str = "slack",
                    slack_user_id: str | None = None) -> DecisionResult:
        """The DSL team (or the case manager) has seen it: the escalation clock stops."""
        now = self.clock()
        with self.db.session() as session:
            _, _, staff = self._check(session, flag_id, actor, Action.acknowledge, via)
            version = self._cas(session, flag_id,
                                [_F.acknowledged_at.is_(None), self._live()],
                                {"acknowledged_at": now, "acknowledged_by": staff.staff_id,
                                 "status": FlagStatus.acknowledged, "updated_at": now}, None,
                                "the acknowledgement")
            decision = self._record(session, flag_id, staff, Action.acknowledge, via=via,
                                    slack_user_id=slack_user_id, now=now)
            decision_id = decision.id
        self._changed(flag_id)
        return DecisionResult(flag_id, Action.acknowledge, decision_id,
                              FlagStatus.acknowledged, version)

    def record_outcome(self, flag_id: int, actor: StaffMember | str, outcome: str,
                       note: str = "", *, expected_version: int | None = None,
                       via: str = "slack", slack_user_id: str | None = None) -> DecisionResult:
        """Record the outcome (a key of ``OUTCOMES``): closes the flag, except "monitoring"."""
        if outcome not in OUTCOMES:
            raise Refused(f"unknown outcome {outcome!r}")
        now = self.clock()
        with self.db.session() as session:
            flag, _, staff = self._check(session, flag_id, actor, Action.record_outcome, via)
            status = FlagStatus.acknowledged if outcome == "monitoring" else FlagStatus.closed
            values: dict[str, Any] = {"status": status, "updated_at": now}
            if flag.acknowledged_at is None:
                values.update(acknowledged_at=now, acknowledged_by=staff.staff_id)
            version = self._cas(session, flag_id, [self._live()], values, expected_version,
                                "this outcome")
            decision = self._record(session, flag_id, staff, Action.record_outcome, via=via,
                                    slack_user_id=slack_user_id, reason=note or None,
                                    outcome=outcome, now=now)
            decision_id = decision.id
        self._changed(flag_id)
        return DecisionResult(flag_id, Action.record_outcome, decision_id, status, version)

    def assign(self, flag_id: int, actor: StaffMember | str, assignee: str, *,
               expected_version: int | None = None, via: str = "slack",
               slack_user_id: str | None = None) -> DecisionResult:
        """Make the DSL or a deputy the owner of the flag."""
        now = self.clock()
        nt = self.need_to_know()
        with self.db.session() as session:
            _, facts, staff = self._check(session, flag_id, actor, Action.assign, via)
            team = {s.staff_id for s in nt.recipients(Route.dsl, facts)}
            if assignee not in team:
                raise Refused("Flags can be assigned only to the DSL or a deputy (never to "
                              "someone the concern is about).")
            version = self._cas(session, flag_id, [self._live()],
                                {"assigned_to": assignee, "updated_at": now}, expected_version,
                                "this assignment")
            decision = self._record(session, flag_id, staff, Action.assign, via=via,
                                    slack_user_id=slack_user_id, data={"assignee": assignee},
                                    now=now)
            decision_id, status = decision.id, facts.status
        self._changed(flag_id)
        return DecisionResult(flag_id, Action.assign, decision_id, status, version)

    def preapprove_photo(self, flag_id: int, actor: StaffMember | str, sha256: str, *,
                         via: str = "slack", slack_user_id: str | None = None
                         ) -> DecisionResult:
        """Pre-approve a photo (by its sha256) on the flag: the consent check passes it from
        now on. Idempotent: a photo approved before is answered :class:`AlreadyRecorded`."""
        now = self.clock()
        with self.db.session() as session:
            flag, facts, staff = self._check(session, flag_id, actor, Action.preapprove_photo,
                                             via)
            hashes = {str(f.detail.get("sha256")) for f in facts.findings
                      if f.detail.get("sha256")}
            if sha256 not in hashes:
                raise Refused(f"Flag #{flag_id} has no photo with that fingerprint.")
            if session.get(m.ApprovedMedia, sha256) is not None:
                raise AlreadyRecorded("This photo was already pre-approved.")
            session.add(m.ApprovedMedia(sha256=sha256, account=flag.account,
                                        approved_by=staff.staff_id, flag_id=flag_id,
                                        created_at=now))
            version = self._cas(session, flag_id, [], {"updated_at": now}, None,
                                "the pre-approval")
            decision = self._record(session, flag_id, staff, Action.preapprove_photo, via=via,
                                    slack_user_id=slack_user_id, data={"sha256": sha256},
                                    now=now)
            decision_id, status = decision.id, facts.status
        self._changed(flag_id)
        return DecisionResult(flag_id, Action.preapprove_photo, decision_id, status, version)


# how each action is stored in ``flag_decisions.action`` and named in the audit log
# (``flag.<name>``): the names used since the first release
_STORED = {Action.remove: "remove", Action.keep: "keep", Action.escalate: "escalate",
           Action.acknowledge: "acknowledge", Action.record_outcome: "outcome",
           Action.assign: "assign", Action.preapprove_photo: "preapprove_photo",
           Action.view_case: "view_case", Action.export: "export"}


def approved_media_hashes(session: Session) -> set[str]:
    """Every pre-approved photo's sha256 (the consent check reads them)."""
    return set(session.execute(select(m.ApprovedMedia.sha256)).scalars())
