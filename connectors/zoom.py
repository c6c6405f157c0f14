"""``zoom``: meetings hosted by staff on Zoom, with their settings and who actually took part.

Policy duty: "video sessions password-protected; an additional staff member present" (P1
"What we expect of our staff"; P2 "Communicating with students"). Each past meeting becomes one
``meeting`` item: the host is the author, the participants are the recipients, and
``video_session`` carries what the ``video_session`` rule checks (passcode, waiting room).

Read with a Server-to-Server OAuth app: ``/report/users/{user}/meetings`` per listed host,
``/meetings/{id}`` (settings; a meeting deleted since has unknown settings) and
``/past_meetings/{uuid}/participants``. The cursor is the last day listed per host; each poll
lists again from the day before it and the archive merges repeats by meeting UUID.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import Field, SecretStr

from connectors.base import (
    Capability,
    ConnectorSettings,
    FetchResult,
    HttpConnector,
    NotFound,
    PageTokenPaginator,
    SkippableRecord,
    dedupe,
    parse_one,
    parse_time,
)
from governance_bot.items import Item, ItemKind, Person, Visibility

__all__ = ["ZoomConnector", "ZoomSettings", "meeting_item", "uuid_path"]

PAGES = PageTokenPaginator("next_page_token", "next_page_token")


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
    if not uuid or not report.get("start_time"):
        raise SkippableRecord(f"meeting {report.get('id') or uuid}: no uuid or start_time")
    host_email = (details or {}).get("host_email") or report.get("user_email")
    host = Person(id=f"zoom:{report['host_id']}" if report.get("host_id") else None,
                  email=str(host_email).lower() if host_email else None,
                  name=report.get("user_name"))
    people: dict[str, Person] = {}
    for p in participants:  # a person re-joining is listed once per join
        email = str(p.get("user_email") or "").lower() or None
        key = email or str(p.get("id") or p.get("name") or "")
        if key and key not in people and not (email and email == host.email):
            people[key] = Person(id=f"zoom:{p['id']}" if p.get("id") else None, email=email,
                                 name=p.get("name"))
    waiting = (details or {}).get("settings", {}).get("waiting_room")
    return Item.model_validate({
        "id": str(uuid), "platform": platform, "account": account, "kind": ItemKind.meeting,
        "author": host, "recipients": list(people.values()),
        "created_at": parse_time(report["start_time"]),
        "visibility": Visibility.private, "text": str(report.get("topic") or ""),
        "thread_id": str(report.get("id") or uuid),  # a recurring meeting's sessions share it
        "raw": {"report": report, "meeting": details, "participants": participants},
        "video_session": {
            "passcode": bool(details.get("password") or details.get("encrypted_password"))
            if details is not None else None,
            "waiting_room": bool(waiting) if waiting is not None else None,
            "settings_known": details is not None,
            "duration_minutes": report.get("duration"),
            "participant_count": len(people) + 1,
        },
    })


class ZoomConnector(HttpConnector):
    type: ClassVar[str] = "zoom"
    description: ClassVar[str] = "Zoom meetings hosted by staff (settings, participants)"
    Settings = ZoomSettings
    capabilities = frozenset({Capability.read})
    default_base_url: ClassVar[str] = "https://api.zoom.us/v2"
    auth_fix: ClassVar[str] = ("check account_id, client_id and the client secret in the "
                               "environment, and that the Server-to-Server OAuth app has the "
                               "report:read:admin and meeting:read:admin scopes")
    settings: ZoomSettings

    def __init__(self, settings: ConnectorSettings, **kwargs: Any):
        super().__init__(settings, **kwargs)
        self.tokens = self.token_cache(self._sign_in)

    def _sign_in(self) -> tuple[str, float]:
        s = self.settings
        return self.client_credentials(
            f"{(s.oauth_base_url or 'https://zoom.us').rstrip('/')}/oauth/token",
            params={"grant_type": "account_credentials", "account_id": s.account_id},
            basic=(s.client_id, s.client_secret.get_secret_value()))

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.get()}"}

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        done: dict[str, str] = dict((cursor or {}).get("listed_until", {}))
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        items: list[Item] = []
        problems: list[str] = []
        for user in self.settings.users:
            start = (datetime.fromisoformat(done[user]).date() - timedelta(days=1) if user in done
                     else today - timedelta(days=self.settings.lookback_days))
            where = f"{self.name}: /report/users/{user}/meetings"
            for page in self.pages(f"report/users/{quote(user, safe='@')}/meetings", {
                    "from": start.isoformat(), "to": today.isoformat(),
                    "page_size": self.settings.page_size}, PAGES):
                for report in page.records("meetings"):
                    items.extend(parse_one(report, self._meeting, where, problems,
                                           connector=self.name))
            done[user] = today.isoformat()
        return FetchResult(items=dedupe(items), cursor={"listed_until": done},
                           problems=problems)

    def _meeting(self, report: dict[str, Any]) -> Item:
        details = self.get_json(f"meetings/{report.get('id')}", allow_404=True)
        participants: list[dict[str, Any]] = []
        if report.get("uuid"):
            path = f"past_meetings/{uuid_path(str(report['uuid']))}/participants"
            with contextlib.suppress(NotFound):  # Zoom keeps no participants of some (404)
                for page in self.pages(path, {"page_size": self.settings.page_size}, PAGES):
                    participants.extend(p for p in page.records("participants")
                                        if isinstance(p, dict))
        return meeting_item(report, details if isinstance(details, dict) else None,
                            participants, account=self.account)
