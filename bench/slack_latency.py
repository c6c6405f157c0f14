"""Slack: time from a flag's creation to its chat.postMessage at the (fake) Slack Web API.

Each of N items is processed by the real pipeline (archive, detection with the test-only
learner-name detector, flag + outbox row committed); the clock starts when the flag is committed
and stops when the fake Slack server receives the chat.postMessage for it, through the real
outbox sender, Slack sink and slack_sdk client, as `governance-bot run` does after a poll.

    .venv/bin/python bench/run.py slack_latency [--flags 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import Bench
from governance_bot.runtime import Runtime
from governance_bot.slack.bot import SlackBot, make_client
from governance_bot.slack.sink import SlackSink
from rules.engine import DetectionEngine
from tests.slack.conftest import make_config
from tests.slack.fake_slack import Call, FakeSlack
from tests.slack.helpers import LearnerNameTestDetector, post

QUICK = ["--flags", "200"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flags", type=int, default=1000)


def run(bench: Bench, args: argparse.Namespace) -> None:
    bench.param(flags=args.flags)
    arrived: dict[int, float] = {}

    def on_call(call: Call) -> None:
        if call.method == "chat.postMessage":
            arrived[int(call.params["metadata"]["event_payload"]["flag_id"])] = call.at

    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        fake.on_call = on_call
        config = make_config(Path(tmp), fake)
        rt = Runtime.from_config(config)
        rt.pipeline.engine = DetectionEngine([LearnerNameTestDetector()])  # type: ignore[list-item]
        bot = SlackBot(config, rt.db, make_client(config, "xoxb-bench"), registers=rt.registers)
        sender = rt.sender(SlackSink(bot))
        names = ["Jayden Price", "Maisie O'Connell", "Kacper Zielinski", "Ruby Fletcher"]
        created: dict[int, float] = {}
        t_all = time.perf_counter()
        for i in range(args.flags):
            change = rt.pipeline.process(post(f"b{i}", f"Well done {names[i % 4]} on day {i}!",
                                              thread=f"bench-{i}"))
            assert change is not None
            created[change.flag.id] = time.perf_counter()
            sender.drain()
        total = time.perf_counter() - t_all
        rt.close()
    missing = set(created) - set(arrived)
    latencies = sorted((arrived[f] - created[f]) * 1000 for f in created if f in arrived)
    p50 = statistics.median(latencies)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    bench.table(
        "Flag committed -> chat.postMessage at the fake Slack, ms",
        ["flags", "p50 ms", "p95 ms", "p99 ms", "max ms", "lost", "total s"],
        [[args.flags, p50, p95, p99, max(latencies), len(missing), total]],
        note="Time from a flag's commit (pipeline.process returned) to its chat.postMessage "
             "arriving at the local fake Slack Web API, through the outbox sender, the Slack sink "
             "(chat.postMessage; a history read only when re-attempting a delivery) and "
             "slack_sdk's WebClient; SQLite in a temporary folder.")
    bench.target(f"flag created -> chat.postMessage at the fake Slack, {args.flags:,} flags: "
                 "p95 < 250 ms, none lost (issue 3)",
                 f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, {len(missing)} lost",
                 p95 < 250 and not missing, value=p95, limit=250, unit="ms")
