"""Signed webhook deliveries as the four pushing platforms send them, for the fault tests: Meta's
Page ``feed`` (X-Hub-Signature-256), WhatsApp Cloud API ``messages`` (the same signature), the
learners' Slack Events API (X-Slack-Signature over the timestamp and body) and Microsoft Graph
change notifications for Teams chats (``clientState``). People are the example organisation's
(examples/registers.toml); every third Facebook comment names a learner in public."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from slack_sdk.signature import SignatureVerifier

from connectors.meta import sign
from tests.msgraph_fixtures import CHAT, CLIENT_ID, CLIENT_STATE, SECRET, TENANT, TUTOR_AAD, message

PAGE = "104000000001"
FB_SECRET = "faults-meta-app-secret"
WA_SECRET = "faults-whatsapp-app-secret"
WA_NUMBER_ID = "109876543210"
SLACK_SIGNING = "faults-learner-slack-signing"
SLACK_TOKEN = "xoxb-fake-workspace-token"
T0 = 1_789_990_000  # 2026-09-21 (a Monday) 10:46 UTC

ENV = {"FB_TOKEN": "fb-token", "FB_APP_SECRET": FB_SECRET, "FB_VERIFY": "fb-verify",
       "WA_APP_SECRET": WA_SECRET, "WA_VERIFY": "wa-verify", "LS_TOKEN": SLACK_TOKEN,
       "LS_SIGNING": SLACK_SIGNING, "TEAMS_CLIENT_SECRET": SECRET,
       "TEAMS_CLIENT_STATE": CLIENT_STATE}


@dataclass
class Delivery:
    path: str
    body: bytes
    headers: dict[str, str]
    keys: list[str]  # the item keys it carries
    flagged: int = 0  # how many of them the learner_pii rule flags


def connectors_toml(*, slack_url: str, graph_url: str, poll: int = 3600) -> str:
    """The four webhook connectors (their polling kept out of the way)."""
    return f"""
[[connectors]]
name = "facebook-page"
type = "facebook"
account = "brookfield-facebook"
page_id = "{PAGE}"
access_token = "${{FB_TOKEN}}"
app_secret = "${{FB_APP_SECRET}}"
verify_token = "${{FB_VERIFY}}"
base_url = "http://127.0.0.1:9"
poll_interval_seconds = {poll}

[[connectors]]
name = "whatsapp"
type = "whatsapp"
account = "brookfield-whatsapp"
app_secret = "${{WA_APP_SECRET}}"
verify_token = "${{WA_VERIFY}}"
poll_interval_seconds = {poll}

[[connectors]]
name = "learner-slack"
type = "slack_workspace"
account = "brookfield-slack"
token = "${{LS_TOKEN}}"
signing_secret = "${{LS_SIGNING}}"
base_url = "{slack_url}"
channels = ["D0DM"]
timeout_seconds = 2
max_retries = 0
poll_interval_seconds = {poll}

[[connectors]]
name = "teams"
type = "teams"
account = "brookfield-teams"
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret = "${{TEAMS_CLIENT_SECRET}}"
client_state = "${{TEAMS_CLIENT_STATE}}"
users = ["{TUTOR_AAD}"]
base_url = "{graph_url}"
login_base_url = "{graph_url}"
timeout_seconds = 2
max_retries = 0
poll_interval_seconds = {poll}
"""


def facebook(n: int, prefix: str = "c") -> Delivery:
    """One Page feed delivery carrying ``n`` new comments."""
    changes, keys = [], []
    for i in range(n):
        text = (f"Well done to Jayden Price for the match report {i}!" if i % 3 == 0
                else f"Lovely concert, well done everyone {i}")
        cid = f"900001_{prefix}{i}"
        changes.append({"field": "feed", "value": {
            "from": {"id": f"61000000{i:04d}", "name": "A. Parent"}, "item": "comment",
            "verb": "add", "created_time": T0 + i, "post_id": f"{PAGE}_900001",
            "parent_id": f"{PAGE}_900001", "comment_id": cid, "message": text}})
        keys.append(f"facebook:brookfield-facebook:{cid}")
    body = json.dumps({"object": "page", "entry": [{"id": PAGE, "time": T0,
                                                    "changes": changes}]}).encode()
    return Delivery("/webhooks/facebook-page", body,
                    {"X-Hub-Signature-256": sign(body, FB_SECRET),
                     "Content-Type": "application/json"}, keys, flagged=len(range(0, n, 3)))


def whatsapp_message(mid: str, text: str, when: int = T0,
                     sender: str = "447700900123") -> dict[str, Any]:
    return {"from": sender, "id": mid, "timestamp": str(when), "type": "text",
            "text": {"body": text}}


def whatsapp(messages: list[dict[str, Any]]) -> Delivery:
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{
        "id": "WABA-0001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "441632960001", "phone_number_id": WA_NUMBER_ID},
            "contacts": [{"profile": {"name": "A Learner"}, "wa_id": "447700900123"}],
            "messages": messages}}]}]}).encode()
    keys = [f"whatsapp:brookfield-whatsapp:{m['id']}" for m in messages
            if isinstance(m, dict) and isinstance(m.get("id"), str)]
    return Delivery("/webhooks/whatsapp", body,
                    {"X-Hub-Signature-256": sign(body, WA_SECRET),
                     "Content-Type": "application/json"}, keys)


def slack_event(n: int, text: str | None = None) -> Delivery:
    """One Events API delivery: a message in the tutor's DM with a learner."""
    stamp = f"{T0 + n}.000100"
    payload = {"type": "event_callback", "event_id": f"Ev0FAULT{n:04d}", "team_id": "T0LEARN",
               "event": {"type": "message", "channel": "D0DM", "channel_type": "im",
                         "user": "U0TUTOR", "ts": stamp,
                         "text": text or f"Reminder {n}: portfolio review on Thursday"}}
    body = json.dumps(payload).encode()
    now = str(int(time.time()))
    signature = SignatureVerifier(SLACK_SIGNING).generate_signature(timestamp=now, body=body)
    return Delivery("/webhooks/learner-slack", body,
                    {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": signature,
                     "Content-Type": "application/json"},
                    [f"slack_workspace:brookfield-slack:D0DM:{stamp}"])


def teams(ids: list[str]) -> Delivery:
    notes = [{"subscriptionId": "sub-faults", "changeType": "created",
              "clientState": CLIENT_STATE, "tenantId": TENANT,
              "subscriptionExpirationDateTime": "2026-12-31T00:00:00Z",
              "resource": f"chats('{CHAT}')/messages('{mid}')",
              "resourceData": {"id": mid, "@odata.type": "#Microsoft.Graph.chatMessage"}}
             for mid in ids]
    body = json.dumps({"value": notes}).encode()
    return Delivery("/webhooks/teams", body, {"Content-Type": "application/json"},
                    [f"teams:brookfield-teams:{CHAT}:{mid}" for mid in ids])


def teams_message(mid: str, n: int, text: str | None = None) -> dict[str, Any]:
    return message(mid, f"2026-09-21T10:{n % 60:02d}:00Z", text or f"See you at the session {n}")


# the learner-facing Slack workspace's people (tests/test_slack_workspace.py)
SLACK_USERS = {
    "U0TUTOR": {"id": "U0TUTOR", "name": "daniel", "real_name": "Daniel Mensah",
                "profile": {"real_name": "Daniel Mensah",
                            "email": "d.mensah@brookfield.example.org"}},
    "U0LEARN": {"id": "U0LEARN", "name": "jayden", "real_name": "Jayden Price",
                "profile": {"real_name": "Jayden Price",
                            "email": "jayden.price@students.brookfield.example.org"}},
}
SLACK_CHANNELS = {"D0DM": {"id": "D0DM", "is_im": True, "user": "U0LEARN"}}
