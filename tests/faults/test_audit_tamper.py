"""``audit-log verify`` detects what someone with write access to the database can do to the log,
and says what it found (issue 17, row 14).

Before, the log was a plain SHA-256 chain with no key, no anchor outside the database and no
cross-check with the flags and decisions, and ``audit-log verify`` said "intact" after each of:
deleting the last event and moving ``audit_head`` back; emptying both tables; rewriting an event
and recomputing every hash.

Here the log is written the ordinary way (``ingest`` of posts that name learners, with encryption
keys configured), and each tampering is done straight on the database file, as an intruder or a
careless administrator with the database but not the keys would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = ROOT / "examples" / "registers.toml"
KEY = Fernet.generate_key().decode()


def gb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    return subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**env, "COLUMNS": "200", "PYTHONPATH": str(ROOT), "GB_KEYS": KEY})


@pytest.fixture
def logged(tmp_path: Path) -> Path:
    """A database whose audit log holds the import of the registers, the configuration and six
    flags (two ingests, so the log was anchored twice)."""
    (tmp_path / "config.toml").write_text(
        f'[database]\nurl = "sqlite:///gb.db"\n[registers]\nfile = "{REGISTERS}"\n'
        '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n'
        '[security]\nencryption_keys = "${GB_KEYS}"\n')
    for batch in (0, 1):
        items = tmp_path / f"items-{batch}.jsonl"
        items.write_text("".join(json.dumps({
            "id": f"p{batch}{i}", "platform": "facebook", "account": "brookfield-facebook",
            "kind": "post", "author": {"id": "104000000001"},
            "created_at": "2026-11-20T10:00:00+00:00",
            "text": f"Well done to Jayden Price for the match report {batch}{i}!"}) + "\n"
            for i in range(3)))
        result = gb("ingest", str(items), "-c", "config.toml", cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    intact = gb("audit-log", "verify", "-c", "config.toml", cwd=tmp_path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    return tmp_path


def tampered(folder: Path, *statements: str) -> subprocess.CompletedProcess[str]:
    with sqlite3.connect(folder / "gb.db") as conn:
        for statement in statements:
            conn.execute(statement)
    return gb("audit-log", "verify", "-c", "config.toml", cwd=folder)


def events(folder: Path) -> list[dict[str, object]]:
    with sqlite3.connect(folder / "gb.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq")]


def test_the_last_event_deleted_and_the_head_moved_back_is_found(logged: Path) -> None:
    rows = events(logged)
    last, before = rows[-1], rows[-2]
    result = tampered(logged, f"DELETE FROM audit_events WHERE seq = {last['seq']}",
                      f"UPDATE audit_head SET seq = {before['seq']}, hash = '{before['hash']}'")
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 1, output
    assert "NOT intact" in output
    assert f"event {last['seq']} was anchored" in output and "deleted" in output, output
    assert "head moved back" in output


def test_both_tables_emptied_are_found(logged: Path) -> None:
    result = tampered(logged, "DELETE FROM audit_events", "DELETE FROM audit_head")
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 1, output
    assert "the log holds 0 event(s)" in output and "deleted" in output, output
    assert "6 flag(s) have no flag.created event" in output, output  # the cross-check


def _plain_hash(prev: str, row: dict[str, object]) -> str:
    """The old chain's hash of an event, as an intruder reading the code would compute it."""
    from datetime import UTC, datetime

    at = datetime.fromisoformat(str(row["created_at"])).replace(tzinfo=UTC)
    body = json.dumps({"prev": prev, "seq": row["seq"],
                       "at": at.isoformat(timespec="microseconds"), "actor": row["actor"],
                       "action": row["action"], "subject": row["subject"],
                       "data": json.loads(str(row["data"]))},
                      sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@pytest.mark.parametrize("how", ["plain hashes", "the intruder's own key"])
def test_a_rewritten_event_with_every_hash_recomputed_is_found(logged: Path, how: str) -> None:
    rows = events(logged)
    target = next(r for r in rows if r["action"] == "flag.created")
    target["actor"] = "someone-else"
    prev, statements = "0" * 64, []
    own_key = os.urandom(32)
    for row in rows:
        if how == "plain hashes":
            digest = _plain_hash(prev, row)
            key_sql = ", key_id = NULL" if "key_id" in row else ""
        else:  # keep the key id, seal with a key the intruder made up
            fields = json.loads(json.dumps({
                "prev": prev, "seq": row["seq"], "actor": row["actor"]}))
            digest = hmac.new(own_key, json.dumps(fields).encode(), hashlib.sha256).hexdigest()
            key_sql = ""
        statements.append(f"UPDATE audit_events SET actor = '{row['actor']}', prev_hash = "
                          f"'{prev}', hash = '{digest}'{key_sql} WHERE seq = {row['seq']}")
        prev = digest
    statements.append(f"UPDATE audit_head SET hash = '{prev}'")
    result = tampered(logged, *statements)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 1, output
    assert "NOT intact" in output
    assert "rewritten" in output or "changed after it was written" in output, output


def _ingest(folder: Path, name: str, keys: str | None) -> None:
    items = folder / f"{name}.jsonl"
    items.write_text(json.dumps({
        "id": name, "platform": "facebook", "account": "brookfield-facebook", "kind": "post",
        "author": {"id": "104000000001"}, "created_at": "2026-11-20T10:00:00+00:00",
        "text": f"Well done to Jayden Price for the match report {name}!"}) + "\n")
    result = gb_keys("ingest", str(items), "-c", "config.toml", cwd=folder, keys=keys)
    assert result.returncode == 0, result.stdout + result.stderr


def gb_keys(*args: str, cwd: Path, keys: str | None) -> subprocess.CompletedProcess[str]:
    return python(["-m", "governance_bot", *args], cwd=cwd, keys=keys)


def verify(cwd: Path, keys: str | None = KEY) -> subprocess.CompletedProcess[str]:
    """``governance-bot audit-log verify`` in the installation at ``cwd``."""
    return gb_keys("audit-log", "verify", "-c", "config.toml", cwd=cwd, keys=keys)


def rotate(cwd: Path, keys: str | None = KEY) -> subprocess.CompletedProcess[str]:
    """``governance-bot keys rotate`` in the installation at ``cwd``."""
    return gb_keys("keys", "rotate", "-c", "config.toml", cwd=cwd, keys=keys)


def cut_last_event(folder: Path) -> dict[str, Any]:
    """Delete the log's last event and move its head back onto the one before (returned): a cut
    a reader of the database alone cannot see."""
    rows = events(folder)
    last, before = rows[-1], rows[-2]
    with sqlite3.connect(folder / "gb.db") as conn:
        conn.execute(f"DELETE FROM audit_events WHERE seq = {last['seq']}")
        conn.execute(f"UPDATE audit_head SET seq = {before['seq']}, hash = '{before['hash']}'")
    return before


def python(argv: list[str], cwd: Path, keys: str | None) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` in ``cwd`` with this checkout first on the path and ``keys`` (None: no
    keys) as the configured encryption keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    if keys is not None:
        env["GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS"] = keys
    return subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**env, "COLUMNS": "200", "PYTHONPATH": str(ROOT)})


def _keys_set_late(folder: Path, sealed: bool = True, database: str = "sqlite:///gb.db") -> None:
    """An installation that ran without keys (plain hashes, anchored), then had keys set and,
    with ``sealed``, wrote events sealed with them (anchored too)."""
    (folder / "config.toml").write_text(
        f'[database]\nurl = "{database}"\n[registers]\nfile = "{REGISTERS}"\n'
        '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n')
    _ingest(folder, "plain", None)
    if sealed:
        _ingest(folder, "sealed", KEY)


@pytest.fixture
def sealed_late(tmp_path: Path) -> Path:
    """An installation that ran without keys (plain hashes, anchored), then had keys set (new
    events sealed and anchored) and ran ``keys rotate``, as docs/security.md and the note of
    ``audit-log verify`` tell the operator to."""
    _keys_set_late(tmp_path)
    rotated = rotate(tmp_path)
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    return tmp_path


def test_a_log_resealed_by_keys_rotate_still_verifies_against_its_earlier_anchors(
        sealed_late: Path) -> None:
    """Re-sealing changes every hash: the anchors written before it are not a rewrite."""
    result = verify(sealed_late)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "re-sealed" in output and "audit log intact" in output, output
    lines = (sealed_late / "audit-anchors.log").read_text().splitlines()
    assert len(lines) >= 3 and json.loads(lines[-1])["resealed"] is True


def test_a_cut_log_is_found_after_a_reseal_and_a_forged_reseal_mark_hides_nothing(
        sealed_late: Path) -> None:
    # events deleted after the re-sealing, the head moved back: the re-sealing's anchor shows it
    before = cut_last_event(sealed_late)
    cut = verify(sealed_late)
    assert cut.returncode == 1 and "deleted" in cut.stdout, cut.stdout + cut.stderr
    # someone without the key appends a re-seal mark of their own: it does not verify, so the
    # earlier anchors are still compared hash by hash (and the mark itself is reported)
    anchors = sealed_late / "audit-anchors.log"
    forged = dict(json.loads(anchors.read_text().splitlines()[-1]), seq=before["seq"],
                  hash=before["hash"], resealed=True)
    with anchors.open("a") as fh:
        fh.write(json.dumps(forged) + "\n")
    again = verify(sealed_late)
    assert again.returncode == 1, again.stdout
    assert "altered or forged" in again.stdout and "deleted" in again.stdout, again.stdout


def test_keys_rotate_refuses_to_reseal_a_log_its_anchors_show_was_cut(sealed_late: Path) -> None:
    cut_last_event(sealed_late)
    result = rotate(sealed_late)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "NOT re-sealed" in output and "deleted" in output, output
    assert "Traceback" not in output


KILLED_AFTER_ANCHORING = """
import os, sys
import governance_bot.audit_anchor as anchors
real = anchors.anchor_reseal
def write_then_die(*args, **kwargs):
    real(*args, **kwargs)
    os._exit(137)  # killed after the anchor is written, before the re-sealing commits
anchors.anchor_reseal = write_then_die
from governance_bot.cli import app
app(["keys", "rotate", "-c", "config.toml"])
"""


@pytest.fixture(params=["sealed since", "keys just set"])
def rotate_killed(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """An installation that ran without keys (then with them, or with keys just set and nothing
    sealed yet), whose ``keys rotate`` was killed after it wrote the re-sealed head to the
    anchor file and before the re-sealing committed."""
    _keys_set_late(tmp_path, sealed=request.param == "sealed since")
    before = events(tmp_path)
    killed = python(["-c", KILLED_AFTER_ANCHORING], cwd=tmp_path, keys=KEY)
    assert killed.returncode == 137, killed.stdout + killed.stderr
    assert events(tmp_path) == before  # nothing was committed ...
    last = json.loads((tmp_path / "audit-anchors.log").read_text().splitlines()[-1])
    assert last["resealed"] is True and last["hash"] != before[-1]["hash"]  # ... but anchored
    return tmp_path


def test_a_keys_rotate_killed_before_committing_is_not_taken_for_a_rewritten_log(
        rotate_killed: Path) -> None:
    result = verify(rotate_killed)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "audit log intact" in output and "stopped before its re-sealing" in output, output
    # run again, as the note says: the log is re-sealed and verifies with its new anchor
    again = rotate(rotate_killed)
    assert again.returncode == 0, again.stdout + again.stderr
    after = verify(rotate_killed)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "stopped before" not in after.stdout and "re-sealed" in after.stdout, after.stdout


def test_an_uncommitted_re_sealing_hides_no_cut_made_after_it(rotate_killed: Path) -> None:
    cut_last_event(rotate_killed)
    result = verify(rotate_killed)
    assert result.returncode == 1 and "deleted" in result.stdout, result.stdout + result.stderr
