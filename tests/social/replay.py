"""Replaying recorded HTTP interactions (VCR cassettes, JSON bodies) through respx.

A cassette's interactions for one method and URL are answered in the order they were recorded;
the last one repeats. Nothing reaches the network: respx refuses unrouted requests.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import respx
import yaml

__all__ = ["Interaction", "json_response", "load_cassette", "mount_cassette"]


@dataclass(frozen=True, slots=True)
class Interaction:
    method: str
    uri: str
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)

    def response(self) -> httpx.Response:
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("content-encoding", "transfer-encoding",
                                        "content-length")}
        return httpx.Response(self.status, headers=headers, content=self.body.encode())


@lru_cache(maxsize=256)
def load_cassette(path: Path) -> list[Interaction]:
    """The interactions of a VCR cassette (cached: tests only read them)."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    out = []
    for entry in data.get("interactions", []):
        req, resp = entry["request"], entry["response"]
        body = resp.get("body", {}).get("string", "")
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        headers = {k: (v[-1] if isinstance(v, list) else str(v))
                   for k, v in (resp.get("headers") or {}).items()}
        out.append(Interaction(req["method"].upper(), req["uri"], int(resp["status"]["code"]),
                               headers, body or ""))
    return out


def mount_cassette(router: respx.Router, interactions: list[Interaction],
                   base: str | None = None) -> None:
    """Route every interaction (URL rewritten onto ``base`` if given), in recorded order."""
    grouped: dict[tuple[str, str], list[Interaction]] = defaultdict(list)
    for it in interactions:
        uri = it.uri
        if base:
            url = httpx.URL(uri)
            uri = str(httpx.URL(base).copy_with(path=url.path, query=url.query or None))
        grouped[(it.method, uri)].append(it)
    for (method, uri), its in grouped.items():
        responses = [i.response() for i in its]
        state = {"n": 0}

        def answer(request: httpx.Request, responses: list[httpx.Response] = responses,
                   state: dict[str, int] = state) -> httpx.Response:
            n = min(state["n"], len(responses) - 1)
            state["n"] += 1
            r = responses[n]
            return httpx.Response(r.status_code, headers=r.headers, content=r.content)

        router.route(method=method, url=uri).mock(side_effect=answer)


def json_response(path: Path, status: int = 200, headers: dict[str, str] | None = None
                  ) -> httpx.Response:
    """A recorded JSON body as a response."""
    return httpx.Response(status, headers={"content-type": "application/json", **(headers or {})},
                          content=path.read_bytes())
