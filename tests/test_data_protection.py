"""Data protection as the policy and UK GDPR ask: retention per category, a legal hold on
safeguarding records, a subject-access export and an erasure for one learner, all audited.

People are the invented Brookfield Academy of examples/registers.toml (Jayden Price is L001,
Maisie O'Connell L002, Daniel Mensah S006 a tutor).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from governance_bot.cli import app
from governance_bot.config import Config, RetentionSettings
from governance_bot.data_protection import (
    DataProtectionError,
    apply_retention,
    erase_learner,
    export_learner,
    place_hold,
    release_hold,
)
from governance_bot.findings import Category, Finding, Route, Severity
from governance_bot.flags import record_findings
from governance_bot.items import Item, Media, Person
from governance_bot.runtime import Runtime
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.dp_models import ItemRedaction, LegalHold

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=400)
DISCLOSURE = "please don't tell anyone but my stepdad hits me when he's drunk"


def item(native_id: str, text: str, *, kind: str = "post", account: str = "brookfield-facebook",
         platform: str = "facebook", author: Person | None = None,
         recipients: list[Person] | None = None, when: datetime = NOW,
         visibility: str = "public", thread: str | None = None,
         media: list[Media] | None = None) -> Item:
    return Item(id=native_id, platform=platform, account=account, kind=kind,
                author=author or Person(id="104000000001", name="Brookfield Academy"),
                recipients=recipients or [], created_at=when, visibility=visibility, text=text,
                thread_id=thread, media=media or [])


@pytest.fixture
def runtime(backend_config: Callable[..., Config]) -> Iterator[Runtime]:
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    rt.pipeline.clock = lambda: NOW
    yield rt
    rt.close()


def _version_data(rt: Runtime, key: str) -> list[dict]:
    with rt.db.session() as s:
        record = s.execute(select(m.ItemRecord).where(m.ItemRecord.key == key)).scalar_one()
        return [v.data for v in s.execute(select(m.ItemVersion).where(
            m.ItemVersion.item_id == record.id).order_by(m.ItemVersion.version)).scalars()]


def _safeguarding_dm(rt: Runtime, native_id: str = "dm-1", when: datetime = NOW,
                     severity: Severity = Severity.critical) -> str:
    """A learner's disclosure in a Teams chat with their tutor, flagged as a safeguarding
    concern (the finding the safeguarding detector would raise)."""
    dm = item(native_id, DISCLOSURE, kind="chat_message", account="brookfield-teams",
              platform="teams", author=Person(handle="@jaydenprice10"),
              recipients=[Person(email="d.mensah@brookfield.example.org")], when=when,
              visibility="direct", thread="chat-jayden-dm")
    rt.pipeline.process(dm)
    resolved = rt.registers.resolve(dm)
    with rt.db.session() as s:
        record = s.execute(select(m.ItemRecord).where(m.ItemRecord.key == resolved.key)
                           ).scalar_one()
        record_findings(s, record, [Finding(
            rule_id="safeguarding", category=Category.safeguarding, severity=severity,
            score=0.97, explanation="abuse disclosure", route=Route.dsl, item_key=record.key,
            subject="learner:L001")], now=when)
    return dm.key


# --- legal hold --------------------------------------------------------------------------------
def test_a_serious_safeguarding_flag_is_put_under_legal_hold_automatically(runtime: Runtime):
    key = _safeguarding_dm(runtime)
    with runtime.db.session() as s:
        flag = s.execute(select(m.Flag).join(m.ItemRecord, m.ItemRecord.id == m.Flag.item_id)
                         .where(m.ItemRecord.key == key)).scalar_one()
        holds = s.execute(select(LegalHold).where(LegalHold.flag_id == flag.id)).scalars().all()
        actions = [e.action for e in s.execute(select(m.AuditEvent)).scalars()]
    assert flag.legal_hold is True
    assert len(holds) == 1 and "safeguarding" in holds[0].reason
    assert "legal_hold.placed" in actions


def test_a_low_severity_safeguarding_finding_does_not_place_a_hold(runtime: Runtime):
    key = _safeguarding_dm(runtime, severity=Severity.medium)
    with runtime.db.session() as s:
        flag = s.execute(select(m.Flag).join(m.ItemRecord, m.ItemRecord.id == m.Flag.item_id)
                         .where(m.ItemRecord.key == key)).scalar_one()
    assert flag.legal_hold is False


def test_a_safeguarding_item_under_legal_hold_survives_retention_and_erasure(runtime: Runtime):
    held_key = _safeguarding_dm(runtime, when=LONG_AGO - timedelta(days=20000))
    # the tutor's reply in the same chat: part of the record, held with it
    reply = item("dm-2", "Thank you for telling me, Jayden. I have to pass this on to keep you "
                 "safe.", kind="chat_message", account="brookfield-teams", platform="teams",
                 author=Person(email="d.mensah@brookfield.example.org"),
                 recipients=[Person(handle="@jaydenprice10")], visibility="direct",
                 thread="chat-jayden-dm", when=LONG_AGO - timedelta(days=20000))
    runtime.pipeline.process(reply)
    far_future = NOW + timedelta(days=365 * 100)
    report = apply_retention(runtime.db, RetentionSettings(), "dpo", now=far_future)
    assert report.held == 2
    assert _version_data(runtime, held_key)[0]["text"] == DISCLOSURE

    erasure = erase_learner(runtime.db, runtime.config, "L001", "dpo", now=far_future)
    retained = dict(erasure.retained)
    assert set(retained) == {held_key, reply.key}
    assert all("safeguarding" in " ".join(r) for r in retained.values())
    assert _version_data(runtime, held_key)[0]["text"] == DISCLOSURE
    assert "stepdad" not in json.dumps(erasure.items_redacted)


def test_a_hold_placed_by_hand_keeps_an_item_until_it_is_released(runtime: Runtime):
    runtime.pipeline.process(item("p-1", "Well done to Jayden Price on his award!",
                                  when=LONG_AGO - timedelta(days=3000)))
    with runtime.db.session() as s:
        flag = s.execute(select(m.Flag)).scalar_one()
        assert flag.category == "learner_pii"
        place_hold(s, flag.id, "complaint from a parent: the post is evidence", "head")
    seven_years_on = NOW + timedelta(days=7 * 365)  # flagged items are kept 6 years
    first = apply_retention(runtime.db, RetentionSettings(), "dpo", now=seven_years_on)
    assert first.held == 1 and not first.items
    with runtime.db.session() as s:
        with pytest.raises(DataProtectionError, match="reason"):
            release_hold(s, flag.id, " ", "head")
        assert release_hold(s, flag.id, "complaint closed", "head") == 1
    second = apply_retention(runtime.db, RetentionSettings(), "dpo", now=seven_years_on)
    assert second.items == ["facebook:brookfield-facebook:p-1"]
    with runtime.db.session() as s:
        actions = [e.action for e in s.execute(select(m.AuditEvent)).scalars()]
    assert {"legal_hold.placed", "legal_hold.released", "retention.applied"} <= set(actions)


# --- retention ---------------------------------------------------------------------------------
def test_retention_removes_expired_content_but_keeps_a_tombstone_and_the_hash(runtime: Runtime):
    old = item("p-old", "Sports day was brilliant, thanks to everyone who came",
               when=LONG_AGO)
    recent = item("p-new", "Open evening on Thursday at 6pm", when=NOW - timedelta(days=30))
    flagged = item("p-flag", "Congratulations Maisie O'Connell!", when=LONG_AGO)
    for i in (old, recent, flagged):
        runtime.pipeline.process(i)
    with runtime.db.session() as s:
        hash_before = s.execute(select(m.ItemVersion.content_hash).join(
            m.ItemRecord, m.ItemRecord.id == m.ItemVersion.item_id).where(
            m.ItemRecord.key == old.key)).scalar_one()

    dry = apply_retention(runtime.db, RetentionSettings(), "dpo", dry_run=True, now=NOW)
    assert dry.items == [old.key]  # unflagged 365 days; the flagged one has 6 years
    assert _version_data(runtime, old.key)[0]["text"] == old.text

    real = apply_retention(runtime.db, RetentionSettings(), "dpo", now=NOW)
    assert real.items == [old.key] and real.expired == {"unflagged": 1}
    tomb = _version_data(runtime, old.key)[0]
    assert "Sports day" not in json.dumps(tomb)
    assert tomb["redacted"]["reason"] == "retention"
    assert Item.model_validate(tomb).id == "p-old"
    assert _version_data(runtime, recent.key)[0]["text"] == recent.text
    assert _version_data(runtime, flagged.key)[0]["text"] == flagged.text
    with runtime.db.session() as s:
        hash_after = s.execute(select(m.ItemVersion.content_hash).join(
            m.ItemRecord, m.ItemRecord.id == m.ItemVersion.item_id).where(
            m.ItemRecord.key == old.key)).scalar_one()
        redactions = s.execute(select(ItemRedaction)).scalars().all()
        assert auditlog.verify(s).ok
    assert hash_after == hash_before
    assert [r.reason for r in redactions] == ["retention"]
    # a second run finds nothing new to do
    assert apply_retention(runtime.db, RetentionSettings(), "dpo", now=NOW).items == []


def test_retention_days_are_set_per_category(runtime: Runtime):
    runtime.pipeline.process(item("p-flag", "Congratulations Maisie O'Connell!", when=LONG_AGO))
    settings = RetentionSettings(categories={"learner_pii": 200, "safeguarding": 9125})
    # counted from the flag's last change (NOW): kept at 199 days, gone at 201
    assert apply_retention(runtime.db, settings, "dpo", now=NOW + timedelta(days=199),
                           dry_run=True).expired == {}
    report = apply_retention(runtime.db, settings, "dpo", now=NOW + timedelta(days=201))
    assert report.expired == {"learner_pii": 1}


# --- subject access ----------------------------------------------------------------------------
def _jayden_archive(rt: Runtime) -> tuple[set[str], set[str]]:
    """Items about Jayden Price (L001) and items that are not."""
    about = [
        item("p-1", "Huge congratulations to Jayden Price on his county medal!"),
        item("p-2", "well done #JaydenPrice 🏅", platform="instagram",
             account="brookfield-instagram"),
        item("c-1", "@jaydenprice10 you legend", kind="comment", author=Person(handle="@fan99"),
             thread="p-1"),
        item("c-2", "thanks everyone!!", kind="comment", author=Person(handle="@jaydenprice10"),
             thread="p-1"),
        item("e-1", "Your work placement starts Monday.", kind="email",
             account="brookfield-email", platform="email",
             author=Person(email="t.ashworth@brookfield.example.org"),
             recipients=[Person(email="jayden.price@students.brookfield.example.org")],
             visibility="direct"),
        item("p-3", "Our athletics team at the county finals",
             media=[Media(sha256="a" * 64, tagged=[Person(handle="@jaydenprice10")])]),
    ]
    not_about = [
        item("p-4", "Congratulations Maisie O'Connell on her poetry prize"),
        item("p-5", "Mr Price from the PTA will run the cake stall"),
        item("c-3", "@maisie.fb amazing", kind="comment", author=Person(handle="@fan99"),
             thread="p-4"),
    ]
    for i in about + not_about:
        rt.pipeline.process(i)
    return {i.key for i in about}, {i.key for i in not_about}


def test_a_learners_export_contains_every_post_that_names_them(runtime: Runtime,
                                                               tmp_path: Path):
    about, not_about = _jayden_archive(runtime)
    data = export_learner(runtime.db, runtime.config, "L001", "dpo", now=NOW)
    keys = {i["key"] for i in data["items"]}
    assert keys == about
    assert not keys & not_about
    assert data["register_record"]["first_name"] == "Jayden"
    why = {i["key"]: set(i["why"]) for i in data["items"]}
    assert "named" in why["facebook:brookfield-facebook:p-1"]
    assert "author" in why["facebook:brookfield-facebook:c-2"]
    assert "recipient" in why["email:brookfield-email:e-1"]
    assert "photo_tag" in why["facebook:brookfield-facebook:p-3"]
    flags = {f["item"] for f in data["flags"]}
    assert "facebook:brookfield-facebook:p-1" in flags  # the learner_pii flag about him
    with runtime.db.session() as s:
        exported = s.execute(select(m.AuditEvent).where(
            m.AuditEvent.action == "learner.exported")).scalar_one()
    assert exported.subject == "learners:L001"
    assert "Jayden" not in json.dumps(exported.data)


def test_the_export_includes_the_safeguarding_record_and_its_hold(runtime: Runtime):
    key = _safeguarding_dm(runtime)
    data = export_learner(runtime.db, runtime.config, "L001", "dpo", now=NOW)
    entry = next(i for i in data["items"] if i["key"] == key)
    assert entry["legal_hold"] and entry["versions"][0]["content"]["text"] == DISCLOSURE
    flag = next(f for f in data["flags"] if f["item"] == key)
    assert flag["legal_hold"] is True
    assert {f["category"] for f in flag["findings"]} == {"safeguarding"}


# --- erasure -----------------------------------------------------------------------------------
def test_erasure_leaves_the_audit_log_verifiable(runtime: Runtime):
    about, _others = _jayden_archive(runtime)
    with runtime.db.session() as s:
        hashes = {r.key: r.content_hash for r in s.execute(select(m.ItemRecord)).scalars()}
        events_before = s.execute(select(m.AuditEvent)).scalars().all()
        before = len(events_before)
    report = erase_learner(runtime.db, runtime.config, "L001", "dpo", now=NOW)
    assert set(report.items_redacted) == about and report.register_record_removed
    assert not report.retained
    with runtime.db.session() as s:
        assert s.get(m.Learner, "L001") is None
        result = auditlog.verify(s)
        assert result.ok, result.problem
        assert result.checked == before + 1
        erased = s.execute(select(m.AuditEvent).where(
            m.AuditEvent.action == "learner.erased")).scalar_one()
        assert erased.data["items_redacted"] == len(about)
        after = {r.key: r.content_hash for r in s.execute(select(m.ItemRecord)).scalars()}
    assert after == hashes  # content hashes are kept
    for key in about:
        for data in _version_data(runtime, key):
            blob = json.dumps(data).casefold()
            assert "jayden" not in blob and "jaydenprice10" not in blob
            assert data["redacted"]["reason"] == "erasure"
    assert _version_data(runtime, "facebook:brookfield-facebook:p-4")[0]["text"].startswith(
        "Congratulations Maisie")
    # staff stay named on a redacted email: staff accountability is not the learner's data
    email = _version_data(runtime, "email:brookfield-email:e-1")[0]
    assert email["author"].get("register_id") == "S004" and email["recipients"] == []
    with pytest.raises(DataProtectionError, match="not in the register"):
        export_learner(runtime.db, runtime.config, "L001", "dpo")


def test_erasure_warns_when_the_register_file_would_bring_the_learner_back(runtime: Runtime):
    report = erase_learner(runtime.db, runtime.config, "L002", "dpo", now=NOW)
    assert any(p.endswith("registers.toml") for p in report.still_in_register_files)


# --- the commands ------------------------------------------------------------------------------
def test_the_commands_place_and_release_holds_export_and_erase(make_config: Callable[..., Config],
                                                               tmp_path: Path):
    config = make_config()
    rt = Runtime.from_config(config, with_connectors=False)
    rt.pipeline.process(item("p-1", "Huge congratulations to Jayden Price!"))
    rt.close()
    cfg = str(tmp_path / "config.toml")
    runner = CliRunner()

    r = runner.invoke(app, ["legal-hold", "set", "1", "--reason", "police enquiry", "-c", cfg,
                            "--by", "H Okafor"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["legal-hold", "list", "-c", cfg])
    assert "police enquiry" in r.output and "1 flag(s)" in r.output
    r = runner.invoke(app, ["legal-hold", "set", "99", "--reason", "x", "-c", cfg])
    assert r.exit_code == 2 and "no flag 99" in r.output
    r = runner.invoke(app, ["legal-hold", "release", "1", "--reason", "enquiry closed", "-c", cfg])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["retention", "apply", "--dry-run", "-c", cfg])
    assert r.exit_code == 0 and "would remove the content of 0 item(s)" in r.output

    out = tmp_path / "sar" / "L001.json"
    r = runner.invoke(app, ["learner", "export", "L001", "--output", str(out), "-c", cfg])
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert len(json.loads(out.read_text())["items"]) == 1

    r = runner.invoke(app, ["learner", "erase", "L001", "-c", cfg])
    assert r.exit_code == 2 and "--confirm" in r.output
    r = runner.invoke(app, ["learner", "erase", "L001", "--confirm", "-c", cfg])
    assert r.exit_code == 0, r.output
    assert "1 item(s)" in r.output and "still lists L001" in r.output
    r = runner.invoke(app, ["audit-log", "verify", "-c", cfg])
    assert r.exit_code == 0 and "intact" in r.output
