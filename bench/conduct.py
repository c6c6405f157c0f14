"""Staff-conduct rules (out_of_hours, tone): items per CPU-second on one core.

Builds an invented register (the example organisation's staff plus N learners), a stream of
items (staff -> learner chat messages at all hours, official posts, public comments, learners'
messages) and runs each rule alone and both together on one core, printing items per
CPU-second (process time, so other jobs on a shared machine do not count) and the peak RSS.
Items are resolved against the registers before timing (the pipeline does that once for all
rules); a separate line times resolution itself.

    .venv/bin/python bench/run.py conduct [--items 100000] [--learners 2000]
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import resource
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import Bench
from governance_bot.config import Config
from governance_bot.findings import Finding
from governance_bot.items import Item
from governance_bot.registers import Learner, RegisterIndex, Registers, read_toml
from rules.base import DetectionContext
from rules.engine import build_detector

REPO = Path(__file__).resolve().parent.parent
STAFF_TEXT = [
    "Reminder: your coursework is due on Friday.", "See you tomorrow xx", "Room change: D12",
    "Thanks hun, got it", "Please bring your log book to Thursday's session.",
    "Question 2: work out 3 x 4, then 12 x 7", "Great work today x", "Year 10x are in the hall",
    "Your assessment is booked for next Tuesday at 10:00 in the workshop. Kind regards, Mr M",
]
ORG_TEXT = [
    "Sports day is on Friday 3 July. Please send your child in PE kit with a water bottle.",
    "Follow us on X (formerly Twitter) for the latest news.", "Happy half term everyone! xx",
    "Term dates for 2026-27 are now on our website under Parents > Term dates.",
]
PUBLIC_TEXT = ["Thanks for letting us know!", "What time does it finish?", "Lovely photos 😊"]


class IndexedHistory:
    """A History with per-subject sorted times, as a database index would give."""

    def __init__(self) -> None:
        self.times: dict[tuple[str, str], list[tuple[datetime, str]]] = defaultdict(list)

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        return ()

    def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                       exclude_item_key: str | None = None) -> Sequence[datetime]:
        rows = self.times.get((rule_id, subject), [])
        lo = bisect.bisect_left(rows, (since, ""))
        hi = bisect.bisect_right(rows, (until, "\uffff"))
        return [t for t, key in rows[lo:hi] if key != exclude_item_key]

    def record(self, item: Item, findings: list[Finding]) -> None:
        for f in findings:
            if f.subject:
                bisect.insort(self.times[(f.rule_id, f.subject)], (item.created_at, item.key))


def registers(n_learners: int) -> Registers:
    base = read_toml(REPO / "examples" / "registers.toml")
    learners = [
        Learner(learner_id=f"B{i:05d}", first_name=f"First{i}", last_name=f"Last{i}",
                email=f"b{i}@students.example.org", handles=[f"@bench_{i}"])
        for i in range(n_learners)
    ]
    return Registers(staff=base.staff, learners=learners, accounts=base.accounts)


def items(n: int, n_learners: int, rng: random.Random, index: RegisterIndex) -> list[Item]:
    """Invented items, already resolved against the registers (as the pipeline passes them)."""
    start = datetime(2026, 1, 5, tzinfo=UTC)
    tutors = ["teams:aad-0006", "teams:aad-0007", "teams:aad-0009"]
    out = []
    for i in range(n):
        when = (start + timedelta(minutes=rng.randrange(200 * 24 * 60))).isoformat()
        r = rng.random()
        learner = {"email": f"b{rng.randrange(n_learners)}@students.example.org"}
        if r < 0.5:
            data = {"account": "brookfield-teams", "platform": "teams", "kind": "chat_message",
                    "author": {"id": rng.choice(tutors)}, "recipients": [learner],
                    "text": rng.choice(STAFF_TEXT), "visibility": "direct"}
        elif r < 0.6:
            data = {"account": "brookfield-teams", "platform": "teams", "kind": "chat_message",
                    "author": learner, "recipients": [{"id": rng.choice(tutors)}],
                    "text": "thank you miss xx", "visibility": "direct"}
        elif r < 0.8:
            data = {"account": "brookfield-facebook", "platform": "facebook", "kind": "post",
                    "author": {"id": "104000000001"}, "text": rng.choice(ORG_TEXT)}
        else:
            data = {"account": "brookfield-facebook", "platform": "facebook", "kind": "comment",
                    "author": {"handle": f"@public{rng.randrange(500)}"},
                    "text": rng.choice(PUBLIC_TEXT), "parent_id": "p1"}
        out.append(index.resolve(Item.model_validate({"id": f"i{i}", "created_at": when,
                                                        **data})))
    out.sort(key=lambda it: it.created_at)
    return out


def run_rules(rule_ids: list[str], stream: list[Item], index: RegisterIndex) -> tuple[float, int]:
    config = Config()
    detectors = [build_detector(r, config) for r in rule_ids]
    history = IndexedHistory()
    found = 0
    t0 = time.process_time()
    for item in stream:
        ctx = DetectionContext(registers=index, history=history)
        findings = [f for d in detectors for f in d.detect(item, ctx)]
        if findings:
            history.record(item, findings)
            found += len(findings)
    return time.process_time() - t0, found


QUICK = ["--items", "10000", "--learners", "500"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--learners", type=int, default=2_000)
    parser.add_argument("--cpu", type=int, default=0, help="pin to this CPU (-1: do not pin)")


def run(bench: Bench, args: argparse.Namespace) -> None:
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    bench.param(items=args.items, learners=args.learners, cpu=args.cpu, seed=7)
    rng = random.Random(7)
    index = RegisterIndex(registers(args.learners))
    stream = items(args.items, args.learners, rng, index)
    t0 = time.process_time()
    for item in stream[:10_000]:
        index.resolve(item)
    resolve_s = (time.process_time() - t0) * len(stream) / min(len(stream), 10_000)
    rows: list[list[Any]] = [["resolve (registers)", args.items / resolve_s, None, None]]
    for rules in (["out_of_hours"], ["tone"], ["out_of_hours", "tone"]):
        seconds, found = run_rules(rules, stream, index)
        rows.append([" + ".join(rules), args.items / seconds, found, seconds])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bench.table("Items per CPU-second on one core, side by side in one process",
                ["what", "items/CPU-s", "findings", "CPU s"], rows,
                note=f"Peak RSS of the whole run ({args.items:,} resolved items held in "
                     f"memory): {peak_mb:.0f} MiB.")
    both = rows[-1][1]
    bench.target("out_of_hours + tone, items per CPU-second on one core (a share of issue 2's "
                 ">= 5,000 items/s for learner_pii + out_of_hours + tone)",
                 f"{both:,.0f} items/CPU-s", None, value=float(both),
                 unit="items/CPU-s")


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py conduct")
