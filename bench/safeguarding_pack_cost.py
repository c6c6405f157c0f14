"""Safeguarding: what the rule pack's additions cost per text, side by side with an older pack.

    .venv/bin/python bench/run.py safeguarding_pack_cost [--base-commit 6338fcf] [--rounds 5]

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
import time
import tomllib
from typing import Any

from bench.harness import REPO, Bench
from rules.packs import load_pack
from rules.safeguarding import SafeguardingDetector


def _texts(det: SafeguardingDetector) -> list[str]:
    rows = (REPO / "tests" / "data" / "safeguarding_dev.jsonl").read_text().splitlines()
    catch, clear = det.examples()
    return [json.loads(r)["text"] for r in rows if r.strip()] + [t for *_, t in catch] + [
        t for _, t in clear]


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


QUICK = ["--rounds", "2"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-commit", default="6338fcf")
    parser.add_argument("--rounds", type=int, default=5)


def run(bench: Bench, args: argparse.Namespace) -> None:
    old_text = subprocess.run(
        ["git", "show", f"{args.base_commit}:rules/packs/safeguarding.toml"], cwd=REPO,
        check=True, capture_output=True, text=True).stdout
    packs = {"base": tomllib.loads(old_text), "current": load_pack("safeguarding")}
    lexical = {k: SafeguardingDetector.from_pack({**p, "settings": {**p["settings"],
                                                                    "semantic": False}})
               for k, p in packs.items()}
    full = {k: SafeguardingDetector.from_pack(p) for k, p in packs.items()}
    texts = _texts(full["current"])
    full["base"].detect_many(texts[:8])  # warm up the model
    best: dict[str, dict[str, float]] = {k: {"lex": 1e9, "full": 1e9} for k in packs}
    for _ in range(args.rounds):
        for k in packs:
            best[k]["lex"] = min(best[k]["lex"], _timed(
                lambda k=k: [lexical[k].detect_text(t) for t in texts]))
            best[k]["full"] = min(best[k]["full"], _timed(
                lambda k=k: full[k].detect_many(texts)))
    n = len(texts)
    bench.param(texts=n, rounds=args.rounds, base_commit=args.base_commit)
    bench.table(f"{n} texts, best of {args.rounds} rounds; packs: base = {args.base_commit}, "
                "current",
                ["pack", "cues", "exemplars", "lexicons ms/text",
                 "lexicons + semantic ms/text (batched)"],
                [[k, len(det.cues), len(det._exemplars) + len(det._benign),
                  1000 * best[k]["lex"] / n, 1000 * best[k]["full"] / n]
                 for k, det in full.items()])


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py safeguarding_pack_cost")
