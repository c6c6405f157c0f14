"""Contract case for the WhatsApp Business connector, replaying the recorded Cloud API webhook
payloads in ../shared/fixtures/whatsapp/updates (found through tests/shared.py).

The Cloud API keeps no message history: messages arrive only as webhooks signed with the app
secret (``X-Hub-Signature-256``), and the connector makes no outbound request at all (media are
kept as ids and the platform's hash, not downloaded). So the polling checks do not apply; the
webhook checks, the malformed check (through a signed delivery) and the secrets check do.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.contract.harness import Delivery, MetaSigner, WebhookOnlyCase, Webhooks
from tests.shared import require_shared

APP_SECRET = "contract-whatsapp-app-secret-9f1c"
VERIFY = "contract-whatsapp-verify-2b2b"
NO_HISTORY = ("the Cloud API keeps no message history to poll: messages arrive only as signed "
              "webhooks (see the webhook checks)")


def _recorded(file: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        require_shared("fixtures", "whatsapp", "updates", file).read_text(encoding="utf-8"))
    return data


def _value(payload: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]
    return value


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def deliveries() -> list[Delivery]:
    """Recorded deliveries as Meta sends them; the ids are read from the recorded JSON here,
    not from the connector."""
    message = _recorded("message.json")
    edited = _recorded("edited_message.json")["image"]
    deleted = _recorded("deleted_message.json")["revoke"]
    out = []
    for key in ("text", "image", "contacts"):
        payload = message[key]
        out.append(Delivery(body=_body(payload),
                            ids={m["id"] for m in _value(payload)["messages"]}))
    out.append(Delivery(body=_body(edited), ids={
        m["edit"]["original_message_id"] for m in _value(edited)["messages"]}))
    out.append(Delivery(body=_body(deleted), ids={
        m["revoke"]["original_message_id"] for m in _value(deleted)["messages"]}))
    return out


def malformed() -> Delivery:
    """One delivery with three messages: the middle one lost its timestamp."""
    payload = copy.deepcopy(_recorded("message.json")["text"])
    (good,) = _value(payload)["messages"]
    bad = {**copy.deepcopy(good), "id": "wamid.CONTRACT-NO-TIME"}
    del bad["timestamp"]
    later = {**copy.deepcopy(good), "id": "wamid.CONTRACT-LATER",
             "timestamp": str(int(good["timestamp"]) + 60)}
    _value(payload)["messages"] = [good, bad, later]
    return Delivery(body=_body(payload), ids={good["id"], later["id"]},
                    where="wamid.CONTRACT-NO-TIME")


CASES = [
    WebhookOnlyCase(
        id="whatsapp",
        type="whatsapp",
        settings=lambda _where: {"type": "whatsapp", "app_secret": "${CONTRACT_WA_SECRET}",
                                 "verify_token": "${CONTRACT_WA_VERIFY}"},
        env={"CONTRACT_WA_SECRET": APP_SECRET, "CONTRACT_WA_VERIFY": VERIFY},
        secrets=(APP_SECRET, VERIFY),
        required=("app_secret", "verify_token"),
        invalid={"phone_number_id": 1122334455667, "poll_interval_seconds": 1},
        account="brookfield-whatsapp",
        secret_key="app_secret",
        webhooks=Webhooks(signer=MetaSigner(APP_SECRET), deliveries=deliveries,
                          malformed=malformed),
        not_applicable={
            "page": NO_HISTORY,
            "pages": NO_HISTORY,
            "unauthorised": "the connector makes no outbound request, so no token can be "
                            "refused; a wrong app secret shows as refused signatures "
                            "(signature_rejected)",
            "rate_limited": "the connector makes no outbound request; Meta, not us, paces "
                            "the deliveries",
            "server_error": "the connector makes no outbound request; a delivery we fail to "
                            "acknowledge is re-sent by Meta (see replay)",
        },
    ),
]
