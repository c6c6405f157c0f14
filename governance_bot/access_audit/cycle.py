"""The weekly cycle: ask every current designated manager, chase once, close at the deadline
with findings, let people mark findings resolved with a note.

The clock is passed in, so a test can drive a whole week in a second. Notifications go through a
``Notifier`` (Slack in production, the console without Slack).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import select

from connectors.base import AccountFacts, Connector
from governance_bot.access_audit.checks import Attestation, Problem, check_account
from governance_bot.config import Config
from governance_bot.registers import Account, RegisterIndex, StaffMember
from governance_bot.storage import auditlog
from governance_bot.storage.audit_models import AccessAttestation, AccessAuditRun, AccessFinding
from governance_bot.storage.db import Database

__all__ = ["AccessAudit", "ConsoleNotifier", "Notifier"]

log = logging.getLogger(__name__)


class Notifier(Protocol):
    def ask(self, attestation_id: int, account: Account, manager: StaffMember,
            deadline: datetime) -> dict[str, Any] | None:
        """Ask ``manager`` to attest access to ``account``; return a message reference."""
        ...

    def chase(self, attestation_id: int, account: Account, manager: StaffMember,
              deadline: datetime) -> None: ...

    def summary(self, run_id: int, findings: list[AccessFinding],
                recipients: list[StaffMember]) -> None: ...


class ConsoleNotifier:
    """Without Slack: the questions and the summary are logged (names and ids only)."""

    def ask(self, attestation_id: int, account: Account, manager: StaffMember,
            deadline: datetime) -> dict[str, Any] | None:
        log.info("access check %d: %s, please confirm access to %s by %s", attestation_id,
                 manager.name, account.account_id, deadline.isoformat(timespec="minutes"))
        return None

    def chase(self, attestation_id: int, account: Account, manager: StaffMember,
              deadline: datetime) -> None:
        log.info("access check %d: reminder sent to %s", attestation_id, manager.name)

    def summary(self, run_id: int, findings: list[AccessFinding],
                recipients: list[StaffMember]) -> None:
        log.info("access audit %d closed with %d finding(s)", run_id, len(findings))


class AccessAudit:
    def __init__(self, config: Config, db: Database, registers: RegisterIndex,
                 notifier: Notifier | None = None, connectors: list[Connector] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.config = config
        self.settings = config.audit
        self.db = db
        self.registers = registers
        self.notifier: Notifier = notifier or ConsoleNotifier()
        self.connectors = connectors or []
        self.clock = clock
        self.tz = ZoneInfo(config.organisation.timezone)

    @property
    def asks_managers(self) -> bool:
        """Whether managers can be asked (Slack); without it the audit says they could not be
        asked instead of reporting that they did not confirm access."""
        return (not isinstance(self.notifier, ConsoleNotifier)
                or self.config.delivery.sink == "slack")  # the service asks them in Slack

    @staticmethod
    def week_of(at: datetime, tz: ZoneInfo) -> date:
        """The Monday of ``at``'s week (local time): an audit's week is named by its Monday."""
        local = at.astimezone(tz).date()
        return local - timedelta(days=local.weekday())

    # --- the cycle ----------------------------------------------------------------------------
    def start(self, trigger: str = "schedule") -> int:
        """Open a run and ask every current designated manager of every account."""
        now = self.clock()
        deadline = now + timedelta(hours=self.settings.deadline_hours)
        chase_at = now + timedelta(hours=self.settings.chase_after_hours)
        facts = self._collect_facts()
        with self.db.session() as session:
            run = AccessAuditRun(started_at=now, chase_at=chase_at, deadline=deadline,
                                 trigger=trigger,
                                 facts={k: asdict(v) for k, v in facts.items()})
            session.add(run)
            session.flush()
            asks: list[tuple[int, Account, StaffMember]] = []
            for account in self.registers.accounts.values():
                for manager in self.registers.managers(account.account_id):
                    if not manager.active:
                        continue
                    att = AccessAttestation(run_id=run.id, account_id=account.account_id,
                                            staff_id=manager.staff_id, asked_at=now)
                    session.add(att)
                    session.flush()
                    asks.append((att.id, account, manager))
            auditlog.append(session, "governance-bot", "access_audit.started", f"run:{run.id}",
                            {"trigger": trigger, "asked": len(asks)}, at=now)
            run_id = run.id
        for att_id, account, manager in asks:
            ref = self.notifier.ask(att_id, account, manager, deadline)
            if ref:
                with self.db.session() as session:
                    row = session.get(AccessAttestation, att_id)
                    assert row is not None
                    row.message_ref = ref
        return run_id

    def run_now(self) -> int:
        """An on-demand audit: today's platform facts and each manager's latest answer from the
        last seven days; closed at once (nobody is asked)."""
        now = self.clock()
        facts = self._collect_facts()
        since = now - timedelta(days=7)
        with self.db.session() as session:
            run = AccessAuditRun(started_at=now, chase_at=now, deadline=now, chased_at=now,
                                 trigger="manual",
                                 facts={k: asdict(v) for k, v in facts.items()})
            session.add(run)
            session.flush()
            answers = session.execute(
                select(AccessAttestation).where(AccessAttestation.answered_at.is_not(None),
                                                AccessAttestation.answered_at >= since)
                .order_by(AccessAttestation.answered_at)
            ).scalars().all()
            latest = {(a.account_id, a.staff_id): a for a in answers}
            for (account_id, staff_id), a in latest.items():
                session.add(AccessAttestation(
                    run_id=run.id, account_id=account_id, staff_id=staff_id, asked_at=a.asked_at,
                    answered_at=a.answered_at, can_log_in=a.can_log_in, two_factor=a.two_factor,
                    password_changed_on=a.password_changed_on))
            auditlog.append(session, "governance-bot", "access_audit.started", f"run:{run.id}",
                            {"trigger": "manual"}, at=now)
            run_id = run.id
        self.close(run_id)
        return run_id

    def attest(self, attestation_id: int, staff_id: str, can_log_in: bool, two_factor: bool,
               password_changed_on: date | None) -> None:
        """Record a manager's answer. Only the person asked may answer."""
        now = self.clock()
        with self.db.session() as session:
            att = session.get(AccessAttestation, attestation_id)
            if att is None:
                raise KeyError(f"no access check {attestation_id}")
            refused = att.staff_id != staff_id
            if refused:
                auditlog.append(session, staff_id, "access_audit.attest_refused",
                                f"attestation:{attestation_id}", {"asked": att.staff_id}, at=now)
            else:
                self._record_answer(session, att, staff_id, can_log_in, two_factor,
                                    password_changed_on, now)
        if refused:
            raise PermissionError("only the manager who was asked can answer this check")

    @staticmethod
    def _record_answer(session: Any, att: AccessAttestation, staff_id: str, can_log_in: bool,
                       two_factor: bool, password_changed_on: date | None, now: datetime) -> None:
        att.answered_at, att.can_log_in, att.two_factor = now, can_log_in, two_factor
        att.password_changed_on = password_changed_on
        auditlog.append(session, staff_id, "access_audit.attested", f"{att.account_id}:{staff_id}",
                        {"can_log_in": can_log_in, "two_factor": two_factor,
                         "password_changed_on": str(password_changed_on or "")}, at=now)

    def tick(self) -> None:
        """Chase and close whatever is due; the scheduler calls this every few minutes."""
        now = self.clock()
        with self.db.session() as session:
            runs = session.execute(select(AccessAuditRun).where(
                AccessAuditRun.closed_at.is_(None))).scalars().all()
            due_chase = [r.id for r in runs if r.chased_at is None and r.chase_at <= now]
            due_close = [r.id for r in runs if r.deadline <= now]
        for run_id in due_chase:
            self.chase(run_id)
        for run_id in due_close:
            self.close(run_id)

    def chase(self, run_id: int) -> int:
        """Remind, once, everyone who has not answered."""
        now = self.clock()
        with self.db.session() as session:
            run = session.get(AccessAuditRun, run_id)
            assert run is not None
            if run.chased_at is not None:
                return 0
            run.chased_at = now
            pending = session.execute(select(AccessAttestation).where(
                AccessAttestation.run_id == run_id, AccessAttestation.answered_at.is_(None)
            )).scalars().all()
            for att in pending:
                att.chased_at = now
            todo = [(a.id, a.account_id, a.staff_id) for a in pending]
            deadline = run.deadline
        for att_id, account_id, staff_id in todo:
            self.notifier.chase(att_id, self.registers.accounts[account_id],
                                self.registers.staff[staff_id], deadline)
        return len(todo)

    def close(self, run_id: int) -> list[AccessFinding]:
        """Turn the run's answers and platform facts into findings; notify managers and DSL."""
        now = self.clock()
        problems = self.evaluate(run_id, closed=True)
        with self.db.session() as session:
            run = session.get(AccessAuditRun, run_id)
            assert run is not None
            if run.closed_at is not None:
                return list(session.execute(select(AccessFinding).where(
                    AccessFinding.run_id == run_id)).scalars())
            run.closed_at = now
            rows = [AccessFinding(run_id=run_id, account_id=p.account_id, check=p.check,
                                  severity=p.severity, message=p.message, remedy=p.remedy,
                                  subject=p.subject, created_at=now) for p in problems]
            session.add_all(rows)
            auditlog.append(session, "governance-bot", "access_audit.closed", f"run:{run_id}",
                            {"findings": len(rows),
                             "checks": sorted({p.check for p in problems})}, at=now)
            session.flush()
        recipients = self._summary_recipients()
        self.notifier.summary(run_id, rows, recipients)
        return rows

    def resolve(self, finding_id: int, staff_id: str, note: str) -> None:
        """Mark a finding resolved, with the note saying what was done."""
        if not note.strip():
            raise ValueError("a note saying what was done is required")
        now = self.clock()
        with self.db.session() as session:
            finding = session.get(AccessFinding, finding_id)
            if finding is None:
                raise KeyError(f"no audit finding {finding_id}")
            allowed = self.may_resolve(finding.account_id, staff_id)
            if not allowed:
                # the refused attempt is itself recorded (committed), then refused
                auditlog.append(session, staff_id, "access_audit.resolve_refused",
                                f"access_finding:{finding_id}", {}, at=now)
            else:
                finding.status, finding.resolved_at = "resolved", now
                finding.resolved_by, finding.resolution_note = staff_id, note.strip()
                auditlog.append(session, staff_id, "access_audit.resolved",
                                f"access_finding:{finding_id}",
                                {"check": finding.check, "account": finding.account_id}, at=now)
        if not allowed:
            raise PermissionError("only the account's managers or the DSL can resolve this")

    def may_resolve(self, account_id: str, staff_id: str) -> bool:
        """The account's current designated managers and the DSL/deputies may resolve its
        findings; nobody else."""
        staff = self.registers.staff.get(staff_id)
        account = self.registers.accounts.get(account_id)
        return staff is not None and staff.active and (
            (account is not None and staff_id in account.managers)
            or staff in self.registers.safeguarding_contacts())

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate(self, run_id: int, closed: bool) -> list[Problem]:
        today = self.clock().astimezone(self.tz).date()
        with self.db.session() as session:
            run = session.get(AccessAuditRun, run_id)
            assert run is not None
            atts = session.execute(select(AccessAttestation).where(
                AccessAttestation.run_id == run_id)).scalars().all()
            stored_facts = dict(run.facts or {})
        by_account: dict[str, list[Attestation]] = {}
        for a in atts:
            by_account.setdefault(a.account_id, []).append(Attestation(
                a.staff_id, a.can_log_in, a.two_factor, a.password_changed_on,
                a.answered_at is not None))
        problems: list[Problem] = []
        for account in self.registers.accounts.values():
            facts_data = stored_facts.get(account.account_id)
            facts = AccountFacts(**facts_data) if facts_data else None
            problems.extend(check_account(account, self.registers, self.settings, today,
                                          by_account.get(account.account_id, []), facts,
                                          attestations_closed=closed,
                                          managers_asked=self.asks_managers))
        return problems

    def _collect_facts(self) -> dict[str, AccountFacts]:
        out: dict[str, AccountFacts] = {}
        for connector in self.connectors:
            try:
                facts = connector.account_facts()
            except Exception as exc:  # one platform failing never stops the audit
                log.warning("%s: account facts unavailable: %s", connector.name,
                            type(exc).__name__)
                continue
            if facts is not None:
                out[connector.account] = facts
        return out

    def _summary_recipients(self) -> list[StaffMember]:
        seen: dict[str, StaffMember] = {}
        for account in self.registers.accounts.values():
            for s in self.registers.managers(account.account_id):
                if s.active:
                    seen.setdefault(s.staff_id, s)
        for s in self.registers.safeguarding_contacts():
            seen.setdefault(s.staff_id, s)
        return list(seen.values())
