"""The normalised item: what every connector produces and what the ``jsonl`` input holds.

The field names below are a public contract (``docs/item.schema.json``): more fields may be
added, none may be renamed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "IMAGE_TEXT",
    "Item",
    "ItemKind",
    "Media",
    "Person",
    "Role",
    "TextPart",
    "Visibility",
    "content_hash",
    "part_at",
    "visible_text",
    "where_said",
    "with_parts",
    "without_image_text",
]


class ItemKind(StrEnum):
    post = "post"
    comment = "comment"
    reply = "reply"
    direct_message = "direct_message"
    chat_message = "chat_message"
    email = "email"
    meeting = "meeting"


class Visibility(StrEnum):
    public = "public"
    followers = "followers"
    private = "private"
    direct = "direct"


class Role(StrEnum):
    """Who a person is to the organisation, resolved against the registers."""

    staff = "staff"
    learner = "learner"
    parent = "parent"
    employer = "employer"
    organisation = "organisation"
    public = "public"
    unknown = "unknown"


class Person(BaseModel):
    """An author or recipient as the platform names them; ``role`` is filled in by the registers."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    handle: str | None = None
    name: str | None = None
    email: str | None = None
    role: Role | None = None
    register_id: str | None = Field(
        default=None, description="staff_id or learner_id matched in the registers"
    )

    def keys(self) -> list[str]:
        """Every identifier this person can be matched on, normalised for lookup."""
        out: list[str] = []
        for value in (self.id, self.handle, self.email):
            if value:
                out.append(normalise_handle(value))
        return out


def normalise_handle(value: str) -> str:
    """Handles and emails compare case-insensitively and without a leading ``@``."""
    return value.strip().lstrip("@").casefold()


class Media(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str | None = None
    mime_type: str | None = None
    sha256: str | None = Field(default=None, description="SHA-256 (hex) of the file's bytes, "
                               "once it has been read")
    local_path: str | None = Field(default=None, description="where a copy of the file is "
                                   "on this machine (the media store for fetched media)")
    alt_text: str | None = None
    tagged: list[Person] = Field(default_factory=list)
    thumbnail: bool = Field(default=False, description="a still picture the platform shows for "
                            "a video (its text and people are checked like a photo's)")


IMAGE_TEXT = "image text"

# how evidence names where in an item a span is (``where_said``); a source not listed here is
# named "in the <source>"
_WHERE = {
    "body": "",
    "content warning": "in the content warning",
    "poll options": "in the poll options",
    "quoted post": "in the quoted post",
    "shared post": "in the shared post",
    "link card": "in the link preview",
    "alt text": "in an image description (alt text)",
    "caption": "in a caption",
    "description": "in the description",
    "title": "in the title",
    "subject": "in the subject line",
    "card": "in a card",
    "attachment": "in an attachment",
    "email html": "in the email's HTML part",
    IMAGE_TEXT: "text in the image",
}


class TextPart(BaseModel):
    """One visible part of an item's ``text``: where it came from and its character span.

    ``Item.text`` is everything a reader sees, body first, then each other part after a blank line
    and a ``[source]`` label line; the span covers the part's own text (not its label), so a
    detector's span can be traced back to "the poll options" or "text in the image"."""

    # plain fields, no extras: a part is made for every visible part of every item parsed
    source: str = Field(description='e.g. "poll options", "image text"')
    start: int = Field(description="offset of the part's first character in text")
    end: int = Field(description="offset just after its last character")
    ref: str | None = Field(default=None, description="what the part belongs to: a quoted "
                            "post's id, a media index, an attachment's file name")


def visible_text(body: Any, extras: Sequence[tuple[str, Any, Any]] | None = None,
                 ) -> dict[str, Any]:
    """``text`` and ``parts`` for an Item: ``body`` first, then each ``(source, text, ref)``
    whose text is not blank, separated and labelled. ``parts`` lists the parts after the body
    (as the plain dicts an Item's validation reads); the body is the text before the first
    part's label line (all of it without parts). Use as ``Item(..., **visible_text(...))``.
    A body that is not text is passed on as it is, for the item's validation to report."""
    if not isinstance(body, str) or not extras:
        return {"text": body, "parts": []}
    pieces: list[str] | None = None  # made at the first part with text (most items have none)
    # plain dicts: the item's validation makes them TextParts in one pass (cheaper than one
    # model per part here; parsing is the connectors' hot path)
    parts: list[dict[str, Any]] = []
    length = 0
    for source, part, ref in extras:
        if not part or not isinstance(part, str):
            continue
        part = part.strip()
        if not part:
            continue
        if pieces is None:
            head = body.rstrip()
            pieces = [head] if head else []
            length = len(head)
        label = f"\n\n[{source}]\n" if pieces else f"[{source}]\n"
        start = length + len(label)
        pieces.append(label)
        pieces.append(part)
        length = start + len(part)
        parts.append({"source": source, "start": start, "end": length,
                      "ref": None if ref is None else str(ref)})
    if pieces is None:  # the body alone, exactly as the platform gave it
        return {"text": body, "parts": []}
    return {"text": "".join(pieces), "parts": parts}


def with_parts(item: Item, extras: Sequence[tuple[str, Any, Any]]) -> Item:
    """``item`` with more visible parts after the ones it has (e.g. text read from its images),
    labelled like :func:`visible_text`'s."""
    body = item.text
    if not item.parts:
        joined = visible_text(body, extras)
        return item.model_copy(update={"text": joined["text"],
                                       "parts": [TextPart(**p) for p in joined["parts"]]})
    added = visible_text("", extras)
    if not added["parts"]:
        return item
    base = body.rstrip()
    offset = len(base) + 2
    parts = [*item.parts, *(TextPart(**{**p, "start": p["start"] + offset,
                                        "end": p["end"] + offset})
                            for p in added["parts"])]
    return item.model_copy(update={"text": f"{base}\n\n{added['text']}", "parts": parts})


def part_at(item: Item, start: int, end: int) -> TextPart | None:
    """The text part a span ``[start, end)`` of ``item.text`` falls in (None: the body, or an item
    without parts)."""
    for part in item.parts:
        if part.start <= start and end <= part.end + 1:
            return None if part.source == "body" else part
    return None  # the body (or a label line)


def where_said(item: Item, spans: Iterable[tuple[int, int]]) -> str:
    """Where in the item the spans are, in words ("text in the image", "in the poll options"),
    or "" when they are all in the body."""
    places: list[str] = []
    for start, end in spans:
        part = part_at(item, start, end)
        if part is None:
            continue
        words = _WHERE.get(part.source, f"in the {part.source}")
        if words and words not in places:
            places.append(words)
    return ", ".join(places)


class Item(BaseModel):
    """One post, comment, message, email or meeting, normalised across platforms."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, description="the platform's native id")
    platform: str = Field(min_length=1)
    account: str = Field(min_length=1, description="account_id from the accounts register")
    kind: ItemKind
    author: Person = Field(default_factory=Person)
    recipients: list[Person] = Field(default_factory=list)
    created_at: AwareDatetime
    edited_at: AwareDatetime | None = None
    deleted_at: AwareDatetime | None = Field(
        default=None, description="set when the platform reports the item deleted"
    )
    visibility: Visibility = Visibility.public
    text: str = Field(default="", description="everything a reader sees as text (see parts)")
    parts: list[TextPart] = Field(
        default_factory=list,
        description="where each part of text after the body came from (the body is the text "
                    "before the first part's label); empty: all of it is the body")
    media: list[Media] = Field(default_factory=list)
    parent_id: str | None = None
    thread_id: str | None = None
    url: str | None = None
    raw: dict[str, Any] | None = Field(default=None, description="platform payload, kept as-is")

    @field_validator("created_at", "edited_at", "deleted_at")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
            raise ValueError("out of range: in UTC it falls before year 1 or after 9999") \
                from None

    @property
    def key(self) -> str:
        """Unique across the archive: platform, account and native id."""
        return f"{self.platform}:{self.account}:{self.id}"

    @property
    def thread_key(self) -> str:
        return f"{self.platform}:{self.account}:{self.thread_id or self.parent_id or self.id}"


def without_image_text(item: Item) -> Item:
    """``item`` without the parts read from its images (they come after every other part), so
    its pictures can be read again (a picture fetched on a later try)."""
    if not any(p.source == IMAGE_TEXT for p in item.parts):
        return item
    return item.model_copy(update={"text": _text_without_image_text(item),
                                   "parts": [p for p in item.parts if p.source != IMAGE_TEXT]})


def _text_without_image_text(item: Item) -> str:
    """The text less the parts read from images (they follow every other part): the media hash
    already covers the image, and a recognition that differs between runs is not an edit."""
    for part in item.parts:
        if part.source == IMAGE_TEXT:
            cut = item.text.rfind("\n\n[", 0, part.start)
            return item.text[:cut] if cut >= 0 else ""
    return item.text


def content_hash(item: Item) -> str:
    """Hash of what a person would see: an edit changes it, a re-poll of the same item does not."""
    payload = {
        "text": _text_without_image_text(item),
        "media": [m.sha256 or m.url for m in item.media],
        "visibility": item.visibility.value,
        "author": item.author.id or item.author.handle,
        "recipients": sorted(p.id or p.handle or p.email or "" for p in item.recipients),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
