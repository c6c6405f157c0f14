"""Detection: CPU per item and memory, this code side by side with an earlier commit (issue 15).

Both versions run the whole detection engine of the example organisation (examples/config.toml:
every rule, the safeguarding rule with its embeddings and, in this version, its learned
classifier and the shared normaliser) over the same items: the example organisation's posts and
messages and the safeguarding development sentences as public comments. The earlier commit is
checked out with ``git worktree`` into a temporary folder; each version runs in a fresh child
process (its own folder first on the path), rounds alternate between them, and each child
reports the CPU time (``time.process_time``) of detection alone (models loaded and warmed up
first) and its peak RSS. Reported: the best and median CPU milliseconds per item of each, their
ratio, and the peak memory.

    .venv/bin/python bench/run.py detection_cost [--base-commit 87312fc] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QUICK = ["--rounds", "1", "--copies", "1"]
REPO_ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-commit", default="87312fc")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--copies", type=int, default=2, help="how many times the items repeat")


def _items_file(copies: int) -> Path:
    """The items both versions detect on, as one JSON Lines file."""
    rows: list[dict[str, Any]] = []
    for path in sorted((REPO_ROOT / "examples" / "items").glob("brookfield-*.jsonl")):
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    dev = REPO_ROOT / "tests" / "data" / "safeguarding_dev.jsonl"
    for i, line in enumerate(dev.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            rows.append({
                "id": f"dev-{i}", "platform": "facebook", "account": "brookfield-facebook",
                "kind": "comment", "author": {"handle": f"@visitor{i}"},
                "created_at": "2026-03-04T16:00:00+00:00", "text": json.loads(line)["text"],
            })
    out = Path(tempfile.mkdtemp(prefix="detection-cost-")) / "items.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for c in range(copies):
            for row in rows:
                fh.write(json.dumps({**row, "id": f"{row['id']}-{c}"}) + "\n")
    return out


def _child(root: Path, items_path: Path) -> None:
    """Run in the child: detect every item once to warm up, then once timed; print JSON."""
    sys.path.insert(0, str(root))
    os.chdir(root)
    from governance_bot.config import load_config
    from governance_bot.history import MemoryHistory
    from governance_bot.items import Item
    from governance_bot.registers import RegisterIndex, read_toml
    from rules.base import DetectionContext
    from rules.engine import DetectionEngine

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    config = load_config(root / "examples" / "config.toml", env={})
    engine = DetectionEngine.from_config(config)
    registers = RegisterIndex(read_toml(root / "examples" / "registers.toml"))
    items = [registers.resolve(Item.model_validate(json.loads(line)))
             for line in items_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    ctx = DetectionContext(registers=registers, history=MemoryHistory())
    engine.detect_many(items[:64], ctx)  # models loaded, caches warm
    cpu0, wall0 = time.process_time(), time.perf_counter()
    found = 0
    for start in range(0, len(items), 64):
        for findings in engine.detect_many(items[start:start + 64], ctx):
            found += bool(findings)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(json.dumps({
        "items": len(items), "cpu": cpu, "wall": wall, "flagged": found,
        "rules": engine.rule_ids, "rss_before_mib": rss_before,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def _run_child(root: Path, items_path: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(root), "GOVERNANCE_BOT_EMBEDDINGS_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "detection_cost.py"), "--child", str(root),
         str(items_path)], cwd=root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"child in {root} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(bench: Any, args: argparse.Namespace) -> None:
    from bench.harness import Skip

    items_path = _items_file(args.copies)
    base = Path(tempfile.mkdtemp(prefix="detection-base-")) / "tree"
    made = subprocess.run(["git", "worktree", "add", "--detach", str(base), args.base_commit],
                          cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if made.returncode:
        raise Skip(f"git worktree add {args.base_commit} failed: {made.stderr.strip()}")
    try:
        runs: dict[str, list[dict[str, Any]]] = {"base": [], "current": []}
        for _ in range(args.rounds):
            for name, root in (("base", base), ("current", REPO_ROOT)):
                runs[name].append(_run_child(root, items_path))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=REPO_ROOT,
                       capture_output=True, check=False)
    n = runs["current"][0]["items"]
    per_item = {k: [1000 * r["cpu"] / r["items"] for r in v] for k, v in runs.items()}
    best = {k: min(v) for k, v in per_item.items()}
    median = {k: statistics.median(v) for k, v in per_item.items()}
    ratio = median["current"] / median["base"]
    bench.param(items=n, rounds=args.rounds, base_commit=args.base_commit,
                rules_current=runs["current"][0]["rules"], rules_base=runs["base"][0]["rules"])
    bench.table(
        f"{n} items (example organisation + safeguarding dev sentences), detection engine of "
        f"examples/config.toml, one embedding thread, {args.rounds} alternating rounds",
        ["code", "CPU ms/item best", "CPU ms/item median", "x base (median)", "items flagged",
         "peak RSS MiB"],
        [[k, best[k], median[k], median[k] / median["base"], runs[k][0]["flagged"],
          max(r["peak_rss_mib"] for r in runs[k])] for k in runs])
    bench.target("CPU per item within 25 % of the starting commit's", f"{ratio:.2f}x",
                 ratio <= 1.25, value=ratio, limit=1.25, unit="x")
    extra = (max(r["peak_rss_mib"] for r in runs["current"])
             - max(r["peak_rss_mib"] for r in runs["base"]))
    bench.target("the learned classifier and normaliser add at most 100 MB", f"{extra:+.0f} MiB",
                 extra <= 100, value=extra, limit=100, unit="MiB")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit("run it with: .venv/bin/python bench/run.py detection_cost")
