"""Children's data and secrets never reach the logs: a full run (`scan --once` and `ingest` with
the example organisation, encryption on, a Slack token, a Facebook connector whose platform is
unreachable) is run at INFO and at WARNING, and everything it prints is searched for every
learner's names, emails, handles, dates of birth and guardians, every item's text, and every
secret given through the environment. At DEBUG, details may appear (that is what DEBUG is for).

Style card: "never log message text or learner details above DEBUG; never log secrets".
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from governance_bot.registers import read_toml
from governance_bot.storage.crypto import generate_key

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_REGISTERS = REPO / "examples" / "registers.toml"

SECRETS = {
    "GB_TEST_SLACK_BOT_TOKEN": "xoxb-2718281828-31415926535-QwErTyUiOpAsDfGhJkLzXcVb",
    "GB_TEST_SLACK_SIGNING_SECRET": "8f14e45fceea167a5a36dedd4bea2543",
    "GB_TEST_FB_PAGE_TOKEN": "EAAGm0PX4ZCpsBAJZBtestTokenNotRealZZ9k3LmNoPqRsTuVwXyZ",
    "GB_TEST_FB_APP_SECRET": "c4ca4238a0b923820dcc509a6f75849b",
    "GB_TEST_FB_VERIFY_TOKEN": "verify-me-7c9e6679f6e4",
    "GB_TEST_KEYS": generate_key() + "," + generate_key(),
}

# Items about the example organisation's learners: names, handles, emails, a date of birth, a
# phone number and a disclosure, in every kind of item; one malformed line and one invalid item
# that carry learner details too (skipped-record reports must not repeat them).
ITEMS = [
    {"id": "p1", "platform": "facebook", "account": "brookfield-facebook", "kind": "post",
     "author": {"id": "104000000001"}, "created_at": "2026-11-02T10:00:00Z",
     "text": "Huge congratulations to Jayden Price (born 14/03/2010) on his county medal!"},
    {"id": "c1", "platform": "facebook", "account": "brookfield-facebook", "kind": "comment",
     "parent_id": "p1", "author": {"handle": "@maisie.fb", "name": "Maisie O'Connell"},
     "created_at": "2026-11-02T23:40:00Z",
     "text": "text me on 07700 900123 or maisie.oconnell@students.brookfield.example.org xx"},
    {"id": "d1", "platform": "teams", "account": "brookfield-teams", "kind": "chat_message",
     "visibility": "direct", "author": {"email": "danmensah88@gmail.example.com"},
     "recipients": [{"handle": "@olly_sh", "name": "Oliver Smith-Hughes"}],
     "created_at": "2026-11-03T22:15:00Z",
     "text": "Olly don't tell your mum I messaged you from this account, delete it after"},
    {"id": "d2", "platform": "teams", "account": "brookfield-teams", "kind": "chat_message",
     "visibility": "direct", "author": {"handle": "@olly_sh"},
     "recipients": [{"email": "s.carrington@brookfield.example.org"}],
     "created_at": "2026-11-04T21:05:00Z",
     "text": "miss my stepdad hurt me again last night and I don't want to go home"},
]
BAD_LINES = [
    '{"id": "x1", "text": "Amira Haddad lives at 12 Orchard Close BS7 8AB", "kind": ',
    json.dumps({"id": "x2", "platform": "facebook", "account": "brookfield-facebook",
                "kind": "post", "created_at": "not a time",
                "text": "Kacper Zielinski's new address is 4 Mill Lane"}),
]


def _needles() -> dict[str, str]:
    """Everything that must not be printed: label -> value (matched case-insensitively)."""
    regs = read_toml(EXAMPLE_REGISTERS)
    out: dict[str, str] = {}
    for lr in regs.learners:
        out[f"{lr.learner_id} full name"] = f"{lr.first_name} {lr.last_name}"
        if lr.preferred_name:
            out[f"{lr.learner_id} preferred name"] = f"{lr.preferred_name} {lr.last_name}"
        if len(lr.last_name) >= 6:  # distinctive surnames alone ("Smith-Hughes", "Zielinski")
            out[f"{lr.learner_id} surname"] = lr.last_name
        if lr.email:
            out[f"{lr.learner_id} email"] = lr.email
        if lr.date_of_birth:
            out[f"{lr.learner_id} dob"] = lr.date_of_birth.isoformat()
            out[f"{lr.learner_id} dob uk"] = lr.date_of_birth.strftime("%d/%m/%Y")
        for h in lr.handles:
            out[f"{lr.learner_id} handle {h}"] = h.lstrip("@")
        for g in lr.guardian_contacts:
            out[f"{lr.learner_id} guardian"] = g.split("<")[-1].rstrip(">")
    for s in regs.staff:
        for h in s.personal_handles:
            out[f"{s.staff_id} personal handle"] = h.lstrip("@")
    texts = [i["text"] for i in ITEMS] + [
        "Amira Haddad lives at 12 Orchard Close", "Kacper Zielinski's new address"]
    for n, text in enumerate(texts):
        words = text.split()
        for k in range(len(words) - 3):  # every run of four words of every item
            out[f"item text {n} words {k}"] = " ".join(words[k:k + 4])
    out["phone"] = "07700 900123"
    for name, value in SECRETS.items():
        for part in value.split(","):
            out[f"secret {name}"] = part
            out[f"secret {name} prefix"] = part[:16]
    return out


def _leaks(text: str) -> list[str]:
    low = text.casefold()
    return sorted({label for label, value in _needles().items() if value.casefold() in low})


def _write_setup(tmp: Path, level: str) -> Path:
    (tmp / "registers.toml").write_text(EXAMPLE_REGISTERS.read_text())
    items = tmp / "items.jsonl"
    items.write_text("\n".join([json.dumps(i) for i in ITEMS] + BAD_LINES) + "\n")
    config = tmp / "config.toml"
    config.write_text(f"""
[organisation]
name = "Brookfield Academy"
[database]
url = "sqlite:///gb.db"
[registers]
file = "registers.toml"
[delivery]
sink = "console"
[slack]
enabled = false
bot_token = "${{GB_TEST_SLACK_BOT_TOKEN}}"
signing_secret = "${{GB_TEST_SLACK_SIGNING_SECRET}}"
[security]
encryption_keys = "${{GB_TEST_KEYS}}"
[logging]
level = "{level}"

[[connectors]]
name = "items"
type = "jsonl"
account = "brookfield-facebook"
path = "items.jsonl"

[[connectors]]
name = "facebook-page"
type = "facebook"
account = "brookfield-facebook"
page_id = "104000000001"
access_token = "${{GB_TEST_FB_PAGE_TOKEN}}"
app_secret = "${{GB_TEST_FB_APP_SECRET}}"
verify_token = "${{GB_TEST_FB_VERIFY_TOKEN}}"
base_url = "http://127.0.0.1:9"
max_retries = 0
timeout_seconds = 2
""")
    return config


def _run(args: list[str], cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    env.update(SECRETS)
    env["COLUMNS"] = "400"  # no wrapping: a value split over two lines would hide a leak
    proc = subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 4), proc.stdout + proc.stderr
    return proc.stdout + "\n" + proc.stderr


def _full_run(tmp: Path, level: str) -> str:
    config = _write_setup(tmp, level)
    out = _run(["scan", "--once", "--config", str(config)], tmp)
    # the same items again through `ingest` (a second file, so they are new)
    again = tmp / "again.jsonl"
    again.write_text("\n".join(
        json.dumps({**i, "id": i["id"] + "-again"}) for i in ITEMS) + "\n" + BAD_LINES[0] + "\n")
    out += _run(["ingest", str(again), "--config", str(config)], tmp)
    out += _run(["flags", "list", "--config", str(config)], tmp)
    return out


def test_the_needles_are_found_where_they_are_present(tmp_path: Path):
    """The search itself works: the items file and the registers are full of needles."""
    config = _write_setup(tmp_path, "INFO")
    found = _leaks((tmp_path / "items.jsonl").read_text() + EXAMPLE_REGISTERS.read_text())
    assert "L001 full name" in found and "L002 handle @maisie.fb" in found
    assert any(label.startswith("item text 3") for label in found)
    assert not _leaks(config.read_text())  # the config holds ${ENV} references only


@pytest.mark.slow
@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_a_full_run_logs_no_learner_details_no_message_text_and_no_secrets(tmp_path: Path,
                                                                          level: str):
    output = _full_run(tmp_path, level)
    # the run did its work: flags were raised and the skipped lines were reported
    assert re.search(r"scan: \d+ items", output) and "flag" in output
    assert "items.jsonl:5" in output and "items.jsonl:6" in output
    assert "facebook-page" in output  # the unreachable platform was reported by name
    leaks = _leaks(output)
    assert not leaks, f"printed at {level}: {leaks}\n{output}"


@pytest.mark.slow
def test_at_debug_details_may_appear_but_secrets_still_do_not(tmp_path: Path):
    output = _full_run(tmp_path, "DEBUG")
    assert not [label for label in _leaks(output) if label.startswith("secret")], output


def test_webhook_deliveries_accepted_refused_or_replayed_log_no_content(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """The service's webhook path, in process: a signed comment naming a learner, the same
    delivery again (the replay guard), a mis-signed one and a malformed signed one."""
    from starlette.testclient import TestClient

    from connectors.meta import sign
    from governance_bot.config import load_config
    from governance_bot.runtime import Runtime
    from governance_bot.service import Service

    config_path = _write_setup(tmp_path, "INFO")
    config = load_config(config_path, env=SECRETS)
    rt = Runtime.from_config(config)
    body = json.dumps({"object": "page", "entry": [{"id": "104000000001", "changes": [
        {"field": "feed", "value": {
            "from": {"id": "61000001", "name": "Maisie O'Connell"}, "item": "comment",
            "verb": "add", "created_time": 1789990000, "post_id": "104000000001_9",
            "comment_id": "9_1", "message": ITEMS[1]["text"]}}]}]}).encode()
    secret = SECRETS["GB_TEST_FB_APP_SECRET"]
    caplog.set_level("INFO")
    try:
        with TestClient(Service(rt).http_app()) as client:
            for content, signature in [(body, sign(body, secret)), (body, sign(body, secret)),
                                       (body, sign(body, "not-the-secret")),
                                       (b'{"object": "page", "entry": 7, "x": "Jayden Price"}',
                                        sign(b'{"object": "page", "entry": 7, "x": '
                                             b'"Jayden Price"}', secret))]:
                client.post("/webhooks/facebook-page", content=content,
                            headers={"X-Hub-Signature-256": signature})
    finally:
        rt.close()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= 20)
    assert "refused" in logged and "already accepted" in logged  # the paths were taken
    assert not _leaks(logged), logged
