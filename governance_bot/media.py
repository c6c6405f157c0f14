"""The media step of the pipeline: an item's pictures are fetched into the media store before the
text in them is read (governance_bot/image_text.py) and before the item is archived and checked.

Policy link: no identifying details of learners on official accounts, and photos of a child only
with consent (docs/classifiers-safeguarding.md): the OCR step and the image checks (faces and
consent, possibly explicit images, GPS location) can only read a picture the service holds.

What is fetched: each picture an item from a configured connector carries without a local copy
(an image, or a video's still, ``Media.thumbnail``), up to ``max_per_item``, the way its
connector says (:meth:`connectors.base.Connector.media_request`: a plain GET from public CDNs;
the connector's token for Microsoft Graph hosted contents, Slack files and WhatsApp media),
with :func:`connectors.base.download` (streamed under the images rule pack's byte cap,
``timeout_seconds`` a file) on a few worker threads, the batch's pictures within
``batch_timeout_seconds`` in all. A fetched picture is kept by the media store
(governance_bot/media_store.py) and the item's entry gets its ``sha256``, its ``local_path`` and
the media type its bytes show.

A fetch never holds an item back: a picture that cannot be fetched (gone, refused, too big, not a
picture, too slow) is a problem line naming the item, the media index, the host and why, and the
item is archived and checked without it.

Later tries: the ``media_sources`` table remembers, per item and picture, the stored SHA-256 or
the failure, how many tries were made and when the next is due (5 minutes after the first
failure, then 20 minutes, 80 minutes, about 5 and 21 hours; given up after ``max_attempts``;
never for a failure that cannot change: HTTP 404, not a picture, over the caps). A polled item
comes back at its next polls (the recheck window): a due picture is tried again then; the others
(webhook items, items outside the window) are read again from the archive by
:meth:`MediaFetcher.due_items` after each poll of their connector. A picture fetched on a later
try changes the item's content hash (the picture's hash replaces its link), so the archive keeps
a new version and the detectors check it, pictures included; flags already raised are not
repeated. A picture fetched before is not downloaded again at the next poll (its stored copy is
used) unless its link changed or ``refetch_after_hours`` passed.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from connectors.base import (
    Connector,
    ConnectorError,
    MediaFetchError,
    describe_error,
    download,
    guess_mime,
    host_of,
)
from governance_bot.config import Config
from governance_bot.items import Item, Media, without_image_text
from governance_bot.media_store import MediaRejected, MediaStore, StoredMedia
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from governance_bot.storage.media_models import MediaSource

__all__ = ["MediaFetcher", "MediaOptions", "forget_media", "prune_media", "store_from_config",
           "wanted"]

log = logging.getLogger(__name__)

RETRY_FIRST = timedelta(minutes=5)
RETRY_FACTOR = 4


@dataclass(frozen=True, slots=True)
class MediaOptions:
    """The ``[media]`` settings the step needs (governance_bot/config.py documents them)."""

    timeout_seconds: float = 20.0
    batch_timeout_seconds: float = 60.0
    max_per_item: int = 8
    workers: int = 4
    refetch_after_hours: float = 24.0
    max_attempts: int = 6
    allow_private_networks: bool = False


def wanted(media: Media) -> bool:
    """Whether the media step fetches this entry: a picture (or a video's still) without a
    local copy. Videos, sound and documents are not downloaded."""
    if media.local_path:
        return False
    if media.thumbnail:
        return True
    mime = (media.mime_type or "").lower()
    if mime:
        return mime.startswith("image/")
    guessed = guess_mime(media.url or getattr(media, "filename", None))
    return guessed is None or guessed.startswith("image/")


def source_of(media: Media) -> str | None:
    """A digest that names the file: the platform's id for it where there is one, else its link
    without the query (signed CDN links change their query on every listing)."""
    ident = getattr(media, "media_id", None) or getattr(media, "media_key", None)
    if ident:
        key = f"id:{ident}"
    elif media.url:
        try:
            url = httpx.URL(media.url)
            key = f"{url.scheme}://{url.host}{url.path}"
        except (httpx.InvalidURL, TypeError):
            key = media.url
    else:
        return None
    return hashlib.sha256(key.encode()).hexdigest()


def retry_delay(attempts: int) -> timedelta:
    return RETRY_FIRST * (RETRY_FACTOR ** max(0, attempts - 1))


@dataclass(slots=True)
class _Job:
    item_index: int
    media_index: int
    item: Item
    media: Media
    connector: Connector | None
    source: str
    row: MediaSource | None  # this picture's row (same source), if any
    fallback: str | None = None  # a stored copy to keep using if a refetch fails
    over_cap: bool = False  # past max_per_item: recorded and reported once, not fetched


@dataclass(slots=True)
class _Fetched:
    stored: StoredMedia
    content: bytes


class MediaFetcher:
    """The media step (see the module docstring)."""

    def __init__(self, db: Database, store: MediaStore, connectors: Iterable[Connector],
                 options: MediaOptions | None = None, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 client: httpx.Client | None = None):
        self.db = db
        self.store = store
        self.options = options or MediaOptions()
        self.clock = clock
        self._connectors: dict[tuple[str, str], Connector] = {}
        for connector in connectors:
            self._connectors.setdefault((connector.platform, connector.account), connector)
        self._own_client = client is None
        self.client = client or httpx.Client()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # working copy -> stored file, for what the archive records (an encrypted store)
        self._copies: dict[str, str] = {}

    def connector_for(self, item: Item) -> Connector | None:
        return self._connectors.get((item.platform, item.account))

    # --- the step ---------------------------------------------------------------------------
    def fetch(self, items: Sequence[Item], problems: list[str], scratch: list[Path]
              ) -> list[Item]:
        """``items`` with their pictures fetched where possible; a problem line for each that
        could not be; ``scratch`` gets the working copies to :meth:`release` once the items are
        checked."""
        jobs, held = self._plan(items)
        updates: dict[tuple[int, int], dict[str, Any]] = {}
        for i, index, media in held:  # stored encrypted: the detectors read a working copy
            assert media.sha256 is not None
            updates[(i, index)] = self._use((media.sha256, media.mime_type),
                                            _Job(i, index, items[i], media, None, "", None),
                                            scratch)
        if not jobs:
            return self._updated(items, updates)
        now = self.clock()
        rows = self._rows({job.item.key for job in jobs}, problems)
        to_fetch: list[_Job] = []
        changed: list[MediaSource] = []
        for job in jobs:
            job.row = rows.get((job.item.key, job.media_index, job.source))
            if job.over_cap:
                if job.row is None:  # said once, when first seen
                    changed.append(self._over_cap(job, problems))
                continue
            action = self._decide(job, now)
            if action is None:
                continue
            if isinstance(action, tuple):
                updates[(job.item_index, job.media_index)] = self._use(action, job, scratch)
            else:
                to_fetch.append(job)
        results = self._download_all(to_fetch)
        for job, outcome in zip(to_fetch, results, strict=True):
            assert job.connector is not None
            row = job.row or MediaSource(item_key=job.item.key, media_index=job.media_index,
                                         source=job.source, connector=job.connector.name,
                                         attempts=0)
            row.connector = job.connector.name
            if isinstance(outcome, _Fetched):
                stored = outcome.stored
                if row.sha256 and row.sha256 != stored.sha256:
                    # the same link now serves another picture: the earlier one stays named by
                    # the item (its earlier version shows it) until the item's content goes
                    changed.append(MediaSource(
                        item_key=row.item_key, media_index=row.media_index,
                        source=hashlib.sha256(f"{row.source}:{row.sha256}".encode()).hexdigest(),
                        connector=row.connector, sha256=row.sha256, mime_type=row.mime_type,
                        fetched_at=row.fetched_at, attempts=0))
                row.sha256, row.mime_type, row.fetched_at = (stored.sha256, stored.mime_type,
                                                             now)
                row.attempts, row.last_error, row.next_attempt_at = 0, None, None
                updates[(job.item_index, job.media_index)] = self._use(
                    (stored.sha256, stored.mime_type), job, scratch, outcome.content)
            elif job.fallback is not None and self.store.has(job.fallback):
                # a refetch of a picture we hold failed: keep the copy, try in another period
                log.info("media: item %s media %d: refetch failed (%s); the stored copy is used",
                         job.item.key, job.media_index, outcome)
                row.fetched_at = now
                updates[(job.item_index, job.media_index)] = self._use(
                    (job.fallback, row.mime_type), job, scratch)
            else:
                problems.append(self._failed(job, row, outcome, now))
            changed.append(row)
        self._save(changed, problems)
        return self._updated(items, updates)

    @staticmethod
    def _updated(items: Sequence[Item], updates: dict[tuple[int, int], dict[str, Any]]
                 ) -> list[Item]:
        out = list(items)
        for (i, index), update in updates.items():
            media = list(out[i].media)
            media[index] = media[index].model_copy(update=update)
            out[i] = out[i].model_copy(update={"media": media})
        return out

    def _plan(self, items: Sequence[Item]) -> tuple[list[_Job], list[tuple[int, int, Media]]]:
        """The pictures to fetch (or to decide about), and those already held in an encrypted
        store (an item read back from the archive) that need a working copy."""
        jobs: list[_Job] = []
        held: list[tuple[int, int, Media]] = []
        encrypted = self.store.encrypted
        for n, item in enumerate(items):
            if item.deleted_at is not None or not item.media:
                continue
            connector = self.connector_for(item)
            count = 0
            for index, media in enumerate(item.media):
                if media.local_path and encrypted and self._stored_here(media):
                    held.append((n, index, media))
                    continue
                if connector is None or not wanted(media):
                    continue  # an item from a file (jsonl), or not a picture to fetch
                source = source_of(media)
                if source is None:
                    continue  # nothing names the file (an email attachment, an X media key
                    # the answer did not expand)
                count += 1
                jobs.append(_Job(n, index, item, media, connector, source, None,
                                 over_cap=count > self.options.max_per_item))
        return jobs, held

    def _stored_here(self, media: Media) -> bool:
        """Whether ``media`` names a file of this store (an item read back from the archive)."""
        try:
            return bool(media.sha256) and media.local_path == str(
                self.store.path_for(str(media.sha256))) and self.store.has(str(media.sha256))
        except ValueError:  # a sha256 that is not one (a jsonl line may say anything)
            return False

    def _over_cap(self, job: _Job, problems: list[str]) -> MediaSource:
        assert job.connector is not None
        why = f"over [media] max_per_item = {self.options.max_per_item}"
        problems.append(f"item {job.item.key}: media {job.media_index} "
                        f"({host_of(job.media.url) if job.media.url else job.connector.type}): "
                        f"its picture was not fetched: {why}")
        return MediaSource(item_key=job.item.key, media_index=job.media_index,
                           source=job.source, connector=job.connector.name, attempts=0,
                           last_error=why, next_attempt_at=None)

    def _decide(self, job: _Job, now: datetime) -> str | tuple[str, str | None] | None:
        """"fetch", a stored (sha256, media type) to use, or None (not now)."""
        row = job.row
        if row is None:
            return "fetch"
        if row.sha256:
            if self.store.has(row.sha256):
                age = now - row.fetched_at if row.fetched_at else None
                if age is not None and age < timedelta(hours=self.options.refetch_after_hours):
                    return row.sha256, row.mime_type
                job.fallback = row.sha256
            return "fetch"
        # failed before: only when the next try is due (never after giving up); the failure
        # was reported when it happened
        if row.next_attempt_at is None or row.next_attempt_at > now:
            return None
        return "fetch"

    def _use(self, found: tuple[str, str | None], job: _Job, scratch: list[Path],
             content: bytes | None = None) -> dict[str, Any]:
        sha, mime = found
        path, copy = self.store.readable(sha, content)
        if copy:
            scratch.append(path)
            with self._lock:
                self._copies[str(path)] = str(self.store.path_for(sha))
        return {"sha256": sha, "local_path": str(path),
                "mime_type": mime or job.media.mime_type}

    def _download_all(self, jobs: list[_Job]) -> list[_Fetched | BaseException]:
        if not jobs:
            return []
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.options.workers,
                                                thread_name_prefix="media")
            pool = self._pool
        futures: list[Future[_Fetched]] = [pool.submit(self._download, job) for job in jobs]
        done, _ = wait(futures, timeout=self.options.batch_timeout_seconds)
        out: list[_Fetched | BaseException] = []
        for future in futures:
            if future not in done:
                future.cancel()  # a download still running ends at its own time limit
                out.append(MediaFetchError(
                    f"the batch's {self.options.batch_timeout_seconds:g} s for fetching "
                    "pictures ran out (batch_timeout_seconds)"))
                continue
            error = future.exception()
            out.append(error if error is not None else future.result())
        return out

    def _download(self, job: _Job) -> _Fetched:
        assert job.connector is not None
        request = job.connector.media_request(job.media)
        if request is None:
            raise MediaFetchError("the connector cannot fetch this file", retriable=False)
        got = download(self.client, request, max_bytes=self.store.max_bytes,
                       timeout=self.options.timeout_seconds,
                       allow_private=self.options.allow_private_networks)
        return _Fetched(self.store.put(got.content), got.content)

    def _failed(self, job: _Job, row: MediaSource, error: BaseException, now: datetime) -> str:
        """Record a failed fetch on ``row``; the problem line."""
        if isinstance(error, MediaFetchError):
            why, retriable = str(error), error.retriable
        elif isinstance(error, MediaRejected):
            why, retriable = str(error), False
        elif isinstance(error, ConnectorError | ValueError):
            why, retriable = describe_error(error), True
        else:  # a fault of ours: said by type, never with the URL or content
            why, retriable = f"{type(error).__name__}", True
        row.attempts = (row.attempts or 0) + 1
        row.last_error = why[:300]
        if retriable and row.attempts < self.options.max_attempts:
            row.next_attempt_at = now + retry_delay(row.attempts)
            then = f"tried again after {row.next_attempt_at:%Y-%m-%d %H:%M} UTC"
        else:
            row.next_attempt_at = None
            then = (f"given up after {row.attempts} tries" if retriable else
                    "not tried again")
        assert job.connector is not None
        host = host_of(job.media.url) if job.media.url else job.connector.type
        log.warning("media: item %s media %d (%s) not fetched: %s; %s", job.item.key,
                    job.media_index, host, why, then)
        return (f"item {job.item.key}: media {job.media_index} ({host}): its picture was not "
                f"fetched: {why}; {then}")

    # --- bookkeeping ------------------------------------------------------------------------
    def _rows(self, keys: set[str], problems: list[str]
              ) -> dict[tuple[str, int, str], MediaSource]:
        try:
            with self.db.session() as session:
                return {(r.item_key, r.media_index, r.source): r for r in session.execute(
                    select(MediaSource).where(MediaSource.item_key.in_(keys))).scalars()}
        except DBAPIError as exc:
            problems.append(f"media: what was fetched before could not be read "
                            f"({type(exc).__name__}); pictures are fetched again")
            return {}

    def _save(self, rows: list[MediaSource], problems: list[str]) -> None:
        if not rows:
            return
        try:
            with self.db.session() as session:
                for row in rows:
                    session.merge(row)
        except IntegrityError:  # another replica wrote the same picture's row meanwhile
            log.info("media: a picture's bookkeeping was written by another process")
        except DBAPIError as exc:
            problems.append(f"media: the fetch bookkeeping was not saved "
                            f"({type(exc).__name__}); the pictures are fetched again later")

    # --- around the archive -----------------------------------------------------------------
    def for_archive(self, item: Item) -> Item:
        """``item`` as the archive records it: a working copy's path replaced by the stored
        file's (an encrypted store's working copies are removed after the check)."""
        with self._lock:
            if not self._copies or not any(md.local_path in self._copies for md in item.media):
                return item
            media = [md.model_copy(update={"local_path": self._copies[md.local_path]})
                     if md.local_path in self._copies else md for md in item.media]
        return item.model_copy(update={"media": media})

    def release(self, scratch: list[Path]) -> None:
        """Remove the working copies of items that have been checked."""
        if not scratch:
            return
        with self._lock:
            for path in scratch:
                self._copies.pop(str(path), None)
        self.store.release(scratch)
        scratch.clear()

    def due_items(self, connector: Connector, limit: int = 200) -> list[Item]:
        """Archived items of ``connector`` with a picture whose next try is due, as last stored
        (an item the platform deleted, or whose content was removed, is left)."""
        now = self.clock()
        with self.db.session() as session:
            keys = list(session.execute(
                select(MediaSource.item_key).where(
                    MediaSource.connector == connector.name, MediaSource.sha256.is_(None),
                    MediaSource.next_attempt_at.is_not(None),
                    MediaSource.next_attempt_at <= now)
                .distinct().limit(limit)).scalars())
            if not keys:
                return []
            out: list[Item] = []
            for record, version in session.execute(
                    select(m.ItemRecord, m.ItemVersion).join(
                        m.ItemVersion, (m.ItemVersion.item_id == m.ItemRecord.id)
                        & (m.ItemVersion.version == m.ItemRecord.current_version))
                    .where(m.ItemRecord.key.in_(keys))):
                data = version.data
                if record.deleted_at is not None or not isinstance(data, dict) \
                        or data.get("redacted"):
                    continue
                try:
                    # the text read from its pictures before is read again with the new one
                    out.append(without_image_text(Item.model_validate(data)))
                except ValueError:
                    log.warning("media: archived item %s could not be read for a retry",
                                record.key)
        return out

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._own_client:
            self.client.close()
        self.store.close()


def store_from_config(config: Config) -> MediaStore | None:
    """The media store of ``[media] folder`` with the images rule pack's caps (``[limits]``);
    None when the media step is off and no store was ever made there."""
    from rules.packs import load_pack

    folder = config.resolve_path(config.media.folder)
    if not config.media.enabled and not folder.is_dir():
        return None
    packs = config.detection.packs_dir
    pack = load_pack("images", config.resolve_path(packs) if packs else None)
    limits = dict(pack.get("limits") or {})
    return MediaStore(folder, max_bytes=int(limits.get("max_file_bytes", 25_000_000)),
                      max_pixels=int(limits.get("max_pixels", 40_000_000)))


# --- data protection ---------------------------------------------------------------------------
def forget_media(db: Database, store: MediaStore | None, item_keys: Iterable[str]) -> int:
    """The pictures of items whose content was removed (retention, erasure): their bookkeeping
    goes, and each stored file no other item refers to any more is deleted. Returns how many
    files were deleted. Call it after the items' content is removed (committed)."""
    keys = sorted(set(item_keys))
    if not keys:
        return 0
    shas: set[str] = set()
    with db.session() as session:
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            shas.update(sha for sha in session.execute(
                select(MediaSource.sha256).where(MediaSource.item_key.in_(chunk),
                                                 MediaSource.sha256.is_not(None))).scalars()
                if sha)
            session.execute(delete(MediaSource).where(MediaSource.item_key.in_(chunk)))
    if not shas or store is None:
        return 0
    with db.session() as session:
        still = set(session.execute(select(MediaSource.sha256).where(
            MediaSource.sha256.in_(sorted(shas)))).scalars())
    removed = sum(store.remove(sha) for sha in sorted(shas - still))
    if removed:
        log.info("media: %d stored picture(s) of removed items deleted", removed)
    return removed


def prune_media(db: Database, store: MediaStore, older_than: timedelta = timedelta(days=1),
                now: datetime | None = None) -> int:
    """Delete stored files no item refers to (left by a download whose batch ran out of time,
    or by a crash between storing and recording), once older than ``older_than`` (so a file
    being recorded right now is never taken). Returns how many were deleted."""
    now = now or datetime.now(UTC)
    with db.session() as session:
        known = set(session.execute(select(MediaSource.sha256).where(
            MediaSource.sha256.is_not(None))).scalars())
    removed = 0
    for sha in list(store.shas()):
        if sha in known:
            continue
        path = store.path_for(sha)
        try:
            age = now.timestamp() - path.stat().st_mtime
        except FileNotFoundError:
            continue
        if age > older_than.total_seconds() and store.remove(sha):
            removed += 1
    return removed
