"""Sessions and forms in a real browser: HttpOnly SameSite cookies, a forged form post refused, an
expired session refused, sign-out final; case notes encrypted at rest; exports for a referral
(the PDF's text read back with pdftotext) and their audit; new flags appearing in an open queue."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from governance_bot.storage.console_models import CaseNote, ConsoleSession
from tests.console.conftest import DSL, MANAGER, World, comment, sign_in

pytestmark = pytest.mark.slow


def test_session_cookies_are_httponly_and_samesite(browser: Any, world: World):
    page = sign_in(browser, world, DSL)
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["gb_session"]  # loopback http (development): not Secure, see below
    assert session["httpOnly"] is True and session["sameSite"] == "Lax"
    page.context.close()


def test_a_forged_form_post_is_refused(browser: Any, world: World):
    page = sign_in(browser, world, DSL)
    case = world.flags["c-disclosure"]
    before = len(world.audit("console.note", f"flag:{case}"))
    # the browser carries the session cookie, as it would for a form on another site's page
    forged = page.context.request.post(f"{world.url}/flags/{case}/notes",
                                       form={"note": "forged"}, max_redirects=0)
    assert forged.status == 403
    wrong = page.context.request.post(f"{world.url}/flags/{case}/notes",
                                      form={"note": "forged", "csrf_token": "guess"},
                                      max_redirects=0)
    assert wrong.status == 403
    assert len(world.audit("console.note", f"flag:{case}")) == before
    assert len(world.audit("console.csrf_refused")) >= 2
    # a form from another origin (the identity provider's host) posting to the console
    page.goto(world.idp.url + "/.well-known/openid-configuration")
    page.set_content(f'<form method="post" action="{world.url}/flags/{case}/notes">'
                     '<input name="note" value="forged"><button>go</button></form>')
    page.click("button")
    page.wait_for_load_state()
    assert "This form has expired" in page.content()
    with world.rt.db.session() as s:
        notes = list(s.execute(select(CaseNote).where(CaseNote.flag_id == case)).scalars())
    assert all(n.text != "forged" for n in notes)
    page.context.close()


def _age_session(world: World, **fields: Any) -> None:
    with world.rt.db.session() as s:
        s.execute(update(ConsoleSession).where(ConsoleSession.ended_at.is_(None),
                                               ConsoleSession.email == MANAGER).values(**fields))


def test_an_idle_session_is_refused_and_must_sign_in_again(browser: Any, world: World):
    page = sign_in(browser, world, MANAGER)
    assert page.url == world.url + "/"
    _age_session(world, last_seen_at=datetime.now(UTC) - timedelta(hours=2))
    page.goto(f"{world.url}/flags/{world.flags['post-2']}")
    assert page.url.startswith(world.url + "/signin?expired=idle")
    assert "Your session ended" in page.inner_text("main")
    assert world.audit("console.session_expired")
    page.goto(world.url + "/")  # the old cookie is gone, and the session with it
    assert page.url.startswith(world.url + "/signin")
    page.context.close()


def test_a_session_past_its_absolute_limit_is_refused(browser: Any, world: World):
    page = sign_in(browser, world, MANAGER)
    _age_session(world, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    page.goto(world.url + "/")
    assert page.url.startswith(world.url + "/signin?expired=absolute")
    page.context.close()


def test_sign_out_ends_the_session(browser: Any, world: World):
    page = sign_in(browser, world, MANAGER)
    token = {c["name"]: c for c in page.context.cookies()}["gb_session"]["value"]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert "You have signed out" in page.inner_text("main")
    # the old cookie, replayed, signs nobody in
    context = browser.new_context()
    context.add_cookies([{"name": "gb_session", "value": token, "url": world.url}])
    replay = context.new_page()
    replay.goto(world.url + "/")
    assert replay.url.startswith(world.url + "/signin")
    context.close()
    page.context.close()


def test_case_notes_are_encrypted_at_rest(browser: Any, world: World):
    page = sign_in(browser, world, DSL)
    case = world.flags["c-disclosure"]
    page.goto(f"{world.url}/flags/{case}")
    secret = "Spoke to Maisie with her head of year; social care called at 11:40"
    page.get_by_label("Add a note").fill(secret)
    page.get_by_role("button", name="Add note").click()
    page.wait_for_load_state()
    assert "Case note added" in page.inner_text("main") and secret in page.inner_text("main")
    assert world.audit("console.note", f"flag:{case}")
    # append-only: the page offers no way to change or remove it
    assert page.locator("form[action$='/notes/1']").count() == 0
    # the database file (and its write-ahead log) never holds the note in clear
    db_file = world.rt.config.database_url.removeprefix("sqlite:///")
    raw = b"".join(Path(p).read_bytes() for p in (db_file, db_file + "-wal")
                   if Path(p).exists())
    assert secret.encode() not in raw and b"social care called" not in raw
    with sqlite3.connect(db_file) as conn:
        stored = conn.execute("SELECT text FROM case_notes ORDER BY id DESC LIMIT 1").fetchone()
    assert stored[0].startswith("gbenc1:")
    page.context.close()


def test_a_case_is_exported_as_pdf_csv_and_json_and_each_export_is_audited(
    browser: Any, world: World, tmp_path: Any,
):
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        import os

        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("pdftotext is missing (Debian package poppler-utils)")
        pytest.skip("pdftotext is not installed (Debian package poppler-utils)")
    page = sign_in(browser, world, DSL)
    case = world.flags["c-disclosure"]
    page.goto(f"{world.url}/flags/{case}")
    with page.expect_download() as download:
        page.get_by_role("link", name="PDF").click()
    pdf = tmp_path / "case.pdf"
    download.value.save_as(pdf)
    text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    for expected in (f"online-safety case {case}", "Exported by Helen Okafor",
                     "he hurts me at home", "Maisie O'Connell", "Chronology",
                     "safeguarding concern", "What a day, loved the relay"):
        assert expected in text, expected
    with page.expect_download() as download:
        page.get_by_role("link", name="CSV").click()
    csv_text = Path(download.value.path()).read_text(encoding="utf-8")
    assert csv_text.splitlines()[0] == "when (UTC),who,what,detail" and "flagged" in csv_text
    with page.expect_download() as download:
        page.get_by_role("link", name="JSON").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert data["flag_id"] == case and data["learners"][0]["name"] == "Maisie O'Connell"
    exports = world.audit("console.export", f"flag:{case}")
    assert [e.data["format"] for e in exports][-3:] == ["pdf", "csv", "json"]
    assert all(e.actor == "staff:S001" for e in exports)
    page.context.close()


def test_a_new_flag_appears_in_an_open_queue_within_five_seconds(browser: Any, world: World):
    page = sign_in(browser, world, DSL)
    assert page.url == world.url + "/"
    before = page.locator("#queue-rows tr").count()
    started = time.monotonic()
    world.ingest(comment("c-new", "nobody would miss me", {"handle": "@olly_sh"},
                         at=datetime(2026, 11, 21, 22, 0, tzinfo=UTC)))
    new_id = world.flag_id("c-new")
    page.wait_for_selector(f"#queue-rows a[href='/flags/{new_id}']", timeout=5000)
    elapsed = time.monotonic() - started
    assert elapsed < 5.0
    assert page.locator("#queue-rows tr").count() == before + 1
    assert "1 new flag" in page.inner_text("#live")
    page.context.close()
