"""Time from flag creation to chat.postMessage arriving at the (fake) Slack Web API.

Each of N items is processed by the real pipeline (archive, detection with the test-only
learner-name detector, flag + outbox row committed); the clock starts when the flag is committed
and stops when the fake Slack server receives the chat.postMessage for it, through the real
outbox sender, Slack sink and slack_sdk client, as `governance-bot run` does after a poll.

    .venv/bin/python bench/bench_slack.py [--flags 1000] [--out bench/RESULTS-slack.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from governance_bot.runtime import Runtime  # noqa: E402
from governance_bot.slack.bot import SlackBot, make_client  # noqa: E402
from governance_bot.slack.sink import SlackSink  # noqa: E402
from rules.engine import DetectionEngine  # noqa: E402
from tests.slack.conftest import make_config  # noqa: E402
from tests.slack.fake_slack import Call, FakeSlack  # noqa: E402
from tests.slack.helpers import LearnerNameTestDetector, post  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flags", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-slack.md")
    args = parser.parse_args()
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
    line = (f"| {datetime.now(UTC):%Y-%m-%d %H:%M} UTC | {platform.machine()}, "
            f"{os.cpu_count()} cores (shared) | {args.flags} | {p50:.1f} | {p95:.1f} | "
            f"{p99:.1f} | {max(latencies):.1f} | {len(missing)} | {total:.1f} |")
    print(line)
    header = ("# Slack delivery latency\n\n"
              "Time from a flag's commit (pipeline.process returned) to its chat.postMessage "
              "arriving at the local fake Slack Web API, through the outbox sender, the Slack sink "
              "(chat.postMessage; a history read only when re-attempting a delivery) and "
              "slack_sdk's WebClient; "
              "SQLite in a temp folder. Target: p95 < 250 ms.\n"
              "Run: `.venv/bin/python bench/bench_slack.py --flags 1000`.\n\n"
              "| date | machine | flags | p50 ms | p95 ms | p99 ms | max ms | lost | total s |\n"
              "|---|---|---|---|---|---|---|---|---|\n")
    text = args.out.read_text() if args.out.exists() else header
    args.out.write_text(text + line + "\n")
    if missing:
        raise SystemExit(f"{len(missing)} flag(s) never arrived")


if __name__ == "__main__":
    main()
