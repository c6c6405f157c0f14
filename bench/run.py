"""Run benchmarks and regenerate bench/RESULTS.md.

    .venv/bin/python bench/run.py --list               # what there is
    .venv/bin/python bench/run.py NAME [ARGS...]       # one benchmark (ARGS: its own options)
    .venv/bin/python bench/run.py NAME --help          # its options
    .venv/bin/python bench/run.py all [--quick]        # every benchmark, each in a new process
    .venv/bin/python bench/run.py --report             # only regenerate RESULTS.md

Each run writes bench/results/NAME.json (the machine, the commit, the load average while it ran,
its parameters, tables and targets) and regenerates bench/RESULTS.md from every JSON file there.
A benchmark that cannot run here (a dataset or service missing) says why and keeps its earlier
result. ``--quick`` runs each benchmark with its smaller sizes (its ``QUICK`` arguments) and
marks the result as quick. ``--no-save`` prints only.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# run as a script: the repository root (not bench/) first on the path, so `bench.<name>`,
# `governance_bot`, `rules` and `tests` import as packages
_HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0]).resolve() == _HERE:
    sys.path[0] = str(_HERE.parent)
elif str(_HERE.parent) not in sys.path:
    sys.path.insert(0, str(_HERE.parent))

from bench import harness  # noqa: E402


def run_one(name: str, argv: list[str], quick: bool, save: bool) -> int:
    info = harness.benchmarks()[name]
    module = importlib.import_module(f"bench.{name}")
    parser = argparse.ArgumentParser(prog=f"bench/run.py {name}", description=info.title)
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    if quick:
        argv = [*getattr(module, "QUICK", []), *argv]
    args = parser.parse_args(argv)
    bench = harness.Bench(name, info.title, info.description, argv, quick=quick)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    print(f"== {name}: {info.title} (load average {harness.load_average()[0]:.2f})", flush=True)
    try:
        with harness.LoadMonitor() as load:
            module.run(bench, args)
    except harness.Skip as exc:
        print(f"== {name} skipped: {exc}", flush=True)
        return 0
    result = bench.to_json(load.summary(), started, time.perf_counter() - t0)
    if not save:
        return 0
    path = harness.save(result)
    harness.write_results_md()
    print(f"== {name}: wrote {path.relative_to(harness.REPO)} and bench/RESULTS.md "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    failed = [t for t in bench.targets if t.met is False]
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    known = harness.benchmarks()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "--list":
        width = max(map(len, known), default=0)
        for name, info in known.items():
            print(f"{name:<{width}}  {info.title}")
        return 0
    if argv[0] == "--report":
        print(f"wrote {harness.write_results_md()}")
        return 0
    quick, save = "--quick" in argv, "--no-save" not in argv
    argv = [a for a in argv if a not in ("--quick", "--no-save")]
    if not argv:
        print("name a benchmark, or all", file=sys.stderr)
        return 2
    name, rest = argv[0], argv[1:]
    if name == "all":
        failed: list[str] = []
        for each in known:
            cmd = [sys.executable, str(Path(__file__).resolve()), each, *rest]
            cmd += ["--quick"] if quick else []
            cmd += [] if save else ["--no-save"]
            code = subprocess.run(cmd, cwd=harness.REPO).returncode
            if code:
                failed.append(f"{each} (exit {code})")
        harness.write_results_md()
        print(f"== all: wrote bench/RESULTS.md; {len(known) - len(failed)} of {len(known)} "
              "finished with their targets met or reported" +
              (f"; not: {', '.join(failed)}" if failed else ""))
        return 1 if failed else 0
    if name not in known:
        print(f"no benchmark {name!r}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    return run_one(name, rest, quick, save)


if __name__ == "__main__":
    sys.exit(main())
