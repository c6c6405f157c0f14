"""Bulk classification: `governance-bot classify` over 2,000 generated items with every model.

Every rule is on, with the models that run on this machine: the sentence embeddings on ONNX
Runtime, the shipped profanity model standing in for Detoxify (whose weights cannot be downloaded
here; `allow_fallback = true`) and the image checks (the posts carry no media files). The items
come from the detection benchmark's generator (bench/detection.py: official posts, public
comments, staff replies, staff <-> learner direct messages; about one in six names a learner or
gives a contact detail), with its invented register of staff, learners and accounts written as
CSV files the config names. Each run is a new process, as from the shell, so start-up is
included; the command is run side by side with a baseline commit (its source on PYTHONPATH,
bytecode compiled, the same virtual environment), taking turns. Then the batched output is
compared with the one-item-at-a-time path of the same code (``Classifier.classify``): it must be
identical.

    .venv/bin/python bench/run.py classify_bulk [--items 2000] [--repeats 3] [--baseline 87312fc]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import (
    REPO,
    Bench,
    Timing,
    baseline_tree,
    command_env,
    command_times,
    compile_bytecode,
    gb_command,
)

QUICK = ["--items", "300", "--repeats", "1", "--baseline", "none"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--learners", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="87312fc",
                        help="commit to compare with ('none': this code only)")


def _write_registers(folder: Path, learners: int, seed: int) -> Any:
    from bench.detection import build_registers

    regs = build_registers(random.Random(seed), learners)
    with (folder / "staff.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["staff_id", "name", "email", "role", "personal_handles", "platform_ids"])
        for s in regs.staff:
            w.writerow([s.staff_id, s.name, s.email or "", s.role.value,
                        ";".join(s.personal_handles), ";".join(s.platform_ids)])
    with (folder / "learners.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["learner_id", "first_name", "last_name", "preferred_name", "date_of_birth",
                    "email", "photo_consent", "comms_consent", "handles"])
        for lr in regs.learners:
            w.writerow([lr.learner_id, lr.first_name, lr.last_name, lr.preferred_name or "",
                        lr.date_of_birth.isoformat() if lr.date_of_birth else "", lr.email or "",
                        "yes" if lr.photo_consent else "no", "yes" if lr.comms_consent else "no",
                        ";".join(lr.handles)])
    with (folder / "accounts.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "platform", "handle", "platform_id", "managers"])
        for a in regs.accounts:
            w.writerow([a.account_id, a.platform, a.handle, a.platform_id or "",
                        ";".join(a.managers)])
    return regs


def prepare(folder: Path, items: int, learners: int, seed: int) -> tuple[Path, Path]:
    """The config, the registers and the items, in ``folder``."""
    from bench.detection import ItemFactory

    folder.mkdir(parents=True, exist_ok=True)
    regs = _write_registers(folder, learners, seed)
    factory = ItemFactory(random.Random(seed + 1), regs)
    path = folder / "items.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(items):
            fh.write(json.dumps(factory.item().model_dump(mode="json", exclude_none=True))
                     + "\n")
    config = folder / "config.toml"
    config.write_text(
        '[organisation]\nname = "Bench Academy"\n'
        '[database]\nurl = "sqlite:///gb.db"\n'  # never created: classify stores nothing
        '[registers]\nstaff = "staff.csv"\nlearners = "learners.csv"\n'
        'accounts = "accounts.csv"\n'
        "[detection]\ndisabled_rules = []\n"
        "[classifiers.toxicity]\nallow_fallback = true\n"
        '[logging]\nlevel = "WARNING"\n')
    return config, path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def one_at_a_time(config: Path, items: Path) -> list[dict[str, Any]]:
    """The same items through ``Classifier.classify``, one at a time (the reference)."""
    from connectors.jsonl import LineProblem, read_items
    from governance_bot.classify import Classifier
    from governance_bot.config import load_config

    classifier = Classifier.from_config(load_config(config))
    out = []
    for _f, _l, item in read_items(items):
        assert not isinstance(item, LineProblem)
        out.append({"item_id": item.id, "item_key": item.key,
                    "findings": [f.to_dict() for f in classifier.classify(item)]})
    return out


def run(bench: Bench, args: argparse.Namespace) -> None:
    baseline = None if args.baseline == "none" else args.baseline
    bench.param(items=args.items, learners=args.learners, seed=args.seed, repeats=args.repeats,
                baseline=baseline)
    with tempfile.TemporaryDirectory(prefix="gb-bench-classify-") as tmp:
        folder = Path(tmp)
        config, items = prepare(folder / "data", args.items, args.learners, args.seed)
        versions = {"this": command_env()}
        trees = [REPO]
        if baseline:
            tree = baseline_tree(baseline, folder)
            versions[f"baseline {baseline}"] = command_env(tree)
            trees.append(tree)
        compile_bytecode(*trees)
        for env in versions.values():  # the model store's exports, where the version has them
            help_text = subprocess.run([gb_command(), "--help"], env=env, capture_output=True,
                                       text=True).stdout
            if " models " in help_text:
                subprocess.run([gb_command(), "models", "fetch", "--offline", "--config",
                                str(config)], env=env, capture_output=True, check=True)
        one = folder / "data" / "one.jsonl"
        one.write_text(items.read_text().splitlines()[0] + "\n")
        times: dict[str, Timing] = {}
        outputs: dict[str, Path] = {}
        for round_ in range(args.repeats + 1):  # the first round warms the file cache
            for version, env in versions.items():
                for what, source in (("2,000 items", items), ("1 item", one)):
                    key = f"{what} | {version}"
                    out = folder / ("out-" + "".join(c if c.isalnum() else "-" for c in key)
                                    + ".jsonl")
                    outputs[key] = out
                    cmd = [gb_command(), "classify", "--input", str(source), "--output", str(out),
                           "--config", str(config)]
                    got = command_times({key: cmd}, repeats=1, warmup=0, env=env)[key]
                    if round_:
                        times.setdefault(key, Timing()).add(got.wall[0], got.cpu[0],
                                                            got.rss_mib[0])
        batched = _lines(outputs["2,000 items | this"])
        reference = one_at_a_time(config, items)
        identical = batched == reference
        same_as_baseline = None
        if baseline:
            same_as_baseline = _lines(outputs[f"2,000 items | baseline {baseline}"]) == batched
    n = args.items
    rows = []
    for version in versions:
        bulk, single = times[f"2,000 items | {version}"], times[f"1 item | {version}"]
        rows.append([version, bulk.best, n / bulk.best, n / max(1e-9, bulk.best - single.best),
                     bulk.cpu_best, 1000 * (bulk.cpu_best - single.cpu_best) / n,
                     max(bulk.rss_mib), single.best])
    bench.table(f"`governance-bot classify` of {n:,} generated items, every rule and model on; "
                f"best of {args.repeats}, a new process each run, versions taking turns",
                ["version", "seconds", "items/s", "items/s after start", "CPU s",
                 "CPU ms/item after start", "peak RSS MiB", "1 item: seconds"], rows,
                note="items/s: all items over the whole command, start-up included; after "
                     "start: the same with the one-item run's time taken off. CPU: user + "
                     "system of the command's process (the embedding model runs batches on "
                     "two threads).")
    findings = sum(len(x["findings"]) for x in batched)
    bench.note(f"Output: {len(batched):,} lines, {findings:,} findings on "
               f"{sum(1 for x in batched if x['findings']):,} items; identical to the one-at-a-"
               f"time path (Classifier.classify per item, same code): "
               f"{'yes' if identical else 'NO'}"
               + ("" if same_as_baseline is None else
                  f"; identical to the baseline's output: {'yes' if same_as_baseline else 'no'}"))
    this = times["2,000 items | this"]
    rate = n / this.best
    rss = max(this.rss_mib)
    bench.record(times={k: t.as_dict() for k, t in times.items()})
    bench.target(f"`classify` of {n:,} generated items with all models >= 120 items/s and peak "
                 "RSS <= 900 MiB (issue 19)",
                 f"{rate:.0f} items/s, {rss:.0f} MiB"
                 + (f" ({rate / (n / times[f'2,000 items | baseline {baseline}'].best):.1f}x "
                    "the baseline)" if baseline else ""),
                 rate >= 120 and rss <= 900, value=rate, limit=120, unit="items/s")
    bench.target("batched `classify` output identical to the one-at-a-time path (issue 19)",
                 "identical" if identical else "DIFFERENT", identical)


if __name__ == "__main__":
    print(json.dumps({"run it with": ".venv/bin/python bench/run.py classify_bulk"}),
          file=sys.stderr)
    os._exit(2)
