"""The normalised item: what every connector produces and what the ``jsonl`` input holds.

The field names below are a public contract (``docs/item.schema.json``): more fields may be
added, none may be renamed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

__all__ = ["Item", "ItemKind", "Media", "Person", "Role", "Visibility", "content_hash"]


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
    sha256: str | None = None
    local_path: str | None = None
    alt_text: str | None = None
    tagged: list[Person] = Field(default_factory=list)


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
    text: str = ""
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


def content_hash(item: Item) -> str:
    """Hash of what a person would see: an edit changes it, a re-poll of the same item does not."""
    payload = {
        "text": item.text,
        "media": [m.sha256 or m.url for m in item.media],
        "visibility": item.visibility.value,
        "author": item.author.id or item.author.handle,
        "recipients": sorted(p.id or p.handle or p.email or "" for p in item.recipients),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()
