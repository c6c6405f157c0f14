"""Webhook faults an attacker or a platform can cause (issue 17, rows 2-5).

* Row 2: a signed Meta or WhatsApp delivery replayed with the signature's hex in upper case was
  accepted as new (the replay key was the raw header, while the check normalises it); replaying
  an old body rolled the archived item back to its old text.
* Row 3: one malformed message in a signed WhatsApp delivery gave a 500 with a traceback, and the
  valid message beside it was never stored.
* Row 4: with the learner Slack's API hanging, the platform call ran inside the HTTP event loop:
  ``/healthz`` took 29 s and the event failed after 30 s.
* Row 5: a 50-200 MB unsigned POST was refused only after it was read into memory (+340 MB).

The in-process tests drive the real service (Starlette app, pipeline, database) through
Starlette's test client; rows 4 and 5 run ``governance-bot run`` in a subprocess and talk to it
over HTTP, against a local server that accepts connections and never answers.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from governance_bot.config import Config, load_config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from governance_bot.storage.archive import item_from_version
from tests.fake_slack_workspace import FakeWorkspace
from tests.faults import deliveries as d
from tests.faults.platforms import SilentServer
from tests.faults.world import governance_bot, stop, wait_until, write_config
from tests.pg_server import _free_port

START = datetime(2026, 9, 21, 11, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def service(backend_config: Callable[..., Config]) -> Iterator[tuple[Service, TestClient, Clock]]:
    connectors = d.connectors_toml(slack_url="http://127.0.0.1:9/", graph_url="http://127.0.0.1:9")
    config = backend_config("[delivery]\nsink = \"json\"\njson_path = \"delivered.jsonl\"\n"
                            + connectors, env=d.ENV)
    clock = Clock()
    rt = Runtime.from_config(config)
    rt.pipeline.clock = clock
    svc = Service(rt)
    for name in ("replay_guard", "inbox"):
        if hasattr(svc, name):
            getattr(svc, name).clock = clock
    if hasattr(svc, "answer_seconds"):
        svc.answer_seconds = 60  # these tests look at what was stored once answered
    yield svc, TestClient(svc.http_app(), raise_server_exceptions=False), clock
    if hasattr(svc, "close"):
        svc.close()
    else:
        svc.ingest.close()
    rt.close()


def post(client: TestClient, delivery: d.Delivery) -> Any:
    return client.post(delivery.path, content=delivery.body, headers=delivery.headers)


def upper_hex(delivery: d.Delivery) -> d.Delivery:
    """The same delivery with the signature's hex in upper case (which the check accepts)."""
    signature = delivery.headers["X-Hub-Signature-256"]
    prefix, _, digest = signature.partition("=")
    return d.Delivery(delivery.path, delivery.body,
                      {**delivery.headers, "X-Hub-Signature-256": f"{prefix}={digest.upper()}"},
                      delivery.keys)


def current_text(svc: Service, key: str) -> str:
    with svc.rt.db.session() as s:
        record = s.execute(select(m.ItemRecord).where(m.ItemRecord.key == key)).scalar_one()
        version = s.execute(select(m.ItemVersion).where(
            m.ItemVersion.item_id == record.id,
            m.ItemVersion.version == record.current_version)).scalar_one()
        return item_from_version(version).text


def last_seen(svc: Service, key: str) -> datetime:
    with svc.rt.db.session() as s:
        return s.execute(select(m.ItemRecord.last_seen_at).where(
            m.ItemRecord.key == key)).scalar_one()


# --- row 2 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["facebook", "whatsapp"])
def test_a_replay_with_the_signature_in_upper_case_is_not_processed_again(
        service: tuple[Service, TestClient, Clock], platform: str) -> None:
    svc, client, clock = service
    delivery = (d.facebook(3) if platform == "facebook" else
                d.whatsapp([d.whatsapp_message("wamid.R1", "see you at four")]))
    assert post(client, delivery).status_code == 200
    key = delivery.keys[0]
    assert last_seen(svc, key) == START
    clock.now = START + timedelta(minutes=5)
    replay = post(client, upper_hex(delivery))
    assert replay.status_code == 200  # acknowledged, so the platform stops retrying ...
    assert last_seen(svc, key) == START  # ... and not processed again


@pytest.mark.parametrize("platform", ["facebook", "whatsapp"])
def test_replaying_an_older_body_never_rolls_the_archive_back(
        service: tuple[Service, TestClient, Clock], platform: str) -> None:
    svc, client, clock = service
    if platform == "facebook":
        original = d.facebook(1)
        value = json.loads(original.body)["entry"][0]["changes"][0]["value"]
        edit_body = json.dumps({"object": "page", "entry": [{"id": d.PAGE, "time": d.T0 + 60,
                                "changes": [{"field": "feed", "value": {
                                    **value, "verb": "edited",
                                    "message": "Well done to the team!"}}]}]}).encode()
        from connectors.meta import sign

        edit = d.Delivery(original.path, edit_body,
                          {"X-Hub-Signature-256": sign(edit_body, d.FB_SECRET)}, original.keys)
        new_text = "Well done to the team!"
    else:
        original = d.whatsapp([d.whatsapp_message("wamid.R2", "call me on 07700 900123")])
        edit = d.whatsapp([{"from": "447700900123", "id": "wamid.R2-edit",
                            "timestamp": str(d.T0 + 60), "type": "edit",
                            "edit": {"original_message_id": "wamid.R2",
                                     "message": {"type": "text",
                                                 "text": {"body": "see you at four"}}}}])
        new_text = "see you at four"
    key = original.keys[0]
    assert post(client, original).status_code == 200
    clock.now = START + timedelta(minutes=1)
    assert post(client, edit).status_code == 200
    assert current_text(svc, key) == new_text
    # the old body again: in upper case (a new key before), and past the replay window
    clock.now = START + timedelta(minutes=2)
    post(client, upper_hex(original))
    clock.now = START + timedelta(hours=80)
    post(client, original)
    assert current_text(svc, key) == new_text
    with svc.rt.db.session() as s:
        versions = s.execute(select(func.count(m.ItemVersion.id)).join(
            m.ItemRecord, m.ItemRecord.id == m.ItemVersion.item_id).where(
            m.ItemRecord.key == key)).scalar_one()
    assert versions == 2  # the original and the edit, nothing rolled back


# --- row 3 ---------------------------------------------------------------------------------------

MALFORMED = [
    {"from": "447700900124", "id": "wamid.BAD1", "timestamp": str(d.T0), "type": "text",
     "text": {"body": "hello"}, "context": "not-an-object"},
    {"from": "447700900124", "id": "wamid.BAD2", "timestamp": str(d.T0), "type": "contacts",
     "contacts": [7]},
    {"from": "447700900124", "id": "wamid.BAD3", "timestamp": str(d.T0), "type": "edit",
     "edit": "not-an-object"},
    "not a message at all",
]


@pytest.mark.parametrize("bad", MALFORMED, ids=["context", "contacts", "edit", "string"])
def test_one_malformed_whatsapp_message_is_reported_and_the_others_stored(
        service: tuple[Service, TestClient, Clock], bad: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    svc, client, _ = service
    good = d.whatsapp_message("wamid.GOOD", "Jayden Price left his bag in room 4")
    delivery = d.whatsapp([good, bad])
    with caplog.at_level(logging.INFO):
        answer = post(client, delivery)
    assert answer.status_code == 200, answer.text
    with svc.rt.db.session() as s:
        keys = set(s.execute(select(m.ItemRecord.key)).scalars())
        unchecked = s.execute(select(func.count(m.ItemVersion.id)).where(
            m.ItemVersion.detected_at.is_(None))).scalar_one()
    assert keys == {"whatsapp:brookfield-whatsapp:wamid.GOOD"}
    assert unchecked == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipped" in w for w in warnings), warnings  # the bad one is reported ...
    assert not [r for r in caplog.records if r.exc_info], "a traceback in the log"
    assert "Jayden" not in caplog.text  # ... by place and kind, never by content


# --- rows 4 and 5: the real service over HTTP --------------------------------------------------

@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """Start ``governance-bot run`` with the four webhook connectors; yields a starter."""
    for name, value in d.ENV.items():
        monkeypatch.setenv(name, value)
    procs: list[Any] = []

    def start(slack_url: str, graph_url: str = "http://127.0.0.1:9") -> tuple[Any, str, Path]:
        port = _free_port()
        config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'gb.db'}",
                              port=port, connectors=d.connectors_toml(slack_url=slack_url,
                                                                      graph_url=graph_url))
        Runtime.from_config(load_config(config, env=d.ENV)).close()
        proc = governance_bot("run", "-c", str(config), cwd=tmp_path)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(base + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 120, "the service to answer /healthz")
        return proc, base, config

    yield start
    for proc in procs:
        stop(proc)


def test_a_hung_platform_api_holds_up_nothing_and_its_event_is_kept(
        running: Callable[..., Any], tmp_path: Path) -> None:
    with SilentServer() as silent:
        proc, base, _ = running(silent.base_url)
        slack = d.slack_event(1)
        result: dict[str, Any] = {}

        def send_event() -> None:
            began = time.monotonic()
            try:
                answer = httpx.post(base + slack.path, content=slack.body, headers=slack.headers,
                                    timeout=60)
                result["status"] = answer.status_code
            except httpx.HTTPError as exc:
                result["status"] = type(exc).__name__
            result["seconds"] = time.monotonic() - began

        sender = threading.Thread(target=send_event)
        sender.start()
        waits = []
        for _ in range(20):  # /healthz while the event's platform call hangs
            began = time.monotonic()
            assert httpx.get(base + "/healthz", timeout=30).status_code == 200
            waits.append(time.monotonic() - began)
            time.sleep(0.1)
        meta = d.facebook(3, prefix="h")
        began = time.monotonic()
        assert httpx.post(base + meta.path, content=meta.body, headers=meta.headers,
                          timeout=60).status_code == 200
        meta_seconds = time.monotonic() - began
        sender.join(60)
        print(f"/healthz slowest {max(waits):.2f} s; the Slack event answered {result} ; a Meta "
              f"delivery meanwhile in {meta_seconds:.2f} s; the hung API had "
              f"{silent.connections} connection(s)")
        assert max(waits) < 1.0
        assert result["status"] == 200 and result["seconds"] < 3.0  # within Slack's deadline
        assert meta_seconds < 3.0
        assert silent.connections >= 1  # the platform call was made (and hung) on a worker
        stop(proc)
    # the event was not lost: kept, and checked once the API answers (here: after a restart
    # with a working API; a running service retries by itself with growing pauses)
    with FakeWorkspace(users=d.SLACK_USERS, channels=d.SLACK_CHANNELS,
                       members={"D0DM": ["U0TUTOR", "U0LEARN"]}) as workspace:
        running(workspace.base_url)
        from governance_bot.storage.db import Database

        db = Database(f"sqlite:///{tmp_path / 'gb.db'}")

        def checked() -> bool:
            with db.session() as s:
                return s.execute(select(m.ItemVersion.detected_at).join(
                    m.ItemRecord, m.ItemRecord.id == m.ItemVersion.item_id).where(
                    m.ItemRecord.key == slack.keys[0])).scalar_one_or_none() is not None

        wait_until(checked, 90, "the kept event to be read and checked")
        db.dispose()


def _rss_peak_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _send_huge(port: int, size: int, chunked: bool) -> tuple[bytes, int]:
    """POST ``size`` bytes of an unsigned body; (what came back, bytes sent before the server
    stopped reading)."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (b"POST /webhooks/facebook-page HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\n")
    head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else \
        f"Content-Length: {size}\r\n\r\n".encode()
    sent = 0
    block = b"0" * (1 << 20)
    try:
        sock.sendall(head)
        sock.settimeout(10)
        while sent < size:
            piece = (f"{len(block):x}\r\n".encode() + block + b"\r\n") if chunked else block
            sock.sendall(piece)
            sent += len(block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server closed the connection: it stopped reading
    answer = b""
    try:
        sock.settimeout(30)
        while not answer.endswith(b"\r\n\r\n") and b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except OSError:
        pass
    sock.close()
    return answer, sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_unsigned_post_is_refused_before_it_is_read_into_memory(
        running: Callable[..., Any], chunked: bool) -> None:
    proc, base, _ = running("http://127.0.0.1:9/")
    port = int(base.rsplit(":", 1)[1])
    before = _rss_peak_kb(proc.pid)
    answer, sent = _send_huge(port, 120 << 20, chunked)
    time.sleep(1)
    grew_mb = (_rss_peak_kb(proc.pid) - before) / 1024
    status = answer.split(b"\r\n", 1)[0]
    print(f"120 MB unsigned POST ({'chunked' if chunked else 'Content-Length'}): answer "
          f"{status!r} after {sent >> 20} MB sent; peak memory +{grew_mb:.1f} MB")
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert grew_mb < 30
    assert httpx.get(base + "/healthz", timeout=5).status_code == 200  # still serving
    assert os.path.exists(f"/proc/{proc.pid}")


def test_a_teams_notification_for_a_message_gone_meanwhile_holds_up_none_of_the_others(
        tmp_path: Path) -> None:
    """Each notification of a Graph delivery is read alone: one whose message is gone (404)
    is reported, the others are stored."""
    from connectors.teams import TeamsConnector, TeamsSettings
    from tests.faults.platforms import FakeGraph
    from tests.msgraph_fixtures import CHAT, CLIENT_ID, CLIENT_STATE, SECRET, TENANT, TUTOR_AAD

    with FakeGraph() as graph:
        graph.messages["1700000000301"] = d.teams_message("1700000000301", 1)
        settings = TeamsSettings.model_validate({
            "name": "teams", "type": "teams", "account": "brookfield-teams",
            "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET,
            "client_state": CLIENT_STATE, "users": [TUTOR_AAD], "base_url": graph.base_url,
            "login_base_url": graph.base_url, "max_retries": 0})
        connector = TeamsConnector(settings)
        delivery = d.teams(["1700000000300", "1700000000301"])  # the first one is gone
        from connectors.base import WebhookRequest

        response = connector.handle_webhook(WebhookRequest(
            method="POST", path="/webhooks/teams", headers={}, query={}, body=delivery.body))
        items, problems = connector.deferred_items(response.deferred)
        connector.close()
    assert [i.key for i in items] == [f"teams:brookfield-teams:{CHAT}:1700000000301"]
    assert len(problems) == 1 and "1700000000300" in problems[0] and "not found" in problems[0]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_every_route_refuses_a_body_over_the_limit_before_reading_it(chunked: bool) -> None:
    """The cap covers every route the service serves (the Slack app's /slack/events and the
    console's forms read their bodies through their frameworks)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from governance_bot.service import BodyLimit

    read: list[int] = []

    async def form(request: Request) -> PlainTextResponse:
        body = await request.body()  # reads everything, as slack_bolt's adapter does
        read.append(len(body))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/slack/events", form, methods=["POST"])],
                    middleware=[Middleware(BodyLimit, limit=1024)])
    client = TestClient(app, raise_server_exceptions=False)

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"x" * 512

    big = client.post("/slack/events", content=chunks() if chunked else b"x" * 32768)
    small = client.post("/slack/events", content=b"x" * 100)
    assert big.status_code == 413 and small.status_code == 200
    assert read == [100]  # the big body never reached the route


def test_a_teams_notification_naming_another_host_never_sends_the_token_there() -> None:
    """Someone who learnt the clientState could name any URL as the ``resource``: the service
    reads only chat and channel message resources, on Graph, so the token never leaves."""
    from connectors.base import WebhookRequest
    from connectors.teams import TeamsConnector, TeamsSettings
    from tests.msgraph_fixtures import CLIENT_ID, CLIENT_STATE, SECRET, TENANT, TUTOR_AAD

    with SilentServer() as elsewhere:
        settings = TeamsSettings.model_validate({
            "name": "teams", "type": "teams", "account": "brookfield-teams",
            "tenant_id": TENANT, "client_id": CLIENT_ID, "client_secret": SECRET,
            "client_state": CLIENT_STATE, "users": [TUTOR_AAD],
            "base_url": "http://127.0.0.1:9", "login_base_url": "http://127.0.0.1:9"})
        connector = TeamsConnector(settings)
        body = json.dumps({"value": [{"clientState": CLIENT_STATE, "changeType": "created",
                                      "resource": f"{elsewhere.base_url}steal"},
                                     {"clientState": CLIENT_STATE, "resource": "1"}]}).encode()
        response = connector.handle_webhook(WebhookRequest(
            method="POST", path="/webhooks/teams", headers={}, query={}, body=body))
        # a delivery stored before the check was added is refused again when it is read
        items, problems = connector.deferred_items([{"resource": f"{elsewhere.base_url}steal"}])
        connector.close()
        assert response.status == 202 and response.deferred == []
        assert items == [] and len(problems) == 1 and "not read" in problems[0]
        assert elsewhere.connections == 0
        # a real chat message resource is still taken up
        valid = json.dumps({"value": [{"clientState": CLIENT_STATE, "changeType": "created",
                                       "resource": "chats('19:a1@thread.v2')/messages('17')"}]})
        again = TeamsConnector(settings).handle_webhook(WebhookRequest(
            method="POST", path="/webhooks/teams", headers={}, query={}, body=valid.encode()))
        assert again.deferred == [{"resource": "chats('19:a1@thread.v2')/messages('17')"}]
