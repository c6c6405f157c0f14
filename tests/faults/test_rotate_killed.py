"""A ``keys rotate`` killed while it re-encrypts loses nothing: every value stays readable with the
configured keys (the new key first, the old one after it), the audit log still verifies, and
running ``keys rotate`` again finishes the job, after which the new key alone reads everything
(issue 17: encryption at rest, key rotation).

``keys rotate`` re-encrypts the encrypted columns in batches, each committed on its own, and
only then re-seals the audit log; the command is killed (as by SIGKILL: no clean-up runs) right
after the second batch that re-encrypted rows has committed, with batches small enough that more
follow. The installation is the one of the killed re-sealing tests in test_audit_tamper.py: it ran
without keys first (rows in clear, plain hashes), then with a key.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import create_engine, inspect, text

from governance_bot.storage.crypto import MARK
from tests.faults.test_audit_tamper import KEY, _keys_set_late, python, rotate, verify

NEW_KEY = Fernet.generate_key().decode()
BOTH = f"{NEW_KEY},{KEY}"  # how docs/security.md says to rotate: the new key first, the old after

KILLED_MID_RE_ENCRYPTION = """
import os
from contextlib import contextmanager
import governance_bot.storage.rotation as rotation
from governance_bot.storage.db import Database
real_rotate, real_update, real_session = rotation.rotate_all, rotation.update, Database.session
state = {"updates": 0, "batches": 0}
def counted_update(*args, **kwargs):
    state["updates"] += 1
    return real_update(*args, **kwargs)
@contextmanager
def session_then_die(self):
    before = state["updates"]
    with real_session(self) as session:
        yield session
    if state["updates"] > before:  # a batch that re-encrypted rows has just committed
        state["batches"] += 1
        if state["batches"] == 2:
            os._exit(137)  # killed: nothing after this runs
def small_batches(db, batch=500):
    return real_rotate(db, batch=3)  # so that a table is left half done, and batches follow
rotation.update = counted_update
Database.session = session_then_die
rotation.rotate_all = small_batches
from governance_bot.cli import app
app(["keys", "rotate", "-c", "config.toml"])
"""


def _opened(value: Any, fernet: MultiFernet) -> Any:
    """A stored value as the application reads it: decrypted when encrypted (raises
    InvalidToken when ``fernet`` cannot), JSON parsed, anything else as it is."""
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):  # a text that only looks like JSON
            value = json.loads(value)
    if isinstance(value, dict) and list(value) == ["enc"]:
        return _opened(value["enc"], fernet)
    if isinstance(value, str) and value.startswith(MARK):
        return _opened(fernet.decrypt(value[len(MARK):].encode()).decode(), fernet)
    return value


def _cells(url: str) -> dict[tuple[str, str, str], Any]:
    """Every stored value of every table but the audit log's own (re-sealing rewrites it), by
    table, primary key and column, as stored."""
    engine = create_engine(url)
    out: dict[tuple[str, str, str], Any] = {}
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                if table.startswith("audit_"):
                    continue
                pk = inspect(conn).get_pk_constraint(table)["constrained_columns"]
                assert pk, f"{table} has no primary key"
                for row in conn.execute(text(f'SELECT * FROM "{table}"')).mappings():
                    where = json.dumps([row[c] for c in pk], default=str)
                    for column, value in row.items():
                        out[(table, where, column)] = value
    finally:
        engine.dispose()
    return out


def _under(value: Any, key: str) -> bool:
    """Whether an encrypted value is readable with ``key`` alone."""
    try:
        _opened(value, MultiFernet([Fernet(key.encode())]))
    except InvalidToken:
        return False
    return True


def _encrypted(cells: dict[tuple[str, str, str], Any]) -> dict[tuple[str, str, str], Any]:
    return {where: v for where, v in cells.items()
            if MARK in (v if isinstance(v, str) else json.dumps(v, default=str))}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_keys_rotate_killed_while_re_encrypting_loses_nothing_and_a_second_run_finishes(
        tmp_path: Path, database_url: str) -> None:
    _keys_set_late(tmp_path, database=database_url)
    both = MultiFernet([Fernet(NEW_KEY.encode()), Fernet(KEY.encode())])
    stored = {where: _opened(v, both) for where, v in _cells(database_url).items()}
    assert any("Jayden Price" in json.dumps(v, default=str) for v in stored.values())

    killed = python(["-c", KILLED_MID_RE_ENCRYPTION], cwd=tmp_path, keys=BOTH)
    assert killed.returncode == 137, killed.stdout + killed.stderr
    # killed half way: some values are under the new key, others still under the old one (or in
    # clear, written before the keys were set) ...
    halfway = _cells(database_url)
    encrypted = _encrypted(halfway)
    assert any(_under(v, NEW_KEY) for v in encrypted.values()), "no batch committed"
    assert any(not _under(v, NEW_KEY) for v in encrypted.values()) or \
        any("Jayden Price" in str(v) for v in halfway.values()), "the rotation was not killed"
    # ... and the configured keys read every one of them as it was stored
    assert {where: _opened(v, both) for where, v in halfway.items()} == stored
    checked = verify(tmp_path, BOTH)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "audit log intact" in checked.stdout, checked.stdout

    again = rotate(tmp_path, BOTH)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sealed with the new key" in again.stdout, again.stdout

    # the old key can go now: the new key alone reads everything, nothing is left in clear
    done = _cells(database_url)
    old = [where for where, v in _encrypted(done).items() if not _under(v, NEW_KEY)]
    assert not old, f"not re-encrypted with the new key: {old}"
    assert not any("Jayden Price" in str(v) for v in done.values())
    new_only = MultiFernet([Fernet(NEW_KEY.encode())])
    assert {where: _opened(v, new_only) for where, v in done.items()} == stored
    after = verify(tmp_path, NEW_KEY)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "audit log intact" in after.stdout and "re-sealed" in after.stdout, after.stdout
