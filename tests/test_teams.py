"""Microsoft Teams through Microsoft Graph: chats, channel messages, delta polling, deletions,
change notifications, and the staff-learner rules on what it reads.

Policy: "staff avoid contacting learners outside normal office hours"; every staff-learner
channel is checked, Teams included.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx

from connectors.base import WebhookRequest
from connectors.registry import load
from connectors.teams import TeamsConnector, TeamsSettings, parse_chat_message
from governance_bot.findings import Category
from governance_bot.items import ItemKind, Role
from rules.base import DetectionContext
from tests.helpers import MemoryHistory, config_with, example_index
from tests.msgraph_fixtures import (
    CHANNEL,
    CHAT,
    CLIENT_STATE,
    LEARNER_AAD,
    LEARNER_EMAIL,
    SECRET,
    TEAM,
    TOKEN,
    TUTOR_AAD,
    TUTORIAL_MEMBERS,
    delta_page,
    install_token,
    message,
    recorded_chat_page,
    teams_settings,
)

BASE = "https://graph.test/v1.0"
DELTA = f"{BASE}/users/{TUTOR_AAD}/chats/getAllMessages/delta"


def connector(**extra: object) -> TeamsConnector:
    data = teams_settings(BASE, **extra)
    data.update({"name": "teams", "account": "brookfield-teams",
                 "client_secret": SECRET, "client_state": CLIENT_STATE})
    return TeamsConnector(TeamsSettings.model_validate(data), sleep=lambda s: None)


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        install_token(router, BASE)
        router.get(f"{BASE}/chats/{CHAT}/members").mock(
            return_value=httpx.Response(200, json=TUTORIAL_MEMBERS))
        yield router


# -- parsing the recorded answer ------------------------------------------------------------


def test_the_recorded_graph_chat_listing_is_parsed_and_system_events_are_left_out() -> None:
    page = recorded_chat_page()
    items = [parse_chat_message(m, account="brookfield-teams") for m in page["value"]]
    hello, image, system_event = items
    assert system_event is None  # chatRenamedEventMessageDetail: not something a person wrote
    assert hello is not None and image is not None
    assert hello.text == "Hello world"
    assert hello.author.id == "teams:8ea0e38b-efb3-4757-924a-5f94061cf8c2"
    assert hello.author.name == "Robin Kline"
    assert hello.created_at == datetime(2021, 3, 28, 20, 48, 29, 832000, tzinfo=UTC)
    assert hello.thread_id == "19:2da4c29f6d7041eca70b638b43d45437@thread.v2"
    assert hello.kind == ItemKind.chat_message
    assert image.text == ""
    assert image.media and "hostedContents" in str(image.media[0].url)


def test_a_deleted_message_carries_its_deletion_time() -> None:
    raw = message("1700000000001", "2026-03-10T10:00:00Z", "",
                  deleted="2026-03-10T10:05:00Z")
    item = parse_chat_message(raw, account="brookfield-teams")
    assert item is not None
    assert item.deleted_at is not None
    assert item.deleted_at.isoformat() == "2026-03-10T10:05:00+00:00"


# -- polling --------------------------------------------------------------------------------


def test_chats_are_read_through_delta_pages_and_the_next_poll_reads_only_changes(
    graph: respx.MockRouter,
) -> None:
    first = message("1700000000001", "2026-03-10T09:00:00Z", "Reminder: mock exam at 10.")
    second = message("1700000000002", "2026-03-10T09:30:00Z", "<p>Room <b>B4</b></p>",
                     html=True)
    later = message("1700000000003", "2026-03-11T09:00:00Z", "Well done today.")
    graph.get(DELTA, params={"$top": "50"}).mock(return_value=httpx.Response(
        200, json=delta_page([first], next_link=f"{DELTA}?$skiptoken=p2")))
    graph.get(DELTA, params={"$skiptoken": "p2"}).mock(return_value=httpx.Response(
        200, json=delta_page([second], delta_link=f"{DELTA}?$deltatoken=d1")))
    graph.get(DELTA, params={"$deltatoken": "d1"}).mock(return_value=httpx.Response(
        200, json=delta_page([later], delta_link=f"{DELTA}?$deltatoken=d2")))
    conn = connector()
    r1 = conn.fetch(None)
    assert [i.text for i in r1.items] == ["Reminder: mock exam at 10.", "Room B4"]
    assert r1.cursor == {"chats": {TUTOR_AAD: f"{DELTA}?$deltatoken=d1"}, "channels": {}}
    (item,) = conn.fetch(r1.cursor).items
    assert item.text == "Well done today."
    # recipients are the chat's other members, with their email, so the registers know them
    assert [(p.id, p.email) for p in item.recipients] == [(f"teams:{LEARNER_AAD}",
                                                           LEARNER_EMAIL)]
    auth = graph.calls[-1].request.headers["authorization"]
    assert auth == f"Bearer {TOKEN}"


def test_an_expired_delta_link_starts_the_listing_again(graph: respx.MockRouter) -> None:
    graph.get(DELTA, params={"$deltatoken": "old"}).mock(
        return_value=httpx.Response(410, json={"error": {"code": "resyncRequired"}}))
    graph.get(DELTA, params={"$top": "50"}).mock(return_value=httpx.Response(200, json=delta_page(
        [message("1700000000009", "2026-03-10T09:00:00Z", "hello")],
        delta_link=f"{DELTA}?$deltatoken=new")))
    result = connector().fetch({"chats": {TUTOR_AAD: f"{DELTA}?$deltatoken=old"}})
    assert [i.text for i in result.items] == ["hello"]
    assert result.cursor is not None
    assert result.cursor["chats"][TUTOR_AAD].endswith("deltatoken=new")


def test_channel_messages_and_their_replies_are_read_with_mentions_as_recipients(
    graph: respx.MockRouter,
) -> None:
    base = f"{BASE}/teams/{TEAM}/channels/{CHANNEL}/messages"
    post = message("1700000000100", "2026-03-10T09:00:00Z", "Trip forms due Friday",
                   chat=None, channel=(TEAM, CHANNEL))
    reply = message("1700000000101", "2026-03-10T09:05:00Z", "Thanks sir", chat=None,
                    reply_to="1700000000100", author=LEARNER_AAD, name="Oliver Smith-Hughes",
                    channel=(TEAM, CHANNEL),
                    mentions=[{"id": 0, "mentionText": "Daniel", "mentioned": {"user": {
                        "id": TUTOR_AAD, "displayName": "Daniel Mensah",
                        "userIdentityType": "aadUser"}}}])
    graph.get(f"{base}/delta").mock(return_value=httpx.Response(200, json=delta_page(
        [post], delta_link=f"{base}/delta?$deltatoken=c1")))
    graph.get(f"{base}/1700000000100/replies").mock(
        return_value=httpx.Response(200, json=delta_page([reply])))
    result = connector(users=[], channels=[f"{TEAM}/{CHANNEL}"]).fetch(None)
    top, answer = result.items
    assert top.kind == ItemKind.chat_message and answer.kind == ItemKind.reply
    assert answer.parent_id == top.id and answer.thread_id == top.thread_id
    assert [p.id for p in answer.recipients] == [f"teams:{TUTOR_AAD}"]


def test_an_expired_access_token_is_renewed_before_the_next_call(graph: respx.MockRouter) -> None:
    graph.get(DELTA).mock(return_value=httpx.Response(200, json=delta_page(
        [], delta_link=f"{DELTA}?$deltatoken=x")))
    now = [1_773_000_000.0]
    data = {**teams_settings(BASE), "name": "teams", "account": "brookfield-teams",
            "client_secret": SECRET, "client_state": CLIENT_STATE}
    conn = TeamsConnector(TeamsSettings.model_validate(data), sleep=lambda s: None,
                          clock=lambda: now[0])
    conn.fetch(None)
    conn.fetch(None)
    token_calls = [c for c in graph.calls if c.request.url.path.endswith("/token")]
    assert len(token_calls) == 1  # still valid: reused
    now[0] += 3600  # the token lasts 3599 s
    conn.fetch(None)
    token_calls = [c for c in graph.calls if c.request.url.path.endswith("/token")]
    assert len(token_calls) == 2
    assert b"client_secret=" + SECRET.encode() in token_calls[0].request.content


def test_the_connector_is_registered_as_teams() -> None:
    assert load("teams") is TeamsConnector


def test_settings_need_something_to_read() -> None:
    data = teams_settings(BASE, users=[])
    data.update({"name": "t", "account": "a", "client_secret": "s"})
    with pytest.raises(ValueError, match="at least one of users"):
        TeamsSettings.model_validate(data)


# -- change notifications ----------------------------------------------------------------------


def webhook(body: bytes = b"", query: dict[str, str] | None = None) -> WebhookRequest:
    return WebhookRequest(method="POST", path="/webhooks/teams", query=query or {},
                          headers={"content-type": "application/json"}, body=body)


def test_the_subscription_handshake_echoes_the_validation_token_as_plain_text() -> None:
    response = connector().handle_webhook(webhook(query={"validationToken": "Validation: a b"}))
    assert response.status == 200
    assert response.content_type == "text/plain"
    assert response.body == b"Validation: a b"


def notification(client_state: str) -> bytes:
    return json.dumps({"value": [{
        "subscriptionId": "sub-1", "changeType": "created", "clientState": client_state,
        "tenantId": "t", "subscriptionExpirationDateTime": "2026-03-11T00:00:00Z",
        "resource": f"chats('{CHAT}')/messages('1700000000200')",
        "resourceData": {"id": "1700000000200", "@odata.type": "#Microsoft.Graph.chatMessage",
                         "@odata.id": f"chats('{CHAT}')/messages('1700000000200')"},
    }]}).encode()


def test_a_notification_with_the_wrong_client_state_is_refused(
    graph: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    response = connector().handle_webhook(webhook(notification("guessed")))
    assert response.status == 403 and response.items == []
    assert CLIENT_STATE not in caplog.text


def test_a_genuine_notification_reads_the_changed_message(graph: respx.MockRouter) -> None:
    graph.get(f"{BASE}/chats('{CHAT}')/messages('1700000000200')").mock(
        return_value=httpx.Response(200, json=message("1700000000200", "2026-03-10T21:00:00Z",
                                                      "are you coming tomorrow?")))
    response = connector().read_webhook(webhook(notification(CLIENT_STATE)))
    assert response.status == 202
    (item,) = response.items
    assert item.text == "are you coming tomorrow?"


# -- end to end: the out-of-hours rule on Teams messages -------------------------------------------


@pytest.mark.parametrize("when, why", [
    ("2026-03-10T22:30:00Z", "22:30 on a weekday (a Tuesday in GMT)"),
    ("2026-05-04T11:00:00Z", "noon on the Early May bank holiday (12:00 BST)"),
])
def test_a_tutors_teams_message_to_a_learner_out_of_hours_is_flagged(
    graph: respx.MockRouter, when: str, why: str,
) -> None:
    out_of_hours = pytest.importorskip(
        "rules.out_of_hours", reason="the out_of_hours detector (branch conduct) is not merged")
    graph.get(DELTA).mock(return_value=httpx.Response(200, json=delta_page(
        [message("1700000000300", when, "Did you finish the coursework?")],
        delta_link=f"{DELTA}?$deltatoken=x")))
    (item,) = connector().fetch(None).items
    registers = example_index()
    item = registers.resolve(item)
    assert item.author.role == Role.staff and item.author.register_id == "S006"
    assert item.recipients[0].role == Role.learner and item.recipients[0].register_id == "L003"
    from rules.packs import load_pack

    detector = out_of_hours.OutOfHoursDetector.from_pack(load_pack("out_of_hours"), config_with())
    findings = list(detector.detect(item, DetectionContext(registers, MemoryHistory())))
    assert [f.category for f in findings] == [Category.out_of_hours], why
    assert findings[0].subject == "staff:S006>learner:L003"


def test_the_same_message_at_eleven_on_a_weekday_is_not_flagged(graph: respx.MockRouter) -> None:
    from rules.out_of_hours import OutOfHoursDetector
    from rules.packs import load_pack

    graph.get(DELTA).mock(return_value=httpx.Response(200, json=delta_page(
        [message("1700000000301", "2026-03-10T11:00:00Z", "Did you finish the coursework?")],
        delta_link=f"{DELTA}?$deltatoken=x")))
    (item,) = connector().fetch(None).items
    registers = example_index()
    detector = OutOfHoursDetector.from_pack(load_pack("out_of_hours"), config_with())
    ctx = DetectionContext(registers, MemoryHistory())
    assert list(detector.detect(registers.resolve(item), ctx)) == []

