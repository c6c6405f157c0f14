"""The pipeline: item -> pictures -> text in pictures -> registers -> archive -> detection ->
flag + outbox.

Each item is archived (and committed) before detection runs, so nothing is lost if a later step
fails; detection results are committed with the version's ``detected_at`` mark, so a re-run after a
crash detects exactly the items that were not finished, and finding fingerprints stop duplicates.
Before the archive, the media step fetches the item's pictures (governance_bot/media.py) and the
OCR step reads the text in them (governance_bot/image_text.py); neither ever holds an item back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from connectors.base import Connector, FetchResult
from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.flags import FlagChange, record_findings
from governance_bot.history import BatchHistory, DatabaseHistory
from governance_bot.image_text import ImageTextReader
from governance_bot.items import Item, Role
from governance_bot.media import MediaFetcher
from governance_bot.registers import RegisterIndex
from governance_bot.routing import Router
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.archive import (
    ArchiveOutcome,
    ArchiveStatus,
    archive_item,
    archive_items,
    mark_deletions,
)
from governance_bot.storage.db import Database
from rules.base import DetectionContext, History
from rules.engine import DetectionEngine

__all__ = ["PendingBatch", "Pipeline", "ScanReport"]

_T = TypeVar("_T")

log = logging.getLogger(__name__)

APPROVED_MEDIA_SECONDS = 10.0


@dataclass(slots=True)
class _Archived:
    item: Item
    record_id: int
    version_id: int
    now: datetime


@dataclass(slots=True)
class PendingBatch:
    """A batch archived and being checked by the model-backed detectors (Pipeline.begin)."""

    archived: list[_Archived]
    precomputed: Future[list[dict[int, list[Finding]]]]
    report: ScanReport
    # working copies of encrypted pictures, removed once the batch is checked
    scratch: list[Path] = field(default_factory=list)


@dataclass(slots=True)
class ScanReport:
    items: int = 0
    new: int = 0
    edited: int = 0
    unchanged: int = 0
    deleted: int = 0
    detected: int = 0
    flags_created: int = 0
    flags_updated: int = 0
    problems: list[str] = field(default_factory=list)
    # the keys of the items that raised (not archived or not detected): re-read at the next poll
    failed_items: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failed_items)

    def merge(self, other: ScanReport) -> None:
        for name in ("items", "new", "edited", "unchanged", "deleted", "detected",
                     "flags_created", "flags_updated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems)
        self.failed_items.extend(other.failed_items)


class Pipeline:
    def __init__(self, db: Database, engine: DetectionEngine, registers: RegisterIndex,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 options: dict[str, Any] | None = None, db_retry_seconds: float = 30.0,
                 image_text: ImageTextReader | None = None, router: Router | None = None,
                 media: MediaFetcher | None = None):
        self.db = db
        # fetches items' pictures into the media store before the OCR step and the archive
        self.media = media
        # reads the text in items' images before they are archived and checked (OCR)
        self.image_text = image_text
        # who receives each finding (docs/routing.md): applied here, after detection
        self.router = router or Router()
        self.db_retry_seconds = db_retry_seconds
        self.engine = engine
        self.registers = registers
        self.clock = clock
        self.history = DatabaseHistory(db)
        self.options = options or {}
        self._pool: ThreadPoolExecutor | None = None  # the detection thread, started when needed
        self._pool_lock = threading.Lock()
        self._approved: frozenset[str] = frozenset()
        self._approved_at = float("-inf")

    def context(self) -> DetectionContext:
        options = self.options
        approved = self._approved_media()
        if approved:
            options = {**options, "approved_media_hashes": approved | set(
                options.get("approved_media_hashes") or ())}
        return DetectionContext(registers=self.registers, history=self.history, now=self.clock(),
                                options=options)

    def _approved_media(self) -> frozenset[str]:
        """The photos managers pre-approved (by sha256), read at most every few seconds: a
        pre-approval made in Slack or the console holds from the next batch on."""
        now = time.monotonic()
        if now - self._approved_at >= APPROVED_MEDIA_SECONDS:
            try:
                with self.db.session() as session:
                    self._approved = frozenset(session.execute(
                        select(m.ApprovedMedia.sha256)).scalars())
            except DBAPIError:  # the database is away: detection goes on with what we knew
                log.warning("pre-approved photos not read now; using the last known list")
            self._approved_at = now
        return self._approved

    def process(self, item: Item, report: ScanReport | None = None) -> FlagChange | None:
        report = report if report is not None else ScanReport()
        scratch: list[Path] = []
        try:
            archived = self._archive(self.fetch_media([item], report, scratch)[0], report)
            if archived is None:
                return None
            return self._detect_and_record(archived, report)
        finally:
            self._release(scratch)

    def fetch_media(self, items: list[Item], report: ScanReport, scratch: list[Path]
                    ) -> list[Item]:
        """The items with their pictures fetched into the media store (a pipeline step before
        the OCR step and the archive). A picture that cannot be fetched is a problem in the
        report; the item goes on without it (governance_bot/media.py says how it is tried
        again)."""
        if self.media is None:
            return items
        try:
            return self.media.fetch(items, report.problems, scratch)
        except Exception as exc:  # a fault in the media step never stops items being archived
            log.exception("media step failed for a batch of %d item(s)", len(items))
            report.problems.append(f"pictures of {len(items)} item(s) were not fetched "
                                   f"({type(exc).__name__}); tried again at the next poll")
            return items

    def _release(self, scratch: list[Path]) -> None:
        if self.media is not None and scratch:
            self.media.release(scratch)

    def _for_archive(self, item: Item) -> Item:
        return self.media.for_archive(item) if self.media is not None else item

    def read_images(self, items: list[Item], report: ScanReport) -> list[Item]:
        """The items with the text of their images added (a pipeline step before the archive:
        the stored version is what the detectors read). A picture that cannot be read is a
        problem in the report; the item goes on without its text."""
        if self.image_text is None:
            return items
        out: list[Item] = []
        for item in items:
            try:
                enriched, problems = self.image_text.enrich(item)
            except Exception as exc:  # an OCR fault never stops the item being archived
                log.warning("image text: item %s: %s", item.key, type(exc).__name__)
                report.problems.append(f"item {item.key}: its images' text was not read "
                                       f"({type(exc).__name__})")
                enriched, problems = item, []
            report.problems.extend(problems)
            out.append(enriched)
        return out

    def _archive(self, item: Item, report: ScanReport, session: Session | None = None
                 ) -> _Archived | None:
        """Store the item (committed, in ``session``'s transaction if given) before anything
        else; None if there is nothing to detect."""
        item = self.registers.resolve(self.read_images([item], report)[0])
        if item.deleted_at is not None:
            self._process_reported_deletion(item, report, session)
            return None
        now = self.clock()
        with self._session(session) as s:
            outcome = archive_item(s, self._for_archive(item), now)
            return self._archived(item, outcome, now, report)

    @staticmethod
    def _archived(item: Item, outcome: ArchiveOutcome, now: datetime, report: ScanReport
                  ) -> _Archived | None:
        """Count ``outcome`` in ``report``; what to detect (None if nothing)."""
        report.items += 1
        if outcome.status == ArchiveStatus.new:
            report.new += 1
        elif outcome.status == ArchiveStatus.edited:
            report.edited += 1
        else:
            report.unchanged += 1
        if not outcome.needs_detection:
            return None
        return _Archived(item, outcome.record.id, outcome.version.id, now)

    @contextmanager
    def _session(self, session: Session | None) -> Iterator[Session]:
        """``session`` if the caller has one open, else a new transaction of our own."""
        if session is not None:
            yield session
        else:
            with self.db.session() as own:
                yield own

    def _detect(self, archived: _Archived, history: History | None = None,
                precomputed: dict[int, list[Finding]] | None = None) -> list[Finding]:
        ctx = self.context()
        if history is not None:
            ctx = replace(ctx, history=history)
        return self.engine.detect(archived.item, ctx, precomputed)

    def _routed(self, archived: _Archived, findings: list[Finding]) -> list[Finding]:
        return self.router.apply(findings, archived.item)

    def _record(self, session: Session, archived: _Archived, findings: list[Finding],
                report: ScanReport, record: m.ItemRecord | None = None) -> FlagChange | None:
        """Store ``findings`` for one archived item; the caller marks its version detected
        (:meth:`_mark_detected`)."""
        report.detected += 1
        change = None
        if findings:
            record = record or session.get(m.ItemRecord, archived.record_id)
            assert record is not None
            change = record_findings(session, record, self._routed(archived, findings),
                                     now=archived.now)
        if change is not None:
            if change.created:
                report.flags_created += 1
            else:
                report.flags_updated += 1
        return change

    def _detect_and_record(self, archived: _Archived, report: ScanReport,
                           precomputed: dict[int, list[Finding]] | None = None
                           ) -> FlagChange | None:
        findings = self._detect(archived, precomputed=precomputed)
        with self.db.session() as session:
            change = self._record(session, archived, findings, report)
            self._mark_detected(session, [archived])
            return change

    @staticmethod
    def _mark_detected(session: Session, archived: Sequence[_Archived]) -> None:
        """Set the versions' ``detected_at`` in one statement (the versions are not loaded:
        their content is encrypted, and decrypting it only to set a time costs more than the
        rest of recording an unflagged item)."""
        if archived:
            session.execute(update(m.ItemVersion),
                            [{"id": a.version_id, "detected_at": a.now} for a in archived])

    def process_many(self, items: Iterable[Item], report: ScanReport | None = None,
                     progress: Callable[[int], None] | None = None,
                     batch_size: int = 32) -> ScanReport:
        """Archive and detect ``items`` in order, a batch at a time. One bad item never stops
        the rest.

        Each batch is archived in one transaction (committed before detection, so nothing is
        lost if detection fails). The model-backed detectors then see the whole batch at once,
        on a worker thread, while the previous batch's findings are recorded: the models run
        outside the interpreter lock, so on a machine with two cores the two overlap. The other
        rules then check the batch item by item, in order, against a history that adds the
        batch's earlier findings to the stored ones (:class:`BatchHistory`), so they see what
        they would see one item at a time; the findings are recorded in one transaction. A
        batch whose transaction fails is done again item by item, which isolates the bad
        item."""
        report = report if report is not None else ScanReport()
        iterator = iter(items)
        pending: PendingBatch | None = None
        while batch := list(islice(iterator, batch_size)):
            started = self.begin(batch, report, progress)
            if pending is not None:
                self.finish(pending, progress)
            pending = started
        if pending is not None:
            self.finish(pending, progress)
        return report

    def begin(self, batch: Sequence[Item], report: ScanReport | None = None,
              progress: Callable[[int], None] | None = None) -> PendingBatch:
        """The first half of :meth:`process_many` for one batch: archive it (committed) and
        start its model-backed detectors on the detection thread. :meth:`finish` records it.
        A caller with more work waiting (the webhook worker) begins the next batch before
        finishing this one, so the models of one batch run while the other is recorded and
        its alerts are sent."""
        report = report if report is not None else ScanReport()
        scratch: list[Path] = []
        try:
            archived = self._archive_batch(list(batch), report, progress, scratch)
        except BaseException:
            self._release(scratch)
            raise
        return PendingBatch(archived, self._precompute(archived), report, scratch)

    def finish(self, pending: PendingBatch, progress: Callable[[int], None] | None = None
               ) -> ScanReport:
        """Detect and record a batch from :meth:`begin`; returns its report."""
        try:
            self._record_batch(pending.archived, pending.precomputed, pending.report, progress)
        finally:
            scratch = pending.scratch
            if pending.precomputed.done():
                self._release(scratch)
            else:  # the models still read the pictures: remove the copies when they are done

                def release(_done: Future[list[dict[int, list[Finding]]]]) -> None:
                    self._release(scratch)

                pending.precomputed.add_done_callback(release)
        return pending.report

    def recheck(self, older_than: timedelta, limit: int = 256) -> ScanReport:
        """Check the item versions archived but never checked, seen more than ``older_than``
        ago: what a crash between archiving and checking left behind, on any replica (a webhook
        delivery's platform retry is answered as a duplicate, and WhatsApp has no polling, so
        nothing else would ever check them). ``older_than`` keeps clear of the batches in flight
        (the service passes ``[service] lease_seconds``). Finding fingerprints make a second
        check of the same version harmless."""
        cutoff = self.clock() - older_than
        report = ScanReport()
        with self.db.session() as session:
            rows = session.execute(
                select(m.ItemVersion.id, m.ItemVersion.item_id, m.ItemVersion.data)
                .where(m.ItemVersion.detected_at.is_(None), m.ItemVersion.seen_at < cutoff)
                .order_by(m.ItemVersion.seen_at).limit(limit)).all()
        archived, unreadable = [], []
        for version_id, record_id, data in rows:
            try:
                item = self.registers.resolve(Item.model_validate(data))
            except Exception as exc:  # content removed (retention, erasure) or unreadable
                log.warning("item version %d cannot be checked (%s); marked as checked",
                            version_id, type(exc).__name__)
                unreadable.append(_Archived(Item.model_construct(), record_id, version_id,
                                            self.clock()))
                continue
            archived.append(_Archived(item, record_id, version_id, self.clock()))
        if unreadable:
            with self.db.session() as session:
                self._mark_detected(session, unreadable)
        if archived:
            log.info("checking %d item version(s) archived but not checked before (a crash or "
                     "a failure left them)", len(archived))
            report.items = len(archived)
            self._record_batch(archived, self._precompute(archived), report, None)
        return report

    def close(self) -> None:
        """Stop the detection thread (after the batch it may be working on)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        if self.media is not None:
            self.media.close()

    def _precompute(self, archived: list[_Archived]
                    ) -> Future[list[dict[int, list[Finding]]]]:
        """The batch detectors' findings for ``archived``, computed on the detection thread
        (or at once, when no detector takes batches)."""

        def run() -> list[dict[int, list[Finding]]]:
            try:
                return self.engine.precompute([a.item for a in archived], self.context())
            except Exception:
                log.exception("batch detection failed; detecting item by item")
                return [{} for _ in archived]

        if not archived or not self.engine.batches:
            done: Future[list[dict[int, list[Finding]]]] = Future()
            done.set_result(run())
            return done
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect")
            return self._pool.submit(run)

    def _archive_batch(self, batch: list[Item], report: ScanReport,
                       progress: Callable[[int], None] | None,
                       scratch: list[Path] | None = None) -> list[_Archived]:
        batch = self.read_images(
            self.fetch_media(batch, report, scratch if scratch is not None else []), report)

        def archive_all(r: ScanReport) -> list[_Archived]:
            resolved = [self.registers.resolve(item) for item in batch]
            with self.db.session() as session:
                if any(item.deleted_at is not None for item in resolved):
                    found = [self._archive(item, r, session) for item in batch]
                else:  # the usual case: the whole batch in a few statements
                    stamped = [(item, self.clock()) for item in resolved]
                    outcomes = archive_items(session, [(self._for_archive(item), now)
                                                       for item, now in stamped])
                    found = [self._archived(item, outcome, now, r) for (item, now), outcome
                             in zip(stamped, outcomes, strict=True)]
            return [a for a in found if a is not None]

        try:
            archived = self._retrying(f"batch of {len(batch)}", report, archive_all)
        except Exception as exc:
            log.warning("archiving a batch of %d item(s) failed (%s); archiving them one by one",
                        len(batch), type(exc).__name__)
        else:
            if progress and len(batch) > len(archived):
                progress(len(batch) - len(archived))
            return archived
        archived = []
        for item in batch:
            try:
                one = self._retrying(item.key, report,
                                     lambda r, i=item: self._archive(i, r))  # type: ignore[misc]
            except Exception as exc:
                report.failed_items.append(item.key)
                report.problems.append(f"item {item.key}: {type(exc).__name__}: {exc}")
                log.exception("archiving item %s failed", item.key)
                one = None
            if one is not None:
                archived.append(one)
            elif progress:
                progress(1)
        return archived

    def _record_batch(self, archived: list[_Archived],
                      future: Future[list[dict[int, list[Finding]]]], report: ScanReport,
                      progress: Callable[[int], None] | None) -> None:
        if not archived:
            return
        pre = future.result()

        def detect_then_record(r: ScanReport) -> None:
            # every item is detected first (no write lock held meanwhile: on SQLite the other
            # writers of the service never wait for detection), then all are recorded at once
            history = BatchHistory(self.history)
            found = []
            for entry, precomputed in zip(archived, pre, strict=True):
                findings = self._detect(entry, history, precomputed)
                history.record(entry.item, findings)
                found.append(findings)
            with self.db.session() as session, auditlog.batched(session):
                # the flagged items' records in one query, not one per item
                wanted = [a.record_id for a, f in zip(archived, found, strict=True) if f]
                records = {rec.id: rec for rec in session.execute(select(m.ItemRecord).where(
                    m.ItemRecord.id.in_(wanted))).scalars()} if wanted else {}
                for entry, findings in zip(archived, found, strict=True):
                    self._record(session, entry, findings, r, records.get(entry.record_id))
                self._mark_detected(session, archived)

        try:
            self._retrying(f"batch of {len(archived)}", report, detect_then_record)
        except Exception as exc:
            log.warning("a batch of %d item(s) failed (%s); checking them one by one",
                        len(archived), type(exc).__name__)
        else:
            if progress:
                progress(len(archived))
            return
        for entry, precomputed in zip(archived, pre, strict=True):
            try:
                self._retrying(entry.item.key, report,
                               lambda r, e=entry, p=precomputed:  # type: ignore[misc]
                               self._detect_and_record(e, r, p))
            except Exception as exc:
                # already archived: the next run detects it again (detected_at is unset)
                report.failed_items.append(entry.item.key)
                report.problems.append(f"item {entry.item.key}: {type(exc).__name__}: {exc}")
                log.exception("processing item %s failed", entry.item.key)
            if progress:
                progress(1)

    def _retrying(self, key: str, report: ScanReport, step: Callable[[ScanReport], _T]) -> _T:
        """Run one step for one item, retried while the database is unreachable (a restart, a
        failover, a locked SQLite file) for up to about ``db_retry_seconds``. Each attempt
        starts over with a fresh report: archiving is idempotent and the detection step commits
        as one transaction."""
        delay, waited = 0.25, 0.0
        while True:
            attempt = ScanReport()
            try:
                result = step(attempt)
            except DBAPIError as exc:
                transient = isinstance(exc, OperationalError) or exc.connection_invalidated
                if not transient or waited >= self.db_retry_seconds:
                    raise
                log.warning("database unavailable (%s); retrying item %s in %.1fs",
                            type(exc.orig).__name__, key, delay)
                time.sleep(delay)
                waited += delay
                delay = min(delay * 2, 5.0)
                continue
            report.merge(attempt)
            return result

    # --- connectors ---------------------------------------------------------------------------
    def apply_fetch(self, connector: Connector, result: FetchResult,
                    progress: Callable[[int], None] | None = None) -> ScanReport:
        """Process a connector's fetch, then record deletions and the new cursor."""
        report = ScanReport(problems=list(result.problems))
        self.process_many(result.items, report, progress)
        if result.windows:
            listed = {i.key for i in result.items}
            for window in result.windows:
                platform = result.items[0].platform if result.items else connector.type
                report.deleted += self._record_deletions(platform, connector.account, window,
                                                         listed)
        if report.failed:
            # keep the old cursor: the items that failed are read again at the next poll (those
            # that did get through are recognised as unchanged then)
            self.save_cursor(connector.name, None, f"{report.failed} item(s) failed; they are "
                             "read again at the next poll")
        else:
            self.save_cursor(connector.name, result.cursor, None)
        return report

    def _record_deletions(self, platform: str, account: str, window: Any, listed: set[str]) -> int:
        now = self.clock()
        with self.db.session() as session:
            gone = mark_deletions(session, platform, account, window, listed, now)
            for record in gone:
                self._flag_deleted(session, record, now)
            return len(gone)

    def _process_reported_deletion(self, item: Item, report: ScanReport,
                                   session: Session | None = None) -> None:
        """The platform says the item was deleted: keep the last copy we have (or this one, if
        it was never seen), mark it deleted once, and record a deletion finding."""
        now = self.clock()
        report.items += 1
        with self._session(session) as session:
            record = session.execute(
                select(m.ItemRecord).where(m.ItemRecord.key == item.key)).scalar_one_or_none()
            if record is None:
                record = archive_item(session, item.model_copy(update={"deleted_at": None}),
                                      now).record
                report.new += 1
            if record.deleted_at is not None:
                report.unchanged += 1
                return
            record.deleted_at = item.deleted_at
            report.deleted += 1
            self._flag_deleted(session, record, now)

    def _flag_deleted(self, session: Any, record: m.ItemRecord, now: datetime) -> None:
        version = session.execute(
            select(m.ItemVersion).where(m.ItemVersion.item_id == record.id,
                                        m.ItemVersion.version == record.current_version)
        ).scalar_one()
        item = Item.model_validate(version.data)
        had_flag = session.execute(
            select(m.Flag.id).where(m.Flag.item_id == record.id)).first() is not None
        author = item.author.role
        by_org = author in (Role.staff, Role.organisation)
        severity = Severity.medium if (by_org or had_flag) else Severity.information
        finding = Finding(
            rule_id="deletion", category=Category.deletion, severity=severity,
            score=1.0, item_key=record.key,
            explanation=(
                "an item seen before is no longer on the platform; its last copy is "
                "preserved (policy: staff do not delete messages sent to or from "
                "organisation accounts; evidence is not deleted)"
            ),
            evidence=Evidence(detail={"deleted_at": (record.deleted_at or now).isoformat(),
                                      "author_role": author.value if author else None}),
        )
        record_findings(session, record, self.router.apply([finding], item), now=now)
        auditlog.append(session, "governance-bot", "item.deleted", record.key,
                        {"had_flag": had_flag}, at=now)

    def save_cursor(self, name: str, cursor: dict[str, Any] | None, error: str | None) -> None:
        with self.db.session() as session:
            state = session.get(m.ConnectorState, name)
            if state is None:
                state = m.ConnectorState(name=name)
                session.add(state)
            if cursor is not None:
                state.cursor = cursor
            state.last_poll_at = self.clock()
            state.last_error = error

    def load_cursor(self, name: str) -> dict[str, Any] | None:
        with self.db.session() as session:
            state = session.get(m.ConnectorState, name)
            return dict(state.cursor) if state and state.cursor else None

    def scan(self, connector: Connector, progress: Callable[[int], None] | None = None
             ) -> ScanReport:
        """Fetch from one connector since its cursor and process everything."""
        cursor = self.load_cursor(connector.name)
        result = connector.fetch(cursor)
        report = self.apply_fetch(connector, result, progress)
        self.retry_media(connector, report, progress)
        return report

    def retry_media(self, connector: Connector, report: ScanReport,
                    progress: Callable[[int], None] | None = None) -> None:
        """Archived items of ``connector`` with a picture due for another try (webhook items,
        items past the listing's window): passed through the pipeline again, so a picture
        fetched now makes a new version that is checked (governance_bot/media.py)."""
        if self.media is None:
            return
        try:
            due = self.media.due_items(connector)
        except DBAPIError as exc:
            report.problems.append(f"{connector.name}: pictures due for another try were not "
                                   f"read ({type(exc).__name__})")
            return
        if due:
            log.info("%s: trying the pictures of %d archived item(s) again", connector.name,
                     len(due))
            retried = ScanReport()
            self.process_many(due, retried, progress)
            report.problems.extend(retried.problems)
            report.edited += retried.edited
            report.detected += retried.detected
            report.flags_created += retried.flags_created
            report.flags_updated += retried.flags_updated
            report.failed_items.extend(retried.failed_items)
