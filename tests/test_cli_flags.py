"""`flags list` and `flags show`: the command line keeps up with the console (filters, the whole
case as text or JSON, output that is never cut when it goes to a file) and asks need to know like
everything else: `--as STAFF_ID` shows exactly what that member of staff may see; without it, the
operator sees a case (safeguarding, a concern about staff) only as such (docs/routing.md, "The
command line")."""

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


def listed(config: Config, *args: str) -> tuple[list[dict[str, object]], str]:
    """(the flags `flags list --json` prints, what it says on stderr)."""
    result = runner.invoke(app, ["flags", "list", "--json", *args, "--config",
                                 str(config.source)])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_an_invalid_status_is_refused_with_the_valid_ones(flagged: Config):
    code, output = gb(flagged, "flags", "list", "--status", "opne")
    assert code == 2
    assert "--status 'opne'" in output and "acknowledged" in output and "escalated" in output


@pytest.mark.parametrize(("args", "expected"), [
    ((), {1, 2, 3}),
    (("--route", "account_managers"), {1}),
    (("--account", "brookfield-teams"), {3}),
    (("--from", "2026-11-17"), {2, 3}),
    (("--from", "2026-11-17", "--to", "2026-11-17"), {2}),
    (("--status", "open", "--route", "dsl"), {2, 3}),
])
def test_flags_list_filters(flagged: Config, args: tuple[str, ...], expected: set[int]):
    flags, _ = listed(flagged, *args)
    assert {f["flag_id"] for f in flags} == expected


@pytest.mark.parametrize(("who", "args", "expected"), [
    ("S001", (), {2, 3}),  # the DSL: the disclosure and the concern about the tutor
    ("S001", ("--severity", "4"), {2, 3}),
    ("S001", ("--min-severity", "5"), set()),
    ("S002", (), {2, 3}),  # a deputy DSL who manages the Teams account: the same
    ("S004", (), {1}),  # a manager of the Facebook page: the learner named there, nothing else
    ("S004", ("--severity", "3"), {1}),
    ("S006", (), set()),  # the tutor the concern is about: nothing
    ("S010", (), set()),  # the headteacher is not the case manager here (the DSL is)
])
def test_flags_list_as_a_member_of_staff_lists_exactly_what_they_may_see(
        flagged: Config, who: str, args: tuple[str, ...], expected: set[int]):
    flags, _ = listed(flagged, "--as", who, *args)
    assert {f["flag_id"] for f in flags} == expected
    assert not any(f["restricted"] for f in flags)


def test_without_as_a_case_is_listed_only_as_such(flagged: Config):
    flags = {f["flag_id"]: f for f in listed(flagged)[0]}
    assert flags[1]["severity"] == 3 and flags[1]["category"] == "learner_pii"
    assert flags[1]["rules"] == ["rule_learner_pii"] and not flags[1]["restricted"]
    for case in (2, 3):
        assert flags[case]["restricted"] is True
        assert flags[case]["severity"] is None and flags[case]["category"] is None
        assert flags[case]["rules"] == []
        assert "A case for the DSL team" in str(flags[case]["note"])
    code, output = gb(flagged, "flags", "list")
    assert code == 0
    assert "rule_safeguarding" not in output and "rule_accountability" not in output
    assert "safeguarding" not in output and "a case (restricted)" in output


def test_without_as_a_severity_filter_leaves_the_cases_out_and_says_so(flagged: Config):
    flags, said = listed(flagged, "--min-severity", "3")
    assert {f["flag_id"] for f in flags} == {1}
    assert "2 case(s) not listed" in said and "--as STAFF_ID" in said


def test_an_unknown_staff_id_is_refused_naming_it(flagged: Config):
    code, output = gb(flagged, "flags", "list", "--as", "S999")
    assert code == 2 and "--as 'S999'" in output and "staff register" in output


def test_a_bad_date_is_refused_naming_the_option(flagged: Config):
    code, output = gb(flagged, "flags", "list", "--from", "17/11/2026")
    assert code == 2 and "--from '17/11/2026'" in output


def test_the_table_is_not_cut_when_the_output_is_not_a_terminal(flagged: Config):
    code, output = gb(flagged, "flags", "list", "--as", "S001")
    assert code == 0
    # whole words, not "brookfield-inst…" in an 80-column table
    assert "brookfield-facebook" in output and "rule_safeguarding" in output
    assert "safeguarding concern" in output and "…" not in output
    assert max(len(line) for line in output.splitlines()) > 80


def _looks(config: Config) -> list[tuple[str, str | None, dict[str, object]]]:
    db = Database(config.database_url)
    with db.session() as s:
        looks = [(e.actor, e.subject, e.data) for e in s.execute(select(m.AuditEvent).where(
            m.AuditEvent.action == "cli.flags_show")).scalars()]
    db.dispose()
    return looks


def test_flags_show_as_the_dsl_prints_the_case_and_is_audited(flagged: Config):
    code, output = gb(flagged, "flags", "show", "2", "--as", "S001", "--by", "it-technician")
    assert code == 0, output
    assert "Case 2: safeguarding concern" in output
    assert "he hurts me at home" in output
    assert "Why it was flagged:" in output and "an invented safeguarding finding" in output
    # the thread around it: the post naming a learner before it (the tutor's chat is another
    # account's thread)
    assert "Congratulations" in output and "see you tomorrow xx" not in output
    assert [(actor, subject) for actor, subject, _ in _looks(flagged)] == [
        ("it-technician", "flag:2")]
    assert _looks(flagged)[0][2]["as"] == "S001"


def test_flags_show_without_as_shows_a_case_only_as_such(flagged: Config):
    for args in ((), ("--json",)):
        code, output = gb(flagged, "flags", "show", "2", *args)
        assert code == 0, output
        assert "A case for the DSL team" in output
        for secret in ("he hurts me", "invented safeguarding", "safeguarding concern",
                       "Congratulations"):
            assert secret not in output
    assert len(_looks(flagged)) == 2  # still audited


def test_flags_show_without_as_shows_content_as_its_managers_see_it(flagged: Config):
    code, output = gb(flagged, "flags", "show", "1", "--json")
    assert code == 0, output
    case = json.loads(output)
    assert case["category"] == "learner personal details" and case["learners"] == []
    assert "Jayden" not in output and "Congratulations" in output


def test_flags_show_json_as_the_dsl_has_the_chronology_and_the_learner(flagged: Config):
    code, output = gb(flagged, "flags", "show", "3", "--json", "--as", "S001")
    assert code == 0, output
    case = json.loads(output)
    assert case["flag_id"] == 3 and case["category"] == "one-to-one contact without a second adult"
    assert [lr["learner_id"] for lr in case["learners"]] == ["L003"]
    assert case["findings"][0]["explanation"] == "an invented accountability finding"


def test_flags_show_as_the_member_of_staff_a_concern_is_about_finds_nothing(flagged: Config):
    code, output = gb(flagged, "flags", "show", "3", "--as", "S006")
    assert code == 2 and "there is no flag 3 that S006 may see" in output
    assert "see you tomorrow" not in output and _looks(flagged) == []


def test_flags_show_of_a_missing_flag_says_so(flagged: Config):
    code, output = gb(flagged, "flags", "show", "99")
    assert code == 2 and "there is no flag 99" in output
