"""The quick start's flags go only where docs/routing.md says: the example organisation scanned
as `scripts/quickstart` scans it (`governance-bot scan --once --config examples/config.toml`,
real rules), delivered through the JSON sink, one line per group of people who see the same
thing.

The three flags a DSL found wrong (issue 14), by their items:

* "Aww thank you xxx": Tom Ashworth (S004), who manages the account, replies to a learner with
  kisses. A concern about staff: to the case manager (the DSL, Helen Okafor) in her summary;
  never to Tom, nor to the account's other manager.
* "Ruby Fletcher is a fat ugly loser...": a public comment naming a learner and bullying her.
  The bullying goes to the DSL and deputies; the managers get the learner's name (masked) and
  "Hide/remove this post; the DSL has been informed."; nothing reaches a digest.
* "This can be our little secret, ok?": a tutor (Daniel Mensah) to a learner in a Teams chat.
  A safeguarding concern about a member of staff: to the case manager at once, never to the
  Teams account's managers (one of whom is a deputy DSL) or a digest.
* "my stepdad hits me when mum is at work...": a learner's disclosure of abuse (the issue's
  flag #49). To the DSL and deputies at once; never in full to the managers or in a digest.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
KISS = "facebook:brookfield-facebook:104000000001_1372"
BULLYING = "facebook:brookfield-facebook:104000000001_1381"
SECRET = "teams:brookfield-teams:msg-1368"
DISCLOSURE = "facebook:brookfield-facebook:104000000001_1379"
DSL, DEPUTIES, FB_MANAGERS = "S001", {"S002", "S003"}, {"S004", "S005"}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path]:
    tmp = tmp_path_factory.mktemp("quickstart")
    shutil.copytree(ROOT / "examples", tmp / "examples",
                    ignore=shutil.ignore_patterns("*.db", "*.db-*", "audit-anchors.log*"))
    env = {**os.environ, "COLUMNS": "200", "GOVERNANCE_BOT_DELIVERY__SINK": "json",
           "GOVERNANCE_BOT_DELIVERY__JSON_PATH": str(tmp / "flags.jsonl")}
    result = subprocess.run([sys.executable, "-m", "governance_bot", "scan", "--once",
                             "--config", str(tmp / "examples" / "config.toml")],
                            cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp / "flags.jsonl").read_text().splitlines()]
    return lines, tmp / "examples" / "brookfield.db"


def _who(lines: list[dict[str, Any]], item: str) -> dict[str, set[str]]:
    """rule id -> everyone who received a finding of that rule on ``item``."""
    out: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        if f"{line['platform']}:{line['account']}:{line['item_id']}" != item:
            continue
        for f in line["findings"]:
            out[f["rule_id"]].update(line["recipients"])
    return out


@pytest.mark.slow
def test_a_managers_kisses_to_a_learner_go_to_the_case_manager_never_to_him(
        scanned: tuple[list[dict[str, Any]], Path]) -> None:
    lines, _ = scanned
    who = _who(lines, KISS)
    assert dict(who) == {"tone": {DSL}}
    [line] = [x for x in lines if x["item_id"] == KISS.rsplit(":", 1)[1]]
    assert line["route"] == "case_digest"  # low severity: her daily summary


@pytest.mark.slow
def test_a_bullying_comment_naming_a_learner_is_split_between_the_dsl_and_the_managers(
        scanned: tuple[list[dict[str, Any]], Path]) -> None:
    lines, _ = scanned
    who = _who(lines, BULLYING)
    assert who["safeguarding"] == {DSL} | DEPUTIES
    assert who["learner_pii"] == FB_MANAGERS
    mine = [x for x in lines if x["item_id"] == BULLYING.rsplit(":", 1)[1]]
    for line in mine:
        if set(line["recipients"]) & FB_MANAGERS:
            assert {f["category"] for f in line["findings"]} <= {"learner_pii", "toxicity"}
            assert line["note"] == "Hide/remove this post; the DSL has been informed."
            assert "Ruby" not in json.dumps(line)  # masked
        assert line["route"] not in ("digest", "case_digest") or all(
            f["category"] != "safeguarding" for f in line["findings"])


@pytest.mark.slow
def test_a_tutors_secret_with_a_learner_goes_to_the_case_manager_at_once_and_nowhere_else(
        scanned: tuple[list[dict[str, Any]], Path]) -> None:
    lines, _ = scanned
    who = _who(lines, SECRET)
    assert who and all(people == {DSL} for people in who.values()), dict(who)
    for line in lines:
        if line["item_id"] == SECRET.rsplit(":", 1)[1]:
            assert line["route"] == "case_manager"


@pytest.mark.slow
def test_a_learners_disclosure_of_abuse_goes_to_the_dsl_team_at_once_and_nowhere_else(
        scanned: tuple[list[dict[str, Any]], Path]) -> None:
    lines, _ = scanned
    mine = [x for x in lines if x["item_id"] == DISCLOSURE.rsplit(":", 1)[1]]
    disclosed = [(x, f) for x in mine for f in x["findings"] if f["category"] == "safeguarding"]
    assert disclosed and max(f["severity"] for _, f in disclosed) >= 4
    for line, _ in disclosed:
        assert set(line["recipients"]) <= {DSL} | DEPUTIES and line["route"] == "dsl"
    assert {p for line, _ in disclosed for p in line["recipients"]} == {DSL} | DEPUTIES
    for line in mine:  # the managers (if anything reaches them) and digests: never its words
        if set(line["recipients"]) & FB_MANAGERS or line["route"] in ("digest", "case_digest"):
            assert all(f["category"] != "safeguarding" for f in line["findings"]), line
            assert "stepdad" not in json.dumps(line)


@pytest.mark.slow
def test_no_manager_or_digest_ever_receives_safeguarding_or_a_concern_about_themselves(
        scanned: tuple[list[dict[str, Any]], Path]) -> None:
    lines, db = scanned
    with sqlite3.connect(db) as conn:
        subjects = dict(conn.execute("SELECT fingerprint, subject FROM findings").fetchall())
        authors = dict(conn.execute(
            "SELECT f.fingerprint, i.key FROM findings f JOIN items i ON i.id = f.item_id"
        ).fetchall())
    staff_items = {KISS: "S004"}  # an item a manager wrote (as himself)
    for line in lines:
        for f in line["findings"]:
            if line["route"] in ("digest", "account_managers"):
                assert f["category"] != "safeguarding", line
            about = {p.split(":", 1)[1] for p in (subjects[f["fingerprint"]] or "").split(">")
                     if p.startswith("staff:")}
            if authors[f["fingerprint"]] in staff_items:
                about.add(staff_items[authors[f["fingerprint"]]])
            assert not about & set(line["recipients"]), line
        if line["route"] == "digest":
            assert set(line["recipients"]) <= {"S004", "S005", "S002"}  # the managers


@pytest.mark.slow
def test_accountability_reports_each_conversation_at_most_once_a_week(
        scanned: tuple[list[dict[str, Any]], Path]) -> None:
    _, db = scanned
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT subject, item_created_at FROM findings "
                            "WHERE rule_id = 'accountability'").fetchall()
    assert rows, "the example organisation has one-to-one conversations"
    per_week: dict[tuple[str, str], int] = defaultdict(int)
    for subject, at in rows:
        day = datetime.fromisoformat(str(at)).date()
        per_week[(subject, str(day - timedelta(days=day.weekday())))] += 1
    assert max(per_week.values()) == 1, {k: v for k, v in per_week.items() if v > 1}
