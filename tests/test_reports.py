"""Reports: the weekly audit report (HTML + CSV) and the governors' report with charts that
render in a real browser (headless Chromium)."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from governance_bot.access_audit.cycle import AccessAudit
from governance_bot.config import Config
from governance_bot.findings import Category, Evidence, Finding, Route, Severity
from governance_bot.flags import record_findings
from governance_bot.items import Item
from governance_bot.register_store import load_registers
from governance_bot.registers import RegisterIndex
from governance_bot.reports import access_audit_report, governors_report
from governance_bot.runtime import import_register_files
from governance_bot.storage import auditlog
from governance_bot.storage.archive import archive_item
from governance_bot.storage.db import Database


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian package `chromium`; .ci/run "
                "installs it)")


def rendered_charts(html: Path, tmp_path: Path) -> tuple[int, int]:
    """Open the report in headless Chromium; return (charts expected, charts rendered)."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chrome'}", "--virtual-time-budget=5000",
         "--dump-dom", html.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    body = re.search(r"<body[^>]*>", result.stdout)
    assert body, result.stderr[-2000:]
    expected = re.search(r'data-charts-expected="(\d+)"', body.group(0))
    rendered = re.search(r'data-charts-rendered="(\d+)"', body.group(0))
    assert expected and rendered, body.group(0)
    return int(expected.group(1)), int(rendered.group(1))


@pytest.fixture
def populated(make_config: Callable[..., Config]) -> tuple[Config, Database]:
    """A term's worth of flags, an acknowledged safeguarding flag, a removal, an audit run."""
    config = make_config()
    db = Database(config.database_url)
    db.ensure_schema()
    import_register_files(db, toml=config.resolve_path(config.registers.file or Path()),
                          actor="data-manager")
    t0 = datetime(2026, 9, 8, 10, 0, tzinfo=UTC)
    categories = [(Category.learner_pii, Severity.medium, Route.account_managers),
                  (Category.tone, Severity.low, Route.digest),
                  (Category.safeguarding, Severity.high, Route.dsl)]
    with db.session() as s:
        for i in range(24):
            cat, sev, route = categories[i % 3]
            when = t0 + timedelta(days=4 * i)
            item = Item.model_validate({"id": f"i{i}", "platform": "facebook",
                                        "account": "brookfield-facebook", "kind": "comment",
                                        "created_at": when.isoformat(), "text": "(invented)"})
            rec = archive_item(s, item, when).record
            change = record_findings(s, rec, [Finding(
                rule_id=cat.value, category=cat, severity=sev, score=1.0, route=route,
                explanation="invented finding", evidence=Evidence(), item_key=item.key)],
                now=when)
            assert change is not None
            if cat == Category.safeguarding:
                change.flag.acknowledged_at = when + timedelta(minutes=5 + i)
                change.flag.acknowledged_by = "S001"
        auditlog.append(s, "S004", "flag.removed", "flag:1",
                        {"reason": "named a learner", "informed": ["guardian (email)"]},
                        at=t0 + timedelta(days=1))
    with db.session() as s:
        registers = RegisterIndex(load_registers(s))
    clock_now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    aa = AccessAudit(config, db, registers, clock=lambda: clock_now[0])
    aa.start()
    clock_now[0] += timedelta(days=3)
    aa.tick()
    return config, db


def test_the_weekly_audit_report_lists_each_finding_with_its_remedy(
    populated: tuple[Config, Database], tmp_path: Path,
):
    config, db = populated
    html, csv_path = access_audit_report(config, db, 1, tmp_path / "out")
    rows = list(csv.DictReader(csv_path.open()))
    checks = {(r["account"], r["check"]) for r in rows}
    assert ("brookfield-instagram", "leaver_as_manager") in checks
    assert ("brookfield-instagram", "too_few_managers") in checks
    assert all(r["remedy"] for r in rows)
    text = html.read_text()
    assert "Dual-access audit #1" in text and "appoint another current member of staff" in text


def test_the_governors_report_charts_render_in_headless_chromium(
    populated: tuple[Config, Database], tmp_path: Path,
):
    config, db = populated
    out = governors_report(config, db, date(2026, 9, 1), date(2026, 12, 31),
                           tmp_path / "governors.html")
    text = out.read_text()
    for heading in ("Flags by category and month", "Time to acknowledge safeguarding flags",
                    "Removals and their reasons", "Dual-access audit findings over time",
                    "Changes to rules, thresholds, registers and configuration"):
        assert heading in text
    assert "named a learner" in text and "learner register: 30 records added" in text
    assert "(invented)" not in text  # no message text in reports
    expected, rendered = rendered_charts(out, tmp_path)
    assert expected == 3 and rendered == 3


def _cells(html: str, heading: str) -> list[list[str]]:
    """The rows of the table under ``heading``, as text."""
    part = html.split(f"<h2>{heading}</h2>", 1)[1].split("</section>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", part, re.S)]


def test_a_flag_counts_in_the_month_its_item_was_posted_not_when_it_was_detected(
    populated: tuple[Config, Database], tmp_path: Path,
):
    config, db = populated
    posted = datetime(2026, 9, 30, 20, 0, tzinfo=UTC)
    detected = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with db.session() as s:
        item = Item.model_validate({"id": "late", "platform": "facebook",
                                    "account": "brookfield-facebook", "kind": "comment",
                                    "created_at": posted.isoformat(), "text": "(invented)"})
        rec = archive_item(s, item, detected).record
        record_findings(s, rec, [Finding(
            rule_id="personal_account_contact", category=Category.personal_account_contact,
            severity=Severity.medium, score=1.0, route=Route.dsl, explanation="invented",
            evidence=Evidence(), item_key=item.key)], now=detected)
    html = governors_report(config, db, date(2026, 9, 1), date(2026, 12, 31),
                            tmp_path / "g.html").read_text()
    rows = _cells(html, "Flags by category and month")
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    assert header == ["concern", "Sep 2026", "Oct 2026", "Nov 2026", "Dec 2026", "total"]
    # internal category names never appear; the late-detected flag is September's
    assert "personal_account_contact" not in html
    assert body["contact from a personal account"][1:] == ["1", "0", "0", "0", "1"]


def test_the_acknowledgement_summary_agrees_with_its_table_and_is_not_good_news_when_waiting(
    populated: tuple[Config, Database], tmp_path: Path,
):
    config, db = populated
    with db.session() as s:  # two safeguarding flags nobody has acknowledged yet
        for n in range(2):
            when = datetime(2026, 12, 1 + n, 10, 0, tzinfo=UTC)
            item = Item.model_validate({"id": f"w{n}", "platform": "facebook",
                                        "account": "brookfield-facebook", "kind": "comment",
                                        "created_at": when.isoformat(), "text": "(invented)"})
            rec = archive_item(s, item, when).record
            record_findings(s, rec, [Finding(
                rule_id="safeguarding", category=Category.safeguarding, severity=Severity.high,
                score=1.0, route=Route.dsl, explanation="invented", evidence=Evidence(),
                item_key=item.key)], now=when)
    html = governors_report(config, db, date(2026, 9, 1), date(2026, 12, 31),
                            tmp_path / "g.html").read_text()
    rows = _cells(html, "Time to acknowledge safeguarding flags")
    assert rows[0][:4] == ["severity", "flags to the DSL", "acknowledged", "not yet acknowledged"]
    flags, acknowledged, waiting = (sum(int(r[i]) for r in rows[1:]) for i in (1, 2, 3))
    assert (flags, acknowledged, waiting) == (10, 8, 2)
    summary = re.search(r'<p class="tone-(\w+)">(\d+) flags went to the DSL: (\d+) acknowledged, '
                        r"(\d+) not yet acknowledged", html)
    assert summary and summary.groups() == ("bad", "10", "8", "2")


def test_nothing_acknowledged_is_never_shown_as_good_news(make_config: Callable[..., Config],
                                                          tmp_path: Path):
    config = make_config()
    db = Database(config.database_url)
    db.ensure_schema()
    when = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)
    with db.session() as s:
        item = Item.model_validate({"id": "x", "platform": "facebook",
                                    "account": "brookfield-facebook", "kind": "comment",
                                    "created_at": when.isoformat(), "text": "(invented)"})
        rec = archive_item(s, item, when).record
        record_findings(s, rec, [Finding(
            rule_id="safeguarding", category=Category.safeguarding, severity=Severity.critical,
            score=1.0, route=Route.dsl, explanation="invented", evidence=Evidence(),
            item_key=item.key)], now=when)
    html = governors_report(config, db, date(2026, 9, 1), date(2026, 12, 31),
                            tmp_path / "g.html").read_text()
    part = html.split("<h2>Time to acknowledge safeguarding flags</h2>", 1)[1]
    part = part.split("</section>")[0]
    assert "tone-good" not in part and "tone-bad" in part
    assert "1 flag went to the DSL: 0 acknowledged, 1 not yet acknowledged." in part


def test_people_and_cases_are_named_and_learner_ids_are_not_listed(
    populated: tuple[Config, Database], tmp_path: Path,
):
    config, db = populated
    with db.session() as s:
        auditlog.append(s, "staff:S005", "flag.remove", "flag:2",
                        {"staff_id": "S005", "reason": "a second removal"},
                        at=datetime(2026, 10, 1, tzinfo=UTC))
    html = governors_report(config, db, date(2026, 9, 1), date(2026, 12, 31),
                            tmp_path / "g.html").read_text()
    removals = _cells(html, "Removals and their reasons")
    assert removals[1][1:3] == ["case 1", "Tom Ashworth"]
    assert removals[2][1:3] == ["case 2", "Grace Lindqvist"]
    assert "staff:S00" not in html and "flag:" not in html
    assert not re.search(r"\bL0\d\d\b", html)  # no learner ids
    assert "Data-manager" in html or "data-manager" in html  # a non-staff actor as it is


def test_the_report_fits_a_1280_pixel_screen_without_hiding_a_column(
    populated: tuple[Config, Database], tmp_path: Path,
):
    from tests.browser import browser_page

    config, db = populated
    out = governors_report(config, db, date(2026, 1, 1), date(2026, 12, 31),
                           tmp_path / "year.html")
    with browser_page(width=1280, height=900) as page:
        page.goto(out.as_uri())
        overflowing = page.evaluate(
            "Array.from(document.querySelectorAll('.table')).filter("
            "d => d.scrollWidth > d.clientWidth + 1).length")
        assert overflowing == 0


def test_the_report_command_prints_no_warnings(populated: tuple[Config, Database],
                                               tmp_path: Path):
    import os
    import sys

    config, _db = populated
    assert config.source is not None
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    result = subprocess.run(
        [sys.executable, "-m", "governance_bot", "report", "governors", "--from", "2026-09-01",
         "--to", "2026-12-31", "--output", str(tmp_path / "r.html"), "--config",
         str(config.source)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_an_empty_period_says_so_plainly(populated: tuple[Config, Database], tmp_path: Path):
    config, db = populated
    out = governors_report(config, db, date(2025, 1, 1), date(2025, 3, 31), tmp_path / "g.html")
    text = out.read_text()
    assert "No flags in this period." in text and "No removals in this period." in text
    assert rendered_charts(out, tmp_path) == (0, 0)


def test_a_removal_reason_naming_a_learner_is_masked_in_the_governors_report(
    populated: tuple[Config, Database], tmp_path: Path,
):
    config, db = populated
    with db.session() as s:  # the reason a manager typed into the Remove form
        auditlog.append(s, "S005", "flag.removed", "flag:2",
                        {"reason": "Jayden Price's full name under the match photo"},
                        at=datetime(2026, 10, 2, tzinfo=UTC))
    html = governors_report(config, db, date(2026, 9, 1), date(2026, 12, 31),
                            tmp_path / "g.html").read_text()
    removals = _cells(html, "Removals and their reasons")
    assert any("full name under the match photo" in " ".join(r) for r in removals)
    assert "Jayden" not in html and "Price" not in html
