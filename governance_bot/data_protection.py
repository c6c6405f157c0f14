"""Data protection (UK GDPR): retention per category, legal holds, and a subject-access export
and an erasure for one learner. Every change is written to the audit log.

* **Legal hold.** A safeguarding finding of severity 4 or 5 places a hold on its flag
  automatically (``apply_automatic_hold``, called where flags are recorded); a person places or
  releases one with ``governance-bot legal-hold set/release FLAG_ID --reason``. A hold covers the
  flagged item and every item of its thread (the context of a disclosure is evidence too). Held
  items are never removed by retention or erasure.
* **Retention** (``[retention]`` in the config): unflagged items are kept ``unflagged_days``,
  flagged items ``flagged_days`` or their category's own number of days. ``retention apply``
  replaces the content of every version of an expired item with a tombstone (the item's ids,
  kind, times and content hashes stay, plus an ``item_redactions`` row and an audit event).
* **Subject access** (``learner export``): the learner's register record, every archived item
  that names them (register names, handles, emails, hashtags, photo tags; the ``learner_pii``
  matcher), that they wrote or received, the flags about them with their findings, decisions
  and who was informed.
* **Erasure** (``learner erase``): the register record goes; items about the learner that are
  not under a legal hold are redacted like retention does (hashes and the audit trail stay);
  held items are listed as retained, with the hold's reason.

Nothing here logs message text or learner details above DEBUG.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance_bot import __version__
from governance_bot.config import Config, RetentionSettings
from governance_bot.findings import Category
from governance_bot.findings import Finding as DetectedFinding
from governance_bot.items import Item, Role
from governance_bot.media import forget_media, prune_media, store_from_config
from governance_bot.media_store import MediaStore
from governance_bot.register_store import load_registers
from governance_bot.registers import (
    Learner,
    RegisterError,
    RegisterIndex,
    Registers,
    read_csv,
    read_toml,
)
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from governance_bot.storage.dp_models import ItemRedaction, LegalHold

__all__ = [
    "AUTO_HOLD_CATEGORY",
    "AUTO_HOLD_MIN_SEVERITY",
    "DataProtectionError",
    "ErasureReport",
    "RetentionReport",
    "active_holds",
    "apply_automatic_hold",
    "apply_retention",
    "erase_learner",
    "export_learner",
    "held_threads",
    "learner_items",
    "place_hold",
    "release_hold",
    "write_export",
]

log = logging.getLogger(__name__)

AUTO_HOLD_CATEGORY = Category.safeguarding
AUTO_HOLD_MIN_SEVERITY = 4
AUTO_HOLD_REASON = ("safeguarding concern of severity {severity}: kept as a child-protection "
                    "record (placed automatically)")


class DataProtectionError(Exception):
    """A data-protection command cannot do what was asked (the message says why and what to do)."""


# --- legal holds ------------------------------------------------------------------------------
def apply_automatic_hold(session: Session, flag: m.Flag, findings: list[DetectedFinding],
                         actor: str = "governance-bot", now: datetime | None = None) -> bool:
    """Place a hold on ``flag`` if any of ``findings`` is a safeguarding concern of severity 4-5.
    Returns whether a hold was placed now."""
    serious = [f for f in findings if f.category == AUTO_HOLD_CATEGORY
               and int(f.severity) >= AUTO_HOLD_MIN_SEVERITY]
    if not serious or flag.legal_hold:
        return False
    severity = max(int(f.severity) for f in serious)
    _place(session, flag, AUTO_HOLD_REASON.format(severity=severity), actor, now, automatic=True)
    return True


def _place(session: Session, flag: m.Flag, reason: str, actor: str, now: datetime | None,
           automatic: bool) -> LegalHold:
    now = now or datetime.now(UTC)
    hold = LegalHold(flag_id=flag.id, reason=reason, placed_by=actor, placed_at=now)
    session.add(hold)
    flag.legal_hold = True
    session.flush()
    auditlog.append(session, actor, "legal_hold.placed", f"flag:{flag.id}",
                    {"hold_id": hold.id, "automatic": automatic, "category": flag.category,
                     "severity": flag.severity}, at=now)
    return hold


def place_hold(session: Session, flag_id: int, reason: str, actor: str,
               now: datetime | None = None) -> LegalHold:
    """Place a legal hold on a flag (and so on the items of its thread)."""
    if not reason.strip():
        raise DataProtectionError("a legal hold needs a reason (--reason)")
    flag = session.get(m.Flag, flag_id)
    if flag is None:
        raise DataProtectionError(f"there is no flag {flag_id} (see `governance-bot flags list`)")
    return _place(session, flag, reason.strip(), actor, now, automatic=False)


def release_hold(session: Session, flag_id: int, reason: str, actor: str,
                 now: datetime | None = None) -> int:
    """Release every active hold on a flag. Returns how many were released."""
    if not reason.strip():
        raise DataProtectionError("releasing a legal hold needs a reason (--reason)")
    flag = session.get(m.Flag, flag_id)
    if flag is None:
        raise DataProtectionError(f"there is no flag {flag_id} (see `governance-bot flags list`)")
    holds = list(session.execute(select(LegalHold).where(
        LegalHold.flag_id == flag_id, LegalHold.released_at.is_(None))).scalars())
    if not flag.legal_hold and not holds:
        raise DataProtectionError(f"flag {flag_id} is not under a legal hold")
    now = now or datetime.now(UTC)
    for hold in holds:
        hold.released_at, hold.released_by, hold.release_reason = now, actor, reason.strip()
    flag.legal_hold = False
    auditlog.append(session, actor, "legal_hold.released", f"flag:{flag_id}",
                    {"holds": [h.id for h in holds]}, at=now)
    session.flush()
    return len(holds)


def active_holds(session: Session) -> list[tuple[m.Flag, list[LegalHold]]]:
    flags = session.execute(select(m.Flag).where(m.Flag.legal_hold.is_(True))
                            .order_by(m.Flag.id)).scalars().all()
    out = []
    for flag in flags:
        holds = list(session.execute(select(LegalHold).where(
            LegalHold.flag_id == flag.id, LegalHold.released_at.is_(None))
            .order_by(LegalHold.id)).scalars())
        out.append((flag, holds))
    return out


def held_threads(session: Session) -> dict[str, list[str]]:
    """thread_key -> the reasons of the holds covering it."""
    out: dict[str, list[str]] = {}
    for flag, holds in active_holds(session):
        reasons = [h.reason for h in holds] or ["legal hold (no reason recorded)"]
        out.setdefault(flag.thread_key, []).extend(f"flag {flag.id}: {r}" for r in reasons)
    return out


# --- tombstones -------------------------------------------------------------------------------
_KEPT_FIELDS = ("id", "platform", "account", "kind", "created_at", "edited_at", "visibility",
                "parent_id", "thread_id")


def _tombstone(data: dict[str, Any], note: str, reason: str, at: datetime,
               keep_people: bool = False) -> dict[str, Any]:
    """The version's data with its content removed: ids, kind and times stay; text becomes
    ``note``; people are dropped (or, with ``keep_people``, only staff and the organisation
    stay); media keep only their hashes. Still a valid ``Item``."""
    out = {k: data[k] for k in _KEPT_FIELDS if k in data}
    out["text"] = note

    def kept(person: Any) -> dict[str, Any] | None:
        if keep_people and isinstance(person, dict) and person.get("role") in (
                Role.staff.value, Role.organisation.value):
            return {k: person.get(k) for k in ("id", "role", "register_id") if person.get(k)}
        return None

    out["author"] = kept(data.get("author")) or {}
    out["recipients"] = [p for p in (kept(r) for r in data.get("recipients") or []) if p]
    out["media"] = [{"sha256": md["sha256"]} for md in data.get("media") or []
                    if isinstance(md, dict) and md.get("sha256")]
    out["redacted"] = {"reason": reason, "at": at.isoformat()}
    Item.model_validate(out)  # a tombstone must still read as an item
    return out


def _redacted_versions(session: Session, item_ids: list[int]) -> set[int]:
    if not item_ids:
        return set()
    return set(session.execute(select(ItemRedaction.version_id).where(
        ItemRedaction.item_id.in_(item_ids))).scalars())


# --- retention --------------------------------------------------------------------------------
@dataclass(slots=True)
class RetentionReport:
    dry_run: bool
    expired: dict[str, int] = field(default_factory=dict)  # category (or "unflagged") -> items
    versions: int = 0
    held: int = 0  # expired but under a legal hold: kept
    items: list[str] = field(default_factory=list)  # keys of the items removed (or to remove)
    media_removed: int = 0  # stored pictures deleted (of removed items, or named by no item)

    def line(self) -> str:
        what = "would remove" if self.dry_run else "removed"
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.expired.items())) or "none"
        pictures = "" if self.dry_run else f"; {self.media_removed} stored picture(s) deleted"
        return (f"retention: {what} the content of {sum(self.expired.values())} item(s) "
                f"({self.versions} version(s)): {counts}; {self.held} expired item(s) kept "
                f"under a legal hold{pictures}")


def _retention_days(settings: RetentionSettings, categories: set[str]) -> tuple[str, int]:
    if not categories:
        return "unflagged", settings.unflagged_days
    best = max(categories, key=lambda c: settings.categories.get(c, settings.flagged_days))
    return best, settings.categories.get(best, settings.flagged_days)


def apply_retention(db: Database, settings: RetentionSettings, actor: str, dry_run: bool = False,
                    now: datetime | None = None, batch: int = 200,
                    media: MediaStore | None = None) -> RetentionReport:
    """Remove the content of every item past its retention period that no legal hold covers,
    and the stored pictures (``media``, the media store) no remaining item shows."""
    now = now or datetime.now(UTC)
    report = RetentionReport(dry_run=dry_run)
    note = (f"[content removed on {now.date().isoformat()} under the retention schedule; "
            "the content hash and the audit trail are kept]")
    last_id = 0
    while True:
        with db.session() as session:
            held = held_threads(session)
            records = list(session.execute(
                select(m.ItemRecord).where(m.ItemRecord.id > last_id)
                .order_by(m.ItemRecord.id).limit(batch)).scalars())
            if not records:
                break
            last_id = records[-1].id
            ids = [r.id for r in records]
            flags = {f.item_id: f for f in session.execute(
                select(m.Flag).where(m.Flag.item_id.in_(ids))).scalars()}
            cats: dict[int, set[str]] = {}
            for item_id, cat in session.execute(
                    select(m.Finding.item_id, m.Finding.category)
                    .where(m.Finding.item_id.in_(ids))):
                cats.setdefault(item_id, set()).add(cat)
            done = _redacted_versions(session, ids)
            for record in records:
                flag = flags.get(record.id)
                categories = cats.get(record.id, set())
                if flag is not None:
                    categories.add(flag.category)
                label, days = _retention_days(settings, categories)
                since = record.created_at
                if flag is not None and flag.updated_at > since:
                    since = flag.updated_at
                if since + timedelta(days=days) > now:
                    continue
                versions = [v for v in session.execute(select(m.ItemVersion).where(
                    m.ItemVersion.item_id == record.id)).scalars() if v.id not in done]
                if not versions:
                    continue  # already a tombstone
                if record.thread_key in held or (flag is not None and flag.legal_hold):
                    report.held += 1
                    continue
                report.expired[label] = report.expired.get(label, 0) + 1
                report.versions += len(versions)
                report.items.append(record.key)
                if dry_run:
                    continue
                for version in versions:
                    version.data = _tombstone(version.data, note, "retention", now)
                    session.add(ItemRedaction(item_id=record.id, version_id=version.id,
                                              reason="retention", actor=actor, redacted_at=now,
                                              detail={"category": label, "days": days}))
    if not dry_run:
        # the pictures of the removed items (a picture another item still shows stays), and
        # files no item names (a download whose batch ran out of time)
        report.media_removed = forget_media(db, media, report.items)
        if media is not None:
            report.media_removed += prune_media(db, media, now=now)
        with db.session() as session:
            auditlog.append(session, actor, "retention.applied", None,
                            {"items": sum(report.expired.values()), "versions": report.versions,
                             "by_category": report.expired, "held": report.held,
                             "media_removed": report.media_removed}, at=now)
    log.info("%s", report.line())
    return report


# --- one learner: matching --------------------------------------------------------------------
def _subject_pattern(learner_id: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-])learner:{re.escape(learner_id)}(?![\w-])")


@dataclass(slots=True)
class _LearnerMatch:
    record: m.ItemRecord
    why: set[str] = field(default_factory=set)


def _pii_matcher(config: Config, registers: Registers, learner: Learner) -> Any:
    from rules.learner_pii import LearnerPiiDetector
    from rules.packs import load_pack

    packs_dir = config.detection.packs_dir and config.resolve_path(config.detection.packs_dir)
    detector = LearnerPiiDetector.from_pack(load_pack("learner_pii", packs_dir), config)
    # an index holding this one learner (and the staff, so staff names are told apart)
    index = RegisterIndex(Registers(staff=registers.staff, learners=[learner],
                                    accounts=registers.accounts))
    return detector, detector.matcher(index), index


def learner_items(session: Session, config: Config, learner: Learner
                  ) -> dict[int, _LearnerMatch]:
    """Every archived item that names ``learner`` or that they wrote or received, with why."""
    from rules.learner_pii import fold

    lid = learner.learner_id
    registers = load_registers(session)
    detector, matcher, index = _pii_matcher(config, registers, learner)
    subject = _subject_pattern(lid)
    found: dict[int, _LearnerMatch] = {}

    def hit(record: m.ItemRecord, why: str) -> None:
        found.setdefault(record.id, _LearnerMatch(record)).why.add(why)

    for version, record in _versions(session):
        data = version.data
        if isinstance(data, dict) and data.get("redacted"):
            continue
        try:
            item = Item.model_validate(data)
        except ValueError:
            log.warning("item version %s could not be read as an item; skipped", version.id)
            continue
        author = index.resolve_person(item.author, item.account)
        if _is_learner(item.author, lid) or _is_learner(author, lid):
            hit(record, "author")
        for person in item.recipients:
            if _is_learner(person, lid) or _is_learner(index.resolve_person(person, item.account),
                                                       lid):
                hit(record, "recipient")
        if item.text and matcher.has_keys:
            spans: dict[str, dict[str, list[tuple[int, int]]]] = {}
            detector._register_matches(item.text, fold(item.text), item, author, matcher, spans)
            if lid in spans:
                hit(record, "named")
        for media in item.media:
            for person in media.tagged:
                identifiers = person.keys()  # a Person method, not a dict's
                if any((mt := index.lookup(k)) and mt.register_id == lid for k in identifiers):
                    hit(record, "photo_tag")
    for finding, record in session.execute(
            select(m.Finding, m.ItemRecord).join(m.ItemRecord,
                                                 m.ItemRecord.id == m.Finding.item_id)):
        entry = (finding.evidence or {}).get("register_entry") if isinstance(
            finding.evidence, dict) else None
        if (finding.subject and subject.search(finding.subject)) or entry == f"learner:{lid}":
            hit(record, "finding")
    return found


def _is_learner(person: Any, learner_id: str) -> bool:
    return bool(person.role == Role.learner and person.register_id == learner_id)


def _versions(session: Session, batch: int = 500) -> Iterator[tuple[m.ItemVersion, m.ItemRecord]]:
    last = 0
    while True:
        rows = session.execute(
            select(m.ItemVersion, m.ItemRecord)
            .join(m.ItemRecord, m.ItemRecord.id == m.ItemVersion.item_id)
            .where(m.ItemVersion.id > last).order_by(m.ItemVersion.id).limit(batch)).all()
        if not rows:
            return
        yield from ((version, record) for version, record in rows)
        last = rows[-1][0].id


def _learner(session: Session, learner_id: str) -> Learner | None:
    row = session.get(m.Learner, learner_id)
    return Learner.model_validate(row.data) if row is not None else None


def _flags_for(session: Session, item_ids: list[int]) -> list[m.Flag]:
    if not item_ids:
        return []
    return list(session.execute(select(m.Flag).where(m.Flag.item_id.in_(item_ids))
                                .order_by(m.Flag.id)).scalars())


# --- subject access export ---------------------------------------------------------------------
def export_learner(db: Database, config: Config, learner_id: str, actor: str,
                   now: datetime | None = None) -> dict[str, Any]:
    """Everything held about one learner, as a JSON-ready dict. Audited."""
    now = now or datetime.now(UTC)
    with db.session() as session:
        learner = _learner(session, learner_id)
        if learner is None:
            raise DataProtectionError(
                f"learner {learner_id} is not in the register (erased, or a wrong id?)")
        matches = learner_items(session, config, learner)
        held = held_threads(session)
        ids = sorted(matches)
        items_out = []
        for item_id in ids:
            match = matches[item_id]
            record = match.record
            versions = session.execute(select(m.ItemVersion).where(
                m.ItemVersion.item_id == item_id).order_by(m.ItemVersion.version)).scalars()
            items_out.append({
                "key": record.key, "platform": record.platform, "account": record.account,
                "kind": record.kind, "created_at": record.created_at.isoformat(),
                "deleted_at": record.deleted_at.isoformat() if record.deleted_at else None,
                "why": sorted(match.why),
                "legal_hold": held.get(record.thread_key, []),
                "versions": [{"version": v.version, "seen_at": v.seen_at.isoformat(),
                              "content_hash": v.content_hash, "content": v.data}
                             for v in versions],
            })
        flags_out = []
        for flag in _flags_for(session, ids):
            findings = session.execute(select(m.Finding).where(m.Finding.flag_id == flag.id)
                                       .order_by(m.Finding.id)).scalars()
            decisions = session.execute(select(m.FlagDecision).where(
                m.FlagDecision.flag_id == flag.id).order_by(m.FlagDecision.id)).scalars()
            informed = session.execute(select(m.InformedPerson).where(
                m.InformedPerson.flag_id == flag.id).order_by(m.InformedPerson.id)).scalars()
            flags_out.append({
                "flag_id": flag.id, "item": matches[flag.item_id].record.key,
                "category": flag.category, "severity": flag.severity, "status": flag.status,
                "route": flag.route, "created_at": flag.created_at.isoformat(),
                "legal_hold": flag.legal_hold,
                "findings": [{"rule_id": f.rule_id, "category": f.category,
                              "severity": f.severity, "explanation": f.explanation,
                              "created_at": f.created_at.isoformat()} for f in findings],
                "decisions": [{"action": d.action, "staff_id": d.staff_id, "reason": d.reason,
                               "outcome": d.outcome, "created_at": d.created_at.isoformat()}
                              for d in decisions],
                "informed": [{"relation": i.relation, "contact": i.contact, "method": i.method,
                              "informed_by": i.informed_by,
                              "informed_at": i.informed_at.isoformat()} for i in informed],
            })
        events = session.execute(select(m.AuditEvent).where(
            m.AuditEvent.subject == f"learners:{learner_id}").order_by(m.AuditEvent.seq)).scalars()
        audit_out = [{"seq": e.seq, "at": e.created_at.isoformat(), "actor": e.actor,
                      "action": e.action, "data": e.data} for e in events]
        auditlog.append(session, actor, "learner.exported", f"learners:{learner_id}",
                        {"items": len(items_out), "flags": len(flags_out)}, at=now)
    log.info("subject-access export for learner %s: %d item(s), %d flag(s)", learner_id,
             len(items_out), len(flags_out))
    return {
        "learner_id": learner_id,
        "exported_at": now.isoformat(),
        "exported_by": actor,
        "generated_by": f"governance-bot {__version__}",
        "note": ("Review before release: other people's personal data and information whose "
                 "release could cause serious harm may need to be withheld (UK GDPR / DPA 2018 "
                 "Schedule 2-3 exemptions); the DSL decides for safeguarding records."),
        "register_record": learner.model_dump(mode="json"),
        "items": items_out,
        "flags": flags_out,
        "register_history": audit_out,
    }


# --- erasure ----------------------------------------------------------------------------------
@dataclass(slots=True)
class ErasureReport:
    learner_id: str
    register_record_removed: bool = False
    items_redacted: list[str] = field(default_factory=list)
    versions_redacted: int = 0
    retained: list[tuple[str, list[str]]] = field(default_factory=list)  # item key, reasons
    informed_redacted: int = 0
    still_in_register_files: list[str] = field(default_factory=list)
    media_removed: int = 0  # stored pictures of the redacted items deleted


def _register_files_naming(config: Config, learner_id: str) -> list[str]:
    """The config's register files that still list the learner (they would re-import them)."""
    r = config.registers
    out: list[str] = []
    if r.file:
        path = config.resolve_path(r.file)
        try:
            if path.is_file() and any(lr.learner_id == learner_id
                                      for lr in read_toml(path).learners):
                out.append(str(path))
        except (RegisterError, OSError, ValueError):
            out.append(f"{path} (could not be read to check)")
    if r.learners:
        path = config.resolve_path(r.learners)
        if path.is_file():
            rows, _bad = read_csv(path, "learners")
            if any(lr.learner_id == learner_id for lr in rows):
                out.append(str(path))
    return out


def erase_learner(db: Database, config: Config, learner_id: str, actor: str,
                  now: datetime | None = None) -> ErasureReport:
    """Erase one learner's personal data, except what a legal hold keeps. Audited."""
    now = now or datetime.now(UTC)
    report = ErasureReport(learner_id)
    note = (f"[content removed on {now.date().isoformat()}: personal data of a learner erased "
            "on request (UK GDPR Art. 17); the content hash and the audit trail are kept]")
    with db.session() as session:
        learner = _learner(session, learner_id)
        if learner is None:
            raise DataProtectionError(
                f"learner {learner_id} is not in the register (already erased, or a wrong id?)")
        matches = learner_items(session, config, learner)
        held = held_threads(session)
        ids = sorted(matches)
        done = _redacted_versions(session, ids)
        held_flags = {f.item_id for f in _flags_for(session, ids) if f.legal_hold}
        for item_id in ids:
            record = matches[item_id].record
            reasons = held.get(record.thread_key, [])
            if item_id in held_flags and not reasons:
                reasons = ["legal hold on this item's flag"]
            if reasons:
                report.retained.append((record.key, reasons))
                continue
            versions = [v for v in session.execute(select(m.ItemVersion).where(
                m.ItemVersion.item_id == item_id)).scalars() if v.id not in done]
            for version in versions:
                version.data = _tombstone(version.data, note, "erasure", now, keep_people=True)
                session.add(ItemRedaction(item_id=item_id, version_id=version.id,
                                          reason="erasure", learner_id=learner_id, actor=actor,
                                          redacted_at=now, detail={"why": sorted(
                                              matches[item_id].why)}))
            report.versions_redacted += len(versions)
            report.items_redacted.append(record.key)
        held_flag_ids = {f.id for f in session.execute(
            select(m.Flag).where(m.Flag.legal_hold.is_(True))).scalars()}
        for person in session.execute(select(m.InformedPerson).where(
                m.InformedPerson.register_id == learner_id)).scalars():
            if person.flag_id not in held_flag_ids:
                person.contact = "[erased]"
                report.informed_redacted += 1
        row = session.get(m.Learner, learner_id)
        if row is not None:
            session.delete(row)
            report.register_record_removed = True
        auditlog.append(session, actor, "learner.erased", f"learners:{learner_id}", {
            "items_redacted": len(report.items_redacted),
            "versions_redacted": report.versions_redacted,
            "retained": [{"item": key, "reasons": len(reasons)} for key, reasons in
                         report.retained],
            "informed_redacted": report.informed_redacted,
        }, at=now)
    # the redacted items' pictures (photos of the learner, certificates naming them); a picture
    # an item under a legal hold also shows is kept
    report.media_removed = forget_media(db, store_from_config(config), report.items_redacted)
    report.still_in_register_files = _register_files_naming(config, learner_id)
    log.info("erasure for learner %s: %d item(s) redacted, %d retained under legal hold",
             learner_id, len(report.items_redacted), len(report.retained))
    return report


def write_export(data: dict[str, Any], path: Path) -> None:
    """Write the export readable by its owner only (it holds a child's personal data)."""
    import json
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, default=str)
    tmp.replace(path)
