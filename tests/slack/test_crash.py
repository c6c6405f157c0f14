"""A sender process killed right after Slack accepted a post never causes a second post.

Real processes: the outbox sender runs in a subprocess (`SlackSink.from_config`, as
`governance-bot ingest/run` build it); the fake Slack SIGKILLs it the moment the first
chat.postMessage arrives, before the answer gets back and before anything is committed. A new
sender process, started after the dead one's lease runs out, delivers the rest and finds the
already-posted flag by its message metadata instead of posting it again.

A sender that is alive but slower than its claim's lease keeps its claim (it renews it), so a
second sender running meanwhile does not post the same flag again.

Findings come from the test-only detectors in tests/slack/helpers.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator

from governance_bot.outbox import OutboxSender
from governance_bot.runtime import Runtime
from governance_bot.slack.sink import SlackSink
from rules.engine import DetectionEngine
from tests.slack.conftest import REGISTERS, SlackWorld
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


def test_a_slow_sender_whose_claim_ran_out_while_it_worked_is_not_doubled_by_another(
        world: SlackWorld) -> None:
    """A sender that is alive but slow (here Slack answers its post with a 503 and its client
    waits to retry, longer than the claim's lease) keeps its claim: a second sender draining
    meanwhile (``ingest`` beside ``run``) does not take the flag over and post it a second time.

    The first sender's retry is held until the second sender has drained, so the order is
    certain: the first claim is two seconds old when the second sender looks."""
    world.rt.pipeline.process_many([post("s1", "Jayden Price photo", thread="s1")])

    def sender(owner: str) -> OutboxSender:
        return OutboxSender(world.rt.db, SlackSink.from_config(world.rt.config, world.rt.db),
                            world.rt.registers, owner=owner, lease_seconds=1)

    slow, other = sender("slow"), sender("other")
    retrying, go_on = threading.Event(), threading.Event()

    class UntilTheOtherHasDrained(RetryIntervalCalculator):
        def calculate_sleep_duration(self, current_attempt: int) -> float:
            retrying.set()
            go_on.wait(20)
            return 0.0

    for handler in slow.sink.bot.client.retry_handlers:  # type: ignore[attr-defined]
        if isinstance(handler, ServerErrorRetryHandler):
            handler.interval_calculator = UntilTheOtherHasDrained()

    def slack_fails_the_first_post(call: Call) -> None:
        if call.method == "conversations.open":  # the first sender's, just before it posts
            world.fake.on_call = None
            world.fake.fail_next(1, 503)

    world.fake.on_call = slack_fails_the_first_post
    results: list[tuple[int, int]] = []
    first = threading.Thread(target=lambda: results.append(slow.drain()))
    first.start()
    try:
        assert retrying.wait(20), "the first sender's post was not refused"
        time.sleep(2)  # longer than its claim: it is still at work
        assert other.drain() == (0, 0)  # the flag is still the first sender's
    finally:
        go_on.set()
        first.join(30)
    assert results == [(1, 0)]
    posted = [c.params["metadata"]["event_payload"]["flag_id"]
              for c in world.fake.calls("chat.postMessage") if c.status == 200]
    assert posted == [world.flag_id("s1")]  # posted once
