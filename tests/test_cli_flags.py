"""`flags list` and `flags show`: the command line keeps up with the console (filters, the whole
case as text or JSON, output that is never cut when it goes to a file)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from governance_bot.cli import app
from governance_bot.config import Config
from governance_bot.findings import Category, Evidence, Finding, Route, Severity
from governance_bot.flags import record_findings
from governance_bot.items import Item
from governance_bot.runtime import import_register_files
from governance_bot.storage import models as m
from governance_bot.storage.archive import archive_item
from governance_bot.storage.db import Database

runner = CliRunner()


@pytest.fixture
def flagged(make_config: Callable[..., Config]) -> Config:
    """Three flags: a learner named on Facebook (managers), a disclosure under it (DSL) and
    a tutor's over-familiar message (DSL), on three days."""
    config = make_config()
    db = Database(config.database_url)
    db.ensure_schema()
    import_register_files(db, toml=config.resolve_path(config.registers.file or Path()))
    t0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
    cases = [
        ("brookfield-facebook", "Congratulations Jayden Price!", Category.learner_pii,
         Severity.medium, Route.account_managers, "learner:L001"),
        ("brookfield-facebook", "he hurts me at home", Category.safeguarding, Severity.high,
         Route.dsl, None),
        ("brookfield-teams", "see you tomorrow xx", Category.accountability, Severity.high,
         Route.dsl, "staff:S006>learner:L003"),
    ]
    with db.session() as s:
        for n, (account, text, cat, sev, route, subject) in enumerate(cases):
            when = t0 + timedelta(days=n)
            item = Item.model_validate({"id": f"i{n}", "platform": "facebook",
                                        "account": account, "kind": "comment",
                                        "created_at": when.isoformat(), "text": text,
                                        "thread_id": "t1"})
            rec = archive_item(s, item, when).record
            record_findings(s, rec, [Finding(
                rule_id=f"rule_{cat.value}", category=cat, severity=sev, score=1.0,
                route=route, explanation=f"an invented {cat.value} finding",
                evidence=Evidence(register_entry=subject if subject and "learner:" in subject
                                  and ">" not in subject else None),
                subject=subject, item_key=item.key)], now=when)
    db.dispose()
    return config


def gb(config: Config, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--config", str(config.source)])
    return result.exit_code, result.output


def test_an_invalid_status_is_refused_with_the_valid_ones(flagged: Config):
    code, output = gb(flagged, "flags", "list", "--status", "opne")
    assert code == 2
    assert "--status 'opne'" in output and "acknowledged" in output and "escalated" in output


@pytest.mark.parametrize(("args", "expected"), [
    ((), {1, 2, 3}),
    (("--severity", "4"), {2, 3}),
    (("--min-severity", "3"), {1, 2, 3}),
    (("--route", "account_managers"), {1}),
    (("--account", "brookfield-teams"), {3}),
    (("--from", "2026-11-17"), {2, 3}),
    (("--from", "2026-11-17", "--to", "2026-11-17"), {2}),
    (("--status", "open", "--route", "dsl"), {2, 3}),
])
def test_flags_list_filters(flagged: Config, args: tuple[str, ...], expected: set[int]):
    code, output = gb(flagged, "flags", "list", "--json", *args)
    assert code == 0, output
    assert {json.loads(line)["flag_id"] for line in output.splitlines()} == expected


def test_a_bad_date_is_refused_naming_the_option(flagged: Config):
    code, output = gb(flagged, "flags", "list", "--from", "17/11/2026")
    assert code == 2 and "--from '17/11/2026'" in output


def test_the_table_is_not_cut_when_the_output_is_not_a_terminal(flagged: Config):
    code, output = gb(flagged, "flags", "list")
    assert code == 0
    # whole words, not "brookfield-inst…" in an 80-column table
    assert "brookfield-facebook" in output and "rule_safeguarding" in output
    assert "learner personal details" in output and "…" not in output
    assert max(len(line) for line in output.splitlines()) > 80


def test_flags_show_prints_the_case_and_is_audited(flagged: Config):
    code, output = gb(flagged, "flags", "show", "2", "--by", "it-technician")
    assert code == 0, output
    assert "Case 2: safeguarding concern" in output
    assert "he hurts me at home" in output
    assert "Why it was flagged:" in output and "an invented safeguarding finding" in output
    # the thread around it: the post naming a learner before it (the tutor's chat is another
    # account's thread)
    assert "Congratulations Jayden Price!" in output and "see you tomorrow xx" not in output
    db = Database(flagged.database_url)
    with db.session() as s:
        looks = list(s.execute(select(m.AuditEvent).where(
            m.AuditEvent.action == "cli.flags_show")).scalars())
    db.dispose()
    assert [(e.actor, e.subject) for e in looks] == [("it-technician", "flag:2")]


def test_flags_show_json_has_the_chronology_and_the_learner(flagged: Config):
    code, output = gb(flagged, "flags", "show", "1", "--json")
    assert code == 0, output
    case = json.loads(output)
    assert case["flag_id"] == 1 and case["category"] == "learner personal details"
    assert [lr["name"] for lr in case["learners"]] == ["Jayden Price"]
    assert case["findings"][0]["explanation"] == "an invented learner_pii finding"


def test_flags_show_of_a_missing_flag_says_so(flagged: Config):
    code, output = gb(flagged, "flags", "show", "99")
    assert code == 2 and "there is no flag 99" in output
