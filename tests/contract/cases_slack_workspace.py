"""Contract case for the learner-facing Slack workspace connector: the real ``slack_sdk`` against
the local fake Slack Web API (tests/fake_slack_workspace.py), and its Events API.

The fake answers as Slack does: ``{"ok": false, "error": "invalid_auth"}`` with HTTP 200 for a
revoked token, ``429`` with ``Retry-After`` and ``{"error": "ratelimited"}``, 5xx during an
incident, and cursor pages (``response_metadata.next_cursor``). The workspace is invented: one
cohort channel of the example organisation.
"""

from __future__ import annotations

import json
from typing import Any

from tests.contract.harness import Delivery, Scenario, SlackSigner, SlackWebApiCase, Webhooks

NOW = 1_773_169_200.0  # 2026-03-10T19:00:00Z, the connector's clock
TOKEN = "xoxb-contract-7731-learner-workspace"
SIGNING = "contract-slack-signing-secret-5e5e"
CHANNEL = "C0CONTRACT"

USERS = {
    "U0TUTOR": {"id": "U0TUTOR", "name": "priya", "real_name": "Priya Natarajan",
                "profile": {"real_name": "Priya Natarajan",
                            "email": "p.natarajan@brookfield.example.org"}},
    "U0LEARN": {"id": "U0LEARN", "name": "oliver", "real_name": "Oliver Bennett",
                "profile": {"real_name": "Oliver Bennett",
                            "email": "oliver.bennett@students.brookfield.example.org"}},
}


def _ts(minutes_ago: float) -> str:
    return f"{NOW - minutes_ago * 60:.6f}"


def _message(minutes_ago: float, user: str = "U0TUTOR", text: str | None = None
             ) -> dict[str, Any]:
    return {"type": "message", "user": user, "ts": _ts(minutes_ago),
            "text": text or f"Reminder {minutes_ago:.0f}: portfolio review in room B2"}


def _workspace(history: list[dict[str, Any]], page_size: int, where: str = ""
               ) -> dict[str, Any]:
    ids = {f"{CHANNEL}:{m['ts']}" for m in history if _readable(m)}
    return {
        "users": USERS,
        "channels": {CHANNEL: {"id": CHANNEL, "name": "cohort-2026", "is_channel": True,
                               "is_member": True}},
        "history": {CHANNEL: history},
        "replies": {},
        "members": {CHANNEL: list(USERS)},
        "page_size": page_size,
        "ids": ids,
        "where": where,
    }


def _readable(message: dict[str, Any]) -> bool:
    try:
        float(message["ts"])
    except (KeyError, ValueError):
        return False
    return True


def workspace(scenario: Scenario) -> dict[str, Any]:
    if scenario == "pages":  # five messages, two a page: three pages of history
        return _workspace([_message(m, "U0TUTOR" if m % 2 else "U0LEARN")
                           for m in (10, 20, 30, 40, 50)], page_size=2)
    if scenario == "malformed":
        bad = {"type": "message", "user": "U0LEARN", "ts": "yesterday", "text": "ok"}
        return _workspace([_message(10), bad, _message(30)], page_size=200,
                          where=f"conversations.history {CHANNEL}")
    return _workspace([_message(10), _message(20, "U0LEARN"), _message(30)], page_size=200)


def _event(event_id: str, minutes_ago: float, text: str) -> Delivery:
    message = {"type": "message", "channel": CHANNEL, "channel_type": "channel",
               "user": "U0TUTOR", "ts": _ts(minutes_ago), "event_ts": _ts(minutes_ago),
               "text": text}
    payload = {"token": "deprecated-verification-token", "team_id": "T0BROOK",
               "api_app_id": "A0CONTRACT", "type": "event_callback", "event_id": event_id,
               "event_time": int(NOW - minutes_ago * 60), "event": message}
    return Delivery(body=json.dumps(payload).encode(), ids={f"{CHANNEL}:{message['ts']}"})


def deliveries() -> list[Delivery]:
    return [_event("Ev0CONTRACT1", 2, "<@U0LEARN> see you at 9 tomorrow"),
            _event("Ev0CONTRACT2", 1, "Room change: B2 is now B4")]


def _settings(base_url: str) -> dict[str, Any]:
    return {"type": "slack_workspace", "token": "${CONTRACT_SLACK_TOKEN}",
            "signing_secret": "${CONTRACT_SLACK_SIGNING}", "base_url": base_url}


CASES = [
    SlackWebApiCase(
        id="slack_workspace",
        type="slack_workspace",
        settings=_settings,
        env={"CONTRACT_SLACK_TOKEN": TOKEN, "CONTRACT_SLACK_SIGNING": SIGNING},
        secrets=(TOKEN, SIGNING),
        required=("token",),
        invalid={"lookback_days": 0, "thread_watch_days": 91, "channels": "C0CONTRACT"},
        account="brookfield-slack",
        secret_key="token",
        token_env="CONTRACT_SLACK_TOKEN",
        workspace=workspace,
        clock=NOW,
        webhooks=Webhooks(signer=SlackSigner(SIGNING), deliveries=deliveries),
    ),
]
