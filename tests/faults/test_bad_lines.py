"""A bad line in a JSONL batch is reported with its place and what is wrong, and the rest of the
batch goes on (issue 17, rows 6 and 7).

Row 6: a ``created_at`` whose UTC time falls outside the years 1-9999 raised OverflowError: a
traceback, the valid lines of the batch not archived, and the jsonl connector stuck on the line
for ever. Row 7: invalid UTF-8 bytes were silently replaced (so a learner's name in them could be
missed) and nobody was told.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = ROOT / "examples" / "registers.toml"


def good(i: int) -> bytes:
    return json.dumps({
        "id": f"p{i}", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",
        "author": {"id": "104000000001"}, "created_at": "2026-11-20T10:00:00+00:00",
        "text": f"Well done to Jayden Price for the match report {i}!"}).encode()


def out_of_range(i: int, when: str = "0001-01-01T00:00:00+14:00") -> bytes:
    return json.dumps({
        "id": f"p{i}", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",
        "author": {"id": "104000000001"}, "created_at": when, "text": "Sports day"}).encode()


def bad_utf8(i: int) -> bytes:
    # the name Ruby Fletcher with a Latin-1 byte in it, as a careless export writes it
    return (b'{"id": "p%d", "platform": "facebook", "account": "brookfield-facebook", '
            b'"kind": "post", "author": {"id": "104000000001"}, '
            b'"created_at": "2026-11-20T10:00:00+00:00", "text": "Ruby Fletcher\xe9 won"}' % i)


def gb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    return subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**env, "COLUMNS": "200", "PYTHONPATH": str(ROOT)})


def write_config(folder: Path, connectors: str = "") -> None:
    (folder / "config.toml").write_text(
        f'[database]\nurl = "sqlite:///gb.db"\n[registers]\nfile = "{REGISTERS}"\n'
        '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n' + connectors)


def archived(folder: Path) -> set[str]:
    with sqlite3.connect(folder / "gb.db") as conn:
        return {key.rsplit(":", 1)[1] for (key,) in conn.execute("SELECT key FROM items")}


BAD_LINES = [
    ("a time before year 1 in UTC", out_of_range, "created_at"),
    ("a time after year 9999 in UTC",
     lambda i: out_of_range(i, "9999-12-31T23:30:00-14:00"), "created_at"),
    ("invalid UTF-8", bad_utf8, "not UTF-8"),
]


@pytest.mark.parametrize("what,bad,named", BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_ingest_reports_the_bad_line_and_archives_the_rest(
        tmp_path: Path, what: str, bad: object, named: str) -> None:
    write_config(tmp_path)
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(b"\n".join([good(1), bad(2), good(3)]) + b"\n")  # type: ignore[operator]
    result = gb("ingest", str(batch), "-c", "config.toml", "--strict", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 4, output  # finished, a line skipped (--strict)
    assert f"batch.jsonl:2: {named}" in output.replace("\n", " ") or (
        "batch.jsonl:2" in output and named in output), output
    assert archived(tmp_path) == {"p1", "p3"}
    assert "Fletcher" not in output  # reported by place, never by content


@pytest.mark.parametrize("what,bad,named", BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_the_jsonl_connector_moves_past_a_bad_line(
        tmp_path: Path, what: str, bad: object, named: str) -> None:
    export = tmp_path / "export.jsonl"
    write_config(tmp_path, f'[[connectors]]\nname = "fb"\ntype = "jsonl"\n'
                           f'account = "brookfield-facebook"\npath = "{export}"\n')
    export.write_bytes(b"\n".join([good(1), bad(2), good(3)]) + b"\n")  # type: ignore[operator]
    first = gb("scan", "--once", "-c", "config.toml", cwd=tmp_path)
    output = first.stdout + first.stderr
    assert "Traceback" not in output, output
    assert first.returncode == 0, output
    assert "export.jsonl:2" in output and named in output, output
    assert archived(tmp_path) == {"p1", "p3"}
    with export.open("ab") as fh:
        fh.write(good(4) + b"\n")
    second = gb("scan", "--once", "-c", "config.toml", cwd=tmp_path)
    assert "export.jsonl:2" not in second.stdout + second.stderr  # reported once, not stuck
    assert archived(tmp_path) == {"p1", "p3", "p4"}
