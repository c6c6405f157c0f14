"""Webhook deliveries: what storing each delivery before checking it costs.

Since issue 17 a signed delivery is stored, with its replay claim, in one transaction (its items
encrypted like the archive) and marked processed once its items are checked, so that a crash
loses nothing; before, only the claim was written. This measures the service's own CPU
milliseconds per delivery, and the wall time until its answer, for signed Meta comment deliveries
POSTed one after another to the service's HTTP app (Starlette's test client: the same handler,
connector, workers, pipeline and database as ``governance-bot run``, without the network), the
``learner_pii`` rule on (every third comment names a learner, so a third of the deliveries raise
a flag delivered to a JSON sink). The current code and a baseline commit's take turns in each
round, each in a process of its own on a SQLite database (with encryption keys, as in
production), so the machine's load falls on both alike.

    .venv/bin/python bench/run.py webhook_delivery [--deliveries 200] [--rounds 3]
        [--baseline 87312fc]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import REPO, Bench

QUICK = ["--deliveries", "40", "--rounds", "1"]

WORKER = r"""
import json, sys, time, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
from cryptography.fernet import Fernet
from starlette.testclient import TestClient
from connectors.meta import sign
from governance_bot.config import load_config
from governance_bot.runtime import Runtime
from governance_bot.service import Service

folder, n = Path(sys.argv[1]), int(sys.argv[2])
page, secret = "104000000001", "bench-app-secret"
(folder / "config.toml").write_text(f'''
[database]
url = "sqlite:///{folder / 'gb.db'}"
[registers]
file = "{sys.argv[3]}"
[detection]
disabled_rules = {json.dumps([r for r in ("out_of_hours", "tone", "personal_account_contact",
    "accountability", "conversation_drift", "video_session", "safeguarding", "images",
    "toxicity")])}
[delivery]
sink = "json"
json_path = "{folder / 'flags.jsonl'}"
[security]
encryption_keys = "${{BENCH_KEYS}}"
[[connectors]]
name = "fb"
type = "facebook"
account = "brookfield-facebook"
page_id = "{page}"
access_token = "${{BENCH_TOKEN}}"
app_secret = "${{BENCH_SECRET}}"
verify_token = "${{BENCH_VERIFY}}"
base_url = "http://127.0.0.1:9"
poll_interval_seconds = 86400
''')
env = {"BENCH_KEYS": Fernet.generate_key().decode(), "BENCH_TOKEN": "t",
       "BENCH_SECRET": secret, "BENCH_VERIFY": "v"}
rt = Runtime.from_config(load_config(folder / "config.toml", env=env))
svc = Service(rt)
if hasattr(svc, "answer_seconds"):
    svc.answer_seconds = 60  # answered once checked, as the baseline always did
client = TestClient(svc.http_app())

def body(i):
    text = (f"Well done to Jayden Price for the match report {i}!" if i % 3 == 0
            else f"Lovely concert, well done everyone {i}")
    return json.dumps({"object": "page", "entry": [{"id": page, "time": 1789990000 + i,
        "changes": [{"field": "feed", "value": {
            "from": {"id": "6100000000123", "name": "A. Parent"}, "item": "comment",
            "verb": "add", "created_time": 1789990000 + i, "post_id": f"{page}_900001",
            "parent_id": f"{page}_900001", "comment_id": f"900001_{i}",
            "message": text}}]}]}).encode()

for i in range(5):  # warm-up: imports, first statements
    client.post("/webhooks/fb", content=body(10**6 + i),
                headers={"X-Hub-Signature-256": sign(body(10**6 + i), secret)})
bodies = [body(i) for i in range(n)]
walls = []
cpu0 = time.process_time()
for b in bodies:
    w = time.perf_counter()
    r = client.post("/webhooks/fb", content=b, headers={"X-Hub-Signature-256": sign(b, secret)})
    walls.append(time.perf_counter() - w)
    assert r.status_code == 200, r.text
cpu = time.process_time() - cpu0
print(json.dumps({"cpu_ms": 1000 * cpu / n, "walls_ms": [1000 * w for w in walls]}))
if hasattr(svc, "close"):
    svc.close()
rt.close()
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="87312fc",
                        help="the commit to compare with (default: main before issue 17)")


def _checkout(commit: str, into: Path) -> Path:
    tree = into / "baseline"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def _once(code: Path, n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
        env["PYTHONPATH"] = str(code)
        out = subprocess.run([sys.executable, "-c", WORKER, tmp, str(n),
                              str(code / "examples" / "registers.toml")], cwd=code, env=env,
                             capture_output=True, text=True, check=True)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        walls = sorted(data["walls_ms"])
        return {"cpu_ms": data["cpu_ms"], "p50": statistics.median(walls),
                "p95": walls[int(0.95 * (len(walls) - 1))]}


def run(bench: Bench, args: argparse.Namespace) -> None:
    bench.param(deliveries=args.deliveries, rounds=args.rounds, baseline=args.baseline)
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "current": []}
    with tempfile.TemporaryDirectory() as tmp:
        baseline = _checkout(args.baseline, Path(tmp))
        for _ in range(args.rounds):  # taking turns, so load falls on both alike
            results["baseline"].append(_once(baseline, args.deliveries))
            results["current"].append(_once(REPO, args.deliveries))
            time.sleep(1)
    rows = []
    best = {}
    for name, runs in results.items():
        best[name] = min(r["cpu_ms"] for r in runs)
        rows.append([name, f"{best[name]:.1f}",
                     f"{statistics.median(r['cpu_ms'] for r in runs):.1f}",
                     f"{min(r['p50'] for r in runs):.1f}", f"{min(r['p95'] for r in runs):.1f}"])
    bench.table(f"{args.deliveries} signed Meta deliveries of one comment each, SQLite, "
                "encryption on, learner_pii",
                ["code", "CPU ms/delivery (best)", "CPU ms/delivery (median)",
                 "answer p50 ms (best)", "answer p95 ms (best)"], rows)
    ratio = best["current"] / best["baseline"]
    bench.target("CPU per delivery, current / baseline", f"{ratio:.2f}x", None, value=ratio,
                 unit="x")
    bench.record(results=results)
