"""Replay protection on inbound webhooks (governance_bot/webhooks.py).

Meta's X-Hub-Signature-256 has no timestamp, so a captured delivery would stay valid for ever.
A signed delivery seen again within the window is acknowledged (200, as Meta expects, so it stops
retrying) and NOT processed again, on any replica sharing the database; a delivery whose
processing failed is released so that Meta's retry gets through.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors.meta import sign
from governance_bot.config import Config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from governance_bot.storage.dp_models import WebhookDelivery
from governance_bot.webhooks import ReplayGuard

APP_SECRET = "replay-test-app-secret"
PAGE = "104000000001"
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def comment_event(comment_id: str, text: str) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": PAGE, "time": 1789990000, "changes": [
        {"field": "feed", "value": {
            "from": {"id": "6100000000123", "name": "A. Parent"}, "item": "comment",
            "verb": "add", "created_time": 1789990000, "post_id": f"{PAGE}_900001",
            "parent_id": f"{PAGE}_900001", "comment_id": comment_id, "message": text}}]}]}
    ).encode()


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def replicas(backend_config: Callable[..., Config]
             ) -> Iterator[tuple[list[Service], list[TestClient], Clock]]:
    config = backend_config(f"""
[delivery]
sink = "json"
json_path = "delivered.jsonl"
[security]
webhook_replay_window_hours = 72
[[connectors]]
name = "facebook-page"
type = "facebook"
account = "brookfield-facebook"
page_id = "{PAGE}"
access_token = "${{FB_TOKEN}}"
app_secret = "${{FB_APP_SECRET}}"
verify_token = "${{FB_VERIFY}}"
base_url = "http://127.0.0.1:9"
""", env={"FB_TOKEN": "t", "FB_APP_SECRET": APP_SECRET, "FB_VERIFY": "v"})
    clock = Clock()
    services, clients, runtimes = [], [], []
    for _ in range(2):  # two replicas of `governance-bot run` on one database
        rt = Runtime.from_config(config)
        rt.pipeline.clock = clock
        svc = Service(rt)
        svc.replay_guard.clock = clock
        svc.answer_seconds = 60  # these tests look at what was processed once answered
        runtimes.append(rt)
        services.append(svc)
        clients.append(TestClient(svc.http_app()))
    yield services, clients, clock
    for svc in services:
        svc.close()
    for rt in runtimes:
        rt.close()


def deliver(client: TestClient, body: bytes) -> Any:
    return client.post("/webhooks/facebook-page", content=body,
                       headers={"X-Hub-Signature-256": sign(body, APP_SECRET),
                                "Content-Type": "application/json"})


def last_seen(svc: Service, native_id: str) -> datetime:
    with svc.rt.db.session() as s:
        return s.execute(select(m.ItemRecord.last_seen_at).where(
            m.ItemRecord.native_id == native_id)).scalar_one()


def count(svc: Service, table: Any) -> int:
    with svc.rt.db.session() as s:
        return s.execute(select(func.count()).select_from(table)).scalar_one()


def test_the_same_signed_delivery_twice_is_acknowledged_but_processed_once(replicas):
    (svc, _), (client, _), clock = replicas
    body = comment_event("900001_700001", "Maisie O'Connell in 8B was brilliant!")
    first = deliver(client, body)
    assert (first.status_code, first.text) == (200, "EVENT_RECEIVED")
    assert last_seen(svc, "900001_700001") == START
    clock.now = START + timedelta(minutes=5)
    second = deliver(client, body)
    assert (second.status_code, second.text) == (200, "EVENT_RECEIVED")  # Meta stops retrying
    assert last_seen(svc, "900001_700001") == START  # ... but nothing was processed again
    # a different delivery is processed as usual
    deliver(client, comment_event("900001_700002", "lovely photos"))
    assert last_seen(svc, "900001_700002") == clock.now
    assert count(svc, m.ItemRecord) == 2 and count(svc, m.Flag) == 1


def test_a_replay_to_another_replica_is_not_processed_either(replicas):
    (svc_a, svc_b), (client_a, client_b), clock = replicas
    body = comment_event("900001_700003", "see you at the match Zara Ahmed")
    assert deliver(client_a, body).status_code == 200
    clock.now = START + timedelta(hours=1)
    assert deliver(client_b, body).status_code == 200
    assert last_seen(svc_b, "900001_700003") == START
    assert count(svc_a, WebhookDelivery) == 1


def test_after_the_window_a_replayed_delivery_is_processed_and_harmless(replicas):
    (svc, _), (client, _), clock = replicas
    body = comment_event("900001_700004", "Maisie O'Connell again")
    deliver(client, body)
    clock.now = START + timedelta(hours=73)
    assert deliver(client, body).status_code == 200
    assert last_seen(svc, "900001_700004") == clock.now  # processed again ...
    assert count(svc, m.Flag) == 1 and count(svc, m.ItemVersion) == 1  # ... changing nothing
    assert count(svc, WebhookDelivery) == 1  # the expired row was replaced


def test_a_delivery_whose_processing_failed_is_kept_and_finished_by_the_service(
        replicas, monkeypatch):
    """Once a delivery is stored (with its claim, in one transaction) it is the service's to
    finish: a failure keeps it, and it is processed again without waiting for Meta's retry
    (WhatsApp and Teams do not retry an acknowledged delivery)."""
    (svc, _), (client, _), clock = replicas
    body = comment_event("900001_700005", "hello")

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database unavailable")

    import governance_bot.pipeline as pipeline_module

    # archiving fails, for the batch and then for the item alone
    real = pipeline_module.archive_items, pipeline_module.archive_item
    monkeypatch.setattr(pipeline_module, "archive_items", failing)
    monkeypatch.setattr(pipeline_module, "archive_item", failing)
    assert deliver(client, body).status_code == 200  # stored: Meta need not retry
    assert count(svc, m.ItemRecord) == 0 and svc.inbox.pending() == 1
    monkeypatch.setattr(pipeline_module, "archive_items", real[0])
    monkeypatch.setattr(pipeline_module, "archive_item", real[1])
    clock.now = START + timedelta(minutes=1)  # past the first pause before another attempt
    svc.recover()
    wait_until(lambda: svc.inbox.pending() == 0)
    assert last_seen(svc, "900001_700005") == clock.now
    # Meta's retry, had it come, is acknowledged and not processed again
    assert deliver(client, body).status_code == 200
    assert count(svc, m.ItemRecord) == 1 and count(svc, m.ItemVersion) == 1


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_refused_deliveries_are_not_remembered(replicas):
    (svc, _), (client, _), _clock = replicas
    body = comment_event("900001_700006", "hello")
    bad = client.post("/webhooks/facebook-page", content=body,
                      headers={"X-Hub-Signature-256": sign(body, "wrong-secret")})
    assert bad.status_code == 403
    assert count(svc, WebhookDelivery) == 0


def test_replicas_claiming_one_delivery_at_the_same_moment_let_exactly_one_through(replicas):
    (svc_a, svc_b), _clients, _clock = replicas
    guards = [ReplayGuard(s.rt.db, timedelta(hours=1)) for s in (svc_a, svc_b)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: guards[i % 2].claim("facebook-page", "sha256=abc"),
                                range(16)))
    assert results.count(True) == 1
