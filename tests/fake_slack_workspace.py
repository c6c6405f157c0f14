"""A local fake of the Slack Web API methods a learner-facing workspace is read with.

A real HTTP server on 127.0.0.1 that the real ``slack_sdk.WebClient`` talks to through
``base_url``: ``conversations.list/info/members/history/replies`` and ``users.info``, with
Slack's response shapes and cursor paging (``page_size`` messages per page). It records every
call and can answer the next calls with 429 + Retry-After, or with any failures queued in
``fail_next`` (status, JSON body, headers), e.g. a 503 while Slack has an incident.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeWorkspace"]


def _after(message: dict[str, Any], oldest: float) -> bool:
    """Newer than ``oldest``; a record whose ts is unreadable is listed (a corrupt record is
    exactly what the connector must cope with)."""
    try:
        return float(message["ts"]) > oldest
    except (KeyError, TypeError, ValueError):
        return True


@dataclass
class FakeWorkspace:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # newest first
    replies: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    page_size: int = 2
    token: str = "xoxb-fake-workspace-token"
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    rate_limit_next: int = 0
    fail_next: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeWorkspace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def methods(self) -> list[str]:
        with self._lock:
            return [m for m, _ in self.calls]

    # -- the API ---------------------------------------------------------------------------------

    def _page(self, messages: list[dict[str, Any]], params: dict[str, str],
              key: str = "messages") -> dict[str, Any]:
        start = int(params.get("cursor") or 0)
        chunk = messages[start:start + self.page_size]
        more = start + self.page_size < len(messages)
        return {"ok": True, key: chunk, "has_more": more,
                "response_metadata": {"next_cursor": str(start + self.page_size) if more else ""}}

    def answer(self, method: str, params: dict[str, str]) -> dict[str, Any]:
        if method == "users.info":
            user = self.users.get(params.get("user", ""))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "conversations.list":
            return self._page(list(self.channels.values()), params, "channels")
        if method == "conversations.info":
            channel = self.channels.get(params.get("channel", ""))
            return ({"ok": True, "channel": channel} if channel
                    else {"ok": False, "error": "channel_not_found"})
        if method == "conversations.members":
            return {"ok": True, "members": self.members.get(params.get("channel", ""), []),
                    "response_metadata": {"next_cursor": ""}}
        if method == "conversations.history":
            oldest = float(params.get("oldest") or 0)
            found = [m for m in self.history.get(params.get("channel", ""), [])
                     if _after(m, oldest)]
            return self._page(found, params)
        if method == "conversations.replies":
            oldest = float(params.get("oldest") or 0)
            thread = self.replies.get((params.get("channel", ""), params.get("ts", "")), [])
            # Slack returns the parent first on every page, then replies after ``oldest``
            found = thread[:1] + [m for m in thread[1:] if _after(m, oldest)]
            return self._page(found, params)
        return {"ok": False, "error": "unknown_method"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _reply(self, status: int, payload: dict[str, Any],
                       headers: dict[str, str] | None = None) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _serve(self, params: dict[str, str]) -> None:
                method = urlsplit(self.path).path.rsplit("/", 1)[-1]
                with fake._lock:
                    fake.calls.append((method, params))
                    failure = fake.fail_next.pop(0) if fake.fail_next else None
                    limited = failure is None and fake.rate_limit_next > 0
                    if limited:
                        fake.rate_limit_next -= 1
                if failure is not None:
                    self._reply(*failure)
                    return
                if limited:
                    self._reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3"})
                    return
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._reply(200, {"ok": False, "error": "invalid_auth"})
                    return
                self._reply(200, fake.answer(method, params))

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                self._serve({k: v[-1] for k, v in query.items()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                query = parse_qs(body)
                self._serve({k: v[-1] for k, v in query.items()})

        return Handler
