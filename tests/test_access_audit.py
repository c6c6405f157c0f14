"""The weekly dual-access audit: every account reachable by two current designated managers,
with two-factor authentication, fresh passwords and the settings the policy requires."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.base import AccountFacts
from governance_bot.access_audit.checks import Attestation, check_account
from governance_bot.access_audit.cycle import AccessAudit
from governance_bot.config import AccessAuditSettings, Config
from governance_bot.register_store import load_registers
from governance_bot.registers import Account, RegisterIndex, Registers, StaffMember
from governance_bot.runtime import import_register_files
from governance_bot.storage import auditlog
from governance_bot.storage.audit_models import AccessFinding
from governance_bot.storage.db import Database

TODAY = date(2026, 11, 23)
SETTINGS = AccessAuditSettings()


def staff(sid: str, name: str, active: bool = True, **kw: object) -> StaffMember:
    return StaffMember(staff_id=sid, name=name, email=f"{sid.lower()}@school.example.org",
                       active=active, **kw)


REGISTERS = RegisterIndex(Registers(
    staff=[staff("A", "Alice Moreno"), staff("B", "Bilal Hussain"),
           staff("C", "Cara Doyle", active=False), staff("D", "Dev Patel"),
           staff("Z", "Zoe DSL", role="dsl")],
    accounts=[
        Account(account_id="ok", platform="facebook", handle="Ok", managers=["A", "B"]),
        Account(account_id="one", platform="instagram", handle="One", managers=["A"]),
        Account(account_id="leaver", platform="x", handle="Lv", managers=["A", "C"]),
        Account(account_id="admins", platform="facebook", handle="Ad", managers=["A", "B"]),
        Account(account_id="stale", platform="youtube", handle="St", managers=["A", "B"]),
        Account(account_id="public", platform="zoom", handle="Zm", managers=["A", "B"]),
    ],
))


def fine(sid: str) -> Attestation:
    return Attestation(sid, True, True, TODAY - timedelta(days=3), True)


def checks(account_id: str, atts: list[Attestation] | None = None,
           facts: AccountFacts | None = None) -> dict[str, str]:
    account = REGISTERS.accounts[account_id]
    if atts is None:
        atts = [fine(s) for s in account.managers]
    problems = check_account(account, REGISTERS, SETTINGS, TODAY, atts, facts)
    return {p.check: p.remedy for p in problems}


def test_an_account_with_two_current_managers_who_attest_has_no_findings():
    assert checks("ok") == {}


def test_an_account_with_one_manager_is_reported_with_a_remedy():
    found = checks("one")
    assert set(found) == {"too_few_managers"}
    assert "appoint another current member of staff" in found["too_few_managers"]


def test_a_leaver_as_manager_is_reported_and_leaves_too_few_managers():
    found = checks("leaver", [fine("A")])
    assert set(found) == {"leaver_as_manager", "too_few_managers"}
    assert "remove C from the managers" in found["leaver_as_manager"]
    assert "change the account's password" in found["leaver_as_manager"]


def test_an_unknown_platform_admin_and_a_leaver_with_access_are_reported():
    facts = AccountFacts(account_id="admins", admins=[
        {"email": "a@school.example.org", "role": "admin", "two_factor": True},
        {"email": "b@school.example.org", "role": "admin", "two_factor": False},
        {"email": "c@school.example.org", "role": "editor"},
        {"name": "Mystery Person", "id": "990", "role": "admin"},
    ])
    found = checks("admins", facts=facts)
    assert set(found) == {"unknown_admin", "leaver_with_access", "admin_two_factor_off"}
    assert "remove their admin role" in found["unknown_admin"]


def test_a_designated_manager_without_platform_access_is_reported():
    facts = AccountFacts(account_id="admins", admins=[{"email": "a@school.example.org"}])
    assert set(checks("admins", facts=facts)) == {"manager_without_access"}


def test_a_stale_password_is_reported_against_the_configured_maximum():
    atts = [fine("A"), Attestation("B", True, True, TODAY - timedelta(days=45), True)]
    found = checks("stale", atts)
    assert set(found) == {"stale_password"}
    relaxed = AccessAuditSettings(password_max_age_days=0)  # NCSC: change on compromise
    account = REGISTERS.accounts["stale"]
    assert check_account(account, REGISTERS, relaxed, TODAY, atts) == []


def test_public_meeting_settings_are_reported():
    facts = AccountFacts(account_id="public", meetings=[
        {"id": "m1", "topic": "Y10 revision", "passcode": False, "waiting_room": True},
        {"id": "m2", "passcode": True, "waiting_room": True},
    ], privacy={"passcode": True})
    found = checks("public", facts=facts)
    assert set(found) == {"video_meeting_security"}
    assert "password-protected" in found["video_meeting_security"]


def test_missing_attestations_are_findings_only_after_the_deadline():
    account = REGISTERS.accounts["ok"]
    assert check_account(account, REGISTERS, SETTINGS, TODAY, [fine("A")],
                         attestations_closed=False) == []
    late = check_account(account, REGISTERS, SETTINGS, TODAY, [fine("A")])
    assert [(p.check, p.subject) for p in late] == [("no_attestation", "B")]


class RecordingNotifier:
    def __init__(self) -> None:
        self.asked: list[tuple[int, str, str]] = []
        self.chased: list[tuple[int, str]] = []
        self.summaries: list[tuple[int, int, list[str]]] = []

    def ask(self, attestation_id, account, manager, deadline):  # type: ignore[no-untyped-def]
        self.asked.append((attestation_id, account.account_id, manager.staff_id))
        return {"channel": "D1", "ts": str(attestation_id)}

    def chase(self, attestation_id, account, manager, deadline):  # type: ignore[no-untyped-def]
        self.chased.append((attestation_id, manager.staff_id))

    def summary(self, run_id, findings, recipients):  # type: ignore[no-untyped-def]
        self.summaries.append((run_id, len(findings), [r.staff_id for r in recipients]))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def audit(make_config: Callable[..., Config]) -> tuple[AccessAudit, Clock, RecordingNotifier]:
    config = make_config()
    db = Database(config.database_url)
    db.ensure_schema()
    import_register_files(db, toml=config.resolve_path(config.registers.file or Path()))
    with db.session() as session:
        registers = RegisterIndex(load_registers(session))
    clock = Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    notifier = RecordingNotifier()
    return AccessAudit(config, db, registers, notifier, clock=clock), clock, notifier


def test_the_weekly_cycle_asks_chases_once_finds_and_resolves(
    audit: tuple[AccessAudit, Clock, RecordingNotifier],
):
    aa, clock, notifier = audit
    run = aa.start()
    # the example organisation: every current designated manager of every account is asked
    assert sorted({(a, s) for _, a, s in notifier.asked}) == [
        ("brookfield-email", "S002"), ("brookfield-email", "S004"),
        ("brookfield-facebook", "S004"), ("brookfield-facebook", "S005"),
        ("brookfield-instagram", "S005"), ("brookfield-teams", "S002"),
        ("brookfield-teams", "S004"), ("brookfield-x", "S004"), ("brookfield-x", "S005")]
    ids = {(a, s): i for i, a, s in notifier.asked}
    for (_account, sid), att_id in ids.items():
        if sid != "S005":  # S005 forgets
            aa.attest(att_id, sid, True, True, date(2026, 11, 1))
    with pytest.raises(PermissionError):
        aa.attest(ids[("brookfield-x", "S005")], "S004", True, True, None)

    clock.now += timedelta(hours=23)
    aa.tick()
    assert notifier.chased == []
    clock.now += timedelta(hours=2)
    aa.tick()
    aa.tick()
    assert sorted(s for _, s in notifier.chased) == ["S005", "S005", "S005"]  # once each
    aa.attest(ids[("brookfield-x", "S005")], "S005", True, False, date(2026, 11, 20))

    clock.now += timedelta(hours=24)
    aa.tick()
    assert len(notifier.summaries) == 1
    run_id, count, recipients = notifier.summaries[0]
    assert run_id == run and "S001" in recipients and "S004" in recipients
    with aa.db.session() as s:
        found = {(f.account_id, f.check, f.subject) for f in s.query(AccessFinding)}
    assert found == {
        ("brookfield-facebook", "no_attestation", "S005"),
        ("brookfield-instagram", "no_attestation", "S005"),
        ("brookfield-instagram", "leaver_as_manager", "S008"),
        ("brookfield-instagram", "too_few_managers", None),
        ("brookfield-x", "two_factor_off", "S005"),
    }
    assert count == len(found)
    with aa.db.session() as s:
        target = s.query(AccessFinding).filter_by(check="two_factor_off").one().id
    with pytest.raises(PermissionError):
        aa.resolve(target, "S006", "done")  # a tutor is neither manager nor DSL
    with pytest.raises(ValueError):
        aa.resolve(target, "S005", "  ")
    aa.resolve(target, "S005", "2FA turned on with the authenticator app")
    with aa.db.session() as s:
        row = s.get(AccessFinding, target)
        assert row is not None and (row.status, row.resolved_by) == ("resolved", "S005")
        assert auditlog.verify(s).ok
        events = s.query(auditlog.AuditEvent).order_by(auditlog.AuditEvent.seq)
        actions = [e.action for e in events]
    assert actions.count("access_audit.attested") == 7  # six on time, one after the chase
    assert "access_audit.resolve_refused" in actions and "access_audit.resolved" in actions


def test_a_required_setting_the_platform_did_not_report_is_unknown_not_passed():
    """Policy: settings private where the policy says so. A Mastodon instance that leaves
    ``discoverable`` out (null) has not shown the account is hidden from the directory: the audit
    says it cannot be confirmed, with what to check by hand."""
    account = Account(account_id="masto", platform="mastodon", handle="Ms", managers=["A", "B"])
    settings = AccessAuditSettings(required_settings={
        "passcode": True, "mastodon.locked": True, "mastodon.discoverable": False,
        "x.protected": True})
    reported = AccountFacts(account_id="masto", privacy={"locked": True, "indexable": True})
    problems = check_account(account, REGISTERS, settings, TODAY,
                             [fine("A"), fine("B")], reported)
    found = {(p.check, p.subject): p for p in problems}
    assert set(found) == {("setting_unknown", "discoverable")}
    unknown = found[("setting_unknown", "discoverable")]
    assert "did not report discoverable" in unknown.message and "by hand" in unknown.remedy
    # reported and wrong is a plain setting finding; reported and right is nothing
    wrong = AccountFacts(account_id="masto", privacy={"locked": False, "discoverable": False})
    problems = check_account(account, REGISTERS, settings, TODAY, [fine("A"), fine("B")], wrong)
    assert {(p.check, p.subject) for p in problems} == {("setting", "locked")}


def test_a_meeting_whose_passcode_was_not_reported_is_unknown_not_passed():
    facts = AccountFacts(account_id="public", meetings=[
        {"id": "m1", "passcode": None, "waiting_room": True},
        {"id": "m2", "passcode": True, "waiting_room": True}])
    problems = check_account(REGISTERS.accounts["public"], REGISTERS, SETTINGS, TODAY,
                             [fine("A"), fine("B")], facts)
    assert {(p.check, p.subject) for p in problems} == {
        ("video_meeting_security_unknown", "m1:passcode")}
