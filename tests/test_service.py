"""`governance-bot run`: polls connectors on their interval, serves /healthz, /metrics and
webhooks, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from governance_bot.config import Config
from tests.test_cli import items_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:
            pass
        time.sleep(0.25)
    return False


@pytest.mark.slow
def test_the_service_polls_connectors_serves_healthz_and_stops_cleanly_on_sigterm(
    make_config: Callable[..., Config], tmp_path: Path,
):
    port = free_port()
    items = items_file(tmp_path / "items.jsonl", 10)
    make_config(f'[service]\nport = {port}\noutbox_interval_seconds = 1\n'
                '[delivery]\nsink = "json"\njson_path = "delivered.jsonl"\n'
                '[[connectors]]\nname = "fb"\ntype = "jsonl"\naccount = "brookfield-facebook"\n'
                'path = "items.jsonl"\npoll_interval_seconds = 5\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "governance_bot", "run", "--config", str(tmp_path / "config.toml")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(lambda: httpx.get(f"{base}/healthz").status_code == 200), \
            "service did not start"
        delivered = tmp_path / "delivered.jsonl"
        assert wait_for(lambda: len(delivered.read_text().splitlines()) == 1)
        # new lines appended to the file are picked up at the next poll
        items_file(tmp_path / "more.jsonl", 10, start=10)
        with items.open("a") as fh:
            fh.write((tmp_path / "more.jsonl").read_text())
        assert wait_for(lambda: len(delivered.read_text().splitlines()) == 2, timeout=30)
        body = httpx.get(f"{base}/healthz").json()
        assert body["status"] == "ok" and body["outbox_pending"] == 0
        metrics = httpx.get(f"{base}/metrics").text
        assert ('governance_bot_flags{category="learner_pii",severity="3",status="open"} 2.0'
                in metrics)
        assert 'governance_bot_poll_lag_seconds{connector="fb"}' in metrics
        assert "governance_bot_time_to_alert_seconds_count 2.0" in metrics
        # a connector with no webhooks says so; an unknown one is a 404
        assert httpx.post(f"{base}/webhooks/fb").status_code == 404
        assert httpx.post(f"{base}/webhooks/nope").status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "stopping" in err
    with sqlite3.connect(tmp_path / "gb.db") as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone()[0] == 20
        assert conn.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
                            ).fetchone()[0] == 0
    flags = [json.loads(x) for x in (tmp_path / "delivered.jsonl").read_text().splitlines()]
    assert {f["category"] for f in flags} == {"learner_pii"}
