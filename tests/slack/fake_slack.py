"""A local fake of the Slack Web API for tests and benchmarks.

A real HTTP server on 127.0.0.1 (random port) that the real ``slack_sdk.WebClient`` talks to
through ``base_url``. It records every call and answers in Slack's response shapes for the methods
governance-bot uses. It can be told to fail: answer 429 with ``Retry-After``, answer 5xx, or be
"down" (every call fails) until told otherwise.

Usage::

    with FakeSlack() as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        ...
        slack.calls("chat.postMessage")
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Call", "FakeSlack"]


@dataclass(slots=True)
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float = field(default_factory=time.perf_counter)
    status: int = 200


def _decode(value: Any) -> Any:
    """Form-encoded blocks/metadata arrive as JSON strings; decode them for assertions."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class FakeSlack:
    # the bot scopes a correctly installed governance-bot app has (docs/slack-app-manifest.yaml)
    SCOPES = ("chat:write", "commands", "groups:history", "im:history", "im:write",
              "mpim:history", "mpim:write", "users:read")

    def __init__(self, users: dict[str, dict[str, Any]] | None = None,
                 socket_url: str | None = None, tokens: set[str] | None = None,
                 scopes: tuple[str, ...] | None = None):
        """``users``: users.info answers by id (others are user_not_found); ``tokens``: the bot
        tokens Slack accepts (None: any); ``scopes``: what auth.test reports as granted."""
        self.users = users or {}
        self.socket_url = socket_url
        self.tokens = tokens
        self.scopes = self.SCOPES if scopes is None else scopes
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        self._channels: dict[str, list[dict[str, Any]]] = {}
        self._conversations: dict[tuple[str, ...], str] = {}
        self._failures: list[tuple[int, dict[str, str]]] = []
        self.down_status: int | None = None  # set to 503 for an outage
        self.on_call: Callable[[Call], None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> FakeSlack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    # --- control ------------------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 500, headers: dict[str, str] | None = None
                  ) -> None:
        """The next ``count`` calls get ``status`` (e.g. 429 with {"Retry-After": "1"})."""
        with self._lock:
            self._failures.extend([(status, headers or {})] * count)

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if (method is None or c.method == method)
                    and c.status == 200]

    def all_calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()

    def messages(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._channels.get(channel, [])]

    def conversation_for(self, *users: str) -> str | None:
        return self._conversations.get(tuple(sorted(users)))

    def wait_for(self, method: str, count: int = 1, timeout: float = 30.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls(method)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"expected {count} {method} call(s) in {timeout}s, "
                             f"got {len(self.calls(method))}")

    # --- the API ------------------------------------------------------------------------------
    def _answer(self, method: str, p: dict[str, Any], token: str = "") -> dict[str, Any]:
        if method == "auth.test" and self.tokens is not None and token not in self.tokens:
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "url": "https://brookfield.slack.example/", "team": "Brookfield",
                    "user": "governance-bot", "team_id": "T0BROOK", "user_id": "U0BOT",
                    "bot_id": "B0BOT", "is_enterprise_install": False}
        if method == "conversations.open":
            users = tuple(sorted(u for u in str(p.get("users", "")).split(",") if u))
            if not users:
                return {"ok": False, "error": "users_not_found"}
            with self._lock:
                cid = self._conversations.get(users)
                if cid is None:
                    prefix = "D" if len(users) == 1 else "G"
                    cid = f"{prefix}{len(self._conversations) + 1:08d}"
                    self._conversations[users] = cid
                    self._channels.setdefault(cid, [])
            return {"ok": True, "no_op": False, "already_open": False,
                    "channel": {"id": cid, "is_im": len(users) == 1,
                                "is_mpim": len(users) > 1}}
        if method in ("chat.postMessage", "chat.postEphemeral"):
            channel = str(p.get("channel", ""))
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            ts = f"{1_790_000_000 + next(self._ts)}.{next(self._ts):06d}"
            message = {"type": "message", "user": "U0BOT", "bot_id": "B0BOT", "ts": ts,
                       "text": p.get("text", ""), "blocks": _decode(p.get("blocks", [])),
                       "thread_ts": p.get("thread_ts")}
            if "metadata" in p:
                message["metadata"] = _decode(p["metadata"])
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": ts}
            with self._lock:
                self._channels.setdefault(channel, []).append(message)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method == "chat.update":
            channel, ts = str(p.get("channel", "")), str(p.get("ts", ""))
            with self._lock:
                for message in self._channels.get(channel, []):
                    if message["ts"] == ts:
                        message["text"] = p.get("text", message["text"])
                        message["blocks"] = _decode(p.get("blocks", message["blocks"]))
                        return {"ok": True, "channel": channel, "ts": ts,
                                "text": message["text"], "message": dict(message)}
            return {"ok": False, "error": "message_not_found"}
        if method == "conversations.history":
            channel = str(p.get("channel", ""))
            with self._lock:
                msgs = [dict(m) for m in reversed(self._channels.get(channel, []))
                        if not m.get("thread_ts")]
            if str(p.get("include_all_metadata", "")).lower() not in ("true", "1"):
                for m in msgs:
                    m.pop("metadata", None)
            limit = int(p.get("limit", 100))
            return {"ok": True, "messages": msgs[:limit], "has_more": len(msgs) > limit,
                    "pin_count": 0, "response_metadata": {"next_cursor": ""}}
        if method == "conversations.replies":
            channel, ts = str(p.get("channel", "")), str(p.get("ts", ""))
            with self._lock:
                msgs = [dict(m) for m in self._channels.get(channel, [])
                        if m["ts"] == ts or m.get("thread_ts") == ts]
            if str(p.get("include_all_metadata", "")).lower() not in ("true", "1"):
                for m in msgs:
                    m.pop("metadata", None)
            return {"ok": True, "messages": msgs, "has_more": False,
                    "response_metadata": {"next_cursor": ""}}
        if method in ("views.open", "views.update", "views.push"):
            view = _decode(p.get("view", {}))
            return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", "team_id": "T0BROOK",
                                         **(view if isinstance(view, dict) else {})}}
        if method == "views.publish":
            view = _decode(p.get("view", {}))
            return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", "team_id": "T0BROOK",
                                         "type": "home",
                                         **(view if isinstance(view, dict) else {})}}
        if method == "users.info":
            user = self.users.get(str(p.get("user", "")))
            if user is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": user}
        if method == "apps.connections.open":
            if not self.socket_url:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_url}
        return {"ok": False, "error": "unknown_method"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                return None

            def do_POST(self) -> None:
                self._serve()

            def do_GET(self) -> None:
                self._serve()

            def _serve(self) -> None:
                path, _, query = self.path.partition("?")
                method = path.rsplit("/", 1)[-1]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
                ctype = self.headers.get("Content-Type", "")
                if body:
                    if "json" in ctype:
                        params.update(json.loads(body))
                    else:
                        params.update({k: v[-1] for k, v in
                                       parse_qs(body.decode(), keep_blank_values=True).items()})
                params = {k: _decode(v) for k, v in params.items()}
                call = Call(method, params, dict(self.headers.items()))
                auth = self.headers.get("Authorization", "")
                token = auth[7:] if auth.startswith("Bearer ") else str(params.get("token", ""))
                with fake._lock:
                    failure = fake._failures.pop(0) if fake._failures else None
                    down = fake.down_status
                if failure is None and down is not None:
                    failure = (down, {})
                if failure is not None:
                    call.status = failure[0]
                    with fake._lock:
                        fake._calls.append(call)
                    error = "ratelimited" if failure[0] == 429 else "internal_error"
                    self._send(failure[0], {"ok": False, "error": error}, failure[1])
                    return
                answer = fake._answer(method, params, token)
                with fake._lock:
                    fake._calls.append(call)
                if fake.on_call is not None:
                    fake.on_call(call)
                extra = ({"X-OAuth-Scopes": ",".join(fake.scopes)}
                         if method == "auth.test" and answer.get("ok") else {})
                self._send(200, answer, extra)

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]
                      ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler
