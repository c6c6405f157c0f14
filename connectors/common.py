"""Small helpers the social-platform connectors share: timestamps, media references, and the
one way a skipped record is reported (a problem line naming where it came from, plus a warning
in the log that never includes the record's text)."""

from __future__ import annotations

import logging
import mimetypes
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from governance_bot.items import Item, Media

__all__ = ["dedupe", "describe_error", "guess_mime", "media_ref", "parse_time", "report_skipped"]


def parse_time(value: Any) -> datetime:
    """A platform timestamp as an aware UTC datetime.

    Accepts ISO 8601 with ``Z``, ``+00:00`` or Graph's ``+0000`` offsets, and Unix seconds.
    Raises ValueError for anything else (including a naive time: its zone is unknown)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a timestamp: {str(value)[:32]!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"  # +0000 -> +00:00
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a timestamp: {value[:32]!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {value[:32]!r}")
    return parsed.astimezone(UTC)


_KIND_MIME = {
    "photo": "image/jpeg",
    "image": "image/jpeg",
    "carousel_album": "image/jpeg",
    "album": "image/jpeg",
    "animated_gif": "video/mp4",
    "video": "video/mp4",
    "video_inline": "video/mp4",
    "video_autoplay": "video/mp4",
    "reels": "video/mp4",
    "gif": "image/gif",
}


def guess_mime(url: str | None, kind: str | None = None) -> str | None:
    """The media type from the URL's extension, else from the platform's media kind."""
    if url:
        guessed, _ = mimetypes.guess_type(urlsplit(url).path)
        if guessed:
            return guessed
    if kind:
        return _KIND_MIME.get(kind.lower())
    return None


def media_ref(url: str | None, kind: str | None = None, mime: str | None = None,
              **extra: Any) -> Media | None:
    """A reference to a picture or video (downloading is the image checks' job)."""
    if not url:
        return None
    return Media(url=url, mime_type=mime or guess_mime(url, kind), **extra)


def describe_error(exc: Exception) -> str:
    """What is wrong with a record, in one line, without repeating the record's content."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                         for e in exc.errors())
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def report_skipped(log: logging.Logger, connector: str, problems: list[str], where: str,
                   what: str) -> None:
    """Record that one record was skipped: ``where`` names its source (endpoint, page, record
    id), ``what`` the defect. Never pass the record's text: it may hold a child's details."""
    message = f"{where}: {what}"
    problems.append(message)
    log.warning("%s: skipped an unreadable record at %s", connector, message)


def dedupe(items: list[Item]) -> list[Item]:
    """Items in order, each id once (a record seen on two pages, or by two listings)."""
    seen: set[str] = set()
    out: list[Item] = []
    for item in items:
        if item.id not in seen:
            seen.add(item.id)
            out.append(item)
    return out
