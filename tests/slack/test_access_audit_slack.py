"""The weekly dual-access audit through Slack: every current designated manager is asked by DM,
answers with buttons and a modal that never asks for a password, is reminded once, and the
findings reach the account managers and the DSL with a *Mark resolved* action that only they may
use. Everything goes through the real bolt app (signed requests) and the real slack_sdk client
against the local fake Slack Web API, with a controllable clock."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors.base import AccountFacts, Capability, Connector, ConnectorSettings, FetchResult
from governance_bot.access_audit.cycle import AccessAudit
from governance_bot.config import Config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.slack.access_audit import SlackAccessAuditNotifier
from governance_bot.storage import auditlog
from governance_bot.storage.audit_models import AccessAttestation, AccessFinding
from rules.engine import DETECTORS
from tests.slack.conftest import (
    DEPUTY_1,
    DEPUTY_2,
    DSL,
    FB_MANAGER_1,
    FB_MANAGER_2,
    TUTOR,
    Clock,
    SlackWorld,
)
from tests.slack.fake_slack import Call, FakeSlack
from tests.slack.helpers import SIGNING_SECRET, form, sign

MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # GMT: London time is UTC in November


# --- interaction payloads -----------------------------------------------------------------------
def _user(user: str) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "team_id": "T0BROOK"}


def click(user: str, action_id: str, value: int, channel: str, message_ts: str
          ) -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": "T0BROOK", "domain": "brookfield"},
            "user": _user(user), "api_app_id": "A0GOV", "token": "legacy",
            "trigger_id": f"trig.{user}.{action_id}.{value}",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "channel": {"id": channel, "name": "directmessage"},
            "actions": [{"type": "button", "action_id": action_id, "value": str(value),
                         "block_id": f"b{value}", "action_ts": "1790000000.5"}]}


def submission(user: str, view: dict[str, Any], values: dict[str, dict[str, Any]]
               ) -> dict[str, Any]:
    """Submit ``view`` (as the bot opened it) with ``values`` per block id."""
    return {"type": "view_submission", "team": {"id": "T0BROOK", "domain": "brookfield"},
            "user": _user(user), "api_app_id": "A0GOV", "token": "legacy",
            "trigger_id": f"trig.{user}.submit",
            "view": {"id": "V0001", "type": "modal", "callback_id": view["callback_id"],
                     "private_metadata": view["private_metadata"],
                     "state": {"values": {k: {"value": v} for k, v in values.items()}},
                     "hash": "1", "team_id": "T0BROOK", "app_id": "A0GOV"}}


def radio(value: str) -> dict[str, Any]:
    return {"type": "radio_buttons",
            "selected_option": {"value": value, "text": {"type": "plain_text", "text": value}}}


def picked(day: date | None) -> dict[str, Any]:
    return {"type": "datepicker", "selected_date": day.isoformat() if day else None}


def note(text: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": text}


# --- helpers over the recorded calls --------------------------------------------------------------
def wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def opened_view(fake: FakeSlack, count: int) -> dict[str, Any]:
    """The ``count``-th modal the bot opened (waits for it: lazy listeners run after the ack)."""
    return dict(fake.wait_for("views.open", count)[count - 1].params["view"])


def every_view(fake: FakeSlack) -> Iterator[dict[str, Any]]:
    """Every block the bot sent to Slack: messages, updates, ephemerals and modals."""
    for call in fake.calls():
        for key in ("blocks", "view"):
            value = call.params.get(key)
            if isinstance(value, dict):
                yield from value.get("blocks") or []
            elif isinstance(value, list):
                yield from value


def elements(block: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "element" in block:
        yield block["element"]
    if "accessory" in block:
        yield block["accessory"]
    yield from block.get("elements") or []


def assert_no_password_field(fake: FakeSlack) -> None:
    """Nothing the bot sent could take a password: no text input asks about one, no element is a
    password type, and every question says passwords are never asked for."""
    seen_inputs = 0
    for block in every_view(fake):
        for el in elements(block):
            assert "password" not in str(el.get("type", "")).lower()
        if block.get("type") == "input":
            seen_inputs += 1
            label = block["label"]["text"].lower()
            if block["element"]["type"] == "plain_text_input":
                assert "password" not in label, block
                assert "what was done" in label  # the only free text: the resolution note
    assert seen_inputs > 0
    for call in fake.calls("views.open"):
        view = call.params["view"]
        assert any("never ask for passwords" in json.dumps(b) for b in view["blocks"])


def posts_to(fake: FakeSlack, channel: str) -> list[Call]:
    return [c for c in fake.calls("chat.postMessage") if c.params.get("channel") == channel]


class AuditWorld:
    """The Slack world of tests/slack/conftest.py, plus the service's access audit."""

    def __init__(self, world: SlackWorld):
        self.w = world
        self.fake = world.fake
        self.audit: AccessAudit = world.service.access_audit
        self.audit.clock = world.clock
        world.clock.now = MONDAY_9AM
        self.views = 0

    def attestations(self) -> dict[tuple[str, str], AccessAttestation]:
        with self.w.rt.db.session() as s:
            rows = list(s.execute(select(AccessAttestation)).scalars())
            for r in rows:
                s.expunge(r)
        return {(r.account_id, r.staff_id): r for r in rows}

    def answer(self, user: str, att: AccessAttestation, *, can: bool, two_factor: bool,
               changed: date | None) -> dict[str, Any]:
        ref = att.message_ref or {}
        resp = self.w.send(click(user, "gb_access_can" if can else "gb_access_cannot", att.id,
                                 ref["channel"], ref["ts"]))
        assert resp.status_code == 200
        self.views += 1
        view = opened_view(self.fake, self.views)
        resp = self.w.send(submission(user, view, {"two_factor": radio(
            "yes" if two_factor else "no"), "password_changed": picked(changed)}))
        assert resp.status_code == 200 and resp.text == ""
        wait_until(lambda: self.attestations()[(att.account_id, att.staff_id)].answered_at
                   is not None)
        return view


@pytest.fixture
def aw(world: SlackWorld) -> AuditWorld:
    return AuditWorld(world)


def test_the_whole_weekly_cycle_ask_chase_finding_resolve_through_slack(aw: AuditWorld):
    fake, w = aw.fake, aw.w
    assert isinstance(aw.audit.notifier, SlackAccessAuditNotifier)  # Slack on: Slack notifier

    # --- ask: every current designated manager of every account, by DM ----------------------
    w.service.start_access_audit()
    atts = aw.attestations()
    assert sorted(atts) == [
        ("brookfield-email", "S002"), ("brookfield-email", "S004"),
        ("brookfield-facebook", "S004"), ("brookfield-facebook", "S005"),
        ("brookfield-instagram", "S005"), ("brookfield-teams", "S002"),
        ("brookfield-teams", "S004"), ("brookfield-x", "S004"), ("brookfield-x", "S005")]
    assert "S008" not in {s for _, s in atts}  # the leaver is not asked
    slack_ids = {"S002": DEPUTY_1, "S004": FB_MANAGER_1, "S005": FB_MANAGER_2}
    for (account, sid), att in atts.items():
        dm = fake.conversation_for(slack_ids[sid])
        assert dm is not None and att.message_ref and att.message_ref["channel"] == dm
        [question] = [m for m in fake.messages(dm) if m["ts"] == att.message_ref["ts"]]
        shown = json.dumps(question["blocks"])
        assert account in shown and "Wednesday 25 November, 09:00" in shown
        assert "We never ask for passwords" in shown
        buttons = [e for b in question["blocks"] for e in b.get("elements") or []
                   if e.get("type") == "button"]
        assert [(b["action_id"], b["text"]["text"], b["value"]) for b in buttons] == [
            ("gb_access_can", "I can log in", str(att.id)),
            ("gb_access_cannot", "I can't log in", str(att.id))]
    fb = atts[("brookfield-facebook", "S004")]
    assert fb.message_ref is not None
    assert "Facebook BrookfieldAcademy" in json.dumps(fake.messages(fb.message_ref["channel"]))

    # --- answers: everyone but Grace Lindqvist (S005) answers on Monday ------------------------
    view = aw.answer(FB_MANAGER_1, fb, can=True, two_factor=True, changed=date(2026, 11, 1))
    modal_blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert modal_blocks["two_factor"]["label"]["text"] == "Is two-factor authentication on?"
    assert [o["value"] for o in modal_blocks["two_factor"]["element"]["options"]] == ["yes", "no"]
    assert modal_blocks["password_changed"]["label"]["text"] == \
        "When was the password last changed?"
    assert modal_blocks["password_changed"]["element"]["type"] == "datepicker"
    # the question is updated in place: answered, the buttons gone
    fb_ref = fb.message_ref or {}
    wait_until(lambda: any(c.params.get("ts") == fb_ref["ts"]
                           for c in fake.calls("chat.update")))
    [updated] = [m for m in fake.messages(fb_ref["channel"]) if m["ts"] == fb_ref["ts"]]
    assert "answered" in json.dumps(updated["blocks"])
    assert "gb_access_can" not in json.dumps(updated["blocks"])
    for (account, sid), att in atts.items():
        if sid == "S004" and account != "brookfield-facebook":
            aw.answer(FB_MANAGER_1, att, can=True, two_factor=True, changed=date(2026, 11, 2))
        elif sid == "S002":
            aw.answer(DEPUTY_1, att, can=True, two_factor=True, changed=date(2026, 11, 10))

    # a future date is refused by the modal itself, before anything is recorded
    x_grace = atts[("brookfield-x", "S005")]
    resp = w.send(click(FB_MANAGER_2, "gb_access_can", x_grace.id, "D-any", "1.1"))
    aw.views += 1
    grace_view = opened_view(fake, aw.views)
    resp = w.send(submission(FB_MANAGER_2, grace_view, {"two_factor": radio("yes"),
                                                        "password_changed": picked(
                                                            date(2026, 12, 25))}))
    assert resp.json() == {"response_action": "errors",
                           "errors": {"password_changed": "That date is in the future."}}
    assert aw.attestations()[("brookfield-x", "S005")].answered_at is None

    # someone else pressing Grace's button is refused, privately, and it is audited
    before = len(fake.calls("chat.postEphemeral"))
    resp = w.send(click(FB_MANAGER_1, "gb_access_can", x_grace.id, "D00000009", "1.1"))
    assert resp.status_code == 200
    [refusal] = fake.wait_for("chat.postEphemeral", before + 1)[before:]
    assert refusal.params["user"] == FB_MANAGER_1
    assert "Only the manager who was asked" in refusal.params["text"]
    assert len(fake.calls("views.open")) == aw.views  # no modal for them
    assert [e.data["slack_user"] for e in w.audit("access_audit.attest_refused")] == [
        FB_MANAGER_1]

    # --- chase: after 24 hours, once, only those who did not answer --------------------------
    w.clock.advance(hours=23)
    aw.audit.tick()
    assert not [c for c in fake.calls("chat.postMessage") if c.params.get("thread_ts")]
    w.clock.advance(hours=2)
    aw.audit.tick()
    aw.audit.tick()
    reminders = [c for c in fake.calls("chat.postMessage") if c.params.get("thread_ts")]
    grace = {a.message_ref["ts"] for (_, s), a in atts.items() if s == "S005" and a.message_ref}
    assert sorted(c.params["thread_ts"] for c in reminders) == sorted(grace)  # once each
    assert all(c.params["channel"] == fake.conversation_for(FB_MANAGER_2) for c in reminders)
    assert all("Reminder" in c.params["text"] for c in reminders)

    # Grace answers one after the reminder: she can log in but two-factor is off
    aw.answer(FB_MANAGER_2, x_grace, can=True, two_factor=False, changed=date(2026, 11, 20))

    # --- the deadline: findings, in one summary to the managers and the DSL -------------------
    w.clock.advance(hours=24)
    aw.audit.tick()
    people = sorted([DSL, DEPUTY_1, DEPUTY_2, FB_MANAGER_1, FB_MANAGER_2])
    group = fake.conversation_for(*people)
    assert group is not None
    [summary_post] = posts_to(fake, group)
    with w.rt.db.session() as s:
        findings = {(f.account_id, f.check, f.subject): f.id
                    for f in s.execute(select(AccessFinding)).scalars()}
    assert set(findings) == {
        ("brookfield-facebook", "no_attestation", "S005"),
        ("brookfield-instagram", "no_attestation", "S005"),
        ("brookfield-instagram", "leaver_as_manager", "S008"),
        ("brookfield-instagram", "too_few_managers", None),
        ("brookfield-x", "two_factor_off", "S005"),
    }
    summary = json.dumps(summary_post.params["blocks"])
    assert "ask Grace Lindqvist to log in" in summary
    assert "turn on two-factor authentication" in summary
    assert "appoint another current member of staff" in summary
    resolve_buttons = [b["accessory"] for b in summary_post.params["blocks"]
                       if (b.get("accessory") or {}).get("action_id") == "gb_access_resolve"]
    assert sorted(int(b["value"]) for b in resolve_buttons) == sorted(findings.values())
    assert {b["text"]["text"] for b in resolve_buttons} == {"Mark resolved"}
    aw.audit.tick()  # closing twice sends nothing twice
    assert len(posts_to(fake, group)) == 1
    summary_ts = fake.messages(group)[0]["ts"]

    # --- resolve: a tutor (no account, not the DSL) is refused, privately, and audited ---------
    two_fa = findings[("brookfield-x", "two_factor_off", "S005")]
    before = len(fake.calls("chat.postEphemeral"))
    w.send(click(TUTOR, "gb_access_resolve", two_fa, group, summary_ts))
    [refusal] = fake.wait_for("chat.postEphemeral", before + 1)[before:]
    assert refusal.params["user"] == TUTOR and refusal.params["channel"] == group
    assert "Only this account's designated managers or the DSL" in refusal.params["text"]
    refused = w.audit("access_audit.resolve_refused")
    assert [(e.actor, e.subject) for e in refused] == [("S006", f"access_finding:{two_fa}")]

    # --- resolve: Grace marks the 2FA finding resolved with a note ------------------------------
    w.send(click(FB_MANAGER_2, "gb_access_resolve", two_fa, group, summary_ts))
    aw.views += 1
    resolve_view = opened_view(fake, aw.views)
    labels = [b["label"]["text"] for b in resolve_view["blocks"] if b["type"] == "input"]
    assert labels == ["What was done? (required)"]
    empty = w.send(submission(FB_MANAGER_2, resolve_view, {"note": note("   ")}))
    assert empty.json()["response_action"] == "errors"  # a note is required
    w.send(submission(FB_MANAGER_2, resolve_view, {
        "note": note("Turned on two-factor authentication with the authenticator app")}))
    wait_until(lambda: any(c.params.get("ts") == summary_ts and c.params.get("channel") == group
                           for c in fake.calls("chat.update")))
    with w.rt.db.session() as s:
        row = s.get(AccessFinding, two_fa)
        assert row is not None
        assert (row.status, row.resolved_by) == ("resolved", "S005")
    [shown] = [m for m in fake.messages(group) if m["ts"] == summary_ts]
    block = next(b for b in shown["blocks"] if b.get("block_id") == f"gb_access_finding_{two_fa}")
    assert "Resolved by Grace Lindqvist, 25 Nov 10:00" in block["text"]["text"]
    assert "authenticator app" in block["text"]["text"]
    assert "accessory" not in block  # nobody can resolve it twice
    still_open = [b for b in shown["blocks"] if "accessory" in b]
    assert len(still_open) == len(findings) - 1

    # the DSL (Helen Okafor, no account of her own) may resolve any finding
    leaver = findings[("brookfield-instagram", "leaver_as_manager", "S008")]
    w.send(click(DSL, "gb_access_resolve", leaver, group, summary_ts))
    aw.views += 1
    dsl_view = opened_view(fake, aw.views)
    w.send(submission(DSL, dsl_view, {"note": note("Leon removed; password changed")}))
    wait_until(lambda: "Resolved by Helen Okafor" in json.dumps(
        next(m for m in fake.messages(group) if m["ts"] == summary_ts)["blocks"]))

    # --- what was recorded, and what was never asked ------------------------------------------
    with w.rt.db.session() as s:
        assert auditlog.verify(s).ok
    assert len(w.audit("access_audit.attested")) == 7
    assert len(w.audit("access_audit.resolved")) == 2
    [sent] = w.audit("access_audit.summary_sent")
    assert sent.data["channel"] == group and sent.data["ts"] == summary_ts
    assert_no_password_field(fake)


def test_a_manager_of_other_accounts_cannot_resolve_this_accounts_finding(aw: AuditWorld):
    """Being a designated manager of one account gives no say over another's findings. The
    example organisation's managers all manage every account or are deputies, so for this test
    Daniel Mensah (a tutor) is made a manager of the Teams account only, and tries to resolve an
    Instagram finding."""
    w, fake = aw.w, aw.fake
    regs = w.rt.registers
    regs.accounts["brookfield-teams"].managers.append("S006")
    aw.audit.start()
    w.clock.advance(hours=49)
    aw.audit.tick()
    with w.rt.db.session() as s:
        insta = s.execute(select(AccessFinding.id).where(
            AccessFinding.account_id == "brookfield-instagram",
            AccessFinding.check == "too_few_managers")).scalar_one()
    [event] = w.audit("access_audit.summary_sent")
    w.send(click(TUTOR, "gb_access_resolve", insta, event.data["channel"], event.data["ts"]))
    [refusal] = fake.wait_for("chat.postEphemeral", 1)
    assert "Only this account's designated managers" in refusal.params["text"]
    assert [e.actor for e in w.audit("access_audit.resolve_refused")] == ["S006"]
    assert not fake.calls("views.open")
    with w.rt.db.session() as s:
        row = s.get(AccessFinding, insta)
        assert row is not None and row.status == "open"


def test_a_forged_resolution_submission_is_refused_even_without_the_button(aw: AuditWorld):
    """The modal's submission is checked again: a tutor who crafts one is refused and audited."""
    w, fake = aw.w, aw.fake
    aw.audit.start()
    w.clock.advance(hours=49)
    aw.audit.tick()
    with w.rt.db.session() as s:
        target = s.execute(select(AccessFinding.id)).scalars().first()
    view = {"callback_id": "gb_access_resolve_submit",
            "private_metadata": json.dumps({"finding_id": target, "channel": None})}
    resp = w.send(submission(TUTOR, view, {"note": note("trust me")}))
    assert resp.status_code == 200
    wait_until(lambda: len(w.audit("access_audit.resolve_refused")) == 1)
    dm = fake.wait_for("chat.postMessage", 1)
    assert any("Only this account's designated managers" in c.params.get("text", "")
               for c in dm)
    with w.rt.db.session() as s:
        row = s.get(AccessFinding, target)
        assert row is not None and row.status == "open"


# --- the five kinds of problem, end to end --------------------------------------------------------
FIVE_ACCOUNTS = """
[[staff]]
staff_id = "T01"
name = "Imogen Hale"
email = "i.hale@oakridge.example.org"
slack_user_id = "U0IHALE"
role = "dsl"

[[staff]]
staff_id = "T02"
name = "Rafael Costa"
email = "r.costa@oakridge.example.org"
slack_user_id = "U0RCOSTA"
role = "account_manager"

[[staff]]
staff_id = "T03"
name = "Nadia Brooks"
email = "n.brooks@oakridge.example.org"
slack_user_id = "U0NBROOKS"
role = "account_manager"

[[staff]]
staff_id = "T04"
name = "Owen Pritchard"
email = "o.pritchard@oakridge.example.org"
slack_user_id = "U0OPRITCH"
role = "account_manager"
active = false

[[accounts]]
account_id = "oak-tiktok"
platform = "tiktok"
handle = "@oakridge.school"
managers = ["T02"]

[[accounts]]
account_id = "oak-x"
platform = "x"
handle = "@OakridgeSchool"
managers = ["T02", "T04"]

[[accounts]]
account_id = "oak-facebook"
platform = "facebook"
handle = "Oakridge School"
managers = ["T02", "T03"]

[[accounts]]
account_id = "oak-youtube"
platform = "youtube"
handle = "@OakridgeSchoolTV"
managers = ["T02", "T03"]

[[accounts]]
account_id = "oak-instagram"
platform = "instagram"
handle = "@oakridge.school"
managers = ["T02", "T03"]
"""


class FactsConnector(Connector):
    """Test-only: a connector that reports fixed platform facts (admins, privacy), as a platform
    connector would from its API. It reads nothing."""

    type: ClassVar[str] = "facts-test"
    capabilities = frozenset({Capability.read})

    def __init__(self, settings: ConnectorSettings, facts: AccountFacts):
        super().__init__(settings)
        self.facts = facts

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        return FetchResult(items=[], cursor=cursor)

    def account_facts(self) -> AccountFacts:
        return self.facts


@pytest.fixture
def oakridge(tmp_path: Path, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
             ) -> Iterator[SlackWorld]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    registers = tmp_path / "registers.toml"
    registers.write_text(FIVE_ACCOUNTS)
    config = Config(
        organisation={"name": "Oakridge School (invented)"},
        database={"url": f"sqlite:///{tmp_path / 'gb.db'}"},
        registers={"file": registers}, delivery={"sink": "slack"},
        detection={"disabled_rules": list(DETECTORS)},
        slack={"enabled": True, "api_url": fake_slack.base_url},
        audit={"required_settings": {"visibility": "private", "passcode": True,
                                     "waiting_room": True}},
    )
    rt = Runtime.from_config(config)
    rt.connectors.append(FactsConnector(
        ConnectorSettings(name="facebook-facts", type="facts-test", account="oak-facebook"),
        AccountFacts(account_id="oak-facebook", admins=[
            {"email": "r.costa@oakridge.example.org", "role": "admin", "two_factor": True},
            {"email": "n.brooks@oakridge.example.org", "role": "admin", "two_factor": True},
            {"id": "61550012", "name": "Kieran Webb", "role": "admin"},
        ])))
    rt.connectors.append(FactsConnector(
        ConnectorSettings(name="instagram-facts", type="facts-test", account="oak-instagram"),
        AccountFacts(account_id="oak-instagram", privacy={"visibility": "public"})))
    clock = Clock(MONDAY_9AM)
    service = Service(rt)
    service.slack.bot.clock = clock
    service.access_audit.clock = clock
    http = TestClient(service.http_app())
    yield SlackWorld(fake_slack, rt, service, http, clock, None)  # type: ignore[arg-type]
    http.close()
    rt.close()


def test_each_kind_of_problem_reaches_the_slack_summary_with_a_clear_remedy(
    oakridge: SlackWorld,
):
    """One account with one manager, one with a leaver as manager, one with an unknown admin on
    the platform, one with a stale password, one with public settings: the platform facts come
    from a test-only ``FactsConnector`` (above), the answers through the Slack modals."""
    w = oakridge
    aw = AuditWorld(w)
    aw.audit.start()
    atts = aw.attestations()
    for (account, sid), att in sorted(atts.items()):
        user = {"T02": "U0RCOSTA", "T03": "U0NBROOKS"}[sid]
        stale = account == "oak-youtube" and sid == "T03"
        aw.answer(user, att, can=True, two_factor=True,
                  changed=date(2026, 8, 30) if stale else date(2026, 11, 16))
    w.clock.advance(hours=48)
    aw.audit.tick()
    group = w.fake.conversation_for("U0IHALE", "U0NBROOKS", "U0RCOSTA")
    assert group is not None
    [summary] = posts_to(w.fake, group)
    rows = {b["block_id"]: b["text"]["text"] for b in summary.params["blocks"]
            if str(b.get("block_id", "")).startswith("gb_access_finding_")}
    text = "\n".join(rows.values())

    def line(handle: str, what: str) -> str:
        found = [t for t in rows.values() if handle in t and what in t]
        assert len(found) == 1, (handle, what, text)
        return found[0]

    one = line("TikTok @oakridge.school", "1 current designated manager")
    assert "Remedy:* appoint another current member of staff as a designated manager" in one
    leaver = line("X @OakridgeSchool", "Owen Pritchard (T04) has left")
    assert "Remedy:* remove T04 from the managers of oak-x, change the account's password" in \
        leaver
    unknown = line("Facebook Oakridge School", "an admin the registers do not know: Kieran Webb")
    assert "Remedy:* remove their admin role on the platform, or add them to the staff " \
        "register" in unknown
    stale = line("YouTube @OakridgeSchoolTV", "password last changed 87 days ago")
    assert "Remedy:* change the password now, in the password manager" in stale
    public = line("Instagram @oakridge.school", "visibility is 'public'")
    assert "Remedy:* set visibility to 'private' on the platform" in public
    assert len(rows) == 6  # the five above, and the leaver leaves X with too few managers
    assert "Remedy:* appoint another" in line("X @OakridgeSchool", "1 current designated")
    assert_no_password_field(w.fake)


def test_the_slack_notifier_is_used_only_when_slack_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
):
    from governance_bot.access_audit.cycle import ConsoleNotifier

    config = Config(database={"url": f"sqlite:///{tmp_path / 'gb.db'}"},
                    registers={"file": Path(__file__).resolve().parents[2] / "examples" /
                               "registers.toml"})
    rt = Runtime.from_config(config)
    try:
        assert isinstance(Service(rt).access_audit.notifier, ConsoleNotifier)
    finally:
        rt.close()


def test_unsigned_audit_clicks_are_rejected(aw: AuditWorld):
    aw.audit.start()
    att = next(iter(aw.attestations().values()))
    body = form(click(FB_MANAGER_1, "gb_access_can", att.id, "D1", "1.1"))
    resp = aw.w.http.post("/slack/events", content=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        **sign(body, secret="not-the-secret")})
    assert resp.status_code == 401
    assert not aw.fake.calls("views.open")


def test_a_slack_outage_while_asking_loses_no_question(aw: AuditWorld):
    """Slack down at 09:00: nobody is asked, but the run goes on; the reminder asks in full and
    the managers can still answer before the deadline."""
    fake, w = aw.fake, aw.w
    w.bot.client.retry_handlers = []  # fail fast (the client's own retries are tested elsewhere)
    fake.down_status = 503
    aw.audit.start()
    assert all(a.message_ref is None for a in aw.attestations().values())
    fake.down_status = None
    w.clock.advance(hours=25)
    aw.audit.tick()
    atts = aw.attestations()
    assert all(a.message_ref for a in atts.values())  # asked again, with buttons
    first = atts[("brookfield-facebook", "S004")]
    aw.answer(FB_MANAGER_1, first, can=True, two_factor=True, changed=date(2026, 11, 20))
    assert aw.attestations()[("brookfield-facebook", "S004")].can_log_in is True

