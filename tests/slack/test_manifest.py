"""The Slack app manifest asks for exactly the scopes the bot's code uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
# Web API method (as slack_sdk names it) -> the bot scopes it needs
SCOPES = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "conversations_open": {"im:write", "mpim:write"},
    "conversations_history": {"im:history", "mpim:history", "groups:history"},
    "conversations_replies": {"im:history", "mpim:history", "groups:history"},
    "views_open": set(),
    "views_publish": set(),
    "auth_test": set(),
    "users_info": {"users:read"},
}


def test_the_manifest_has_exactly_the_scopes_the_code_uses() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "governance_bot" / "slack").rglob("*.py"))
    used = set(re.findall(r"client\.(\w+)\(", source))
    assert used <= set(SCOPES), f"add the scopes of {used - set(SCOPES)} to this test"
    needed = set().union(*(SCOPES[m] for m in used)) | {"commands"}  # /governance
    manifest = yaml.safe_load((ROOT / "docs" / "slack-app-manifest.yaml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed
    from governance_bot.slack.setup import REQUIRED_SCOPES

    assert set(REQUIRED_SCOPES) == needed  # what doctor checks is what the app asks for
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["features"]["slash_commands"][0]["command"] == "/governance"
