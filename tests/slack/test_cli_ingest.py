"""Acceptance: `governance-bot ingest` with Slack configured delivers to the right people.

Runs the real CLI in a subprocess against the fake Slack Web API. The subprocess swaps the
detection engine for the test-only detectors of tests/slack/helpers.py (the real rules are other
issues); config, registers, pipeline, outbox, Slack sink and client are the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, FB_MANAGER_2, REGISTERS
from tests.slack.fake_slack import FakeSlack
from tests.slack.helpers import post

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = """
import sys
from governance_bot.routing import Router
from rules import engine
from tests.slack.helpers import TEST_DETECTORS
engine.DetectionEngine.from_config = classmethod(
    lambda cls, config, only=None: cls(list(TEST_DETECTORS)))
from governance_bot.cli import app
sys.argv = ["governance-bot", *sys.argv[1:]]
app()
"""


@pytest.mark.slow
def test_ingest_with_slack_configured_delivers_to_the_right_people(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(i.model_dump(mode="json")) for i in [
        post("a1", "Well done Jayden Price!"),
        post("a2", "nobody would miss me", kind="comment"),
        post("a3", "A lovely sports day"),
    ]) + "\n")
    config = tmp_path / "config.toml"
    with FakeSlack() as fake:
        config.write_text(f"""
[database]
url = "sqlite:///gb.db"
[registers]
file = "{REGISTERS}"
[delivery]
sink = "slack"
[slack]
api_url = "{fake.base_url}"
bot_token = "${{SLACK_BOT_TOKEN}}"
""")
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-cli-test", "PYTHONPATH": str(ROOT)}
        proc = subprocess.run([sys.executable, "-c", WRAPPER, "ingest", str(items), "--config",
                               str(config)], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "delivered 2 notification(s)" in proc.stdout
        opened = [set(c.params["users"].split(",")) for c in fake.calls("conversations.open")]
        assert opened == [{FB_MANAGER_1, FB_MANAGER_2}, {DSL, DEPUTY_1, DEPUTY_2}]
        posts = fake.calls("chat.postMessage")
        assert [p.params["channel"] for p in posts] == [
            fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2),
            fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)]
        assert all(p.headers.get("Authorization") == "Bearer xoxb-cli-test" for p in posts)
        assert "xoxb-cli-test" not in proc.stdout + proc.stderr
