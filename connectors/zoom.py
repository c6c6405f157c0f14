"""``zoom``: meetings hosted by staff on Zoom, with their settings and who actually took part.

Policy duty: "video sessions password-protected; an additional staff member present" (P1
"What we expect of our staff"; P2 "Communicating with students"). Each past meeting becomes one
``meeting`` item: the host is the author, the participants are the recipients, and
``video_session`` carries what the ``video_session`` rule checks (passcode, waiting room).

What is read (a Server-to-Server OAuth app, account credentials):

- ``GET /report/users/{user}/meetings?from&to`` for each listed staff host (report:read:admin),
- ``GET /meetings/{id}`` for the settings (meeting:read:admin): ``password`` and
  ``settings.waiting_room``; a meeting deleted since (404) has unknown settings,
- ``GET /past_meetings/{uuid}/participants`` (meeting:read:admin): names and emails.

The cursor is the last day listed completely per host; each poll lists again from the day before
it (meetings that ended late are not missed) and the archive merges repeats by meeting UUID.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from connectors.base import (
    Capability,
    ConnectorSettings,
    FatalError,
    FetchResult,
    HttpConnector,
    SkippableRecord,
    parse_time,
)
from governance_bot.items import Item, ItemKind, Person, Visibility

__all__ = ["ZoomConnector", "ZoomSettings", "meeting_item", "uuid_path"]

log = logging.getLogger(__name__)


class ZoomSettings(ConnectorSettings):
    account_id: str = Field(min_length=1, description="the Zoom account id of the S2S OAuth app")
    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(description='"${ENV_VAR}" holding the app\'s client secret')
    users: list[str] = Field(min_length=1, description="staff hosts: Zoom user ids or emails")
    lookback_days: int = Field(default=7, ge=1, le=30, description="first poll reads this far")
    oauth_base_url: str | None = Field(default=None, description="override for tests")
    page_size: int = Field(default=300, ge=1, le=300)


def uuid_path(uuid: str) -> str:
    """A meeting UUID for a URL path: Zoom asks for double encoding when it has a ``/``."""
    once = quote(uuid, safe="")
    return quote(once, safe="") if uuid.startswith("/") or "//" in uuid else once


def meeting_item(report: dict[str, Any], details: dict[str, Any] | None,
                 participants: list[dict[str, Any]], *, account: str,
                 platform: str = "zoom") -> Item:
    """One past meeting (report row, meeting details or None, participants) to an Item."""
    uuid = report.get("uuid")
    if not uuid:
        raise SkippableRecord(f"meeting {report.get('id')}: no uuid")
    try:
        started = parse_time(report.get("start_time"))
    except ValueError as exc:
        raise SkippableRecord(f"meeting {uuid}: start_time: {exc}") from None
    host_email = (details or {}).get("host_email") or report.get("user_email")
    host = Person(id=f"zoom:{report['host_id']}" if report.get("host_id") else None,
                  email=str(host_email).lower() if host_email else None,
                  name=report.get("user_name"))
    people: list[Person] = []
    seen: set[str] = set()
    for p in participants:
        email = str(p.get("user_email") or "").lower() or None
        key = email or str(p.get("id") or p.get("name") or "")
        if not key or key in seen:
            continue  # the same person re-joining is listed once per join
        seen.add(key)
        if email and email == host.email:
            continue
        people.append(Person(id=f"zoom:{p['id']}" if p.get("id") else None, email=email,
                             name=p.get("name")))
    settings = (details or {}).get("settings") or {}
    passcode: bool | None = None
    if details is not None:
        passcode = bool(details.get("password") or details.get("encrypted_password"))
    waiting = settings.get("waiting_room") if details is not None else None
    return Item.model_validate({
        "id": str(uuid),
        "platform": platform,
        "account": account,
        "kind": ItemKind.meeting,
        "author": host,
        "recipients": people,
        "created_at": started,
        "visibility": Visibility.private,
        "text": str(report.get("topic") or ""),
        "thread_id": str(report.get("id") or uuid),  # a recurring meeting's sessions share it
        "raw": {"report": report, "meeting": details, "participants": participants},
        "video_session": {
            "passcode": passcode,
            "waiting_room": bool(waiting) if waiting is not None else None,
            "settings_known": details is not None,
            "duration_minutes": report.get("duration"),
            "participant_count": len(people) + 1,
        },
    })


class ZoomConnector(HttpConnector):
    """Past Zoom meetings hosted by staff: settings and participants."""

    type: ClassVar[str] = "zoom"
    description: ClassVar[str] = "Zoom meetings hosted by staff (settings, participants)"
    Settings = ZoomSettings
    capabilities = frozenset({Capability.read})
    default_base_url: ClassVar[str] = "https://api.zoom.us/v2"
    auth_fix: ClassVar[str] = (
        "check account_id, client_id and the client secret in the environment, and that the "
        "Server-to-Server OAuth app has the report:read:admin and meeting:read:admin scopes"
    )

    settings: ZoomSettings

    def __init__(self, settings: ConnectorSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self._token: str | None = None
        self._expires = 0.0
        self._missing_is_fine = False

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _ensure_token(self) -> None:
        if self._token and self.clock() < self._expires - 60:
            return
        s = self.settings
        basic = base64.b64encode(
            f"{s.client_id}:{s.client_secret.get_secret_value()}".encode()).decode()
        self._token = None
        response = self.request(
            "POST", f"{(s.oauth_base_url or 'https://zoom.us').rstrip('/')}/oauth/token",
            params={"grant_type": "account_credentials", "account_id": s.account_id},
            headers={"Authorization": f"Basic {basic}"},
        )
        try:
            payload = response.json()
            self._token = str(payload["access_token"])
            self._expires = self.clock() + float(payload.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise FatalError(f"{self.name} (account {self.account}): Zoom's token answer had no "
                             f"access token. Fix: {self.auth_fix}.") from exc

    def api(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        self._ensure_token()
        return self.request("GET", path, params=params)

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        done: dict[str, str] = dict((cursor or {}).get("listed_until", {}))
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        items: list[Item] = []
        problems: list[str] = []
        seen: set[str] = set()
        for user in self.settings.users:
            if user in done:
                start = datetime.fromisoformat(done[user]).date() - timedelta(days=1)
            else:
                start = today - timedelta(days=self.settings.lookback_days)
            for report in self._reports(user, start.isoformat(), today.isoformat()):
                try:
                    item = self._meeting(report)
                except SkippableRecord as exc:
                    where = f"/report/users/{user}/meetings"
                    problems.append(f"{self.name}: {where}: {exc}")
                    log.warning("%s: skipped a record from %s: %s", self.name, where, exc)
                    continue
                if item.id not in seen:
                    seen.add(item.id)
                    items.append(item)
            done[user] = today.isoformat()
        return FetchResult(items=items, cursor={"listed_until": done}, problems=problems)

    def _reports(self, user: str, start: str, end: str) -> list[dict[str, Any]]:
        path = f"report/users/{quote(user, safe='@')}/meetings"
        params: dict[str, Any] = {"from": start, "to": end, "page_size": self.settings.page_size}
        out: list[dict[str, Any]] = []
        for _ in range(1000):
            page = self.api(path, params).json()
            out.extend(m for m in page.get("meetings") or [] if isinstance(m, dict))
            token = page.get("next_page_token")
            if not token:
                break
            params = {**params, "next_page_token": token}
        return out

    def _meeting(self, report: dict[str, Any]) -> Item:
        uuid = report.get("uuid")
        if not uuid or not report.get("start_time"):
            raise SkippableRecord(f"meeting {report.get('id') or uuid}: no uuid or start_time")
        details: dict[str, Any] | None = None
        if report.get("id"):
            response = self._optional(f"meetings/{report['id']}")
            details = response.json() if response is not None else None
        participants: list[dict[str, Any]] = []
        params: dict[str, Any] = {"page_size": self.settings.page_size}
        for _ in range(1000):
            response = self._optional(f"past_meetings/{uuid_path(str(uuid))}/participants",
                                      params)
            if response is None:
                break
            page = response.json()
            participants.extend(p for p in page.get("participants") or [] if isinstance(p, dict))
            token = page.get("next_page_token")
            if not token:
                break
            params = {**params, "next_page_token": token}
        return meeting_item(report, details, participants, account=self.account)

    def effective_status(self, response: httpx.Response) -> int:
        if response.status_code == 404 and self._missing_is_fine:
            return 200  # the caller sees the 404 and treats it as "nothing there"
        return response.status_code

    def _optional(self, path: str, params: dict[str, Any] | None = None
                  ) -> httpx.Response | None:
        """GET that answers None for 404 (a meeting deleted since, or no participants kept)."""
        self._missing_is_fine = True
        try:
            response = self.api(path, params)
        finally:
            self._missing_is_fine = False
        if response.status_code == 404:
            log.info("%s: Zoom has no %s record any more (404)", self.name, path.split("/")[0])
            return None
        return response
