"""The archive: every item is stored, with a content hash, before anything else happens.

An edit (new content hash) makes a new version; an item that a later *complete* listing of its
time window no longer shows is marked deleted, and its last copy is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from connectors.base import ListingWindow
from governance_bot.items import Item, content_hash
from governance_bot.storage.keyring import thread_digest
from governance_bot.storage.models import ItemRecord, ItemVersion

__all__ = [
    "ArchiveOutcome", "ArchiveStatus", "archive_item", "archive_items", "item_from_version",
    "mark_deletions",
]


class ArchiveStatus(StrEnum):
    new = "new"
    edited = "edited"
    unchanged = "unchanged"
    reappeared = "reappeared"
    # an older body than the current version (a replayed delivery, a stale listing): kept out
    stale = "stale"


@dataclass(slots=True)
class ArchiveOutcome:
    record: ItemRecord
    version: ItemVersion
    status: ArchiveStatus

    @property
    def needs_detection(self) -> bool:
        # a stale body is not what is checked; a current version left unchecked is found by
        # the pipeline's sweep (Pipeline.recheck)
        return self.status != ArchiveStatus.stale and self.version.detected_at is None


def _new_record(session: Session, item: Item, digest: str, now: datetime) -> ItemRecord:
    return ItemRecord(
        key=item.key, platform=item.platform, account=item.account, native_id=item.id,
        kind=item.kind.value, thread_key=thread_digest(session, item.thread_key),
        parent_id=item.parent_id,
        created_at=item.created_at, first_seen_at=now, last_seen_at=now,
        current_version=1, content_hash=digest,
    )


def archive_item(session: Session, item: Item, now: datetime | None = None) -> ArchiveOutcome:
    now = now or datetime.now(UTC)
    digest = content_hash(item)
    record = session.execute(
        select(ItemRecord).where(ItemRecord.key == item.key)
    ).scalar_one_or_none()
    if record is None:
        record = _new_record(session, item, digest, now)
        session.add(record)
        session.flush()
        version = ItemVersion(item_id=record.id, version=1, content_hash=digest,
                              data=item.model_dump(mode="json"), seen_at=now)
        session.add(version)
        session.flush()
        return ArchiveOutcome(record, version, ArchiveStatus.new)
    return _archive_known(session, record, item, digest, now)


def _archive_known(session: Session, record: ItemRecord, item: Item, digest: str,
                   now: datetime) -> ArchiveOutcome:
    """An item archived before: seen again, reappeared, or edited (a new version)."""
    record.last_seen_at = now
    status = ArchiveStatus.unchanged
    if record.deleted_at is not None:
        record.deleted_at = None
        status = ArchiveStatus.reappeared
    current = session.execute(
        select(ItemVersion).where(and_(ItemVersion.item_id == record.id,
                                       ItemVersion.version == record.current_version))
    ).scalar_one()
    if current.content_hash == digest:
        return ArchiveOutcome(record, current, status)
    if _older_than_current(session, record, current, item, digest):
        # a replayed or late-arriving older body must never roll the archive back
        return ArchiveOutcome(record, current, ArchiveStatus.stale)
    record.current_version += 1
    record.content_hash = digest
    version = ItemVersion(item_id=record.id, version=record.current_version, content_hash=digest,
                          data=item.model_dump(mode="json"), seen_at=now)
    session.add(version)
    session.flush()
    return ArchiveOutcome(record, version, ArchiveStatus.edited)


def _platform_time(item: Item) -> datetime:
    """When the platform says this version of the item was written (its edit, else its post)."""
    return item.edited_at or item.created_at


def _older_than_current(session: Session, record: ItemRecord, current: ItemVersion, item: Item,
                        digest: str) -> bool:
    """Whether ``item`` (whose content differs from the current version's) is an *older* body:
    the platform dates it before the current version, or dates it no later and its content is
    that of an earlier version (a replay; platforms that give no edit times cannot tell a revert
    to earlier text from a replay, and the earlier text was archived and checked anyway)."""
    try:
        known = Item.model_validate(current.data)
    except Exception:  # content removed by retention or erasure: nothing to compare
        return False
    incoming, latest = _platform_time(item), _platform_time(known)
    if incoming < latest:
        return True
    if incoming > latest:
        return False
    earlier = session.execute(select(ItemVersion.id).where(
        ItemVersion.item_id == record.id, ItemVersion.version < record.current_version,
        ItemVersion.content_hash == digest).limit(1)).first()
    return earlier is not None


def archive_items(session: Session, stamped: Sequence[tuple[Item, datetime]]
                  ) -> list[ArchiveOutcome]:
    """:func:`archive_item` for each ``(item, now)`` in order, with the same outcomes, in a few
    statements for the whole batch: one query finds the items already archived, and the new
    items' records, then their versions, are inserted together. A batch naming one item twice
    is archived item by item (the second sees the first)."""
    keys = [item.key for item, _ in stamped]
    if len(set(keys)) != len(keys):
        return [archive_item(session, item, now) for item, now in stamped]
    known = {r.key: r for r in session.execute(
        select(ItemRecord).where(ItemRecord.key.in_(keys))).scalars()} if keys else {}
    outcomes: list[ArchiveOutcome | None] = []
    fresh: list[tuple[int, Item, datetime, ItemRecord]] = []
    for n, (item, now) in enumerate(stamped):
        if item.key in known:
            outcomes.append(_archive_known(session, known[item.key], item, content_hash(item),
                                           now))
            continue
        record = _new_record(session, item, content_hash(item), now)
        fresh.append((n, item, now, record))
        outcomes.append(None)
    if fresh:
        session.add_all([record for *_, record in fresh])
        session.flush()
        versions = [ItemVersion(item_id=record.id, version=1, content_hash=record.content_hash,
                                data=item.model_dump(mode="json"), seen_at=now)
                    for _, item, now, record in fresh]
        session.add_all(versions)
        session.flush()
        for (n, *_, record), version in zip(fresh, versions, strict=True):
            outcomes[n] = ArchiveOutcome(record, version, ArchiveStatus.new)
    return [o for o in outcomes if o is not None]


def item_from_version(version: ItemVersion) -> Item:
    return Item.model_validate(version.data)


def mark_deletions(session: Session, platform: str, account: str, window: ListingWindow,
                   listed_keys: set[str], now: datetime | None = None) -> Sequence[ItemRecord]:
    """Mark archived items in ``window`` that the complete listing did not contain as deleted."""
    now = now or datetime.now(UTC)
    query = select(ItemRecord).where(
        ItemRecord.platform == platform,
        ItemRecord.account == account,
        ItemRecord.deleted_at.is_(None),
        ItemRecord.created_at >= window.start,
        ItemRecord.created_at <= window.end,
    )
    if window.parent_id is not None:
        query = query.where(ItemRecord.parent_id == window.parent_id)
    gone = [r for r in session.execute(query).scalars() if r.key not in listed_keys]
    for record in gone:
        record.deleted_at = now
    session.flush()
    return gone
