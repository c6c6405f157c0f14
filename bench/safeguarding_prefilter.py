"""Safeguarding: what the detector's literal prefilter saves, side by side in one process.

    .venv/bin/python bench/run.py safeguarding_prefilter \
        [--rounds 5] [--load-texts 600] [--semantic]

Two detectors built from the same pack, lexicons only (``semantic = false``, no embeddings,
unless ``--semantic``):

* ``base``: the current code with ``_prefilter = False``, every idiom, cue and context pattern on
  every text (what the tests compare against; before issue 15 this was the code of an earlier
  commit, whose pack format the typed pack model no longer reads);
* ``prefilter``: the current code as shipped.

Two text sets: the load benchmark's comments (``bench/pipeline_load.py`` ``text_for``, the lengths
it draws: 80-600 characters) and the dev set (``tests/data/safeguarding_dev.jsonl``, 420 short
sentences, many with cues). Three measures: the lexical pass (``mask_idioms`` + ``lexical_hits``);
the word lists the semantic path checks per text besides its embedding (``contexts_in`` and each
sub-category's ``semantic_requires``); the whole ``detect_batch`` on items, without embeddings
(registers of the example organisation). ``--semantic``: only ``detect_batch``, with the
embedding model (the pipeline's models-on path). Rounds alternate
between the detectors so load on the shared machine hits all alike; the best round is reported.
The results are checked to be identical before anything is timed.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from bench.harness import REPO, Bench
from bench.pipeline_load import EXAMPLE_REGISTERS, item_dict
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, read_toml
from rules.base import DetectionContext
from rules.packs import load_pack
from rules.safeguarding import SafeguardingDetector


def _best(fn: Callable[[], Any], best: float) -> float:
    start = time.perf_counter()
    fn()
    return min(best, time.perf_counter() - start)


def _lexical(det: Any, texts: list[str]) -> list[list[tuple[str, tuple[int, int]]]]:
    return [[(h.cue.label, h.span) for h in det.lexical_hits(det.mask_idioms(t))] for t in texts]


def _word_lists(det: Any, masked: list[str]) -> list[tuple[set[str], list[bool]]]:
    """What the semantic path asks of each text besides the embedding: the contexts it mentions
    and whether each ``semantic_requires`` word list is there."""
    if not hasattr(det, "_requires_met"):  # the base code: one search per combined pattern
        return [(det.contexts_in(m), [bool(rx.search(m)) for rx, _ in det._requires])
                for m in masked]
    return [(det.contexts_in(m), det._requires_met(m)) for m in masked]


def _findings(det: Any, items: list[Item], ctx: DetectionContext) -> list[list[Any]]:
    return [[(f.category, f.severity, f.evidence) for f in per]
            for per in det.detect_batch(items, ctx)]


QUICK = ["--rounds", "2", "--load-texts", "200"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load-texts", type=int, default=600)
    parser.add_argument("--semantic", action="store_true",
                        help="only detect_batch, with the embedding model (models on)")


def run(bench: Bench, args: argparse.Namespace) -> None:
    bench.param(rounds=args.rounds, load_texts=args.load_texts, semantic=args.semantic)

    pack = load_pack("safeguarding")
    pack = {**pack, "settings": {**pack["settings"], "semantic": args.semantic}}
    full = SafeguardingDetector.from_pack(pack)
    full._prefilter = False
    detectors: dict[str, Any] = {"base": full,
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

    masked = {s: [detectors["base"].mask_idioms(t) for t in texts]
              for s, (texts, _) in sets.items()}
    for name, (texts, items) in sets.items():  # identical results before any timing
        want = (_lexical(detectors["base"], texts), _findings(detectors["base"], items, ctx),
                _word_lists(detectors["base"], masked[name]))
        for label, det in detectors.items():
            got = (_lexical(det, texts), _findings(det, items, ctx),
                   _word_lists(det, masked[name]))
            if got != want:
                raise SystemExit(f"{label} differs from base on {name}")

    measures = ("detect",) if args.semantic else ("lexical", "words", "detect")
    if args.semantic:
        assert all(det.semantic for det in detectors.values()), "the embedding model is missing"
    best = {(s, d, m): 1e9 for s in sets for d in detectors for m in measures}
    for _ in range(args.rounds):
        for s, (texts, items) in sets.items():
            for d, det in detectors.items():
                if not args.semantic:
                    best[s, d, "lexical"] = _best(
                        lambda det=det, texts=texts: _lexical(det, texts), best[s, d, "lexical"])
                    best[s, d, "words"] = _best(
                        lambda det=det, s=s: _word_lists(det, masked[s]), best[s, d, "words"])
                best[s, d, "detect"] = _best(
                    lambda det=det, items=items: det.detect_batch(items, ctx),
                    best[s, d, "detect"])

    if args.semantic:
        columns = ["texts", "n", "mean chars", "detector",
                   "detect_batch with embeddings, ms/item (x base)"]
    else:
        columns = ["texts", "n", "mean chars", "detector", "lexical pass ms/text (x base)",
                   "contexts + semantic_requires ms/text (x base)",
                   "detect_batch, no embeddings, ms/item (x base)"]
    rows = []
    for s, (texts, _) in sets.items():
        n = len(texts)
        chars = sum(map(len, texts)) / n
        for d in detectors:
            cells = [f"{1000 * best[s, d, m] / n:.3f} ({best[s, 'base', m] / best[s, d, m]:.1f}x)"
                     for m in measures]
            rows.append([s, n, chars, d, *cells])
    bench.table(f"Best of {args.rounds} rounds, base = the full scan; results identical "
                "in both", columns, rows)


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py safeguarding_prefilter")
