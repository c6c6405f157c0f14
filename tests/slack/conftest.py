"""Fixtures: the example organisation's registers, a fake Slack, the real service with Slack on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from connectors.base import ConnectorSettings
from governance_bot.config import Config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from rules.engine import DETECTORS, DetectionEngine
from tests.slack.fake_slack import FakeSlack
from tests.slack.helpers import (
    SIGNING_SECRET,
    TEST_DETECTORS,
    RecordingModerationConnector,
    form,
    sign,
)

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = ROOT / "examples" / "registers.toml"

# Slack ids from examples/registers.toml
DSL, DEPUTY_1, DEPUTY_2 = "U0HOKAFOR", "U0MREID", "U0PNATARA"
FB_MANAGER_1, FB_MANAGER_2 = "U0TASHWOR", "U0GLINDQV"
TUTOR = "U0DMENSAH"


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class SlackWorld:
    fake: FakeSlack
    rt: Runtime
    service: Service
    http: TestClient
    clock: Clock
    moderation: RecordingModerationConnector
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bot(self) -> Any:
        return self.service.slack.bot

    def ingest(self, *items: Any) -> None:
        self.rt.pipeline.process_many(list(items))
        self.service.sender.drain(now=self.clock())

    def flag_id(self, item_id: str) -> int:
        with self.rt.db.session() as s:
            return int(s.execute(select(m.Flag.id).join(
                m.ItemRecord, m.ItemRecord.id == m.Flag.item_id).where(
                m.ItemRecord.native_id == item_id)).scalar_one())

    def flag(self, flag_id: int) -> m.Flag:
        with self.rt.db.session() as s:
            flag = s.get(m.Flag, flag_id)
            assert flag is not None
            return flag

    def audit(self, action: str) -> list[m.AuditEvent]:
        with self.rt.db.session() as s:
            return list(s.execute(select(m.AuditEvent).where(m.AuditEvent.action == action)
                                  .order_by(m.AuditEvent.seq)).scalars())

    def send(self, payload: dict[str, Any], *, secret: str = SIGNING_SECRET,
             timestamp: int | None = None) -> Any:
        body = form(payload)
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   **sign(body, secret, timestamp)}
        return self.http.post("/slack/events", content=body, headers=headers)

    def send_raw(self, body: str, content_type: str) -> Any:
        return self.http.post("/slack/events", content=body,
                              headers={"Content-Type": content_type, **sign(body)})

    def wait(self, predicate: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError("condition not met in time")


def make_config(tmp: Path, fake: FakeSlack, **slack: Any) -> Config:
    return Config(
        database={"url": f"sqlite:///{tmp / 'gb.db'}"},
        registers={"file": REGISTERS},
        delivery={"sink": "slack"},
        detection={"disabled_rules": list(DETECTORS)},
        slack={"enabled": True, "api_url": fake.base_url, **slack},
    )


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
def world(tmp_path: Path, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch,
          slack_settings: dict[str, Any]) -> Iterator[SlackWorld]:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    config = make_config(tmp_path, fake_slack, **slack_settings)
    rt = Runtime.from_config(config)
    rt.engine = DetectionEngine(list(TEST_DETECTORS))  # type: ignore[arg-type]
    rt.pipeline.engine = rt.engine
    moderation = RecordingModerationConnector(ConnectorSettings(
        name="facebook-main", type="recording", account="brookfield-facebook"))
    rt.connectors.append(moderation)
    clock = Clock(datetime(2026, 11, 20, 10, 5, tzinfo=UTC))
    rt.pipeline.clock = clock
    service = Service(rt)
    service.slack.bot.clock = clock
    http = TestClient(service.http_app())
    yield SlackWorld(fake_slack, rt, service, http, clock, moderation)
    http.close()
    rt.close()
