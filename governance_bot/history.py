"""What detectors may know about the past: from the database, or in memory for ``classify``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, select

from governance_bot.findings import Finding
from governance_bot.items import Item
from governance_bot.storage.db import Database
from governance_bot.storage.keyring import thread_digest
from governance_bot.storage.models import Finding as FindingRow
from governance_bot.storage.models import ItemRecord, ItemVersion

__all__ = ["BatchHistory", "DatabaseHistory", "MemoryHistory"]


class DatabaseHistory:
    """History read from the archive and stored findings."""

    def __init__(self, db: Database):
        self.db = db

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        with self.db.session() as session:
            stored = thread_digest(session, item.thread_key)  # thread keys are pseudonyms
            rows = session.execute(
                select(ItemVersion.data)
                .join(ItemRecord, and_(ItemRecord.id == ItemVersion.item_id,
                                       ItemVersion.version == ItemRecord.current_version))
                .where(ItemRecord.thread_key == stored, ItemRecord.key != item.key,
                       ItemRecord.created_at <= item.created_at)
                .order_by(ItemRecord.created_at.desc())
                .limit(limit)
            ).scalars().all()
        return [Item.model_validate(d) for d in reversed(rows)]

    def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                       exclude_item_key: str | None = None) -> Sequence[datetime]:
        return [at for _, at in self.prior_rows(rule_id, subject, since, until,
                                                exclude_item_key)]

    def prior_rows(self, rule_id: str, subject: str, since: datetime, until: datetime,
                   exclude_item_key: str | None = None) -> list[tuple[str, datetime]]:
        """(item key, item time) of each stored finding of ``rule_id`` about ``subject``."""
        with self.db.session() as session:
            query = (
                select(ItemRecord.key, FindingRow.item_created_at)
                .join(ItemRecord, ItemRecord.id == FindingRow.item_id)
                .where(FindingRow.rule_id == rule_id, FindingRow.subject == subject,
                       FindingRow.item_created_at >= since, FindingRow.item_created_at <= until)
            )
            if exclude_item_key is not None:
                query = query.where(ItemRecord.key != exclude_item_key)
            return [(key, at) for key, at in session.execute(query).all()]


class BatchHistory:
    """The history a batch is detected against before any of it is recorded: the database's,
    plus the findings of the batch's earlier items (so a rule that counts earlier findings, such
    as repeated out-of-hours contact, sees them exactly as it would one item at a time)."""

    def __init__(self, base: DatabaseHistory) -> None:
        self.base = base
        self._findings: dict[tuple[str, str], dict[str, datetime]] = defaultdict(dict)

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        return self.base.thread(item, limit)  # the batch is archived before detection

    def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                       exclude_item_key: str | None = None) -> Sequence[datetime]:
        mine = {key: at for key, at in self._findings.get((rule_id, subject), {}).items()
                if since <= at <= until and key != exclude_item_key}
        stored = self.base.prior_rows(rule_id, subject, since, until, exclude_item_key)
        # an item of the batch detected before counts once, by its new findings
        return [at for key, at in stored if key not in mine] + list(mine.values())

    def record(self, item: Item, findings: Sequence[Finding]) -> None:
        """Findings of an item of the batch, detected and not yet recorded."""
        for f in findings:
            if f.subject:
                self._findings[(f.rule_id, f.subject)][item.key] = item.created_at


class MemoryHistory:
    """History kept in memory as items pass (``classify``, tests, benchmarks)."""

    def __init__(self, max_thread: int = 200) -> None:
        self.max_thread = max_thread
        self._threads: dict[str, list[Item]] = defaultdict(list)
        # (rule, subject) -> item key -> item time: re-scanning an item never counts it twice,
        # as finding fingerprints ensure in the database
        self._findings: dict[tuple[str, str], dict[str, datetime]] = defaultdict(dict)

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        earlier = [i for i in self._threads.get(item.thread_key, []) if i.key != item.key
                   and i.created_at <= item.created_at]
        return earlier[-limit:]

    def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                       exclude_item_key: str | None = None) -> Sequence[datetime]:
        found = self._findings.get((rule_id, subject), {})
        return [t for key, t in found.items() if since <= t <= until and key != exclude_item_key]

    def add_item(self, item: Item) -> None:
        """Remember ``item`` as thread context (no findings)."""
        self.record(item)

    def record(self, item: Item, findings: Sequence[Finding] = ()) -> None:
        """Remember ``item`` (replacing an earlier copy of it) and its findings."""
        thread = self._threads[item.thread_key]
        thread[:] = [i for i in thread if i.key != item.key]
        thread.append(item)
        thread.sort(key=lambda i: i.created_at)
        if len(thread) > self.max_thread:
            del thread[: len(thread) - self.max_thread]
        for f in findings:
            if f.subject:
                self._findings[(f.rule_id, f.subject)][item.key] = item.created_at
