"""Meta webhooks for Facebook Pages and Instagram: the subscription handshake, the
``X-Hub-Signature-256`` check, and events becoming the same items polling produces.

Policy link: only Meta may push items in (a forged request could plant or hide content), and a
refused request is logged without its body because the body may hold a child's details.
The payloads are this project's own, shaped as Meta documents them; the people are invented.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from connectors.base import WebhookRequest
from connectors.facebook import FacebookPageConnector, FacebookSettings
from connectors.instagram import InstagramConnector, InstagramSettings
from connectors.meta import sign
from governance_bot.items import ItemKind, Visibility

APP_SECRET = "meta-app-secret-for-tests"
VERIFY = "brookfield-verify-4471"
PAGE = "104000000001"
IG_USER = "178400000001"

FEED_EVENT: dict[str, Any] = {
    "object": "page",
    "entry": [{
        "id": PAGE, "time": 1789990000,
        "changes": [{"field": "feed", "value": {
            "from": {"id": "6100000000123", "name": "A. Parent"},
            "item": "comment", "verb": "add", "created_time": 1789990000,
            "post_id": f"{PAGE}_900001", "parent_id": f"{PAGE}_900001",
            "comment_id": "900001_700001",
            "message": "Maisie O'Connell in 8B was brilliant in the play!",
        }}],
    }],
}

IG_EVENT: dict[str, Any] = {
    "object": "instagram",
    "entry": [{
        "id": IG_USER, "time": 1789990000,
        "changes": [{"field": "comments", "value": {
            "from": {"id": "17840000000777", "username": "someone.local"},
            "media": {"id": "17900000000001", "media_product_type": "FEED"},
            "id": "17900000000555", "text": "is that Zara Ahmed at the front?",
        }}],
        "messaging": [{
            "sender": {"id": "17840000000777"}, "recipient": {"id": IG_USER},
            "timestamp": 1789990001000,
            "message": {"mid": "aWdfZAG1faXRlbToxOklH", "text": "can you send me her number"},
        }],
    }],
}


def facebook(**extra: Any) -> FacebookPageConnector:
    settings = FacebookSettings(name="fb", type="facebook", account="brookfield-facebook",
                                page_id=PAGE, access_token="t", app_secret=APP_SECRET,
                                verify_token=VERIFY, **extra)
    return FacebookPageConnector(settings, client=httpx.Client())


def instagram() -> InstagramConnector:
    settings = InstagramSettings(name="ig", type="instagram", account="brookfield-instagram",
                                 ig_user_id=IG_USER, access_token="t", app_secret=APP_SECRET,
                                 verify_token=VERIFY)
    return InstagramConnector(settings, client=httpx.Client())


def post(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return WebhookRequest(method="POST", path="/webhooks/fb", headers=headers, query={},
                          body=body)


def test_the_subscription_handshake_echoes_the_challenge() -> None:
    request = WebhookRequest(method="GET", path="/webhooks/fb", headers={}, body=b"", query={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    response = facebook().handle_webhook(request)
    assert (response.status, response.body) == (200, b"1158201444")


@pytest.mark.parametrize("query", [
    {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
    {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"},
    {"hub.challenge": "1"},
])
def test_a_handshake_with_the_wrong_token_is_refused(query: dict[str, str]) -> None:
    request = WebhookRequest(method="GET", path="/", headers={}, body=b"", query=query)
    response = facebook().handle_webhook(request)
    assert response.status == 403 and b"1" not in response.body


def test_a_signed_page_comment_becomes_a_comment_item() -> None:
    body = json.dumps(FEED_EVENT).encode()
    response = facebook().handle_webhook(post(body, sign(body, APP_SECRET)))
    assert response.status == 200
    (item,) = response.items
    assert item.id == "900001_700001" and item.kind is ItemKind.comment
    assert item.parent_id == item.thread_id == f"{PAGE}_900001"
    assert item.author.id == "6100000000123"
    assert item.text.startswith("Maisie O'Connell")
    assert item.created_at.isoformat() == "2026-09-21T11:26:40+00:00"


@pytest.mark.parametrize("signature", [
    None,  # unsigned
    "sha256=" + "0" * 64,  # mis-signed
    "sha1=abc",  # the old header format
    sign(b"a different body", APP_SECRET),
    sign(json.dumps(FEED_EVENT).encode(), "another-app-secret"),
])
def test_unsigned_or_mis_signed_events_are_refused_and_logged_without_the_body(
        signature: str | None, caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps(FEED_EVENT).encode()
    with caplog.at_level(logging.DEBUG):
        response = facebook().handle_webhook(post(body, signature))
    assert response.status == 403 and response.items == []
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refused and refused[0].levelno == logging.WARNING
    assert "Maisie" not in caplog.text and "O'Connell" not in caplog.text
    assert APP_SECRET not in caplog.text


def test_without_an_app_secret_no_event_is_accepted() -> None:
    body = json.dumps(FEED_EVENT).encode()
    settings = FacebookSettings(name="fb", type="facebook", account="brookfield-facebook",
                                page_id=PAGE, access_token="t")
    connector = FacebookPageConnector(settings, client=httpx.Client())
    assert connector.handle_webhook(post(body, sign(body, APP_SECRET))).status == 403


def test_a_signed_body_that_is_not_json_is_rejected() -> None:
    body = b"not json at all"
    assert facebook().handle_webhook(post(body, sign(body, APP_SECRET))).status == 400


def test_events_for_another_page_are_ignored() -> None:
    other = json.loads(json.dumps(FEED_EVENT))
    other["entry"][0]["id"] = "999"
    body = json.dumps(other).encode()
    response = facebook().handle_webhook(post(body, sign(body, APP_SECRET)))
    assert response.status == 200 and response.items == []


def test_instagram_comment_and_message_events_become_items() -> None:
    body = json.dumps(IG_EVENT).encode()
    response = instagram().handle_webhook(post(body, sign(body, APP_SECRET)))
    assert response.status == 200
    comment, message = response.items
    assert comment.id == "17900000000555" and comment.kind is ItemKind.comment
    assert comment.parent_id == comment.thread_id == "17900000000001"
    assert comment.author.handle == "someone.local"
    assert message.kind is ItemKind.direct_message and message.visibility is Visibility.direct
    assert message.author.id == "17840000000777"
    assert [p.id for p in message.recipients] == [IG_USER]
    assert message.created_at.isoformat() == "2026-09-21T11:26:41+00:00"


def test_a_malformed_event_is_skipped_and_the_rest_accepted(
        caplog: pytest.LogCaptureFixture) -> None:
    event = json.loads(json.dumps(IG_EVENT))
    del event["entry"][0]["changes"][0]["value"]["id"]
    body = json.dumps(event).encode()
    with caplog.at_level(logging.WARNING):
        response = instagram().handle_webhook(post(body, sign(body, APP_SECRET)))
    assert response.status == 200
    assert [i.kind for i in response.items] == [ItemKind.direct_message]
    assert "webhook entry 1 change 1" in caplog.text
    assert "Zara" not in caplog.text


def _fixture(rel: str) -> Any:
    from tests.shared import require_shared

    return json.loads(require_shared("fixtures", "meta", *rel.split("/")).read_text("utf-8"))


@pytest.mark.shared
@pytest.mark.parametrize(("value", "fixture", "expected"), [
    ({"media_id": "17889114512354744", "comment_id": "17967008497439572"},
     "instagram/apidata/users/mentioned_comment.json",
     ("17967008497439572", ItemKind.comment, "@ikroskun good")),
    ({"media_id": "17889114512354744"},
     "instagram/apidata/users/mentioned_media.json",
     ("17889114512354744", ItemKind.post, "@ikroskun hey")),
])
def test_an_instagram_mention_is_looked_up_and_read(
        value: dict[str, str], fixture: str, expected: tuple[str, ItemKind, str]) -> None:
    """A ``mentions`` webhook names only ids; the connector asks the Graph API (recorded answer)
    for the mentioning comment or media."""
    import respx

    event = {"object": "instagram", "entry": [{"id": IG_USER, "time": 1789990000, "changes": [
        {"field": "mentions", "value": value}]}]}
    body = json.dumps(event).encode()
    with respx.mock(assert_all_mocked=True) as mock:
        lookup = mock.get(f"https://graph.facebook.com/v21.0/{IG_USER}").respond(
            json=_fixture(fixture))
        response = instagram().handle_webhook(post(body, sign(body, APP_SECRET)))
    assert response.status == 200
    (item,) = response.items
    assert (item.id, item.kind, item.text) == expected
    assert item.thread_id == "17889114512354744"
    fields = lookup.calls.last.request.url.params["fields"]
    assert fields.startswith("mentioned_comment.comment_id(17967008497439572)"
                             if "comment_id" in value
                             else "mentioned_media.media_id(17889114512354744)")
