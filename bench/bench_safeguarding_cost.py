"""What the safeguarding pack's additions cost per item, measured side by side in one process.

    .venv/bin/python bench/bench_safeguarding_cost.py [--base-commit 6338fcf] [--rounds 5]

Runs the current detector code with two packs on the same texts (the dev set and the held-out
tables, about 800 texts): the pack as it was at ``--base-commit`` (read with ``git show``) and the
current one. For each: lexicons only (``semantic = false``: idioms, cues, contexts, negation), and
lexicons + semantic matching batched (``detect_many``, one embedding batch; the path ``classify``
and evaluation use). Rounds alternate between the packs so load on a shared machine hits both
alike; the best round of each is reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rules.packs import load_pack  # noqa: E402
from rules.safeguarding import SafeguardingDetector  # noqa: E402


def _texts(det: SafeguardingDetector) -> list[str]:
    rows = (REPO / "tests" / "data" / "safeguarding_dev.jsonl").read_text().splitlines()
    catch, clear = det.examples()
    return [json.loads(r)["text"] for r in rows if r.strip()] + [t for *_, t in catch] + [
        t for _, t in clear]


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-commit", default="6338fcf")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    old_text = subprocess.run(
        ["git", "show", f"{args.base_commit}:rules/packs/safeguarding.toml"], cwd=REPO,
        check=True, capture_output=True, text=True).stdout
    packs = {"base": tomllib.loads(old_text), "current": load_pack("safeguarding")}
    lexical = {k: SafeguardingDetector.from_pack({**p, "settings": {**p["settings"],
                                                                    "semantic": False}})
               for k, p in packs.items()}
    full = {k: SafeguardingDetector.from_pack(p) for k, p in packs.items()}
    texts = _texts(full["current"])
    full["base"].detect_many(texts[:8])  # warm up torch
    best: dict[str, dict[str, float]] = {k: {"lex": 1e9, "full": 1e9} for k in packs}
    for _ in range(args.rounds):
        for k in packs:
            best[k]["lex"] = min(best[k]["lex"], _timed(
                lambda k=k: [lexical[k].detect_text(t) for t in texts]))
            best[k]["full"] = min(best[k]["full"], _timed(
                lambda k=k: full[k].detect_many(texts)))
    n = len(texts)
    print(f"{n} texts, best of {args.rounds} rounds, packs: base = {args.base_commit}, current")
    print(f"{'pack':8} {'cues':>5} {'exemplars':>9} {'lexicons ms/text':>17} "
          f"{'lexicons+semantic ms/text (batched)':>36}")
    for k, det in full.items():
        print(f"{k:8} {len(det.cues):5d} {len(det._exemplars) + len(det._benign):9d} "
              f"{1000 * best[k]['lex'] / n:17.3f} {1000 * best[k]['full'] / n:36.3f}")


if __name__ == "__main__":
    main()
