"""Safeguarding: recall and false alarms per family on the development sets, the pack's tables and
the unseen set, with `governance-bot eval` (issue 15).

Runs the shipped safeguarding rule (lexicons, meaning matching, the learned classifier, the
normaliser) through ``governance_bot.evaluation`` on: the development halves in
``../shared/datasets/safeguarding-dev/`` (CSSRS, ConvAbuse, Stormfront), the pack's own
must-catch / must-not-catch tables, ``bench/data/safeguarding_unseen.jsonl`` (written before any
of this and never used to build anything) and ``tests/data/safeguarding_dev.jsonl``. The
classifier was trained on the development halves, so their figures here are in-sample and
flatter it: the honest figures for them are the out-of-fold ones of
``tools/train_safeguarding_classifier.py`` (recorded in bench/RESULTS-safeguarding.md). The
tables and the unseen set were never used for training or thresholds.

    .venv/bin/python bench/run.py safeguarding_quality [--sets cssrs,convabuse,...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import REPO, Bench, Skip, shared_dir

QUICK = ["--sets", "tables,unseen"]
SETS = ("cssrs", "convabuse", "stormfront", "tables", "unseen", "school-dev")
# the targets of issue 15 on the development halves: (set, label, recall at least, false alarms
# at most)
TARGETS = {
    "cssrs": ("suicide_selfharm", 0.9, None),
    "convabuse": ("cyberbullying", 0.85, 0.05),
    "stormfront": ("threats_extremism", 0.6, 0.05),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sets", default=",".join(SETS))


def _tables_file() -> Path:
    from rules.packs import SafeguardingPack, load_pack

    model = SafeguardingPack.load(load_pack("safeguarding"))
    out = Path(tempfile.mkdtemp(prefix="sg-quality-")) / "tables.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for fid, fam in model.families.items():
            for sub in fam.sub.values():
                for t in sub.must_catch:
                    fh.write(json.dumps({"text": t, "labels": [fid]}) + "\n")
            for t in fam.must_not_catch:
                fh.write(json.dumps({"text": t, "labels": []}) + "\n")
    return out


def _path(name: str) -> Path:
    if name in ("cssrs", "convabuse", "stormfront"):
        path = shared_dir() / "datasets" / "safeguarding-dev" / f"{name}.jsonl"
        if not path.exists():
            raise Skip(f"{path} is missing (set GOVERNANCE_BOT_SHARED)")
        return path
    if name == "tables":
        return _tables_file()
    if name == "unseen":
        return REPO / "bench" / "data" / "safeguarding_unseen.jsonl"
    return REPO / "tests" / "data" / "safeguarding_dev.jsonl"


def run(bench: Bench, args: argparse.Namespace) -> None:
    from governance_bot.config import load_config
    from governance_bot.evaluation import run_eval

    config = load_config(REPO / "examples" / "config.toml", env={})
    names = [s for s in args.sets.split(",") if s]
    bench.param(sets=names)
    rows: list[list[Any]] = []
    for name in names:
        # abuse and hate are found by the safeguarding rule or as a toxic comment (the issue's
        # measure): both rule sets are run on those two sets
        rule_sets = ([["safeguarding"], ["safeguarding", "toxicity"]]
                     if name in ("convabuse", "stormfront") else [["safeguarding"]])
        for rules in rule_sets:
            report = json.loads(run_eval(config, _path(name), rules=rules, as_json=True))
            which = "+".join(rules)
            for c in report["categories"]:
                if c["support"] or c["category"] == "(any finding)":
                    rows.append([name, which, c["category"], c["support"], c["tp"], c["fp"],
                                 round(c["precision"], 3), round(c["recall"], 3),
                                 round(c["false_alarm_rate"], 3)])
            if name in TARGETS:
                label, recall, far = TARGETS[name]
                got = next(c for c in report["categories"] if c["category"] == label)
                limit = f"recall >= {recall}" + (f" at <= {far:.0%} false alarms" if far else "")
                # reported, not judged: the classifier was trained on these rows (its n-gram
                # model all but remembers them), so they cannot say whether the aim is met; the
                # out-of-fold figures of tools/train_safeguarding_classifier.py --detector-oof
                # in bench/RESULTS-safeguarding.md do
                bench.target(f"{name} ({label}, {which}), in-sample, so reported only (judged "
                             f"out of fold in RESULTS-safeguarding.md): {limit}",
                             f"recall {got['recall']:.3f}, false alarms "
                             f"{got['false_alarm_rate']:.3f}", None, value=got["recall"],
                             limit=recall)
    bench.table("governance-bot eval --rule safeguarding [--rule toxicity] (per label; "
                "'(any finding)': records labelled with nothing that got any finding)",
                ["set", "rules", "label", "support", "TP", "FP", "precision", "recall",
                 "false alarms"], rows)
    bench.note("toxicity: the model the example configuration loads; without Detoxify's weights "
               "on the machine that is the shipped profanity fallback (alt-profanity-check), "
               "named in each run's log.")
    bench.note("The development halves (cssrs, convabuse, stormfront, school-dev) were used to "
               "train the classifier: these figures are in-sample. The out-of-fold figures "
               "(tools/train_safeguarding_classifier.py) are the ones to quote; see "
               "bench/RESULTS-safeguarding.md.")


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py safeguarding_quality")
