"""The command line, run as a user runs it: in a subprocess, against files on disk."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from governance_bot.config import Config

REPO = Path(__file__).resolve().parent.parent


def gb(*args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    result = subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd,
                            capture_output=True, text=True, env=full_env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def items_file(path: Path, n: int, start: int = 0) -> Path:
    """``n`` invented items: every tenth names a learner in a public post."""
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    with path.open("w") as fh:
        for i in range(start, start + n):
            text = (f"Well done Jayden Price and Ruby Fletcher, post {i}" if i % 10 == 0
                    else f"Reminder {i}: bring your PE kit on Friday")
            fh.write(json.dumps({
                "id": f"p{i}", "platform": "facebook", "account": "brookfield-facebook",
                "kind": "post", "author": {"id": "104000000001"},
                "created_at": (t0 + timedelta(seconds=i)).isoformat(), "text": text,
            }) + "\n")
    return path


def db_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("items", "item_versions", "findings", "flags", "outbox")}


def test_help_and_connectors_list(tmp_path: Path):
    assert "scan" in gb("--help", cwd=tmp_path).stdout
    for sub in ("db", "registers", "connectors", "flags", "audit-log"):
        assert "Usage" in gb(sub, "--help", cwd=tmp_path).stdout
    assert "jsonl" in gb("connectors", "list", cwd=tmp_path).stdout


def test_init_writes_a_starter_config_that_doctor_checks(tmp_path: Path):
    gb("init", "--dir", str(tmp_path / "site"), cwd=tmp_path)
    config = tmp_path / "site" / "config.toml"
    assert config.is_file() and (tmp_path / "site" / "registers.toml").is_file()
    assert gb("init", "--dir", str(tmp_path / "site"), cwd=tmp_path, check=False
              ).returncode == 2  # refuses to overwrite
    fresh = gb("doctor", "--config", str(config), cwd=tmp_path, check=False)
    assert fresh.returncode == 1
    assert "✓ configuration" in fresh.stdout and "governance-bot db upgrade" in fresh.stdout
    gb("db", "upgrade", "--config", str(config), cwd=tmp_path)
    imported = gb("registers", "import", "--config", str(config), cwd=tmp_path)
    assert "staff: 3 added" in imported.stdout
    result = gb("doctor", "--config", str(config), cwd=tmp_path, check=False)
    assert "✓ database" in result.stdout
    assert "✓ registers" in result.stdout and "1 accounts" in result.stdout
    # the starter names no Slack id for the DSL etc., but it is otherwise ready
    assert "✗ account" not in result.stdout


def test_a_malformed_jsonl_line_is_reported_with_its_location_and_the_rest_processed(
    make_config: Callable[..., Config], tmp_path: Path,
):
    make_config()
    items = items_file(tmp_path / "items.jsonl", 3)
    with items.open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"id": "x", "platform": "facebook", "kind": "post",
                             "created_at": "2026-11-18T10:00:00Z"}) + "\n")
        fh.write(json.dumps({"id": "p9", "platform": "facebook", "account": "brookfield-facebook",
                             "kind": "post", "created_at": "2026-11-18T10:00:00Z",
                             "text": "Happy birthday Ruby Fletcher"}) + "\n")
    result = gb("ingest", str(items), "--config", str(tmp_path / "config.toml"), cwd=tmp_path)
    assert f"{items}:4: not valid JSON" in result.stderr
    assert f"{items}:5: account: Field required" in result.stderr
    assert "ingest: 4 items" in result.stdout
    assert db_counts(tmp_path / "gb.db")["flags"] == 2
    strict = gb("ingest", str(items), "--config", str(tmp_path / "config.toml"), "--strict",
                cwd=tmp_path, check=False)
    assert strict.returncode == 4


def test_scan_twice_over_the_same_data_creates_no_duplicate_flags(
    make_config: Callable[..., Config], tmp_path: Path,
):
    items_file(tmp_path / "items.jsonl", 40)
    make_config('[[connectors]]\nname = "fb"\ntype = "jsonl"\naccount = "brookfield-facebook"\n'
                'path = "items.jsonl"\n')
    cfg = str(tmp_path / "config.toml")
    first = gb("scan", "--once", "--config", cfg, cwd=tmp_path)
    assert "4 new flags" in first.stdout and "delivered 4 notification(s)" in first.stdout
    before = db_counts(tmp_path / "gb.db")
    # the cursor means nothing new is read; ingesting the same file again also adds nothing
    gb("scan", "--once", "--config", cfg, cwd=tmp_path)
    gb("ingest", str(tmp_path / "items.jsonl"), "--config", cfg, cwd=tmp_path)
    assert db_counts(tmp_path / "gb.db") == before
    listed = gb("flags", "list", "--json", "--config", cfg, cwd=tmp_path).stdout.splitlines()
    assert len(listed) == 4 and all(json.loads(x)["category"] == "learner_pii" for x in listed)


def test_sigkill_mid_scan_then_a_rerun_archives_every_item_once_and_flags_each_once(
    make_config: Callable[..., Config], tmp_path: Path,
):
    n = 1500
    items = items_file(tmp_path / "items.jsonl", n)
    make_config()
    cfg = str(tmp_path / "config.toml")
    db = tmp_path / "gb.db"
    proc = subprocess.Popen([sys.executable, "-m", "governance_bot", "ingest", str(items),
                             "--config", cfg], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    archived = 0
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:
            archived = db_counts(db)["items"]
        except sqlite3.Error:
            continue
        if archived >= 200:
            break
    assert proc.poll() is None, "the ingest finished before it could be killed; raise n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = db_counts(db)
    assert 0 < partial["items"] < n
    gb("ingest", str(items), "--config", cfg, cwd=tmp_path)
    after = db_counts(db)
    assert after["items"] == n and after["item_versions"] == n
    assert after["flags"] == n // 10 and after["outbox"] == n // 10
    # each flagged post names two learners: two findings, never more
    assert after["findings"] == 2 * (n // 10)
    with sqlite3.connect(db) as conn:
        undetected = conn.execute(
            "SELECT count(*) FROM item_versions WHERE detected_at IS NULL").fetchone()[0]
        assert undetected == 0
        delivered = conn.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NOT NULL"
                                 ).fetchone()[0]
        assert delivered == n // 10


def test_audit_log_verify_fails_after_a_row_is_changed_in_the_database(
    make_config: Callable[..., Config], tmp_path: Path,
):
    make_config()
    cfg = str(tmp_path / "config.toml")
    items = items_file(tmp_path / "items.jsonl", 20)
    gb("ingest", str(items), "--config", cfg, cwd=tmp_path)
    ok = gb("audit-log", "verify", "--config", cfg, cwd=tmp_path)
    assert "audit log intact" in ok.stdout
    with sqlite3.connect(tmp_path / "gb.db") as conn:
        conn.execute("UPDATE audit_events SET actor = 'nobody' WHERE seq = 3")
    broken = gb("audit-log", "verify", "--config", cfg, cwd=tmp_path, check=False)
    assert broken.returncode == 1 and "BROKEN at event 3" in broken.stdout


def test_classify_writes_one_line_per_item_without_a_database(
    make_config: Callable[..., Config], tmp_path: Path,
):
    make_config()
    items = items_file(tmp_path / "items.jsonl", 20)
    out = tmp_path / "findings.jsonl"
    gb("classify", "--input", str(items), "--output", str(out), "--config",
       str(tmp_path / "config.toml"), cwd=tmp_path)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["item_id"] for x in lines] == [f"p{i}" for i in range(20)]
    flagged = [x for x in lines if x["findings"]]
    assert [x["item_id"] for x in flagged] == ["p0", "p10"]
    finding = flagged[0]["findings"][0]
    assert set(finding) >= {"rule_id", "category", "severity", "score", "route", "evidence",
                            "explanation", "fingerprint"}
    assert not (tmp_path / "gb.db").exists()


def test_an_outdated_schema_is_refused_with_what_to_run(
    make_config: Callable[..., Config], tmp_path: Path,
):
    make_config()
    cfg = str(tmp_path / "config.toml")
    gb("db", "upgrade", "--config", cfg, cwd=tmp_path)
    with sqlite3.connect(tmp_path / "gb.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0000'")
    result = gb("scan", "--config", cfg, cwd=tmp_path, check=False)
    assert result.returncode == 3
    assert "governance-bot db upgrade" in result.stderr


def test_keys_rotate_on_a_database_never_created_says_to_create_it_not_that_it_is_unreachable(
    make_config: Callable[..., Config], tmp_path: Path,
):
    from governance_bot.storage.crypto import generate_key

    make_config()
    result = gb("keys", "rotate", "--config", str(tmp_path / "config.toml"), cwd=tmp_path,
                check=False, env={"GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS": generate_key()})
    assert result.returncode == 3, result.stderr
    assert "governance-bot db upgrade" in result.stderr
    assert "cannot reach" not in result.stderr


@pytest.mark.parametrize("bad", ["[database\n", '[database]\nurl = 5\nnope = 1\n'])
def test_a_bad_config_exits_2_with_every_problem(tmp_path: Path, bad: str):
    (tmp_path / "config.toml").write_text(bad)
    result = gb("scan", "--config", str(tmp_path / "config.toml"), cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "problem" in result.stderr


def test_eval_prints_precision_recall_and_f1_per_category(
    make_config: Callable[..., Config], tmp_path: Path,
):
    make_config()
    labelled = tmp_path / "labelled.jsonl"
    labelled.write_text("\n".join(json.dumps(r) for r in [
        {"text": "Congratulations to Jayden Price on his award", "labels": ["learner_pii"]},
        {"text": "Call Ruby Fletcher on 07700 900123", "labels": ["learner_pii"]},
        {"text": "Sports day is on Friday", "labels": []},
        {"text": "Well done Year 9", "labels": ["learner_pii"]},  # a miss, on purpose
    ]) + "\n")
    result = gb("eval", "--input", str(labelled), "--config", str(tmp_path / "config.toml"),
                cwd=tmp_path)
    row = next(line for line in result.stdout.splitlines() if "learner_pii" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[:5] == ["learner_pii", "3", "2", "0", "1"]  # support, TP, FP, FN
    assert cells[5:8] == ["1.000", "0.667", "0.800"]  # precision, recall, F1
