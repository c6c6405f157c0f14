"""Write the sample reports in docs/sample-reports/ from the example organisation.

    .venv/bin/python examples/make_sample_reports.py [OUT_DIR]

Everything happens in a throwaway SQLite database, through the real code:

1. the registers and configuration of ``examples/config.toml`` are loaded (recorded in the audit
   log, as a real start records them);
2. every example item is scanned by the configured rules, each at a simulated time a few minutes
   after it was posted (so flags fall in the months the items were written);
3. some safeguarding (DSL-route) flags are acknowledged by the DSL and deputies after invented
   delays, and one learner-details flag is removed by a designated manager with an explanation and
   the people to inform, through the same ``Decisions`` the Slack buttons use (no Slack is
   contacted: the flags were never posted there, so there is nothing to update);
4. four weekly dual-access audits run with a simulated clock and invented answers. In the last
   one Grace Lindqvist forgets to answer and Tom Ashworth reports two-factor authentication off
   on the X account; earlier weeks' findings are resolved with notes.

It writes ``governors-report.html`` (the 2026 annual report: flags by category and month, time
to acknowledge, removals, audit findings over time, changes) and ``access-audit.html`` and
``access-audit.csv`` (the last weekly audit). Every person and message is invented.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from connectors.registry import load as load_connector
from governance_bot.access_audit.cycle import AccessAudit
from governance_bot.authz import NeedToKnow
from governance_bot.changes import record_config_changes
from governance_bot.config import Config, connector_settings, load_config
from governance_bot.decisions import Decisions
from governance_bot.flags import FlagStatus
from governance_bot.items import Item
from governance_bot.pipeline import Pipeline, ScanReport
from governance_bot.register_store import load_registers
from governance_bot.registers import RegisterIndex
from governance_bot.reports import access_audit_report, governors_report
from governance_bot.runtime import import_register_files
from governance_bot.storage import crypto
from governance_bot.storage import models as m
from governance_bot.storage.audit_models import AccessAttestation, AccessFinding
from governance_bot.storage.db import Database
from rules.engine import DetectionEngine

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "docs" / "sample-reports"
PERIOD = (date(2026, 1, 1), date(2026, 12, 31))
# Mondays 09:00 in London (BST, so 08:00 UTC): four weekly audits before the summer holiday
AUDIT_MONDAYS = [datetime(2026, 6, d, 8, 0, tzinfo=UTC) for d in (22, 29)] + [
    datetime(2026, 7, d, 8, 0, tzinfo=UTC) for d in (6, 13)]
# invented minutes the DSL and deputies took to acknowledge safeguarding flags
ACK_MINUTES = [4, 9, 12, 18, 26, 35, 7, 52]
SAFEGUARDING_TEAM = ["S001", "S002", "S003"]

log = logging.getLogger("make_sample_reports")


class SimulatedClock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _config(db_path: Path) -> Config:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    env["GOVERNANCE_BOT_DATABASE__URL"] = f"sqlite:///{db_path}"
    env["GOVERNANCE_BOT_LOGGING__LEVEL"] = "WARNING"
    return load_config(HERE / "config.toml", env=env)


def scan_examples(config: Config, db: Database, registers: RegisterIndex) -> ScanReport:
    """Every example item through the configured rules, each seen three minutes after it was
    posted, oldest first (so history-based rules see the items in order)."""
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))
    pipeline = Pipeline(db, DetectionEngine.from_config(config), registers, clock=clock)
    items: list[Item] = []
    report = ScanReport()
    for settings in connector_settings(config):
        connector = load_connector(settings.type)(settings)
        try:
            result = connector.fetch(None)
        finally:
            connector.close()
        items.extend(result.items)
        report.problems.extend(result.problems)  # the malformed demo lines, reported and skipped
    for item in sorted(items, key=lambda i: i.created_at):
        clock.now = item.created_at.astimezone(UTC) + timedelta(minutes=3)
        pipeline.process(item, report)
    return report


def decide_some_flags(config: Config, db: Database, registers: RegisterIndex) -> None:
    """Acknowledge DSL-route flags after invented delays; remove one learner-details flag."""
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))
    # the service's decisions, as Slack and the console take them (no Slack here)
    decisions = Decisions(db, lambda: NeedToKnow.from_config(config, registers), clock=clock)
    with db.session() as session:
        dsl_flags = [(f.id, f.created_at) for f in session.execute(
            select(m.Flag).where(m.Flag.route == "dsl").order_by(m.Flag.created_at)).scalars()]
        pii = session.execute(
            select(m.Flag.id, m.Flag.created_at, m.Flag.account)
            .where(m.Flag.route == "account_managers", m.Flag.category == "learner_pii",
                   m.Flag.status == FlagStatus.open.value)
            .order_by(m.Flag.created_at)).first()
    # all but the last DSL flag are acknowledged (the last stays open, as the report shows)
    for i, (flag_id, created) in enumerate(dsl_flags[:-1]):
        clock.now = created + timedelta(minutes=ACK_MINUTES[i % len(ACK_MINUTES)])
        staff = registers.staff[SAFEGUARDING_TEAM[i % len(SAFEGUARDING_TEAM)]]
        decisions.acknowledge(flag_id, staff, slack_user_id=staff.slack_user_id)
    if pii is not None:
        flag_id, created, account = pii
        manager = registers.managers(account)[0]
        roles = decisions.inform_roles(flag_id)
        clock.now = created + timedelta(hours=2, minutes=10)
        decisions.remove(flag_id, manager, slack_user_id=manager.slack_user_id,
                         moderation="manual",
                         reason="A learner was named without consent; the post was taken down "
                                "and reposted without the name.",
                         inform=[r.key for r in roles], method="email")


class AskedInSlack:
    """Stands for Slack asking the managers (the sample's answers are invented below)."""

    def ask(self, *args: object) -> None:
        return None

    def chase(self, *args: object) -> None:
        return None

    def summary(self, *args: object) -> None:
        return None


def weekly_audits(config: Config, db: Database, registers: RegisterIndex) -> int:
    """Four weekly audits with invented answers; returns the last run's id."""
    clock = SimulatedClock(AUDIT_MONDAYS[0])
    # the managers are asked as Slack would ask them (no Slack here: the answers are invented)
    audit = AccessAudit(config, db, registers, notifier=AskedInSlack(), clock=clock)
    run_id = 0
    for week, monday in enumerate(AUDIT_MONDAYS):
        last = week == len(AUDIT_MONDAYS) - 1
        clock.now = monday
        run_id = audit.start()
        with db.session() as session:
            asked = [(a.id, a.account_id, a.staff_id) for a in session.execute(
                select(AccessAttestation).where(AccessAttestation.run_id == run_id)).scalars()]
        clock.now = monday + timedelta(hours=3)
        for att_id, account_id, staff_id in asked:
            if staff_id == "S005" and (last or week == 0):
                continue  # Grace Lindqvist forgets (she answers in the middle weeks)
            two_factor = not (staff_id == "S004" and account_id == "brookfield-x"
                              and (last or week == 0))
            # Marcus Reid's email password was changed in the spring, then again in July
            changed = (date(2026, 4, 20) if staff_id == "S002" and week < 2
                       else monday.date() - timedelta(days=10 + week))
            audit.attest(att_id, staff_id, True, two_factor, changed)
        clock.now = monday + timedelta(hours=config.audit.chase_after_hours, minutes=5)
        audit.tick()  # the reminder
        clock.now = monday + timedelta(hours=config.audit.deadline_hours, minutes=5)
        audit.tick()  # closes the run: findings
        if not last:
            resolve_findings(audit, clock, run_id)
    # in the sample week, one finding is already resolved when the report is written
    with db.session() as session:
        two_fa = session.execute(select(AccessFinding.id).where(
            AccessFinding.run_id == run_id, AccessFinding.check == "two_factor_off")).scalar()
    if two_fa is not None:
        clock.now += timedelta(hours=1)
        audit.resolve(two_fa, "S004", "Turned on two-factor authentication with the "
                      "authenticator app on the shared device.")
    return run_id


def resolve_findings(audit: AccessAudit, clock: SimulatedClock, run_id: int) -> None:
    notes = {
        "two_factor_off": ("S004", "Two-factor authentication turned on (authenticator app)."),
        "no_attestation": ("S005", "Logged in and confirmed access on Thursday."),
        "stale_password": ("S002", "Password changed in the password manager."),
    }
    with audit.db.session() as session:
        found = [(f.id, f.check) for f in session.execute(select(AccessFinding).where(
            AccessFinding.run_id == run_id)).scalars()]
    for finding_id, check in found:
        if check in notes:
            clock.now += timedelta(minutes=40)
            staff_id, note = notes[check]
            audit.resolve(finding_id, staff_id, note)


def make_sample_reports(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Build the throwaway database and write the three sample reports into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gb-sample-") as tmp:
        config = _config(Path(tmp) / "sample.db")
        crypto.configure(config.security.keys())
        db = Database(config.database_url)
        try:
            db.ensure_schema()
            import_register_files(db, toml=config.resolve_path(config.registers.file or Path()),
                                  actor="data-manager")
            # recorded under the path as a reader of the sample knows it (not this machine's)
            record_config_changes(db, config.model_copy(
                update={"source": Path("examples/config.toml")}), actor="it-technician")
            with db.session() as session:
                registers = RegisterIndex(load_registers(session))
            report = scan_examples(config, db, registers)
            log.info("scanned %d items: %d flags", report.items, report.flags_created)
            decide_some_flags(config, db, registers)
            run_id = weekly_audits(config, db, registers)
            governors = governors_report(config, db, *PERIOD, out_dir / "governors-report.html")
            html, csv_path = access_audit_report(config, db, run_id, Path(tmp) / "weekly")
            outputs = [governors,
                       Path(shutil.copyfile(html, out_dir / "access-audit.html")),
                       Path(shutil.copyfile(csv_path, out_dir / "access-audit.csv"))]
        finally:
            db.dispose()
    return outputs


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    for path in make_sample_reports(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
