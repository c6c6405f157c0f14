"""A learner-facing Slack workspace, read with the real slack_sdk against a local fake Web API
(tests/fake_slack_workspace.py), and its Events API (signed requests only).

Policy: staff-learner messages are checked on every channel; staff do not delete messages sent
to or from organisation accounts, so a deletion is recorded with the last copy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from slack_sdk.signature import SignatureVerifier

from connectors.base import FatalError, WebhookRequest
from connectors.registry import load
from connectors.slack_workspace import SlackWorkspaceConnector, SlackWorkspaceSettings
from governance_bot.findings import Category
from governance_bot.items import ItemKind, Role, Visibility
from rules.accountability import AccountabilityDetector
from rules.base import DetectionContext
from rules.packs import load_pack
from tests.contract.harness import SleepRecorder
from tests.fake_slack_workspace import FakeWorkspace
from tests.helpers import MemoryHistory, example_index

NOW = 1_773_169_200.0  # 2026-03-10T19:00:00Z
SIGNING = "slack-signing-secret-0c0c"


def ts(minutes_ago: float) -> str:
    return f"{NOW - minutes_ago * 60:.6f}"


def user(uid: str, name: str, email: str) -> dict[str, object]:
    return {"id": uid, "name": name.split()[0].lower(), "real_name": name,
            "profile": {"real_name": name, "email": email}}


USERS = {
    "U0TUTOR": user("U0TUTOR", "Daniel Mensah", "d.mensah@brookfield.example.org"),
    "U0LEARN": user("U0LEARN", "Jayden Price", "jayden.price@students.brookfield.example.org"),
    "U0TUTR2": user("U0TUTR2", "Sophie Carrington", "s.carrington@brookfield.example.org"),
}
PARENT = ts(600)


def workspace() -> FakeWorkspace:
    return FakeWorkspace(
        users=USERS,
        channels={
            "C0COHORT": {"id": "C0COHORT", "name": "cohort-2026", "is_channel": True,
                         "is_member": True},
            "D0DM": {"id": "D0DM", "is_im": True, "user": "U0LEARN"},
            "C0NOTME": {"id": "C0NOTME", "name": "staffroom", "is_channel": True,
                        "is_member": False},
        },
        history={
            "C0COHORT": [  # newest first, as Slack answers
                {"type": "message", "user": "U0TUTOR", "ts": ts(30),
                 "text": "<@U0LEARN> please bring your portfolio",
                 "edited": {"user": "U0TUTOR", "ts": ts(25)}},
                {"type": "message", "subtype": "channel_join", "user": "U0LEARN", "ts": ts(40),
                 "text": "<@U0LEARN> has joined the channel"},
                {"type": "message", "user": "U0TUTR2", "ts": PARENT, "thread_ts": PARENT,
                 "reply_count": 1, "latest_reply": ts(500), "text": "Trip forms due Friday"},
            ],
            "D0DM": [
                {"type": "message", "user": "U0TUTOR", "ts": ts(10),
                 "text": "Did you finish the coursework?"},
            ],
            "C0NOTME": [{"type": "message", "user": "U0TUTOR", "ts": ts(5), "text": "private"}],
        },
        replies={("C0COHORT", PARENT): [
            {"type": "message", "user": "U0TUTR2", "ts": PARENT, "thread_ts": PARENT,
             "text": "Trip forms due Friday"},
            {"type": "message", "user": "U0LEARN", "ts": ts(500), "thread_ts": PARENT,
             "text": "ok miss"},
        ]},
        members={"C0COHORT": ["U0TUTOR", "U0LEARN", "U0TUTR2"]},
    )


@pytest.fixture
def fake() -> Iterator[FakeWorkspace]:
    with workspace() as server:
        yield server


def connector(fake: FakeWorkspace, sleep: SleepRecorder | None = None,
              token: str | None = None) -> SlackWorkspaceConnector:
    settings = SlackWorkspaceSettings.model_validate({
        "name": "learner-slack", "type": "slack_workspace", "account": "brookfield-slack",
        "token": token or fake.token, "signing_secret": SIGNING, "base_url": fake.base_url})
    return SlackWorkspaceConnector(settings, sleep=sleep or SleepRecorder(), clock=lambda: NOW)


def test_channels_dms_and_thread_replies_are_read_and_notices_left_out(
    fake: FakeWorkspace,
) -> None:
    result = connector(fake).fetch(None)
    by_text = {i.text: i for i in result.items}
    assert sorted(by_text) == ["<@U0LEARN> please bring your portfolio",
                               "Did you finish the coursework?", "Trip forms due Friday",
                               "ok miss"]
    assert result.problems == []
    dm = by_text["Did you finish the coursework?"]
    assert dm.kind == ItemKind.direct_message and dm.visibility == Visibility.direct
    assert [p.email for p in dm.recipients] == ["jayden.price@students.brookfield.example.org"]
    mention = by_text["<@U0LEARN> please bring your portfolio"]
    assert [p.id for p in mention.recipients] == ["U0LEARN"]
    assert mention.edited_at is not None
    reply = by_text["ok miss"]
    assert reply.kind == ItemKind.reply and reply.parent_id == f"C0COHORT:{PARENT}"
    assert "conversations.history" in fake.methods()
    assert all(p.get("channel") != "C0NOTME" for m, p in fake.calls
               if m == "conversations.history")


def test_the_next_poll_reads_new_messages_and_new_replies_to_older_threads(
    fake: FakeWorkspace,
) -> None:
    conn = connector(fake)
    first = conn.fetch(None)
    fake.history["C0COHORT"].insert(0, {"type": "message", "user": "U0LEARN", "ts": ts(1),
                                        "text": "thanks sir"})
    fake.replies[("C0COHORT", PARENT)].append(
        {"type": "message", "user": "U0TUTR2", "ts": ts(2), "thread_ts": PARENT,
         "text": "see you there"})
    second = conn.fetch(first.cursor)
    assert sorted(i.text for i in second.items) == ["see you there", "thanks sir"]


def test_a_rate_limited_call_waits_the_time_slack_asks(fake: FakeWorkspace) -> None:
    fake.rate_limit_next = 1
    sleep = SleepRecorder()
    result = connector(fake, sleep).fetch(None)
    assert sleep.waits[0] == 3.0
    assert len(result.items) == 4


def test_a_refused_token_stops_with_the_fix(fake: FakeWorkspace) -> None:
    with pytest.raises(FatalError, match="Fix: check the bot token"):
        connector(fake, token="xoxb-wrong").fetch(None)


def test_the_token_is_masked() -> None:
    settings = SlackWorkspaceSettings(name="s", type="slack_workspace", account="a",
                                      token="xoxb-secret-123", signing_secret="sig-456")
    shown = repr(SlackWorkspaceConnector(settings))
    assert "xoxb-secret-123" not in shown and "sig-456" not in shown
    assert load("slack_workspace") is SlackWorkspaceConnector


def test_a_tutors_one_to_one_dm_with_a_learner_breaks_the_accountability_duty(
    fake: FakeWorkspace,
) -> None:
    registers = example_index()
    detector = AccountabilityDetector.from_pack(load_pack("accountability"))
    dm = next(i for i in connector(fake).fetch(None).items
              if i.kind == ItemKind.direct_message)
    dm = registers.resolve(dm)
    assert dm.author.role == Role.staff and dm.recipients[0].role == Role.learner
    (finding,) = detector.detect(dm, DetectionContext(registers, MemoryHistory()))
    assert finding.category == Category.accountability
    # about the tutor, the learner and this conversation (reported once a week per conversation)
    assert finding.subject.startswith("staff:S006>learner:L001>conversation:")


# -- Events API -------------------------------------------------------------------------------


def event(payload: dict[str, object], secret: str = SIGNING,
          stamp: int | None = None) -> WebhookRequest:
    body = json.dumps(payload).encode()
    stamp = stamp if stamp is not None else int(time.time())
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(stamp), body=body)
    return WebhookRequest(method="POST", path="/webhooks/slack-workspace", query={}, body=body,
                          headers={"X-Slack-Request-Timestamp": str(stamp),
                                   "X-Slack-Signature": signature})


def callback(ev: dict[str, object]) -> dict[str, object]:
    return {"type": "event_callback", "team_id": "T0BROOK", "event": ev}


def test_the_events_url_is_verified_with_the_challenge(fake: FakeWorkspace) -> None:
    response = connector(fake).handle_webhook(event({"type": "url_verification",
                                                     "challenge": "3eZbrw1a"}))
    assert response.status == 200 and response.body == b"3eZbrw1a"


@pytest.mark.parametrize("secret, age", [("forged-secret", 0), (SIGNING, 3600)])
def test_forged_or_replayed_events_are_refused(fake: FakeWorkspace, secret: str,
                                               age: int) -> None:
    request = event(callback({"type": "message", "channel": "D0DM", "channel_type": "im",
                              "user": "U0TUTOR", "ts": ts(1), "text": "hi"}),
                    secret=secret, stamp=int(time.time()) - age)
    response = connector(fake).handle_webhook(request)
    assert response.status == 401 and response.items == []


def test_an_edit_event_becomes_a_new_version_of_the_message(fake: FakeWorkspace) -> None:
    response = connector(fake).read_webhook(event(callback({
        "type": "message", "subtype": "message_changed", "channel": "D0DM",
        "channel_type": "im", "ts": ts(0), "event_ts": ts(0),
        "message": {"type": "message", "user": "U0TUTOR", "ts": ts(10),
                    "text": "Did you finish the coursework? x",
                    "edited": {"user": "U0TUTOR", "ts": ts(0)}},
        "previous_message": {"type": "message", "user": "U0TUTOR", "ts": ts(10),
                             "text": "Did you finish the coursework?"},
    })))
    (item,) = response.items
    assert item.id == f"D0DM:{ts(10)}"
    assert item.text == "Did you finish the coursework? x"
    assert item.edited_at is not None


def test_a_delete_event_marks_the_message_deleted_and_keeps_its_last_text(
    fake: FakeWorkspace,
) -> None:
    response = connector(fake).read_webhook(event(callback({
        "type": "message", "subtype": "message_deleted", "channel": "D0DM",
        "channel_type": "im", "ts": ts(0), "event_ts": ts(0), "deleted_ts": ts(10),
        "previous_message": {"type": "message", "user": "U0TUTOR", "ts": ts(10),
                             "text": "Did you finish the coursework?"},
    })))
    (item,) = response.items
    assert item.id == f"D0DM:{ts(10)}"
    assert item.text == "Did you finish the coursework?"
    assert item.deleted_at is not None
    assert item.deleted_at.isoformat().startswith("2026-03-10T19:00")
