"""The benchmark suite's common parts: timing, the machine, its load, results as JSON, RESULTS.md.

A benchmark is a module ``bench/<subject>.py`` with a docstring (its first line is the title, the
first paragraph after it the description shown in RESULTS.md) and::

    def run(bench: Bench, args: argparse.Namespace) -> None: ...
    def add_arguments(parser: argparse.ArgumentParser) -> None: ...   # optional
    QUICK = ["--items", "2000"]                                         # optional: a short run

``bench/run.py NAME`` builds the parser, runs it while sampling the load average, writes what it
recorded (``bench.table``, ``bench.target``, ``bench.note``) to ``bench/results/NAME.json`` and
regenerates ``bench/RESULTS.md`` from every JSON file there. See bench/README.md.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS_DIR = BENCH / "results"
RESULTS_MD = BENCH / "RESULTS.md"
NOT_BENCHMARKS = {"__init__", "run", "harness"}

__all__ = [
    "BENCH",
    "REPO",
    "Bench",
    "LoadMonitor",
    "Skip",
    "Timing",
    "baseline_tree",
    "benchmarks",
    "children_peak_rss_mib",
    "command_env",
    "command_times",
    "compile_bytecode",
    "gb_command",
    "git_state",
    "load_average",
    "machine",
    "peak_rss_mib",
    "rate",
    "render_results",
    "shared_dir",
    "side_by_side",
    "timed",
]


class Skip(Exception):
    """This benchmark cannot run here (a dataset, service or package is missing): the reason."""


# --------------------------------------------------------------------------- the machine


def _cpuinfo() -> tuple[str, list[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine(), []
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                 if line.startswith("model name")), platform.processor() or platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return name, flags


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the numbers were measured on (nothing here imports a heavy library)."""
    cpu, flags = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    return {
        "cpu": cpu,
        "cpu_flags": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
                      if f in flags],
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": _memory_gib(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {p: v for p in ("torch", "onnxruntime", "numpy", "sqlalchemy", "detoxify")
                     if (v := _version(p))},
    }


def git_state() -> dict[str, Any]:
    """The commit measured, and whether the checkout had uncommitted changes."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short=12", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {"commit": commit or None, "dirty": dirty}


def shared_dir() -> Path:
    """../shared (recorded fixtures and datasets) or ``GOVERNANCE_BOT_SHARED``; Skip if absent."""
    env = os.environ.get("GOVERNANCE_BOT_SHARED")
    path = Path(env) if env else REPO.parent / "shared"
    if not (path / "fixtures").is_dir():
        raise Skip(f"no fixtures under {path}: set GOVERNANCE_BOT_SHARED")
    return path


# --------------------------------------------------------------------------- load


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


class LoadMonitor:
    """Samples the 1-minute load average every ``interval`` seconds while a benchmark runs:
    the machine is shared, so every result says how busy it was."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="load-monitor", daemon=True)

    def _sample(self) -> None:
        while True:
            self.samples.append(round(os.getloadavg()[0], 2))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> LoadMonitor:
        self.at_start = load_average()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.at_end = load_average()
        self.samples.append(round(self.at_end[0], 2))

    def summary(self) -> dict[str, Any]:
        s = self.samples or [0.0]
        return {"start": [round(x, 2) for x in self.at_start],
                "end": [round(x, 2) for x in self.at_end],
                "min": min(s), "max": max(s), "mean": round(statistics.fmean(s), 2),
                "samples": len(s)}


# --------------------------------------------------------------------------- timing


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mib() -> float:
    """The largest peak RSS of any waited-for child process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


@dataclass
class Timing:
    """Repeated measurements of one thing: wall and CPU seconds per repeat."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.wall)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_best(self) -> float:
        return min(self.cpu) if self.cpu else math.nan

    def add(self, wall: float, cpu: float, rss: float | None = None) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        if rss is not None:
            self.rss_mib.append(rss)
        self.loads.append(round(os.getloadavg()[0], 2))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"wall_s": [round(x, 4) for x in self.wall],
                               "cpu_s": [round(x, 4) for x in self.cpu],
                               "best_s": round(self.best, 4), "median_s": round(self.median, 4),
                               "loads": self.loads}
        if self.rss_mib:
            out["peak_rss_mib"] = round(max(self.rss_mib), 1)
        return out


def timed(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> Timing:
    """Wall and process CPU time of ``fn()``, ``repeats`` times after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    timing = Timing()
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        timing.add(time.perf_counter() - w, time.process_time() - c)
    return timing


def side_by_side(cases: Mapping[str, Callable[[], Any]], repeats: int = 5,
                 warmup: int = 1) -> dict[str, Timing]:
    """Each case timed ``repeats`` times, the cases taking turns within each round, so load from
    other work on the machine falls on all of them alike; compare their ratios."""
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    out = {name: Timing() for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            out[name].add(time.perf_counter() - w, time.process_time() - c)
    return out


def command_times(commands: Mapping[str, Sequence[str]], repeats: int = 5, warmup: int = 1,
                  env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  check: bool = True) -> dict[str, Timing]:
    """Each command run ``repeats`` times, taking turns: wall seconds, the child's CPU seconds
    (user + system) and its peak RSS (``wait4``), side by side."""
    def once(argv: Sequence[str]) -> tuple[float, float, float]:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd or REPO, env=dict(env or os.environ),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = proc.stdout.read() if proc.stdout else b""
        err = proc.stderr.read() if proc.stderr else b""
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        if check and proc.returncode not in (0,):
            raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n"
                               f"{(out + err).decode(errors='replace')[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024

    for argv in commands.values():
        for _ in range(warmup):
            once(argv)
    out = {name: Timing() for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            wall, cpu, rss = once(argv)
            out[name].add(wall, cpu, rss)
    return out


def rate(fn: Callable[[], int], seconds: float) -> tuple[float, int]:
    """Items per second of ``fn`` (which returns how many items it made), run for about
    ``seconds`` after one warm-up call; returns (rate, runs)."""
    fn()
    done = runs = 0
    start = time.perf_counter()
    while True:
        done += fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, runs


# --------------------------------------------------------------------------- baselines


def gb_command() -> str:
    return str(Path(sys.executable).with_name("governance-bot"))


def baseline_tree(commit: str, folder: Path) -> Path:
    """The baseline's source at ``commit`` (no checkout, no change to the repository): its
    packages and its example organisation (whose config that code reads)."""
    tree = folder / f"baseline-{commit}"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "governance_bot",
                              "rules", "connectors", "examples"], cwd=REPO, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def compile_bytecode(*trees: Path) -> None:
    """Bytecode for the project's own modules, as an installed copy has (bootstrap compiles the
    dependencies; an editable install's sources are compiled on first import unless
    PYTHONDONTWRITEBYTECODE is set, as it is on these machines)."""
    for tree in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0",
                        *(str(tree / p) for p in ("governance_bot", "rules", "connectors"))],
                       check=True)


def command_env(pythonpath: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GOVERNANCE_BOT_CONFIG"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    else:
        env.pop("PYTHONPATH", None)
    return env


# --------------------------------------------------------------------------- recording


Cell = str | int | float | None


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]]
    note: str = ""


@dataclass
class Target:
    what: str
    result: str
    met: bool | None  # None: reported, no target
    value: float | None = None
    limit: float | None = None
    unit: str = ""


class Bench:
    """What one benchmark run recorded. Benchmarks call :meth:`table`, :meth:`target` and
    :meth:`note`; the runner adds the machine, the commit, the load and the times."""

    def __init__(self, name: str, title: str, description: str, argv: Sequence[str],
                 quick: bool = False) -> None:
        self.name = name
        self.title = title
        self.description = description
        self.argv = list(argv)
        self.quick = quick
        self.params: dict[str, Any] = {}
        self.tables: list[Table] = []
        self.targets: list[Target] = []
        self.notes: list[str] = []
        self.data: dict[str, Any] = {}

    def param(self, **values: Any) -> None:
        """Parameters of this run worth recording (sizes, seeds, what was compared)."""
        self.params.update(values)

    def table(self, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              note: str = "") -> None:
        rows = [list(r) for r in rows]
        self.tables.append(Table(title, list(columns), rows, note))
        print(f"\n{title}", flush=True)
        print(_markdown_table(self.tables[-1]), flush=True)

    def target(self, what: str, result: str, met: bool | None, *, value: float | None = None,
               limit: float | None = None, unit: str = "") -> None:
        """An acceptance target and what this run measured (``met=None``: reported only)."""
        self.targets.append(Target(what, result, met, value, limit, unit))
        verdict = {True: "met", False: "NOT met", None: "reported"}[met]
        print(f"target: {what}: {result} ({verdict})", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(text, flush=True)

    def record(self, **data: Any) -> None:
        """Raw numbers kept in the JSON (not rendered)."""
        self.data.update(data)

    def to_json(self, load: dict[str, Any], started: datetime, seconds: float) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "description": self.description,
            "command": " ".join(["bench/run.py", self.name, *self.argv]),
            "quick": self.quick, "started": started.isoformat(timespec="seconds"),
            "seconds": round(seconds, 1), "machine": machine(), "git": git_state(),
            "load": load, "params": self.params,
            "targets": [asdict(t) for t in self.targets],
            "tables": [asdict(t) for t in self.tables], "notes": self.notes,
            "data": self.data,
        }


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class BenchmarkInfo:
    name: str
    title: str
    description: str
    path: Path


def _doc_parts(doc: str | None) -> tuple[str, str]:
    """(title, description): the docstring's first paragraph, and the first one after it that
    is prose (not an indented command line)."""
    paragraphs = [p for p in (doc or "").split("\n\n") if p.strip()]
    title = " ".join(paragraphs[0].split()).rstrip(".") if paragraphs else ""
    description = ""
    for p in paragraphs[1:]:
        if not p.startswith((" ", "\t")):
            description = " ".join(p.split())
            break
    return title, description


def benchmarks() -> dict[str, BenchmarkInfo]:
    """Every module in bench/ with a module-level ``run`` function, by name (read, not imported,
    so listing them loads nothing)."""
    out: dict[str, BenchmarkInfo] = {}
    for path in sorted(BENCH.glob("*.py")):
        if path.stem in NOT_BENCHMARKS or path.stem.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if not any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in tree.body):
            continue
        title, description = _doc_parts(ast.get_docstring(tree))
        out[path.stem] = BenchmarkInfo(path.stem, title, description, path)
    return out


# --------------------------------------------------------------------------- RESULTS.md


def _cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value != 0 and abs(value) < 0.01:
            return f"{value:.2g}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _markdown_table(table: Table) -> str:
    numeric = [all(isinstance(r[i], int | float) or r[i] is None for r in table.rows
                   if i < len(r)) and any(isinstance(r[i], int | float) for r in table.rows
                                          if i < len(r))
               for i in range(len(table.columns))]
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    for row in table.rows:
        cells = [_cell(c) for c in row] + [""] * (len(table.columns) - len(row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _load_text(load: Mapping[str, Any]) -> str:
    return f"1-minute load average {load['min']:.1f}-{load['max']:.1f} (mean {load['mean']:.1f})"


def _when(result: Mapping[str, Any]) -> str:
    return datetime.fromisoformat(result["started"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _machine_text(m: Mapping[str, Any]) -> str:
    flags = f" ({', '.join(m['cpu_flags'])})" if m.get("cpu_flags") else ""
    mem = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    packages = ", ".join(f"{k} {v}" for k, v in (m.get("packages") or {}).items())
    return (f"{m['cores']} cores{flags}, {m['cpu']}{mem}, {m['system']}, Python {m['python']}"
            + (f"; {packages}" if packages else ""))


def _history_pages() -> list[Path]:
    return sorted(p for p in BENCH.glob("RESULTS-*.md"))


def _history_title(path: Path) -> str:
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        return path.stem
    return first.lstrip("# ").strip() or path.stem


def render_results(results_dir: Path = RESULTS_DIR) -> str:
    """bench/RESULTS.md from the JSON results (one section per benchmark, targets first)."""
    known = benchmarks()
    results: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            results[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
    lines = [
        "# Benchmark results",
        "",
        "Generated by `bench/run.py` from the JSON files in [`results/`](results/): do not edit "
        "by hand; run `.venv/bin/python bench/run.py NAME` (or `all`) to measure again, and see "
        "[README.md](README.md) for how the suite works and how to add a benchmark.",
        "",
        "The machine is shared with other work, so every result gives the load average while it "
        "ran; absolute figures move with it, and comparisons are made side by side within one "
        "run (ratios in the same table).",
        "",
    ]
    machines = {_machine_text(r["machine"]) for r in results.values()}
    if len(machines) == 1:
        lines += [f"Machine: {machines.pop()}.", ""]
    targets = [(name, r, t) for name, r in results.items() for t in r.get("targets", [])]
    if targets:
        lines += ["## Targets", "",
                  "| target | result | status | benchmark | measured (UTC) | load |",
                  "|---|---|---|---|---|---|"]
        for name, r, t in targets:
            status = {True: "**met**", False: "**not met**", None: "reported"}[t["met"]]
            load = r["load"]
            lines.append(f"| {_cell(t['what'])} | {_cell(t['result'])} | {status} | "
                         f"[{name}](#{name.replace('_', '-')}) | {_when(r)} | "
                         f"{load['min']:.1f}-{load['max']:.1f} |")
        lines.append("")
    lines += ["## Benchmarks", "", "| benchmark | what | last run (UTC) |", "|---|---|---|"]
    for name, info in known.items():
        ran = _when(results[name]) if name in results else "not yet run"
        lines.append(f"| [{name}](#{name.replace('_', '-')}) | {_cell(info.title)} | {ran} |")
    lines.append("")
    for name, info in known.items():
        lines += [f"## {name}", "", f"**{info.title}**", ""]
        if info.description:
            lines += [info.description, ""]
        r = results.get(name)
        if r is None:
            lines += [f"Not run yet: `.venv/bin/python bench/run.py {name}`.", ""]
            continue
        git = r.get("git") or {}
        commit = (git.get("commit") or "?") + (" with uncommitted changes" if git.get("dirty")
                                                else "")
        lines += [f"Measured {_when(r)} UTC at commit {commit}, {r['seconds']:.0f} s, "
                  f"{_load_text(r['load'])}" + (" (a quick run: smaller sizes)" if r.get("quick")
                                                else "") + f". Command: `{r['command']}`.", ""]
        if len(set(_machine_text(x["machine"]) for x in results.values())) > 1:
            lines += [f"Machine: {_machine_text(r['machine'])}.", ""]
        for t in r.get("targets", []):
            status = {True: "met", False: "NOT met", None: "reported"}[t["met"]]
            lines.append(f"- Target: {t['what']}: **{t['result']}** ({status}).")
        if r.get("targets"):
            lines.append("")
        for table in r.get("tables", []):
            tab = Table(table["title"], table["columns"], table["rows"], table.get("note", ""))
            lines += [f"### {tab.title}", "", _markdown_table(tab), ""]
            if tab.note:
                lines += [tab.note, ""]
        for note in r.get("notes", []):
            lines += [note, ""]
    history = _history_pages()
    if history:
        lines += ["## Earlier results", "",
                  "Measured before this suite existed, with the scripts of the time (the "
                  "benchmarks above carry them on); kept for the record:", ""]
        lines += [f"- [{p.name}]({p.name}): {_history_title(p)}" for p in history]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_results_md(results_dir: Path = RESULTS_DIR, target: Path = RESULTS_MD) -> Path:
    target.write_text(render_results(results_dir), encoding="utf-8")
    return target


def save(result: Mapping[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result['name']}.json"
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")
    return path


def python() -> str:
    """The interpreter running the suite (the project's .venv when run as documented)."""
    return sys.executable
