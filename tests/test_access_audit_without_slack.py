"""The dual-access audit without Slack: nobody could ask the managers, so the audit says that
instead of reporting that they "did not confirm access"; and an audit's week is named by its
Monday (an audit run on a Wednesday belongs to that Monday's week)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from governance_bot.access_audit.cycle import AccessAudit
from governance_bot.config import Config
from governance_bot.register_store import load_registers
from governance_bot.registers import RegisterIndex
from governance_bot.reports import access_audit_report
from governance_bot.runtime import import_register_files
from governance_bot.storage.audit_models import AccessFinding
from governance_bot.storage.db import Database


def _audit(config: Config, when: datetime) -> AccessAudit:
    db = Database(config.database_url)
    db.ensure_schema()
    import_register_files(db, toml=config.resolve_path(config.registers.file or Path()))
    with db.session() as session:
        registers = RegisterIndex(load_registers(session))
    return AccessAudit(config, db, registers, clock=lambda: when)  # no Slack: console only


def test_without_slack_the_audit_says_the_managers_could_not_be_asked(
        make_config: Callable[..., Config]) -> None:
    audit = _audit(make_config(), datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert audit.asks_managers is False
    run_id = audit.run_now()
    with audit.db.session() as s:
        found = list(s.execute(select(AccessFinding).where(AccessFinding.run_id == run_id))
                     .scalars())
    checks = {f.check for f in found}
    assert "no_attestation" not in checks  # nobody failed to answer: nobody was asked
    not_asked = [f for f in found if f.check == "not_asked"]
    assert {f.subject for f in not_asked} >= {"S004", "S005"}
    assert all("could not be asked" in f.message and "Slack is not set up" in f.message
               for f in not_asked)


def test_with_slack_configured_a_missing_answer_is_the_managers(
        make_config: Callable[..., Config]) -> None:
    config = make_config('[delivery]\nsink = "slack"\n')
    audit = _audit(config, datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert audit.asks_managers is True
    run_id = audit.run_now()
    with audit.db.session() as s:
        checks = {f.check for f in s.execute(select(AccessFinding).where(
            AccessFinding.run_id == run_id)).scalars()}
    assert "no_attestation" in checks and "not_asked" not in checks


def test_an_audit_run_on_a_wednesday_is_named_by_its_monday(
        make_config: Callable[..., Config], tmp_path: Path) -> None:
    config = make_config()
    audit = _audit(config, datetime(2026, 11, 25, 10, 0, tzinfo=UTC))  # a Wednesday
    run_id = audit.run_now()
    html, _csv = access_audit_report(config, audit.db, run_id, tmp_path)
    assert "week of Monday 23 November 2026" in html.read_text(encoding="utf-8")
