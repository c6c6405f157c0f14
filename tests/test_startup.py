"""Fast to start, offline by default: what each command loads, and that nothing is downloaded.

Each command runs as an operator runs it, in a new process, on a copy of the example
organisation. A probe in that process records which modules were imported and every attempt to
reach the network (Python's audit hooks for ``socket.connect`` and name lookups, which are also
refused, as behind a firewall); where the system allows it, the process also runs in a network
namespace of its own with no network at all (``unshare -rn``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from rules import profanity
from rules.embeddings import export_dir
from rules.models import store_dir

REPO = Path(__file__).resolve().parent.parent
MODEL_LIBRARIES = ("torch", "transformers", "onnxruntime", "sentence_transformers", "detoxify",
                   "sklearn", "cv2", "dlib")
NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                  "socket.gethostbyname_ex", "socket.gethostbyaddr")

PROBE = """
import atexit, json, os, sys

_attempts = []

def _refuse(event, args):
    if event in {events!r}:
        _attempts.append([event, repr(args)[:200]])
        raise OSError("network access is disabled in this test")

sys.addaudithook(_refuse)

def _report():
    with open(os.environ["GB_PROBE"], "w") as fh:
        json.dump({{"modules": sorted(sys.modules), "attempts": _attempts}}, fh)

atexit.register(_report)
sys.argv = ["governance-bot", *json.loads(os.environ["GB_ARGS"])]
from governance_bot.cli import app
app()
"""


@cache
def _unshare() -> list[str]:
    """``unshare -rn`` where the system allows a process a network namespace of its own."""
    try:
        done = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return ["unshare", "-rn"] if done.returncode == 0 else []


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, no_network: bool = False
        ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    probe = cwd / ".probe.json"
    probe.unlink(missing_ok=True)
    full_env = {**os.environ, "COLUMNS": "200", "GB_PROBE": str(probe),
                "GB_ARGS": json.dumps(list(args)), **(env or {})}
    prefix = _unshare() if no_network else []
    done = subprocess.run([*prefix, sys.executable, "-c", PROBE.format(events=NETWORK_EVENTS)],
                          cwd=cwd, capture_output=True, text=True, env=full_env, timeout=600)
    return done, json.loads(probe.read_text())


def loaded(probe: dict[str, Any], *names: str) -> list[str]:
    return sorted({m.split(".")[0] for m in probe["modules"]} & set(names))


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example organisation after `registers import` and one `scan --once`."""
    folder = tmp_path_factory.mktemp("example") / "brookfield"
    shutil.copytree(REPO / "examples", folder,
                    ignore=shutil.ignore_patterns("*.db*", "audit-anchors.log*"))
    for args in (("registers", "import"), ("scan", "--once")):
        done = subprocess.run([sys.executable, "-m", "governance_bot", *args, "--config",
                               "config.toml"], cwd=folder, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.fixture
def store_without_detoxify(tmp_path: Path) -> dict[str, str]:
    """A model store holding what `models fetch --offline` prepares (the sentence embeddings)
    and no Detoxify weights, as on a server where the fetch step has not been run for them."""
    store = tmp_path / "models"
    (store / "embeddings").mkdir(parents=True)
    os.symlink(export_dir(), store / "embeddings" / export_dir().name)
    with pytest.MonkeyPatch.context() as mp:  # the profanity fallback's arrays, as fetch makes
        mp.setenv("GOVERNANCE_BOT_MODEL_CACHE", str(store))
        ok, message = profanity.export()
        assert ok, message
    return {"GOVERNANCE_BOT_MODEL_CACHE": str(store)}


def test_help_starts_without_the_database_layer_rich_or_any_model(tmp_path: Path) -> None:
    done, probe = run("--help", cwd=tmp_path)
    assert done.returncode == 0 and "models" in done.stdout
    assert loaded(probe, "sqlalchemy", "alembic", "rich", "pydantic_settings", "numpy",
                  *MODEL_LIBRARIES) == []


@pytest.mark.parametrize("args", [
    ("audit", "--config", "config.toml", "--out", "audit-report"),
    ("report", "governors", "--from", "2026-01-01", "--to", "2026-12-31", "--output",
     "governors.html", "--config", "config.toml"),
    ("audit-log", "verify", "--config", "config.toml"),
    ("flags", "list", "--config", "config.toml"),
    ("registers", "import", "--config", "config.toml"),
    ("db", "upgrade", "--config", "config.toml"),
    ("keys", "generate"),
    ("legal-hold", "list", "--config", "config.toml"),
    ("retention", "apply", "--dry-run", "--config", "config.toml"),
    ("learner", "export", "L001", "--output", "sar.json", "--config", "config.toml"),
], ids=lambda a: " ".join(a[:2]))
def test_commands_that_need_no_model_never_import_a_model_library(example: Path,
                                                                  args: tuple[str, ...]) -> None:
    done, probe = run(*args, cwd=example)
    assert done.returncode == 0, done.stdout + done.stderr
    assert loaded(probe, *MODEL_LIBRARIES) == []


def test_a_scan_with_nothing_new_loads_no_model(example: Path) -> None:
    done, probe = run("scan", "--once", "--config", "config.toml", cwd=example)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(0 new," in done.stdout
    assert loaded(probe, *MODEL_LIBRARIES) == []


def test_with_networking_disabled_a_start_attempts_no_download_and_names_the_fetch_step(
    example: Path, store_without_detoxify: dict[str, str], tmp_path: Path,
) -> None:
    """The example organisation allows the profanity fallback when Detoxify's weights are not
    on the machine: the start says so, names `governance-bot models fetch`, and never tries to
    download them (which behind a firewall could hang until a timeout)."""
    items = example / "items" / "brookfield-facebook.jsonl"
    one = tmp_path / "one.jsonl"
    one.write_text(items.read_text().splitlines()[0] + "\n")
    for args in (("classify", "--input", str(one), "--output", str(tmp_path / "out.jsonl"),
                  "--config", "config.toml"),
                 ("scan", "--once", "--config", "config.toml"),
                 ("doctor", "--config", "config.toml")):
        done, probe = run(*args, cwd=example, env=store_without_detoxify, no_network=True)
        assert done.returncode in (0, 1), done.stdout + done.stderr
        assert probe["attempts"] == [], args
        said = " ".join((done.stdout + done.stderr).split())
        assert "governance-bot models fetch" in said, args
        # the exports were checked when they were made: no torch model is built at run time,
        # and the profanity fallback is read from its arrays (no scikit-learn)
        assert loaded(probe, "torch", "sentence_transformers", "sklearn") == [], args
    # the item was still checked by every other rule (and by the fallback model)
    assert json.loads((tmp_path / "out.jsonl").read_text())["findings"] is not None


def test_doctor_checks_the_models_from_their_files_without_loading_them(
    example: Path, store_without_detoxify: dict[str, str],
) -> None:
    done, probe = run("doctor", "--config", "config.toml", cwd=example,
                      env=store_without_detoxify)
    out = " ".join(done.stdout.split())
    assert "sentence-embedding model: all-MiniLM-L6-v2 on ONNX Runtime" in out
    assert "parity with sentence-transformers on torch" in out  # the recorded check
    assert "toxicity model:" in out and "governance-bot models fetch" in out
    assert "image models:" in out
    assert loaded(probe, *MODEL_LIBRARIES) == []


def test_doctor_on_a_fresh_init_says_the_first_start_creates_the_schema(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "governance_bot", "init", "--dir", "site"],
                   cwd=tmp_path, check=True, capture_output=True)
    done, _ = run("doctor", "--config", "site/config.toml", cwd=tmp_path)
    assert "schema at none" not in done.stdout
    assert "the first start creates the schema" in " ".join(done.stdout.split())
    # the registers the first start will import are checked meanwhile
    assert "✓ registers: 3 staff" in done.stdout


def test_every_option_shows_a_value_a_person_understands(tmp_path: Path) -> None:
    from typer.main import get_command

    from governance_bot.cli import app

    def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        out = []
        for name, sub in getattr(group, "commands", {}).items():
            out += commands(sub, (*path, name)) if hasattr(sub, "commands") else [(*path, name)]
        return out

    found = commands(get_command(app))
    assert ("models", "fetch") in found and ("classify",) in found
    for path in found:
        done = subprocess.run([sys.executable, "-m", "governance_bot", *path, "--help"],
                              cwd=tmp_path, capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, path
        for typed in ("<bool>", "<int>", "<str>", "<path>", "<list", "TEXT_LIST"):
            assert typed not in done.stdout, (path, typed)


def test_the_model_store_is_outside_the_repository_by_default() -> None:
    assert REPO not in store_dir().parents
