"""Security settings fail closed (issue 17, rows 9, 10 and 16).

* A database that holds encrypted data, opened without the key, is a clear error: never a
  traceback, never new rows written in plain text beside the encrypted ones.
* ``doctor`` sets up encryption before it checks, so it checks the database (and says whether
  the keys read it) instead of failing with "cannot open database" and the wrong fix, and the
  checks after the database still run.
* The SQLite file is created readable by the service's user only (0600).
* A WhatsApp conversation's thread key does not hold the phone numbers in plain text.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = ROOT / "examples" / "registers.toml"
KEY = Fernet.generate_key().decode()


def gb(*args: str, cwd: Path, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    return subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**clean, "COLUMNS": "200", "PYTHONPATH": str(ROOT), **(env or {})})


def write_config(folder: Path, keys: bool) -> None:
    security = '[security]\nencryption_keys = "${GB_KEYS}"\n' if keys else ""
    (folder / "config.toml").write_text(
        f'[database]\nurl = "sqlite:///gb.db"\n[registers]\nfile = "{REGISTERS}"\n'
        '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n' + security)


def items(folder: Path, start: int, n: int = 3) -> Path:
    path = folder / f"items-{start}.jsonl"
    path.write_text("".join(json.dumps({
        "id": f"p{i}", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",
        "author": {"id": "104000000001"}, "created_at": "2026-11-20T10:00:00+00:00",
        "text": f"Well done to Jayden Price for the match report {i}!"}) + "\n"
        for i in range(start, start + n)))
    return path


def plain_text_rows(folder: Path) -> int:
    with sqlite3.connect(folder / "gb.db") as conn:
        return sum(1 for (data,) in conn.execute("SELECT data FROM item_versions")
                   if "Jayden" in str(data))


def test_an_encrypted_database_opened_without_the_key_is_a_clear_error(tmp_path: Path) -> None:
    write_config(tmp_path, keys=True)
    first = gb("ingest", str(items(tmp_path, 0)), "-c", "config.toml", cwd=tmp_path,
               env={"GB_KEYS": KEY})
    assert first.returncode == 0, first.stdout + first.stderr
    assert plain_text_rows(tmp_path) == 0
    write_config(tmp_path, keys=False)  # the key setting lost (a new unit file, a typo...)
    for command in (["ingest", str(items(tmp_path, 10)), "-c", "config.toml"],
                    ["scan", "--once", "-c", "config.toml"],
                    ["flags", "list", "-c", "config.toml"]):
        result = gb(*command, cwd=tmp_path)
        output = result.stdout + result.stderr
        assert "Traceback" not in output, output
        assert result.returncode == 2, output
        assert "encrypted" in output and "GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS" in output, \
            output
    assert plain_text_rows(tmp_path) == 0  # nothing written in plain text beside the rest
    wrong = gb("flags", "list", "-c", "config.toml", cwd=tmp_path, env={
        "GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS": Fernet.generate_key().decode()})
    assert wrong.returncode == 2 and "Traceback" not in wrong.stdout + wrong.stderr
    assert "cannot read" in wrong.stdout + wrong.stderr


def test_doctor_with_encryption_on_checks_the_database_and_goes_on(tmp_path: Path) -> None:
    write_config(tmp_path, keys=True)
    gb("ingest", str(items(tmp_path, 0)), "-c", "config.toml", cwd=tmp_path,
       env={"GB_KEYS": KEY})
    result = gb("doctor", "-c", "config.toml", cwd=tmp_path, env={"GB_KEYS": KEY})
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "cannot open" not in output, output
    assert "✓ database" in output, output
    assert "✓ encryption" in output, output
    assert "✓ registers" in output, output
    assert "detection" in output, output  # the checks after the database ran
    # and with the key missing: the encryption check fails with the right fix, the rest runs
    write_config(tmp_path, keys=False)
    result = gb("doctor", "-c", "config.toml", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert "✗ encryption" in output and "GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS" in output, \
        output
    assert "detection" in output, output


def test_the_sqlite_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    write_config(tmp_path, keys=False)
    result = gb("ingest", str(items(tmp_path, 0)), "-c", "config.toml", cwd=tmp_path,
                env={})
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("gb.db", "gb.db-wal", "gb.db-shm"):
        path = tmp_path / name
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o600, f"{name} is {oct(mode)}"


def test_a_whatsapp_thread_key_holds_no_phone_number(tmp_path: Path) -> None:
    write_config(tmp_path, keys=True)
    path = tmp_path / "whatsapp.jsonl"
    path.write_text(json.dumps({
        "id": "wamid.TEST1", "platform": "whatsapp", "account": "brookfield-whatsapp",
        "kind": "direct_message", "author": {"id": "447700900123", "handle": "+447700900123"},
        "recipients": [{"id": "109876543210", "handle": "+441632960001"}],
        "created_at": "2026-11-20T10:00:00+00:00", "visibility": "direct",
        "text": "See you at the revision session", "thread_id": "109876543210:447700900123",
    }) + "\n")
    result = gb("ingest", str(path), "-c", "config.toml", cwd=tmp_path, env={"GB_KEYS": KEY})
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(tmp_path / "gb.db") as conn:
        rows = conn.execute("SELECT thread_key FROM items").fetchall()
    assert rows and all("447700900123" not in key and "109876543210" not in key
                        for (key,) in rows), rows
