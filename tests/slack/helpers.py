"""Reusable Slack test plumbing: signed requests, interaction payloads, test-only detectors and a
connector that records moderation.

The detectors here are registered only in the tests (the real learner_pii / safeguarding rules
are written elsewhere); they produce findings of the real categories, severities and evidence
shapes, so everything after detection is the real pipeline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

from connectors.base import Capability, Connector, FetchResult, ModerationAction, ModerationResult
from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item
from rules.base import DetectionContext

SIGNING_SECRET = "test-signing-secret-8f2d"


# --- signed requests ------------------------------------------------------------------------
def sign(body: str, secret: str = SIGNING_SECRET, timestamp: int | None = None
         ) -> dict[str, str]:
    """Slack's v0 request signature headers for ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def form(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def block_action(user: str, action_id: str, flag_id: int, channel: str | None = "G00000001",
                 message_ts: str = "1790000000.000001") -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "block_actions", "team": {"id": "T0BROOK", "domain": "brookfield"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0BROOK"},
        "api_app_id": "A0GOV", "token": "legacy", "trigger_id": f"trig.{user}.{flag_id}",
        "container": {"type": "message", "message_ts": message_ts},
        "actions": [{"type": "button", "action_id": action_id, "block_id": f"gb_flag_{flag_id}",
                     "value": str(flag_id), "action_ts": "1790000000.5"}],
    }
    if channel:
        body["channel"] = {"id": channel, "name": "mpdm"}
    return body


def view_submission(user: str, callback_id: str, flag_id: int,
                    values: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "view_submission", "team": {"id": "T0BROOK", "domain": "brookfield"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0BROOK"},
        "api_app_id": "A0GOV", "token": "legacy", "trigger_id": f"trig.{user}.v",
        "view": {"id": "V0001", "type": "modal", "callback_id": callback_id,
                 "private_metadata": json.dumps({"flag_id": flag_id}),
                 "state": {"values": {k: {"value": v} for k, v in values.items()}},
                 "hash": "1", "team_id": "T0BROOK", "app_id": "A0GOV"},
    }


def slash_command(user: str, text: str) -> str:
    return urlencode({"token": "legacy", "team_id": "T0BROOK", "team_domain": "brookfield",
                      "channel_id": "C0GENERAL", "user_id": user, "user_name": user.lower(),
                      "command": "/governance", "text": text, "api_app_id": "A0GOV",
                      "response_url": "https://hooks.slack.example/commands/1",
                      "trigger_id": "trig.cmd"})


def event(inner: dict[str, Any]) -> str:
    return json.dumps({"token": "legacy", "team_id": "T0BROOK", "api_app_id": "A0GOV",
                       "type": "event_callback", "event_id": f"Ev{time.time_ns()}",
                       "event_time": int(time.time()), "event": inner})


# --- test-only detectors --------------------------------------------------------------------
class LearnerNameTestDetector:
    """Test stand-in for learner_pii: a registered learner's full name in the text."""

    rule_id = "test_learner_name"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        for lr in ctx.registers.iter_learners():
            for mt in re.finditer(re.escape(lr.full_name), item.text, re.IGNORECASE):
                yield Finding(self.rule_id, Category.learner_pii, Severity.medium, 0.99,
                              "a registered learner's full name in a public post",
                              Evidence(spans=((mt.start(), mt.end()),),
                                       register_entry=f"learner:{lr.learner_id}"))


class SafeguardingTestDetector:
    """Test stand-in for the safeguarding rules: fixed disclosure phrases."""

    rule_id = "test_safeguarding"
    PHRASES: ClassVar[dict[str, Severity]] = {"nobody would miss me": Severity.critical,
                                              "he hurts me at home": Severity.high}

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        low = item.text.lower()
        for phrase, sev in self.PHRASES.items():
            at = low.find(phrase)
            if at >= 0:
                yield Finding(self.rule_id, Category.safeguarding, sev, 0.95,
                              "a possible safeguarding disclosure",
                              Evidence(spans=((at, at + len(phrase)),)))


class ExplicitImageTestDetector:
    """Test stand-in for the image classifier: media whose alt text is 'TEST-EXPLICIT'."""

    rule_id = "explicit_image"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        for media in item.media:
            if media.alt_text == "TEST-EXPLICIT":
                yield Finding(self.rule_id, Category.safeguarding, Severity.critical, 0.97,
                              "an image classified as possibly explicit",
                              Evidence(detail={"explicit_image": True, "media_url": media.url}))


class ToneTestDetector:
    """Test stand-in for tone: a curt reply gets a low-severity finding (digest)."""

    rule_id = "test_tone"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        if "whatever." in item.text.lower():
            yield Finding(self.rule_id, Category.toxicity, Severity.low, 0.7,
                          "a curt, dismissive reply from the account")


CONCERN = "a member of staff messaging a learner at 23:40"


class LateContactTestDetector:
    """Test stand-in for out_of_hours: a concern about the tutor Daniel Mensah (S006)."""

    rule_id = "test_late_contact"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        if "late message" in item.text:
            yield Finding(self.rule_id, Category.out_of_hours, Severity.medium, 0.9, CONCERN,
                          Evidence(spans=((0, 12),)), subject="staff:S006>learner:L006")


TEST_DETECTORS = [LearnerNameTestDetector(), SafeguardingTestDetector(),
                  ExplicitImageTestDetector(), ToneTestDetector()]


# --- a connector that can moderate ----------------------------------------------------------
class RecordingModerationConnector(Connector):
    """Records moderation calls locally, as a platform connector would call the platform."""

    type: ClassVar[str] = "recording"
    capabilities = frozenset({Capability.read, Capability.hide, Capability.delete})

    def __init__(self, settings: Any, **kw: Any):
        super().__init__(settings, **kw)
        self.moderated: list[tuple[str, ModerationAction]] = []

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        return FetchResult(items=[], cursor=cursor)

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        self.moderated.append((item.key, action))
        return ModerationResult(ok=True, action=action, detail=f"{action.value} done")


def post(item_id: str, text: str, *, account: str = "brookfield-facebook",
         platform: str = "facebook", kind: str = "post", thread: str | None = None,
         author: dict[str, Any] | None = None, media: list[dict[str, Any]] | None = None,
         at: datetime | None = None) -> Item:
    return Item.model_validate({
        "id": item_id, "platform": platform, "account": account, "kind": kind,
        "author": author or {"id": "104000000001", "name": "Brookfield Academy"},
        "created_at": (at or datetime(2026, 11, 20, 10, 0, tzinfo=UTC)).isoformat(),
        "text": text, "thread_id": thread, "media": media or [],
        "url": f"https://facebook.example/posts/{item_id}",
    })
