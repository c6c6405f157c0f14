"""The benchmark suite's runner and results page (bench/run.py, bench/harness.py).

Speed targets are shown by benchmarks, whose results must be trustworthy: every result carries
the machine, the commit and the load it was measured under, and bench/RESULTS.md is generated
from the recorded results, never edited by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import harness

REPO = Path(__file__).resolve().parent.parent


def test_every_benchmark_is_found_by_its_subject_and_none_is_named_after_an_issue() -> None:
    found = harness.benchmarks()
    assert {"startup", "detection", "pipeline_load", "toxicity_speed"} <= set(found)
    for name, info in found.items():
        assert info.title, f"bench/{name}.py needs a one-line docstring title"
        assert not name.startswith("bench_") and "issue" not in name
    # tools that tune rule packs are not benchmarks and do not live in bench/
    assert not list((REPO / "bench").glob("tune_*.py"))


def test_a_recorded_run_keeps_the_machine_commit_and_load_and_renders_into_results_md(
    tmp_path: Path,
) -> None:
    bench = harness.Bench("startup", "Start-up", "How long commands take.", ["--repeats", "1"])
    bench.param(repeats=1)
    bench.table("Seconds per command", ["command", "best s"], [["--help", 0.31]])
    bench.target("`governance-bot --help` <= 0.4 s", "0.31 s", True, value=0.31, limit=0.4)
    with harness.LoadMonitor(interval=0.05) as load:
        pass
    result = bench.to_json(load.summary(), datetime(2026, 11, 22, 9, 30, tzinfo=UTC), 1.5)
    path = harness.save(result, tmp_path)
    saved = json.loads(path.read_text())
    assert saved["machine"]["cores"] and saved["machine"]["python"]
    assert saved["load"]["samples"] >= 1 and "start" in saved["load"]
    assert saved["git"]["commit"]
    page = harness.render_results(tmp_path)
    assert "| `governance-bot --help` <= 0.4 s | 0.31 s | **met** |" in page
    assert "| --help | 0.31 |" in page
    assert "Measured 2026-11-22 09:30 UTC" in page and "load average" in page
    # benchmarks without a result are listed as not run yet; earlier pages stay linked
    assert "Not run yet: `.venv/bin/python bench/run.py detection`." in page
    assert "[RESULTS-load.md](RESULTS-load.md)" in page


def test_results_md_is_generated_from_the_recorded_results() -> None:
    expected = harness.render_results()
    assert (REPO / "bench" / "RESULTS.md").read_text() == expected, (
        "bench/RESULTS.md is out of date with bench/results/*.json or the benchmarks' "
        "docstrings: run `.venv/bin/python bench/run.py --report` and commit it")


def test_the_runner_lists_the_benchmarks_without_importing_them() -> None:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--list"],
                          capture_output=True, text=True, check=True, cwd=REPO)
    names = [line.split()[0] for line in done.stdout.splitlines() if line.strip()]
    assert names == sorted(harness.benchmarks())


def test_every_benchmark_module_imports() -> None:
    """A helper moved between bench modules breaks this test, not the next measurement."""
    found = harness.benchmarks()
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]:\n"
            "    importlib.import_module(f'bench.{name}')\n")
    done = subprocess.run([sys.executable, "-c", code, *sorted(found)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
