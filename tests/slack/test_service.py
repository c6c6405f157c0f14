"""`governance-bot run` with Slack on: the endpoint, the jobs and a clear start-up error."""

from __future__ import annotations

import pytest

from governance_bot.runtime import Runtime
from governance_bot.service import Service
from tests.slack.conftest import SlackWorld


def test_the_service_schedules_escalation_and_the_daily_digest(world: SlackWorld) -> None:
    world.service.schedule()
    jobs = {j.id: j for j in world.service.scheduler.get_jobs()}
    assert {"outbox", "slack:escalation", "slack:digest"} <= set(jobs)
    digest = str(jobs["slack:digest"].trigger)
    assert "hour='8'" in digest and "minute='0'" in digest
    assert str(jobs["slack:digest"].trigger.timezone) == "Europe/London"
    assert world.http.get("/healthz").json()["status"] == "ok"


def test_http_mode_without_a_signing_secret_stops_with_the_fix(
        world: SlackWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    rt: Runtime = world.rt
    with pytest.raises(RuntimeError, match="SLACK_SIGNING_SECRET"):
        Service(rt)
