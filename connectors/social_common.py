"""Small helpers shared by the YouTube, Mastodon, Bluesky and TikTok connectors.

Times to UTC, HTML to text, the "recheck window" that makes listings complete (so deletions are
seen), and collecting one unreadable record as a problem while the rest of a page is processed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import lxml.html
from lxml.etree import ParserError
from pydantic import Field, ValidationError

from connectors.base import ConnectorSettings, FatalError, SkippableRecord
from governance_bot.items import Item

__all__ = [
    "SocialSettings",
    "html_to_text",
    "is_not_found",
    "listing_start",
    "parse_one",
    "parse_records",
    "to_utc",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class SocialSettings(ConnectorSettings):
    """Options the social-account connectors share."""

    recheck_days: int = Field(
        default=7, ge=1, le=90,
        description="each poll lists the last N days completely, so edits and deletions are seen",
    )
    backfill_days: int = Field(
        default=30, ge=1, le=3650, description="how far back the first poll reads"
    )


def to_utc(value: Any) -> datetime:
    """A platform timestamp as an aware UTC datetime.

    Takes ISO 8601 strings (``Z``, an offset, or none: read as UTC, as Bluesky's older records
    are), and Unix seconds (int or numeric string, as TikTok sends them)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"not a timestamp ({type(value).__name__})")
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        # the value itself is not repeated: a broken field may hold anything
        raise ValueError(f"not an ISO 8601 timestamp ({len(text)} characters)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def html_to_text(html: str | None) -> str:
    """Text a person would read from a status's HTML: paragraphs and line breaks kept as
    newlines, links as their visible text, tags and entities gone."""
    if not html or not html.strip():
        return ""
    # lxml: 5-8 times faster than BeautifulSoup on status bodies (bench/RESULTS-social-b.md)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except ParserError:
        return ""
    for br in root.iter("br"):
        br.tail = "\n" + (br.tail or "")
    paragraphs = root.findall(".//p")
    parts = [p.text_content() for p in paragraphs] if paragraphs else [root.text_content()]
    return "\n\n".join(parts).strip()


def listing_start(cursor: dict[str, Any] | None, now: datetime, settings: SocialSettings
                  ) -> datetime:
    """Where this poll's complete listing starts: the last N days (``recheck_days``), reaching
    further back to the previous poll if that was longer ago, or ``backfill_days`` at first."""
    recheck = now - timedelta(days=settings.recheck_days)
    if not cursor or not cursor.get("polled_at"):
        return now - timedelta(days=settings.backfill_days)
    try:
        previous = to_utc(cursor["polled_at"])
    except ValueError:
        return now - timedelta(days=settings.backfill_days)
    return min(previous, recheck)


def parse_records(
    records: Iterable[T],
    parse: Callable[[T], Item | list[Item] | None],
    where: str,
    problems: list[str],
) -> Iterator[Item]:
    """Parse each record; one that cannot be read is noted in ``problems`` with ``where`` and
    its position (never its text) and skipped, and the others go on."""
    for index, record in enumerate(records):
        try:
            parsed = parse(record)
        except (KeyError, TypeError, ValueError, AttributeError, ValidationError,
                SkippableRecord) as exc:
            message = f"{where}, record {index}: skipped, {_describe(exc)}"
            log.warning("%s", message)
            problems.append(message)
            continue
        if parsed is None:
            continue
        if isinstance(parsed, list):
            yield from parsed
        else:
            yield parsed


def parse_one(record: T, parse: Callable[[T], Item | list[Item] | None], where: str,
              problems: list[str]) -> list[Item]:
    """Like :func:`parse_records` for one record whose position ``where`` already names."""
    try:
        parsed = parse(record)
    except (KeyError, TypeError, ValueError, AttributeError, ValidationError,
            SkippableRecord) as exc:
        message = f"{where}: skipped, {_describe(exc)}"
        log.warning("%s", message)
        problems.append(message)
        return []
    if parsed is None:
        return []
    return parsed if isinstance(parsed, list) else [parsed]


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, ValidationError):
        errs = exc.errors()
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errs)
    # never the record's content: exception texts are cut short (they name fields, not text)
    text = str(exc)
    return f"{type(exc).__name__}: {text[:80]}{'...' if len(text) > 80 else ''}"


def is_not_found(exc: FatalError) -> bool:
    """Whether the platform answered 404: for a removal, the item is already gone."""
    return "(HTTP 404)" in str(exc)
