"""Microsoft Teams change notifications the service keeps alive itself: Graph subscriptions are
created at start, renewed before they expire, re-created when Graph loses them, and every gap is
caught up by polling (governance_bot/subscriptions.py).

Policy: staff-learner messages on every channel are checked, promptly; a lapsed subscription
must never mean a staff message to a learner goes unread. Graph's answers follow the shapes in
its documentation (tests/msgraph_fixtures.py says where from: ../shared/fixtures/msgraph has no
subscription responses).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors.base import SubscriptionEvent, WebhookRequest
from connectors.teams import TeamsConnector, TeamsSettings
from governance_bot.config import Config, ConfigError, load_config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from governance_bot.subscriptions import SubscriptionManager, managers_for, state_name
from tests.msgraph_fixtures import (
    CHANNEL,
    CHAT,
    CLIENT_STATE,
    FORBIDDEN,
    NOT_FOUND,
    NOTIFICATION_URL,
    PUBLIC_URL,
    SECRET,
    TEAM,
    TEAMS_ENV,
    TENANT,
    TUTOR_AAD,
    TUTORIAL_MEMBERS,
    VALIDATION_FAILED,
    delta_page,
    install_token,
    lifecycle_notification,
    message,
    subscription_created,
    teams_settings,
)

BASE = "https://graph.test/v1.0"
START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
CHATS = f"/users/{TUTOR_AAD}/chats/getAllMessages"
CHANNEL_MESSAGES = f"/teams/{TEAM}/channels/{CHANNEL}/messages"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def connector(**extra: Any) -> TeamsConnector:
    data = teams_settings(BASE, **extra)
    data.update({"name": "teams", "account": "brookfield-teams",
                 "client_secret": SECRET, "client_state": CLIENT_STATE})
    return TeamsConnector(TeamsSettings.model_validate(data), sleep=lambda s: None)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gb.db'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def graph() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        install_token(router, BASE)
        # a subscription Graph removed is gone: deleting it answers 404
        router.delete(url__regex=rf"^{BASE}/subscriptions/").mock(
            return_value=httpx.Response(404, json=NOT_FOUND))
        yield router


def manager(db: Database, clock: Clock, **extra: Any) -> SubscriptionManager:
    return SubscriptionManager(db, connector(**extra), NOTIFICATION_URL, clock)


def graph_creates(graph: respx.MockRouter, *ids: str) -> respx.Route:
    """POST /subscriptions answers 201 with the given ids in turn, echoing the resource."""
    pending = list(ids)

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(201, json=subscription_created(
            pending.pop(0), body["resource"], body["expirationDateTime"]))

    return graph.post(f"{BASE}/subscriptions").mock(side_effect=answer)


def graph_renews(graph: respx.MockRouter, sub_id: str) -> respx.Route:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json=subscription_created(sub_id, CHATS,
                                                             body["expirationDateTime"]))

    return graph.patch(f"{BASE}/subscriptions/{sub_id}").mock(side_effect=answer)


def stored(db: Database) -> dict[str, Any]:
    with db.session() as session:
        state = session.get(m.ConnectorState, state_name("teams"))
        assert state is not None
        return dict((state.cursor or {})["subscriptions"])


# -- creating ------------------------------------------------------------------------------------


def test_at_start_each_staff_members_chats_and_each_channel_get_a_subscription(
    db: Database, graph: respx.MockRouter,
) -> None:
    create = graph_creates(graph, "sub-chats", "sub-channel")
    report = manager(db, Clock(), channels=[f"{TEAM}/{CHANNEL}"]).sync(renew_all=True)
    assert report.problems == [] and report.created == [CHATS, CHANNEL_MESSAGES]
    bodies = [json.loads(call.request.content) for call in create.calls]
    assert [b["resource"] for b in bodies] == [CHATS, CHANNEL_MESSAGES]
    for body in bodies:
        assert body["changeType"] == "created,updated,deleted"
        assert body["notificationUrl"] == f"{PUBLIC_URL}/webhooks/teams"
        assert body["lifecycleNotificationUrl"] == f"{PUBLIC_URL}/webhooks/teams"
        assert body["clientState"] == CLIENT_STATE
        expires = datetime.fromisoformat(body["expirationDateTime"].replace("Z", "+00:00"))
        # within Graph's maximum for chatMessage: 4320 minutes
        assert expires - START == timedelta(minutes=4200) <= timedelta(minutes=4320)
    subs = stored(db)
    assert subs[CHATS]["id"] == "sub-chats" and subs[CHANNEL_MESSAGES]["id"] == "sub-channel"


def test_a_metered_payment_model_is_asked_for_when_configured(
    db: Database, graph: respx.MockRouter,
) -> None:
    create = graph_creates(graph, "sub-chats")
    manager(db, Clock(), payment_model="B").sync()
    assert json.loads(create.calls[0].request.content)["resource"] == f"{CHATS}?model=B"


def test_the_lifetime_asked_for_cannot_exceed_graphs_maximum() -> None:
    with pytest.raises(ValueError, match="subscription_minutes"):
        connector(subscription_minutes=4321)


# -- renewing ------------------------------------------------------------------------------------


def test_a_subscription_is_renewed_past_half_its_life_and_not_before(
    db: Database, graph: respx.MockRouter,
) -> None:
    clock = Clock()
    graph_creates(graph, "sub-chats")
    renew = graph_renews(graph, "sub-chats")
    subs = manager(db, clock)
    subs.sync(renew_all=True)
    clock.now = START + timedelta(hours=1)
    assert subs.sync().renewed == [] and not renew.called
    clock.now = START + timedelta(hours=36)  # 70 h lifetime: past half
    assert subs.sync().renewed == [CHATS]
    asked = json.loads(renew.calls[0].request.content)["expirationDateTime"]
    assert asked == "2026-11-25T19:00:00Z"  # 36 h + 4200 min after the start
    assert stored(db)[CHATS]["expires"].startswith("2026-11-25T19:00:00")


def test_the_check_runs_often_enough_to_renew_in_time() -> None:
    nowhere: Any = None  # the interval needs no database
    assert SubscriptionManager(nowhere, connector(), NOTIFICATION_URL).check_interval \
        == timedelta(hours=1)
    short = SubscriptionManager(nowhere, connector(subscription_minutes=60), NOTIFICATION_URL)
    assert short.check_interval == timedelta(minutes=15)


def test_a_removed_subscription_found_at_renewal_is_re_created_and_caught_up(
    db: Database, graph: respx.MockRouter,
) -> None:
    clock = Clock()
    create = graph_creates(graph, "sub-chats", "sub-chats-2")
    graph.patch(f"{BASE}/subscriptions/sub-chats").mock(
        return_value=httpx.Response(404, json=NOT_FOUND))
    subs = manager(db, clock)
    subs.sync()
    clock.now = START + timedelta(hours=40)
    report = subs.sync()
    assert report.created == [CHATS] and report.catch_up
    assert create.call_count == 2 and stored(db)[CHATS]["id"] == "sub-chats-2"


def test_subscriptions_for_users_no_longer_listed_are_deleted(
    db: Database, graph: respx.MockRouter,
) -> None:
    graph_creates(graph, "sub-chats", "sub-channel")
    manager(db, Clock(), channels=[f"{TEAM}/{CHANNEL}"]).sync()
    # the tutor's chats are no longer read: only the channel is
    report = manager(db, Clock(), users=[], channels=[f"{TEAM}/{CHANNEL}"]).sync()
    deleted = [c.request.url.path for c in graph.calls if c.request.method == "DELETE"]
    assert report.removed == [CHATS] and deleted == ["/v1.0/subscriptions/sub-chats"]
    assert list(stored(db)) == [CHANNEL_MESSAGES]


# -- errors: polling goes on ---------------------------------------------------------------------


def test_a_missing_permission_names_the_account_and_the_permission_and_polling_goes_on(
    db: Database, graph: respx.MockRouter, caplog: pytest.LogCaptureFixture,
) -> None:
    graph.post(f"{BASE}/subscriptions").mock(return_value=httpx.Response(403, json=FORBIDDEN))
    subs = manager(db, Clock(), channels=[f"{TEAM}/{CHANNEL}"])
    with caplog.at_level(logging.INFO):
        report = subs.sync(renew_all=True)
    chats, channel = report.problems
    assert "account brookfield-teams" in chats and "Chat.Read.All" in chats
    assert "admin consent" in chats and "polling" in chats
    assert "ChannelMessage.Read.All" in channel and "ChannelMessage.Read.Group" in channel
    assert [r.levelname for r in caplog.records if "refused" in r.getMessage()] == ["ERROR"] * 2
    assert CLIENT_STATE not in caplog.text and SECRET not in caplog.text
    # the next check says it again, less loudly, and still tries
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert len(subs.sync().problems) == 2
    assert [r.levelname for r in caplog.records if "refused" in r.getMessage()] == ["WARNING"] * 2
    # polling is unaffected
    graph.get(url__regex=r"/delta").mock(return_value=httpx.Response(200, json={
        "value": [], "@odata.deltaLink": f"{BASE}/delta-next"}))
    assert isinstance(subs.connector, TeamsConnector)
    result = subs.connector.fetch(None)
    assert result.problems == [] and result.cursor is not None


def test_a_notification_url_graph_cannot_reach_says_it_must_be_public_https(
    db: Database, graph: respx.MockRouter,
) -> None:
    graph.post(f"{BASE}/subscriptions").mock(
        return_value=httpx.Response(400, json=VALIDATION_FAILED))
    (problem,) = manager(db, Clock()).sync().problems
    assert NOTIFICATION_URL in problem
    assert "publicly reachable" in problem and "HTTPS" in problem
    assert "[service] public_url" in problem


def test_without_client_state_subscribing_is_refused_with_the_fix(
    db: Database, graph: respx.MockRouter,
) -> None:
    create = graph_creates(graph, "never")
    subs = SubscriptionManager(db, connector(), NOTIFICATION_URL, Clock())
    subs.connector.settings.client_state = None
    (problem,) = subs.sync().problems
    assert "client_state" in problem and not create.called


def test_public_url_must_be_https(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[service]\npublic_url = "http://192.168.1.20:8080"\n')
    with pytest.raises(ConfigError, match=r"service\.public_url.*HTTPS"):
        load_config(path, env={})
    path.write_text('[service]\npublic_url = "https://governance.brookfield.example.org/"\n')
    assert load_config(path, env={}).service.public_url == PUBLIC_URL


def test_without_public_url_teams_is_polled_and_no_subscription_is_made(
    db: Database, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        assert managers_for(db, [connector()], None) == {}
    assert "public_url" in caplog.text
    assert managers_for(db, [connector(subscribe=False)], PUBLIC_URL) == {}
    (made,) = managers_for(db, [connector()], PUBLIC_URL).values()
    assert made.notification_url == NOTIFICATION_URL


# -- lifecycle notifications ---------------------------------------------------------------------


def webhook(body: bytes) -> WebhookRequest:
    return WebhookRequest(method="POST", path="/webhooks/teams", query={},
                          headers={"content-type": "application/json"}, body=body)


def test_a_lifecycle_notification_is_passed_to_the_service_without_reading_any_message(
    graph: respx.MockRouter,
) -> None:
    response = connector().handle_webhook(webhook(
        lifecycle_notification("sub-chats", "subscriptionRemoved")))
    assert response.status == 202 and response.items == []
    assert response.subscription_events == [SubscriptionEvent("sub-chats", "subscriptionRemoved")]
    assert [c.request.url.path for c in graph.calls] == []  # nothing fetched


def test_a_lifecycle_notification_with_the_wrong_client_state_is_refused() -> None:
    response = connector().handle_webhook(webhook(
        lifecycle_notification("sub-chats", "subscriptionRemoved", client_state="guessed")))
    assert response.status == 403 and response.subscription_events == []


def test_reauthorization_required_reauthorizes_the_subscription(
    db: Database, graph: respx.MockRouter,
) -> None:
    graph_creates(graph, "sub-chats")
    reauth = graph.post(f"{BASE}/subscriptions/sub-chats/reauthorize").mock(
        return_value=httpx.Response(204))
    subs = manager(db, Clock())
    subs.sync()
    report = subs.handle([SubscriptionEvent("sub-chats", "reauthorizationRequired")])
    assert reauth.called and report.reauthorized == [CHATS]
    assert not report.catch_up and report.problems == []


def test_reauthorizing_a_subscription_graph_dropped_re_creates_it(
    db: Database, graph: respx.MockRouter,
) -> None:
    create = graph_creates(graph, "sub-chats", "sub-chats-2")
    graph.post(f"{BASE}/subscriptions/sub-chats/reauthorize").mock(
        return_value=httpx.Response(404, json=NOT_FOUND))
    subs = manager(db, Clock())
    subs.sync()
    report = subs.handle([SubscriptionEvent("sub-chats", "reauthorizationRequired")])
    assert create.call_count == 2 and report.catch_up
    assert stored(db)[CHATS]["id"] == "sub-chats-2"


def test_a_removed_subscription_is_re_created_and_the_gap_is_caught_up(
    db: Database, graph: respx.MockRouter,
) -> None:
    create = graph_creates(graph, "sub-chats", "sub-chats-2")
    subs = manager(db, Clock())
    subs.sync()
    report = subs.handle([SubscriptionEvent("sub-chats", "subscriptionRemoved")])
    assert report.created == [CHATS] and report.catch_up
    assert create.call_count == 2 and stored(db)[CHATS]["id"] == "sub-chats-2"
    # the old one is deleted first, in case the notice was not Graph's: never two running
    deleted = [c.request.url.path for c in graph.calls if c.request.method == "DELETE"]
    assert deleted == ["/v1.0/subscriptions/sub-chats"]


def test_missed_notifications_are_caught_up_by_polling(
    db: Database, graph: respx.MockRouter,
) -> None:
    graph_creates(graph, "sub-chats")
    subs = manager(db, Clock())
    subs.sync()
    report = subs.handle([SubscriptionEvent("sub-chats", "missed")])
    assert report.catch_up and report.created == [] and stored(db)[CHATS]["id"] == "sub-chats"


def test_a_removed_subscription_that_cannot_be_re_created_is_still_caught_up(
    db: Database, graph: respx.MockRouter,
) -> None:
    graph_creates(graph, "sub-chats")
    subs = manager(db, Clock())
    subs.sync()
    graph.post(f"{BASE}/subscriptions").mock(return_value=httpx.Response(403, json=FORBIDDEN))
    report = subs.handle([SubscriptionEvent("sub-chats", "subscriptionRemoved")])
    assert report.catch_up and "Chat.Read.All" in report.problems[0]
    assert stored(db) == {}  # and the next check tries again


# -- end to end: the service's webhook endpoint --------------------------------------------------


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_removed_teams_subscription_is_re_created_and_the_gap_caught_up_so_no_staff_message_to_a_learner_is_missed(  # noqa: E501
    make_config: Callable[..., Config],
) -> None:
    config = make_config(f"""
[service]
public_url = "{PUBLIC_URL}"
[delivery]
sink = "json"
json_path = "delivered.jsonl"
[[connectors]]
name = "teams"
type = "teams"
account = "brookfield-teams"
tenant_id = "{TENANT}"
client_id = "app-0001"
client_secret = "${{TEAMS_CLIENT_SECRET}}"
client_state = "${{TEAMS_CLIENT_STATE}}"
users = ["{TUTOR_AAD}"]
base_url = "{BASE}"
login_base_url = "{BASE}"
poll_interval_seconds = 3600
""", env=TEAMS_ENV)
    delta = f"{BASE}/users/{TUTOR_AAD}/chats/getAllMessages/delta"
    # sent while Graph had dropped the subscription: 22:30 on a Friday, tutor to learner
    gap_message = message("1700000000900", "2026-11-20T22:30:00Z", "Did you finish the essay?")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as graph:
        install_token(graph, BASE)
        create = graph_creates(graph, "sub-chats", "sub-chats-2")
        graph.delete(f"{BASE}/subscriptions/sub-chats").mock(
            return_value=httpx.Response(404, json=NOT_FOUND))
        graph.get(f"{BASE}/chats/{CHAT}/members").mock(
            return_value=httpx.Response(200, json=TUTORIAL_MEMBERS))
        graph.get(delta).mock(side_effect=[
            httpx.Response(200, json=delta_page([], delta_link=f"{delta}?$deltatoken=1")),
            httpx.Response(200, json=delta_page([gap_message],
                                                delta_link=f"{delta}?$deltatoken=2")),
        ])
        rt = Runtime.from_config(config)
        svc = Service(rt)
        try:
            (teams,) = rt.connectors
            svc.keep_subscriptions(teams, renew_all=True)  # what the service does at start
            svc.poll(teams)  # ... and its first poll: nothing new yet
            assert create.call_count == 1 and count(rt, m.ItemRecord) == 0
            svc.scheduler.start()
            removed = lifecycle_notification("sub-chats", "subscriptionRemoved")
            answer = TestClient(svc.http_app()).post(
                "/webhooks/teams", content=removed, headers={"Content-Type": "application/json"})
            assert answer.status_code == 202  # answered at once; the work follows
            assert wait_for(lambda: count(rt, m.ItemRecord) == 1), "the gap was not caught up"
            svc.scheduler.shutdown(wait=True)
        finally:
            rt.close()
        assert create.call_count == 2 and stored(rt.db)["/users/aad-0006/chats/getAllMessages"][
            "id"] == "sub-chats-2"
    with rt.db.session() as session:
        flag = session.execute(select(m.Flag)).scalar_one()
    assert flag.category == "out_of_hours"


def count(rt: Runtime, table: Any) -> int:
    with rt.db.session() as session:
        return int(session.execute(select(func.count()).select_from(table)).scalar_one())


# -- the command line ----------------------------------------------------------------------------


def teams_config(make_config: Callable[..., Config], public_url: str | None = PUBLIC_URL) -> Path:
    service = f'[service]\npublic_url = "{public_url}"\n' if public_url else ""
    config = make_config(service + f"""
[[connectors]]
name = "teams"
type = "teams"
account = "brookfield-teams"
tenant_id = "{TENANT}"
client_id = "app-0001"
client_secret = "${{TEAMS_CLIENT_SECRET}}"
client_state = "${{TEAMS_CLIENT_STATE}}"
users = ["{TUTOR_AAD}"]
base_url = "{BASE}"
login_base_url = "{BASE}"
""", env=TEAMS_ENV)
    assert config.source is not None
    return config.source


def cli(config: Path, *args: str) -> Any:
    from typer.testing import CliRunner

    from governance_bot.cli import app

    return CliRunner().invoke(app, ["connectors", "subscribe", "--config", str(config), *args],
                              env={**TEAMS_ENV, "COLUMNS": "200"})


def test_connectors_subscribe_creates_the_subscriptions_and_lists_them(
    make_config: Callable[..., Config], graph: respx.MockRouter,
) -> None:
    config = teams_config(make_config)
    create = graph_creates(graph, "sub-chats")
    result = cli(config)
    assert result.exit_code == 0, result.output
    assert create.called and "sub-chats" in result.output and CHATS in result.output
    result = cli(config, "teams", "--remove")
    assert result.exit_code == 0 and f"removed the subscription for {CHATS}" in result.output
    assert [c.request.url.path for c in graph.calls if c.request.method == "DELETE"] == [
        "/v1.0/subscriptions/sub-chats"]


def test_connectors_subscribe_reports_a_missing_permission_and_exits_1(
    make_config: Callable[..., Config], graph: respx.MockRouter,
) -> None:
    graph.post(f"{BASE}/subscriptions").mock(return_value=httpx.Response(403, json=FORBIDDEN))
    result = cli(teams_config(make_config))
    assert result.exit_code == 1 and "Chat.Read.All" in result.output


def test_connectors_subscribe_needs_the_public_url(make_config: Callable[..., Config]) -> None:
    result = cli(teams_config(make_config, public_url=None))
    assert result.exit_code == 2 and "public_url" in result.output


def test_the_service_subscribes_at_start_and_checks_hourly(
    make_config: Callable[..., Config],
) -> None:
    config = load_config(teams_config(make_config), env=TEAMS_ENV)
    rt = Runtime.from_config(config)
    try:
        svc = Service(rt)
        svc.schedule()
        jobs = {job.id: job for job in svc.scheduler.get_jobs()}
        assert jobs["subscriptions:teams"].trigger.interval == timedelta(hours=1)
        assert [j.args[1:] for j in jobs.values() if j.func == svc.keep_subscriptions
                and j.id != "subscriptions:teams"] == [(True,)]  # at start: renew or create all
    finally:
        rt.close()


def test_the_same_removal_notice_twice_makes_one_new_subscription(
    db: Database, graph: respx.MockRouter,
) -> None:
    create = graph_creates(graph, "sub-chats", "sub-chats-2", "sub-chats-3")
    subs = manager(db, Clock())
    subs.sync()
    removed = SubscriptionEvent("sub-chats", "subscriptionRemoved")
    subs.handle([removed, removed])
    assert create.call_count == 2 and stored(db)[CHATS]["id"] == "sub-chats-2"


def test_with_subscriptions_made_by_hand_a_removal_still_triggers_a_catch_up_poll(
    make_config: Callable[..., Config], graph: respx.MockRouter,
) -> None:
    config = load_config(teams_config(make_config), env=TEAMS_ENV)
    config.connectors[0].subscribe = False  # type: ignore[attr-defined]
    delta = graph.get(f"{BASE}/users/{TUTOR_AAD}/chats/getAllMessages/delta").mock(
        return_value=httpx.Response(200, json=delta_page([], delta_link=f"{BASE}/d?t=1")))
    rt = Runtime.from_config(config)
    try:
        svc = Service(rt)
        assert svc.subscriptions == {}
        (teams,) = rt.connectors
        svc.subscription_events(teams, [SubscriptionEvent("sub-by-hand", "subscriptionRemoved")])
        assert delta.called
    finally:
        rt.close()


def test_doctor_says_whether_change_notifications_work(
    make_config: Callable[..., Config], graph: respx.MockRouter,
) -> None:
    from governance_bot.doctor import run_doctor

    def check() -> Any:
        (found,) = [c for c in run_doctor(config) if c.name == "change notifications teams"]
        return found

    config = load_config(teams_config(make_config, public_url=None), env=TEAMS_ENV)
    rt = Runtime.from_config(config)  # creates the database
    rt.close()
    off = check()
    assert not off.ok and off.warning and "public_url" in off.fix
    config = load_config(teams_config(make_config), env=TEAMS_ENV)
    assert check().warning  # nothing subscribed yet
    graph.post(f"{BASE}/subscriptions").mock(return_value=httpx.Response(403, json=FORBIDDEN))
    assert cli(teams_config(make_config)).exit_code == 1
    refused = check()
    assert not refused.ok and not refused.warning and "Chat.Read.All" in refused.message
    graph_creates(graph, "sub-chats")
    assert cli(teams_config(make_config)).exit_code == 0
    working = check()
    assert working.ok and "1 subscription(s)" in working.message
