"""Signed-in sessions of the console: who is behind a request, for how long, and CSRF.

* The cookie holds a random token (256 bits); the database keeps only its SHA-256, with the
  staff member, the CSRF token and the two limits: an idle timeout (no request for that long)
  and an absolute one (from sign-in). An ended session (sign-out, timeout) is never revived.
* Cookies are HttpOnly, SameSite=Lax (the identity provider's redirect back is a top-level GET,
  which Lax allows; no other site can post with them) and Secure, except over plain HTTP on a
  loopback address (development), where a browser would drop a Secure cookie.
* Every form carries the session's CSRF token; a post without the right one is refused (the
  forged-form test). Sessions live in the database, so several replicas share them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update

from governance_bot.storage import auditlog
from governance_bot.storage.console_models import ConsoleSession
from governance_bot.storage.db import Database

__all__ = ["COOKIE", "SECURE_COOKIE", "SessionInfo", "SessionStore"]

COOKIE = "gb_session"
SECURE_COOKIE = "__Host-gb_session"  # the __Host- prefix: Secure, Path=/, no Domain
# last_seen_at is written at most this often (a page view is not worth a write each time)
TOUCH_EVERY = timedelta(seconds=30)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    staff_id: str
    email: str
    method: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime


class SessionStore:
    def __init__(self, db: Database, idle: timedelta, absolute: timedelta):
        self.db = db
        self.idle = idle
        self.absolute = absolute

    def start(self, staff_id: str, email: str, method: str, now: datetime) -> tuple[str, str]:
        """A new session; returns (cookie token, CSRF token). Audited by the caller."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        with self.db.session() as session:
            session.add(ConsoleSession(id=_digest(token), staff_id=staff_id, email=email,
                                       method=method, csrf_token=csrf, created_at=now,
                                       last_seen_at=now, expires_at=now + self.absolute))
        return token, csrf

    def get(self, token: str | None, now: datetime, touch: bool = True
            ) -> tuple[SessionInfo | None, str | None]:
        """The live session behind ``token``, or (None, why): "none", "ended", "idle" or
        "absolute". A session found expired is ended here, and its end audited. ``touch``:
        the request is the person's doing (a page, a form), so the idle clock restarts; the
        queue's background polling does not keep an unattended console signed in."""
        if not token:
            return None, "none"
        sid = _digest(token)
        with self.db.session() as session:
            row = session.get(ConsoleSession, sid)
            if row is None:
                return None, "none"
            if row.ended_at is not None:
                return None, "ended"
            why = None
            if now >= row.expires_at:
                why = "absolute"
            elif now - row.last_seen_at >= self.idle:
                why = "idle"
            if why is not None:
                row.ended_at, row.end_reason = now, f"timeout:{why}"
                auditlog.append(session, f"staff:{row.staff_id}", "console.session_expired",
                                f"staff:{row.staff_id}", {"timeout": why}, at=now)
                return None, why
            if touch and now - row.last_seen_at >= TOUCH_EVERY:
                session.execute(update(ConsoleSession).where(ConsoleSession.id == sid)
                                .values(last_seen_at=now))
            return SessionInfo(row.id, row.staff_id, row.email, row.method, row.csrf_token,
                               row.created_at, row.expires_at), None

    def end(self, sid: str, reason: str, now: datetime) -> None:
        with self.db.session() as session:
            session.execute(update(ConsoleSession)
                            .where(ConsoleSession.id == sid, ConsoleSession.ended_at.is_(None))
                            .values(ended_at=now, end_reason=reason))

    @staticmethod
    def csrf_ok(info: SessionInfo, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(info.csrf_token, str(submitted))
