"""Socket Mode: no public URL; the service dials out to a WebSocket that apps.connections.open
names. Here that is a local WebSocket server (the ``websockets`` library) that plays Slack's
side: it sends envelopes (a button click, a slash command) and reads the acknowledgements.

Findings come from the test-only detectors in tests/slack/helpers.py.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from governance_bot.slack.service import SlackService
from tests.slack.conftest import DSL, SlackWorld
from tests.slack.helpers import block_action, post


class FakeSocketModeSlack:
    """Slack's side of a Socket Mode connection."""

    def __init__(self) -> None:
        self.to_client: queue.Queue[dict[str, Any]] = queue.Queue()
        self.acks: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link/?ticket=test"

    def _handle(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0GOV"}}))
        self.connected.set()
        while True:
            try:
                envelope = self.to_client.get(timeout=0.05)
                ws.send(json.dumps(envelope))
            except queue.Empty:
                pass
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:
                return
            data = json.loads(message)
            if "envelope_id" in data:
                self.acks.put(data)


@pytest.fixture
def socket_slack(world: SlackWorld) -> Iterator[FakeSocketModeSlack]:
    fake = FakeSocketModeSlack()
    fake.thread.start()
    world.fake.socket_url = fake.url
    yield fake
    fake.server.shutdown()


def test_socket_mode_receives_clicks_and_commands_without_a_public_url(
        world: SlackWorld, socket_slack: FakeSocketModeSlack,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1-test")
    world.rt.config.slack.mode = "socket"
    world.ingest(post("w1", "nobody would miss me", kind="comment"))
    flag_id = world.flag_id("w1")
    service = SlackService(world.rt)
    service.bot.clock = world.clock
    service.start_socket_mode()
    try:
        assert socket_slack.connected.wait(5)
        assert world.fake.calls("apps.connections.open")[0].headers["Authorization"] == (
            "Bearer xapp-1-test")
        socket_slack.to_client.put({"envelope_id": "env-1", "type": "interactive",
                                    "accepts_response_payload": False,
                                    "payload": block_action(DSL, "gb_ack", flag_id)})
        assert socket_slack.acks.get(timeout=5)["envelope_id"] == "env-1"
        world.wait(lambda: world.flag(flag_id).acknowledged_by == "S001")
        socket_slack.to_client.put({"envelope_id": "env-2", "type": "slash_commands",
                                    "accepts_response_payload": True, "payload": {
                                        "command": "/governance", "text": "status",
                                        "user_id": DSL, "team_id": "T0BROOK",
                                        "channel_id": "C0GENERAL", "api_app_id": "A0GOV",
                                        "response_url": "https://hooks.slack.example/1",
                                        "trigger_id": "trig"}})
        ack = socket_slack.acks.get(timeout=5)
        assert ack["envelope_id"] == "env-2"
        assert "1 acknowledged" in ack["payload"]["text"]
    finally:
        service.close()
        time.sleep(0.05)
