"""Replaying recorded HTTP interactions (VCR-style YAML cassettes) with respx.

The X recordings in ../shared/fixtures/x/cassettes come from tweepy's test-suite: each holds the
request (method, URI, body) and the real response (status, headers, body, often gzip-compressed).
:func:`load_cassette` decodes them; :func:`route` installs one as a respx route on the test's base
URL, keeping the recorded headers (rate-limit headers included) and body.
"""

from __future__ import annotations

import functools
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import respx
import yaml

from tests.shared import require_shared

__all__ = ["Interaction", "load_cassette", "route"]

_DROP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "set-cookie"}


@dataclass(frozen=True, slots=True)
class Interaction:
    method: str
    url: httpx.URL
    request_body: bytes | None
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def response(self, body: Any = None) -> httpx.Response:
        """The recorded response (or the same status and headers with another JSON body)."""
        content = self.body if body is None else json.dumps(body).encode()
        return httpx.Response(self.status, headers=self.headers, content=content)


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def load_cassette(name: str) -> list[Interaction]:
    """Every interaction in ``fixtures/x/cassettes/<name>`` (parsed once per test run)."""
    path = require_shared("fixtures", "x", "cassettes", name)
    return list(_parse(path))


@functools.cache
def _parse(path: Path) -> tuple[Interaction, ...]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[Interaction] = []
    for entry in data["interactions"]:
        request, response = entry["request"], entry["response"]
        raw_headers = response.get("headers") or {}
        headers = {k.lower(): (v[0] if isinstance(v, list) else str(v))
                   for k, v in raw_headers.items() if k.lower() not in _DROP_HEADERS}
        body = _bytes((response.get("body") or {}).get("string"))
        if body[:2] == b"\x1f\x8b":  # some recordings keep the gzip, some decoded it
            body = gzip.decompress(body)
        request_body = request.get("body")
        out.append(Interaction(
            method=request["method"].upper(),
            url=httpx.URL(request["uri"]),
            request_body=_bytes(request_body) if request_body is not None else None,
            status=int(response["status"]["code"]),
            headers=headers,
            body=body,
        ))
    return tuple(out)


def route(router: respx.MockRouter, interaction: Interaction, base_url: str,
          body: Any = None, **match: Any) -> respx.Route:
    """A respx route answering the recorded response at the same path on ``base_url``."""
    url = base_url.rstrip("/") + interaction.url.path
    return router.route(method=interaction.method, url=url, **match).mock(
        return_value=interaction.response(body))
