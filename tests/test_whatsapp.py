"""WhatsApp Business Cloud API webhooks, replaying the recorded payloads in
../shared/fixtures/whatsapp/updates: every one is parsed or skipped with a log line, and nothing
unsigned gets in.

Policy: staff-learner messages are checked on every channel, WhatsApp included; what cannot be
checked is said out loud in the log rather than dropped silently.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import WebhookRequest
from connectors.meta import sign
from connectors.registry import load
from connectors.whatsapp import WhatsAppConnector, WhatsAppSettings, parse_webhook
from governance_bot.items import Role
from tests.helpers import example_index
from tests.shared import shared_dir

APP_SECRET = "whatsapp-app-secret-77aa"
VERIFY = "whatsapp-verify-token-31"


def _examples() -> list[Any]:
    base = shared_dir()
    folder = base / "fixtures" / "whatsapp" / "updates" if base else None
    if folder is None or not folder.is_dir():
        return [pytest.param(None, None, None, marks=pytest.mark.skip(
            reason="../shared/fixtures/whatsapp is not beside this clone"))]
    params = []
    for path in sorted(folder.glob("*.json")):
        for key, payload in json.loads(path.read_text(encoding="utf-8")).items():
            params.append(pytest.param(path, key, payload, id=f"{path.stem}:{key}"))
    return params


def updates(file: str) -> dict[str, Any]:
    from tests.shared import require_shared

    path: Path = require_shared("fixtures", "whatsapp", "updates", file)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def parse(payload: Any) -> tuple[list[Any], list[str]]:
    return parse_webhook(payload, account="brookfield-whatsapp")


@pytest.mark.parametrize(("path", "key", "payload"), _examples())
def test_every_recorded_update_is_parsed_or_skipped_with_a_log_line(
    path: Path, key: str, payload: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="connectors.whatsapp"):
        items, problems = parse(payload)
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert items or skipped, f"{path.name}:{key} produced nothing and said nothing"
    assert problems == [], problems
    for item in items:
        assert item.created_at.tzinfo is not None
        assert item.account == "brookfield-whatsapp"


def test_a_text_message_from_a_person() -> None:
    (item,) = parse(updates("message.json")["text"])[0]
    assert item.text == "Body Text"
    assert item.author.handle == "+972987654321" and item.author.name == "Test Name"
    assert item.recipients[0].id == "1122334455667"
    assert item.created_at == datetime.fromtimestamp(1697043223, UTC)


def test_media_keeps_its_type_and_the_platform_hash() -> None:
    (item,) = parse(updates("message.json")["image"])[0]
    (media,) = item.media
    assert media.mime_type == "image/jpeg"
    assert media.model_extra["platform_sha256"] == "4654+8g="


def test_a_shared_contact_card_is_text_the_pii_rules_can_read() -> None:
    (item,) = parse(updates("message.json")["contacts"])[0]
    assert "Chandler Bing +1 555-555-5555" in item.text


def test_a_reaction_is_kept_as_a_reply_to_the_message_reacted_to() -> None:
    (item,) = parse(updates("message.json")["reaction"])[0]
    assert item.text == "\U0001f62e"
    assert item.parent_id == "wamid.yzxyzx="


def test_an_edit_replaces_the_original_messages_text() -> None:
    (item,) = parse(updates("edited_message.json")["image"])[0]
    assert item.id == "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
    assert item.text == "Updated image caption"
    assert item.edited_at == datetime.fromtimestamp(1749854575, UTC)


def test_a_deletion_marks_the_original_message_deleted() -> None:
    (item,) = parse(updates("deleted_message.json")["revoke"])[0]
    assert item.id == "<ORIGINAL_WHATSAPP_MESSAGE_ID>"
    assert item.deleted_at == datetime.fromtimestamp(1697043223, UTC)


def test_messages_sent_from_the_business_app_are_authored_by_the_business() -> None:
    (item,) = parse(updates("outgoing_message.json")["text"])[0]
    assert item.author.id == "1122334455667"
    assert item.text == "Test message"


def test_a_learners_number_in_the_registers_is_resolved() -> None:
    payload = json.loads(json.dumps(updates("message.json")["text"]))
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"][0]["from"] = value["contacts"][0]["wa_id"] = "447700900123"
    (item,) = parse(payload)[0]
    registers = example_index()
    # the example registers list no numbers: an unknown number is the public, not a learner
    assert registers.resolve(item).author.role == Role.public


# -- the webhook endpoint -------------------------------------------------------------------


def connector() -> WhatsAppConnector:
    return WhatsAppConnector(WhatsAppSettings(
        name="wa", type="whatsapp", account="brookfield-whatsapp",
        app_secret=APP_SECRET, verify_token=VERIFY))


def post(body: bytes, signature: str | None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return WebhookRequest(method="POST", path="/webhooks/wa", headers=headers, query={},
                          body=body)


def test_a_signed_webhook_is_accepted_and_read() -> None:
    body = json.dumps(updates("message.json")["text"]).encode()
    response = connector().handle_webhook(post(body, sign(body, APP_SECRET)))
    assert response.status == 200
    assert [i.text for i in response.items] == ["Body Text"]


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "md5=abc"])
def test_an_unsigned_or_wrongly_signed_webhook_is_refused(
    signature: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(updates("message.json")["text"]).encode()
    response = connector().handle_webhook(post(body, signature))
    assert response.status == 403 and response.items == []
    assert "Body Text" not in caplog.text and APP_SECRET not in caplog.text


def test_a_body_signed_with_another_secret_is_refused() -> None:
    body = json.dumps(updates("message.json")["text"]).encode()
    assert connector().handle_webhook(post(body, sign(body, "someone-else"))).status == 403


def test_the_subscription_handshake_needs_the_verify_token() -> None:
    def get(token: str) -> int:
        return connector().handle_webhook(WebhookRequest(
            method="GET", path="/webhooks/wa", headers={}, body=b"",
            query={"hub.mode": "subscribe", "hub.verify_token": token,
                   "hub.challenge": "1158201444"})).status
    assert get(VERIFY) == 200
    assert get("guess") == 403


def test_the_connector_is_registered_and_keeps_its_secrets_out_of_repr() -> None:
    assert load("whatsapp") is WhatsAppConnector
    shown = repr(connector())
    assert APP_SECRET not in shown and VERIFY not in shown
