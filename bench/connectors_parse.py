"""Connector parse throughput: each connector's parser, this code side by side with a baseline.

Every connector's own parser (status, post, comment, message, meeting, page) runs over recorded
platform responses (../shared/fixtures; documented shapes for TikTok, email, Zoom, Slack and
the website) in a child process whose ``PYTHONPATH`` puts first either this tree or a baseline
commit's (``git archive``); the two take turns, round by round, so load on the shared machine
falls on both alike. Reported per connector: records parsed per CPU second (median of the
rounds) for each, and the ratio. Target (issue 18): every connector within 20 % of the baseline
(ratio at least 0.80) while it now reads everything a reader sees (more text per record).

    .venv/bin/python bench/run.py connectors_parse [--rounds 5] [--baseline 87312fc]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import REPO, Bench, baseline_tree, compile_bytecode, shared_dir

QUICK = ["--rounds", "1", "--seconds", "0.2"]
TARGET_RATIO = 0.80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.6,
                        help="CPU seconds per connector per round")
    parser.add_argument("--baseline", default="87312fc")
    parser.add_argument("--only", default="", help="comma-separated connectors (default: all)")


def _rates(tree: Path, seconds: float, only: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "BENCH_REPO": str(REPO),
           "BENCH_SECONDS": str(seconds), "GOVERNANCE_BOT_SHARED": str(shared_dir())}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "parse_workload.py"), only],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"parse workload failed on {tree}:\n{done.stderr[-3000:]}")
    rates: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return rates


def run(bench: Bench, args: argparse.Namespace) -> None:
    bench.param(rounds=args.rounds, seconds=args.seconds, baseline=args.baseline)
    with tempfile.TemporaryDirectory(prefix="gb-bench-parse-") as tmp:
        base = baseline_tree(args.baseline, Path(tmp))
        compile_bytecode(REPO, base)
        seen: dict[str, dict[str, list[float]]] = {"this": {}, "baseline": {}}
        for _ in range(args.rounds):
            for label, tree in (("baseline", base), ("this", REPO)):
                for name, value in _rates(tree, args.seconds, args.only).items():
                    seen[label].setdefault(name, []).append(value)
    rows = []
    for name in sorted(seen["this"]):
        now = statistics.median(seen["this"][name])
        before = statistics.median(seen["baseline"].get(name, [0.0]))
        ratio = now / before if before else float("nan")
        rows.append([name, f"{before:,.0f}", f"{now:,.0f}", f"{ratio:.2f}"])
        bench.target(f"{name}: parse throughput within 20 % of {args.baseline}",
                     f"{ratio:.2f} x", ratio >= TARGET_RATIO, value=ratio)
    bench.table("Records parsed per CPU second (median of the rounds)",
                ["connector", f"baseline {args.baseline}", "this code", "ratio"], rows)
