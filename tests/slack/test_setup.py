"""Slack setup, as a technician meets it: `doctor` says what is wrong with Slack and how to fix
it; `scan --once` with Slack misconfigured says so in one line and keeps the flags queued, and a
later run once it is fixed delivers them once; `slack test` sends a marked test message.

The real CLI runs in a subprocess against the fake Slack Web API (tests/slack/fake_slack.py),
which checks the bot token (auth.test), reports the granted scopes and answers users.info.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rules.engine import DETECTORS
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, FB_MANAGER_2, REGISTERS
from tests.slack.fake_slack import FakeSlack
from tests.slack.helpers import post

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = """
import sys
from rules import engine
from tests.slack.helpers import TEST_DETECTORS
engine.DetectionEngine.from_config = classmethod(
    lambda cls, config, only=None: cls(list(TEST_DETECTORS)))
from governance_bot.cli import app
sys.argv = ["governance-bot", *sys.argv[1:]]
app()
"""
GOOD = "xoxb-the-right-token"
# every slack_user_id of examples/registers.toml (Slack knows them all)
EVERYONE = {u: {"id": u, "name": u.lower(), "deleted": False} for u in (
    "U0HOKAFOR", "U0MREID", "U0PNATARA", "U0TASHWOR", "U0GLINDQV", "U0DMENSAH", "U0SCARRIN",
    "U0LFAIRBA", "U0ARAHMAN", "U0NOSEI", "U0RHALE")}


def _config(tmp: Path, fake: FakeSlack) -> Path:
    items = tmp / "items.jsonl"
    items.write_text("\n".join(json.dumps(i.model_dump(mode="json")) for i in [
        post("a1", "Well done Jayden Price!"),
        post("a2", "nobody would miss me", kind="comment"),
    ]) + "\n")
    config = tmp / "config.toml"
    config.write_text(f"""
[database]
url = "sqlite:///gb.db"
[registers]
file = "{REGISTERS}"
[detection]
disabled_rules = {json.dumps(list(DETECTORS))}
[delivery]
sink = "slack"
[slack]
api_url = "{fake.base_url}"
[[connectors]]
name = "fb"
type = "jsonl"
account = "brookfield-facebook"
path = "{items}"
""")
    return config


def gb(tmp: Path, *args: str, token: str | None = GOOD, wrapped: bool = False,
       signing_secret: str | None = "s3cret") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    env.update({"PYTHONPATH": str(ROOT), "COLUMNS": "200"})
    if signing_secret is not None:
        env["SLACK_SIGNING_SECRET"] = signing_secret
    if token is not None:
        env["SLACK_BOT_TOKEN"] = token
    command = (["-c", WRAPPER] if wrapped else ["-m", "governance_bot"])
    return subprocess.run([sys.executable, *command, *args, "--config", str(tmp / "config.toml")],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=240)


def _prepared(tmp: Path, fake: FakeSlack) -> Path:
    config = _config(tmp, fake)
    assert gb(tmp, "db", "upgrade").returncode == 0
    assert gb(tmp, "registers", "import").returncode == 0
    return config


def _doctor_lines(tmp: Path, token: str | None) -> str:
    result = gb(tmp, "doctor", token=token)
    assert result.returncode == 1, result.stdout + result.stderr  # something to fix
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_doctor_reports_a_missing_token_with_its_fix(tmp_path: Path) -> None:
    with FakeSlack(tokens={GOOD}, users=EVERYONE) as fake:
        _prepared(tmp_path, fake)
        shown = _doctor_lines(tmp_path, token=None)
    assert "✗ slack token: Slack is not set up: no bot token" in shown
    assert "fix: set SLACK_BOT_TOKEN in the service's environment" in shown


@pytest.mark.slow
def test_doctor_reports_a_token_slack_refuses_with_its_fix(tmp_path: Path) -> None:
    with FakeSlack(tokens={GOOD}, users=EVERYONE) as fake:
        _prepared(tmp_path, fake)
        shown = _doctor_lines(tmp_path, token="xoxb-revoked-long-ago")
    assert "✗ slack token: Slack refused the bot token (invalid_auth)" in shown
    assert "fix: copy the Bot User OAuth Token (xoxb-...) again into SLACK_BOT_TOKEN" in shown
    assert "xoxb-revoked-long-ago" not in shown  # never a secret in the output


@pytest.mark.slow
def test_doctor_reports_a_missing_scope_and_unknown_slack_users_by_name(tmp_path: Path) -> None:
    scopes = tuple(s for s in FakeSlack.SCOPES if s != "mpim:write")
    known = {u: v for u, v in EVERYONE.items() if u != FB_MANAGER_2}  # Grace is not in Slack
    with FakeSlack(tokens={GOOD}, users=known, scopes=scopes) as fake:
        _prepared(tmp_path, fake)
        shown = _doctor_lines(tmp_path, token=GOOD)
    assert "✓ slack token: accepted by Slack" in shown
    assert "✗ slack scopes: the app lacks mpim:write" in shown
    assert "reinstall it to the workspace" in shown
    assert "✗ slack users: not in the Slack workspace: Grace Lindqvist (S005: U0GLINDQV)" in shown
    assert "fix: correct slack_user_id in the staff register" in shown


@pytest.mark.slow
def test_a_scan_with_slack_misconfigured_says_so_in_one_line_and_a_fixed_run_delivers_once(
        tmp_path: Path) -> None:
    with FakeSlack(tokens={GOOD}, users=EVERYONE) as fake:
        _prepared(tmp_path, fake)
        first = gb(tmp_path, "scan", "--once", token=None, wrapped=True)
        assert first.returncode == 5, first.stdout + first.stderr
        problem = [line for line in first.stderr.splitlines() if line.strip()]
        assert problem == [
            "Slack is not set up: no bot token. Fix: set SLACK_BOT_TOKEN in the service's "
            "environment to the app's Bot User OAuth Token (xoxb-..., api.slack.com/apps -> your "
            "app -> OAuth & Permissions), or [slack] bot_token = \"${SLACK_BOT_TOKEN}\". "
            "2 notification(s) stay queued and are delivered once this is fixed."]
        assert fake.calls("chat.postMessage") == []
        wrong = gb(tmp_path, "scan", "--once", token="xoxb-wrong", wrapped=True)
        assert wrong.returncode == 5 and "invalid_auth" in wrong.stderr
        assert "Traceback" not in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
        with sqlite3.connect(tmp_path / "gb.db") as conn:
            assert conn.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
                                ).fetchone()[0] == 2
            assert conn.execute("SELECT max(attempts) FROM outbox").fetchone()[0] == 0
        fixed = gb(tmp_path, "scan", "--once", token=GOOD, wrapped=True)
        assert fixed.returncode == 0, fixed.stderr
        assert "delivered 2 notification(s)" in fixed.stdout
        again = gb(tmp_path, "scan", "--once", token=GOOD, wrapped=True)
        assert "delivered 0 notification(s)" in again.stdout
        channels = [c.params["channel"] for c in fake.calls("chat.postMessage")]
        assert sorted(channels) == sorted([fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2),
                                           fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)])


@pytest.mark.slow
def test_slack_test_sends_a_marked_message_to_the_dsl_team_or_an_accounts_managers(
        tmp_path: Path) -> None:
    with FakeSlack(tokens={GOOD}, users=EVERYONE) as fake:
        _prepared(tmp_path, fake)
        to_dsl = gb(tmp_path, "slack", "test", "--to", "dsl")
        assert to_dsl.returncode == 0, to_dsl.stderr
        to_managers = gb(tmp_path, "slack", "test", "--to", "managers", "brookfield-facebook")
        assert to_managers.returncode == 0, to_managers.stderr
        unknown = gb(tmp_path, "slack", "test", "--to", "managers", "no-such-account")
        assert unknown.returncode == 5 and "unknown account" in unknown.stderr
        posts = fake.calls("chat.postMessage")
    assert [p.params["channel"] for p in posts] == [
        fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2),
        fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2)]
    assert all(p.params["text"].startswith(":test_tube: TEST from governance-bot")
               for p in posts)
    assert "the DSL and deputies" in to_dsl.stdout


@pytest.mark.slow
def test_the_service_does_not_start_without_the_signing_secret_and_says_so_in_one_line(
        tmp_path: Path) -> None:
    with FakeSlack(tokens={GOOD}, users=EVERYONE) as fake:
        _prepared(tmp_path, fake)
        result = gb(tmp_path, "run", signing_secret=None)
    assert result.returncode == 5
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no signing secret" in lines[0] and "SLACK_SIGNING_SECRET" in \
        lines[0]
    assert "Traceback" not in result.stderr
