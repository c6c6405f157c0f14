"""What the safeguarding detector's literal prefilter saves, side by side in one process.

    flock /tmp/bench.lock .venv/bin/python bench/bench_safeguarding_prefilter.py \
        [--base-commit 87355a1] [--rounds 5]

Three detectors built from the same pack, lexicons only (``semantic = false``, no embeddings):

* ``base``: ``rules/safeguarding.py`` as it was at ``--base-commit`` (read with ``git show``),
  before the prefilter: every idiom, cue and context pattern on every text;
* ``full scan``: the current code with ``_prefilter = False`` (what the tests compare against);
* ``prefilter``: the current code as shipped.

Two text sets: the load benchmark's comments (``bench/bench_load.py`` ``text_for``, the lengths
it draws: 80-600 characters) and the dev set (``tests/data/safeguarding_dev.jsonl``, 420 short
sentences, many with cues). Two measures: the lexical pass (``mask_idioms`` + ``lexical_hits``)
and the whole ``detect_batch`` on items (registers of the example organisation). Rounds alternate
between the detectors so load on the shared machine hits all alike; the best round is reported.
The results are checked to be identical before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import types
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_load import EXAMPLE_REGISTERS, item_dict  # noqa: E402

from governance_bot.items import Item  # noqa: E402
from governance_bot.registers import RegisterIndex, read_toml  # noqa: E402
from rules.base import DetectionContext  # noqa: E402
from rules.packs import load_pack  # noqa: E402
from rules.safeguarding import SafeguardingDetector  # noqa: E402


def _base_module(commit: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{commit}:rules/safeguarding.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    module = types.ModuleType("_safeguarding_base")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{commit}:rules/safeguarding.py", "exec"), module.__dict__)
    return module


def _best(fn: Callable[[], Any], best: float) -> float:
    start = time.perf_counter()
    fn()
    return min(best, time.perf_counter() - start)


def _lexical(det: Any, texts: list[str]) -> list[list[tuple[str, tuple[int, int]]]]:
    return [[(h.cue.label, h.span) for h in det.lexical_hits(det.mask_idioms(t))] for t in texts]


def _findings(det: Any, items: list[Item], ctx: DetectionContext) -> list[list[Any]]:
    return [[(f.category, f.severity, f.evidence) for f in per]
            for per in det.detect_batch(items, ctx)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-commit", default="87355a1")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load-texts", type=int, default=600)
    args = parser.parse_args()

    pack = load_pack("safeguarding")
    pack = {**pack, "settings": {**pack["settings"], "semantic": False}}
    base_cls = _base_module(args.base_commit).SafeguardingDetector
    full = SafeguardingDetector.from_pack(pack)
    full._prefilter = False
    detectors: dict[str, Any] = {"base": base_cls.from_pack(pack), "full scan": full,
                                 "prefilter": SafeguardingDetector.from_pack(pack)}

    index = RegisterIndex(read_toml(EXAMPLE_REGISTERS))
    ctx = DetectionContext(registers=index, history=None)  # type: ignore[arg-type]
    names = [("Ava", "Okafor"), ("Leo", "Brennan"), ("Maya", "Whitlock")]
    dev = [json.loads(r)["text"] for r in
           (REPO / "tests" / "data" / "safeguarding_dev.jsonl").read_text().splitlines()
           if r.strip()]
    load_rows = [item_dict(i, names, "bench") for i in range(args.load_texts)]
    dev_rows = [{**load_rows[0], "id": f"dev{i}", "text": t} for i, t in enumerate(dev)]
    sets = {
        "load comments": ([r["text"] for r in load_rows],
                          [index.resolve(Item.model_validate(r)) for r in load_rows]),
        "dev set": (dev, [index.resolve(Item.model_validate(r)) for r in dev_rows]),
    }

    for name, (texts, items) in sets.items():  # identical results before any timing
        want = _lexical(detectors["base"], texts)
        want_findings = _findings(detectors["base"], items, ctx)
        for label, det in detectors.items():
            if _lexical(det, texts) != want or _findings(det, items, ctx) != want_findings:
                raise SystemExit(f"{label} differs from base on {name}")

    best = {(s, d, m): 1e9 for s in sets for d in detectors for m in ("lexical", "detect")}
    for _ in range(args.rounds):
        for s, (texts, items) in sets.items():
            for d, det in detectors.items():
                best[s, d, "lexical"] = _best(lambda det=det, texts=texts: _lexical(det, texts),
                                              best[s, d, "lexical"])
                best[s, d, "detect"] = _best(
                    lambda det=det, items=items: det.detect_batch(items, ctx),
                    best[s, d, "detect"])

    load = os.getloadavg()
    print(f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
          f"{os.cpu_count()} cores, load average {load[0]:.2f}, Python "
          f"{platform.python_version()}, best of {args.rounds} rounds, base = "
          f"{args.base_commit}; results identical in all three")
    print("| texts | n | mean chars | detector | lexical pass ms/text | detect_batch ms/item "
          "| lexical speed-up vs base |")
    print("|---|---|---|---|---|---|---|")
    for s, (texts, _) in sets.items():
        n = len(texts)
        chars = sum(map(len, texts)) / n
        for d in detectors:
            lex = 1000 * best[s, d, "lexical"] / n
            det_ms = 1000 * best[s, d, "detect"] / n
            ratio = best[s, "base", "lexical"] / best[s, d, "lexical"]
            print(f"| {s} | {n} | {chars:.0f} | {d} | {lex:.3f} | {det_ms:.3f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
