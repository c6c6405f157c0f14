"""A sender process killed right after Slack accepted a post never causes a second post.

Real processes: the outbox sender runs in a subprocess (`SlackSink.from_config`, as
`governance-bot ingest/run` build it); the fake Slack SIGKILLs it the moment the first
chat.postMessage arrives, before the answer gets back and before anything is committed. A new
sender process, started after the dead one's lease runs out, delivers the rest and finds the
already-posted flag by its message metadata instead of posting it again.

Findings come from the test-only detectors in tests/slack/helpers.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from governance_bot.runtime import Runtime
from rules.engine import DetectionEngine
from tests.slack.conftest import REGISTERS
from tests.slack.fake_slack import Call, FakeSlack
from tests.slack.helpers import TEST_DETECTORS, post

ROOT = Path(__file__).resolve().parents[2]
SENDER = """
import sys
from governance_bot.config import load_config
from governance_bot.outbox import OutboxSender
from governance_bot.runtime import Runtime
from governance_bot.slack.sink import SlackSink
config = load_config(sys.argv[1])
rt = Runtime.from_config(config)
sender = OutboxSender(rt.db, SlackSink.from_config(config, rt.db), rt.registers,
                      owner=sys.argv[2], lease_seconds=1)
print("delivered=%d failed=%d" % sender.drain())
"""


@pytest.mark.slow
def test_a_killed_sender_never_posts_a_flag_twice(tmp_path: Path) -> None:
    with FakeSlack() as fake:
        config_path = tmp_path / "config.toml"
        config_path.write_text(f"""
[database]
url = "sqlite:///gb.db"
[registers]
file = "{REGISTERS}"
[detection]
disabled_rules = ["learner_pii", "out_of_hours", "tone"]
[delivery]
sink = "slack"
[slack]
api_url = "{fake.base_url}"
""")
        from governance_bot.config import load_config

        rt = Runtime.from_config(load_config(config_path, env={}))
        rt.pipeline.engine = DetectionEngine(list(TEST_DETECTORS))  # type: ignore[arg-type]
        rt.pipeline.process_many([post(f"k{i}", f"Jayden Price photo {i}", thread=f"k{i}")
                                  for i in range(3)])
        rt.close()
        env = {**os.environ, "SLACK_BOT_TOKEN": "xoxb-crash", "PYTHONPATH": str(ROOT)}
        started: list[subprocess.Popen[str]] = []

        def kill_on_first_post(call: Call) -> None:
            if call.method == "chat.postMessage":
                fake.on_call = None
                os.kill(started[0].pid, signal.SIGKILL)
                started[0].wait()

        fake.on_call = kill_on_first_post  # in place before the sender can post
        first = subprocess.Popen([sys.executable, "-c", SENDER, str(config_path), "first"],
                                 cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        started.append(first)
        _, errors = first.communicate(timeout=120)
        assert first.returncode == -signal.SIGKILL, errors
        assert len(fake.calls("chat.postMessage")) == 1  # Slack has it; our database does not
        time.sleep(1.2)  # the dead sender's lease runs out
        second = subprocess.run([sys.executable, "-c", SENDER, str(config_path), "second"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "delivered=3 failed=0" in second.stdout, second.stdout + second.stderr
        posted = [c.params["metadata"]["event_payload"]["flag_id"]
                  for c in fake.calls("chat.postMessage")]
        assert sorted(posted) == [1, 2, 3]  # each flag exactly once
        assert fake.calls("chat.update")  # the orphaned post was adopted and brought up to date

