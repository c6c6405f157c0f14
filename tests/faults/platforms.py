"""Local stand-ins for the platform APIs a webhook delivery makes the service call, for the fault
tests that run ``governance-bot run`` in a subprocess (where respx cannot reach):

* :class:`FakeGraph`: Microsoft Graph's sign-in and the two reads a Teams change notification
  leads to (the changed message, the chat's members), in Graph's documented shapes
  (tests/msgraph_fixtures.py);
* :class:`SilentServer`: accepts connections and never answers, as a platform API does when it
  hangs (the slow-API fault).

The learner Slack's Web API is tests/fake_slack_workspace.py.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.msgraph_fixtures import CHAT, TENANT, TOKEN, TUTORIAL_MEMBERS

__all__ = ["FakeGraph", "SilentServer"]


class FakeGraph:
    """Graph at ``base_url``; ``messages`` maps a chat message id to its chatMessage JSON."""

    def __init__(self) -> None:
        self.messages: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeGraph:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def _answer(self, method: str, path: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append(f"{method} {path}")
        if method == "POST" and path == f"/{TENANT}/oauth2/v2.0/token":
            return 200, {"token_type": "Bearer", "expires_in": 3599, "access_token": TOKEN}
        if path == f"/chats/{CHAT}/members":
            return 200, TUTORIAL_MEMBERS
        found = re.fullmatch(r"/chats\('([^']+)'\)/messages\('([^']+)'\)", path)
        if method == "GET" and found and found.group(2) in self.messages:
            return 200, self.messages[found.group(2)]
        return 404, {"error": {"code": "NotFound", "message": "Resource not found"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        graph = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = graph._answer(method, unquote(urlsplit(self.path).path))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._reply("GET")

            def do_POST(self) -> None:
                self._reply("POST")

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


class SilentServer:
    """A TCP server that accepts every connection, reads what is sent and never answers."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sock.close()
        for conn in self._open:
            conn.close()

    @property
    def base_url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"http://{host}:{port}/"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)  # kept open, never answered
