"""What the console shows: the queue of flags and a case, read from the database and cut to what
the viewer may see (``access``). Pages, the command line (``flags show``) and exports all use
these, so a case reads the same everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from governance_bot.config import Config
from governance_bot.findings import Route
from governance_bot.flags import FlagStatus
from governance_bot.items import Item, Role
from governance_bot.labels import (
    CATEGORY_NAMES,
    OUTCOME_NAMES,
    ROUTE_NAMES,
    SEVERITY_NAMES,
    STATUS_NAMES,
    category_name,
)
from governance_bot.registers import RegisterIndex
from governance_bot.routing import ROUTE_PRIORITY
from governance_bot.storage import models as m
from governance_bot.storage.console_models import CaseNote

if TYPE_CHECKING:
    from governance_bot.authz import NeedToKnow

__all__ = [
    "CATEGORY_NAMES",
    "OUTCOME_NAMES",
    "ROUTE_NAMES",
    "SEVERITY_NAMES",
    "STATUS_NAMES",
    "Case",
    "QueueFilters",
    "QueuePage",
    "category_name",
    "full_access",
    "load_case",
    "load_queue",
    "restricted_case",
]

OPEN_STATUSES = (FlagStatus.open.value, FlagStatus.acknowledged.value,
                 FlagStatus.escalated.value)
PAGE_SIZE = 50
CASE_ROUTES = frozenset({"dsl", "case_manager", "case_digest"})

@dataclass(slots=True)
class QueueFilters:
    route: str | None = None
    category: str | None = None
    severity: int | None = None
    account: str | None = None
    status: str | None = "open"  # "open" means every status still needing someone; "all": any
    since: date | None = None
    until: date | None = None
    sort: str = "newest"
    page: int = 1

    def conditions(self) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if self.route:
            out.append(m.Flag.route == self.route)
        if self.category:
            out.append(m.Flag.category == self.category)
        if self.severity:
            out.append(m.Flag.severity == self.severity)
        if self.account:
            out.append(m.Flag.account == self.account)
        if self.status == "open":
            out.append(m.Flag.status.in_(OPEN_STATUSES))
        elif self.status and self.status != "all":
            out.append(m.Flag.status == self.status)
        if self.since:
            out.append(m.Flag.created_at >= datetime.combine(self.since, time.min, tzinfo=UTC))
        if self.until:
            out.append(m.Flag.created_at <= datetime.combine(self.until, time.max, tzinfo=UTC))
        return out


@dataclass(slots=True)
class QueueRow:
    id: int
    severity: int
    category: str
    route: str
    status: str
    account: str
    created_at: datetime
    item_created_at: datetime
    assigned_to: str | None
    acknowledged: bool


@dataclass(slots=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    counts: dict[str, Counter[str]]
    latest_id: int
    page: int
    pages: int


def load_queue(session: Session, scope: ColumnElement[bool], filters: QueueFilters,
               *, listed: Callable[[Session, ColumnElement[bool]], Sequence[Any]]
               ) -> QueuePage:
    """One page of the flags in ``scope`` matching ``filters``, with counts per route, category,
    severity, status and account (of the filtered set; the status counts ignore the status
    filter, so the tabs say how many each would show).

    ``scope`` only narrows the search (the routes and accounts of the viewer's roles); what the
    viewer may see is decided by need to know for every flag: ``listed(session, where)`` gives
    the flags they may see, newest first, each as they see it
    (``governance_bot.console.visible.Listed``: the severity, category and route of their own
    findings). A flag it leaves out (a concern about the viewer, an item they wrote, another
    audience's case) is neither listed nor counted; the route, category and severity filters,
    the counts and the sort read what the viewer sees, never another audience's findings."""
    base = QueueFilters(account=filters.account, status="all", since=filters.since,
                        until=filters.until)
    flags = listed(session, and_(scope, *base.conditions()))
    counts: dict[str, Counter[str]] = {k: Counter() for k in
                                       ("route", "category", "severity", "account", "status")}
    wanted = set(OPEN_STATUSES) if filters.status == "open" else (
        None if filters.status in (None, "all") else {filters.status})
    matching: list[Any] = []  # newest first
    latest = 0
    for x in flags:
        v = x.shown
        if v.severity is None:
            continue
        latest = max(latest, x.flag_id)
        if ((filters.route and v.route != filters.route)
                or (filters.category and v.category != filters.category)
                or (filters.severity and v.severity != filters.severity)):
            continue
        counts["status"][x.status] += 1
        if wanted is not None and x.status not in wanted:
            continue
        counts["route"][v.route] += 1
        counts["category"][v.category] += 1
        counts["severity"][str(v.severity)] += 1
        counts["account"][x.account] += 1
        matching.append(x)
    if filters.sort == "oldest":
        matching.reverse()
    elif filters.sort == "severity":  # stable: newest first within a severity
        matching.sort(key=lambda x: -x.shown.severity)
    total = len(matching)
    page = max(1, filters.page)
    start = (page - 1) * PAGE_SIZE
    chosen = matching[start:start + PAGE_SIZE]
    dates = {i: (c, p) for i, c, p in session.execute(
        select(m.Flag.id, m.Flag.created_at, m.Flag.item_created_at)
        .where(m.Flag.id.in_([x.flag_id for x in chosen])))} if chosen else {}
    out = [QueueRow(x.flag_id, x.shown.severity, x.shown.category, x.shown.route, x.status,
                    x.account, dates[x.flag_id][0], dates[x.flag_id][1], x.assigned_to,
                    x.acknowledged) for x in chosen]
    return QueuePage(out, total, counts, latest, page, max(1, -(-total // PAGE_SIZE)))


def _as_dict(filters: QueueFilters) -> dict[str, Any]:
    return {k: getattr(filters, k) for k in QueueFilters.__slots__}


# --- a case -----------------------------------------------------------------------------------
@dataclass(slots=True)
class Entry:
    """One line of a timeline: when, who, what."""

    at: datetime
    who: str
    what: str
    detail: str = ""


@dataclass(slots=True)
class ThreadItem:
    at: datetime
    author: str
    text: str
    this: bool = False
    deleted: bool = False


@dataclass(slots=True)
class LearnerDetails:
    learner_id: str
    name: str
    preferred_name: str | None
    date_of_birth: date | None
    photo_consent: bool
    employer: str | None
    guardians: list[str]
    earlier_flags: list[tuple[int, datetime, str, int, str]]  # id, when, category, sev, status


@dataclass(slots=True)
class Case:
    flag: m.Flag
    item: Item
    record: m.ItemRecord
    findings: list[m.Finding]
    detail: str
    text: str
    author: str
    where: str
    url: str | None
    media: list[dict[str, Any]]
    explicit_image: bool
    versions: list[Entry]
    thread: list[ThreadItem]
    told: list[Entry]
    decisions: list[Entry]
    audit: list[Entry]
    notes: list[Entry] = field(default_factory=list)
    learners: list[LearnerDetails] = field(default_factory=list)
    actions: frozenset[str] = frozenset()
    can_write_notes: bool = False
    can_export: bool = False
    note: str | None = None  # about parts of the flag sent to others
    assigned_to: str | None = None
    outcome: str | None = None

    def _top(self) -> Any:
        """The most severe finding the viewer sees (the flag's own columns are the most
        severe of all its findings, which may be another audience's)."""
        if not self.findings:
            return self.flag
        return max(self.findings, key=lambda x: (x.severity, ROUTE_PRIORITY.get(
            Route(x.route) if x.route in Route._value2member_map_ else Route.record_only, 0)))

    @property
    def severity(self) -> int:
        return int(self._top().severity)

    @property
    def category(self) -> str:
        return str(self._top().category)

    @property
    def route(self) -> str:
        return str(self._top().route)

    def as_dict(self) -> dict[str, Any]:
        """The case as plain data (JSON export, ``flags show --json``)."""

        def entries(items: list[Entry]) -> list[dict[str, str]]:
            return [{"at": e.at.isoformat(), "who": e.who, "what": e.what, "detail": e.detail}
                    for e in items]

        f = self.flag
        return {
            "flag_id": f.id, "status": STATUS_NAMES.get(f.status, f.status),
            "severity": self.severity, "severity_name": SEVERITY_NAMES.get(self.severity, ""),
            "category": category_name(self.category),
            "route": ROUTE_NAMES.get(self.route, self.route),
            "account": f.account, "where": self.where, "url": self.url,
            "posted_at": f.item_created_at.isoformat(), "flagged_at": f.created_at.isoformat(),
            "author": self.author, "text": self.text, "detail_level": self.detail,
            "deleted_at": self.record.deleted_at.isoformat() if self.record.deleted_at else None,
            "findings": [{"category": category_name(x.category), "severity": x.severity,
                          "explanation": x.explanation} for x in self.findings],
            "assigned_to": self.assigned_to, "outcome": self.outcome,
            "thread": [{"at": t.at.isoformat(), "author": t.author, "text": t.text,
                        "this": t.this, "deleted": t.deleted} for t in self.thread],
            "versions": entries(self.versions), "told": entries(self.told),
            "decisions": entries(self.decisions), "notes": entries(self.notes),
            "learners": [{"learner_id": lr.learner_id, "name": lr.name,
                          "preferred_name": lr.preferred_name,
                          "date_of_birth": lr.date_of_birth.isoformat()
                          if lr.date_of_birth else None,
                          "photo_consent": lr.photo_consent, "employer": lr.employer,
                          "guardians": lr.guardians,
                          "chronology": [{"flag_id": i, "at": at.isoformat(),
                                          "category": category_name(c), "severity": s,
                                          "status": STATUS_NAMES.get(st, st)}
                                         for i, at, c, s, st in lr.earlier_flags]}
                         for lr in self.learners],
            "audit": entries(self.audit),
        }

    def chronology(self) -> list[Entry]:
        """Everything that happened, in order: posted, flagged, told, decided, noted."""
        out = [Entry(self.flag.item_created_at, self.author, "posted", self.where),
               Entry(self.flag.created_at, "governance-bot", "flagged",
                     "; ".join(category_name(x.category) for x in self.findings))]
        if self.record.deleted_at:
            out.append(Entry(self.record.deleted_at, self.author, "deleted on the platform"))
        out += self.told + self.decisions + self.notes
        return sorted(out, key=lambda e: e.at)


def staff_name(registers: RegisterIndex, staff_id: str | None) -> str:
    if not staff_id:
        return "nobody"
    if staff_id in ("governance-bot", "system"):
        return "governance-bot"
    s = registers.staff.get(staff_id.removeprefix("staff:"))
    return s.name if s else staff_id


def person_label(person: Any, registers: RegisterIndex, mask: bool) -> str:
    role = person.role.value if person.role else "unknown"
    if person.role == Role.staff and person.register_id:
        return f"{staff_name(registers, person.register_id)} (staff)"
    if person.role == Role.learner and person.register_id:
        if mask:
            return "a learner"
        lr = registers.learners.get(person.register_id)
        return f"{lr.full_name} (learner)" if lr else "a learner"
    if person.role == Role.organisation:
        return "the organisation's account"
    name = person.name or person.handle or "someone"
    return "a member of the public" if mask and role == "public" else f"{name} ({role})"


def _actor_name(registers: RegisterIndex, actor: str) -> str:
    if actor.startswith("staff:"):
        return staff_name(registers, actor)
    if actor.startswith("console:") or actor.startswith("slack:"):
        return actor.split(":", 1)[1]
    return "governance-bot" if actor in ("governance-bot", "system") else actor


AUDIT_WORDS = {
    "flag.created": "flag raised", "flag.updated": "flag updated",
    "flag.acknowledge": "acknowledged", "flag.outcome": "outcome recorded",
    "flag.assign": "assigned", "flag.remove": "removal", "flag.keep": "kept",
    "flag.escalate": "escalated to the DSL", "flag.informed": "people to inform recorded",
    "flag.escalation": "escalated: not acknowledged in time",
    "console.view": "viewed in the console", "console.export": "exported",
    "console.note": "case note added", "legal_hold.set": "legal hold placed",
    "legal_hold.placed": "legal hold placed", "legal_hold.released": "legal hold released",
}


def load_case(session: Session, flag_id: int, *, config: Config, registers: RegisterIndex,
              access: Any) -> Case | None:
    """The case of ``flag_id`` as the viewer may see it; None if there is none or they may not
    (``access(flag, findings) -> CaseAccess | None``)."""
    from governance_bot.authz import history_visible
    from governance_bot.outbox import load_flag
    from governance_bot.slack.render import excerpt, is_explicit_image, mask_learners

    loaded = load_flag(session, flag_id)
    if loaded is None:
        return None
    flag, all_findings, item, record = loaded
    allowed = access(flag, all_findings, item)
    if allowed is None:
        return None
    findings = allowed.findings
    tz = ZoneInfo(config.organisation.timezone)
    mask = allowed.detail == "masked"
    spans = [(int(s[0]), int(s[1])) for f in findings
             for s in ((f.evidence or {}).get("spans") or [])]

    def shown(text: str, own: bool) -> str:
        if allowed.detail in ("none", "summary"):
            return ""  # an explicit image's item, or a digest line: no text
        if mask:
            text = excerpt(text, spans if own else [], True, width=400)
            return mask_learners(text, registers)
        if allowed.detail == "excerpt" and own:
            return excerpt(text, spans, False, width=300)
        return text

    explicit = is_explicit_image(findings)
    # a thumbnail only from the archive's own copy (nothing is fetched from elsewhere), and
    # never of a possibly explicit image: no media at all is listed for such a flag
    media = [] if explicit else [
        {"kind": (md.mime_type or "file").split("/")[0], "mime": md.mime_type or "",
         "alt": "" if mask else (md.alt_text or ""), "url": md.url, "index": n,
         "thumbnail": bool(md.local_path) and (md.mime_type or "").startswith("image/")}
        for n, md in enumerate(item.media)]
    where = f"{item.platform} · {item.account} · {item.kind.value}"
    author = person_label(item.author, registers, mask)

    versions = [Entry(v.seen_at, "governance-bot", f"version {v.version} seen",
                      "" if v.version == 1 else "edited")
                for v in session.execute(select(m.ItemVersion).where(
                    m.ItemVersion.item_id == record.id).order_by(m.ItemVersion.version)).scalars()]
    if record.deleted_at:
        versions.append(Entry(record.deleted_at, "governance-bot",
                              "deleted on the platform (its last copy is kept)"))

    thread: list[ThreadItem] = []
    if record.thread_key:
        before = list(session.execute(
            select(m.ItemRecord).where(m.ItemRecord.thread_key == record.thread_key,
                                       m.ItemRecord.created_at <= record.created_at,
                                       m.ItemRecord.id != record.id)
            .order_by(m.ItemRecord.created_at.desc()).limit(10)).scalars())
        after = list(session.execute(
            select(m.ItemRecord).where(m.ItemRecord.thread_key == record.thread_key,
                                       m.ItemRecord.created_at > record.created_at)
            .order_by(m.ItemRecord.created_at).limit(10)).scalars())
        ids = [r.id for r in [*before, *after]]
        latest = {v.item_id: v for v in session.execute(select(m.ItemVersion).where(
            m.ItemVersion.item_id.in_(ids)).order_by(m.ItemVersion.version)).scalars()
            } if ids else {}
        # a neighbour with a flag of its own is shown only to those who may see that flag (a
        # manager reading a post's thread never reads the disclosure under it, nobody reads a
        # concern about themselves there)
        hidden: set[int] = set()
        if ids:
            others = list(session.execute(select(m.Flag).where(m.Flag.item_id.in_(ids)))
                          .scalars())
            their: dict[int, list[m.Finding]] = {}
            for fd in session.execute(select(m.Finding).where(
                    m.Finding.flag_id.in_([o.id for o in others]))).scalars():
                their.setdefault(fd.flag_id, []).append(fd)
            # (a neighbour that is only a content flag for someone else, e.g. a learner named in
            # the post a disclosure answers, is context, shown at the viewer's own detail)
            hidden = {o.item_id for o in others if o.item_id in latest
                      and any(fd.route in CASE_ROUTES for fd in their.get(o.id, []))
                      and access(o, their.get(o.id, []),
                                 Item.model_validate(latest[o.item_id].data)) is None}
        for r in [*reversed(before), record, *after]:
            if r.id == record.id:
                thread.append(ThreadItem(r.created_at, author, shown(item.text, True), True,
                                         r.deleted_at is not None))
                continue
            v = latest.get(r.id)
            if v is None:
                continue
            if r.id in hidden:
                continue  # left out, not marked: a mark would tell its subject it exists
            other = Item.model_validate(v.data)
            thread.append(ThreadItem(r.created_at, person_label(other.author, registers, mask),
                                     shown(other.text, False) if not mask else
                                     mask_learners(excerpt(other.text, [], False, 200),
                                                   registers),
                                     False, r.deleted_at is not None))

    routes = {f.route for f in findings}
    told: list[Entry] = []
    for row in session.execute(select(m.OutboxMessage).where(
            m.OutboxMessage.flag_id == flag.id).order_by(m.OutboxMessage.id)).scalars():
        if row.route not in routes and not allowed.sees_learner_details:
            continue  # another audience's message: not this viewer's business
        what = ROUTE_NAMES.get(row.route, row.route)
        if row.delivered_at:
            told.append(Entry(row.delivered_at, "governance-bot", f"told the {what}",
                              row.kind.replace("_", " ")))
        else:
            told.append(Entry(row.created_at, "governance-bot", f"waiting to tell the {what}",
                              row.last_error or ""))

    decisions: list[Entry] = []
    outcome = None
    for d in session.execute(select(m.FlagDecision).where(
            m.FlagDecision.flag_id == flag.id).order_by(m.FlagDecision.id)).scalars():
        if not history_visible(d.action, allowed.sees_learner_details):
            continue  # the case side's work: not the account managers' to read
        who = staff_name(registers, d.staff_id)
        reason = d.reason or ""
        if mask:
            reason = mask_learners(reason, registers)
        if d.action == "outcome":
            if not allowed.sees_learner_details:
                decisions.append(Entry(d.created_at, "the DSL", "handled by the DSL"))
                continue
            outcome = OUTCOME_NAMES.get(d.outcome or "", d.outcome or "")
            decisions.append(Entry(d.created_at, who, f"outcome: {outcome}", reason))
        elif d.action == "assign":
            decisions.append(Entry(d.created_at, who, "assigned to "
                                   f"{staff_name(registers, d.data.get('assignee'))}"))
        elif d.action == "remove":
            ok = d.data.get("platform_ok")
            decisions.append(Entry(d.created_at, who, "removed" + (
                "" if ok else " (the platform could not do it: to be removed by hand)"), reason))
        else:
            words = {"acknowledge": "acknowledged", "keep": "kept",
                     "escalate": "escalated to the DSL",
                     "escalation": "escalated: not acknowledged in time"}
            decisions.append(Entry(d.created_at, who, words.get(d.action, d.action), reason))

    audit = [Entry(e.created_at, _actor_name(registers, e.actor),
                   AUDIT_WORDS.get(e.action, e.action.replace(".", ": ").replace("_", " ")))
             for e in session.execute(select(m.AuditEvent).where(
                 m.AuditEvent.subject == f"flag:{flag.id}").order_by(m.AuditEvent.seq)
                 .limit(500)).scalars()
             if history_visible(e.action, allowed.sees_learner_details)]

    notes: list[Entry] = []
    learners: list[LearnerDetails] = []
    if allowed.sees_learner_details:
        notes = [Entry(n.created_at, staff_name(registers, n.staff_id), "case note", n.text)
                 for n in session.execute(select(CaseNote).where(CaseNote.flag_id == flag.id)
                                          .order_by(CaseNote.id)).scalars()]
        def may_see(flag_id: int) -> bool:
            # an earlier case is listed only if the viewer may see it too (need to know: never
            # a concern about the viewer, nor a colleague's concern that is not theirs)
            other = load_flag(session, flag_id)
            return other is not None and access(other[0], other[1], other[2]) is not None

        learners = _learners(session, flag, findings, item, registers, may_see)
    del tz
    return Case(flag=flag, item=item, record=record, findings=findings, detail=allowed.detail,
                text=shown(item.text, True), author=author, where=where, url=item.url,
                media=media, explicit_image=explicit, versions=versions, thread=thread,
                told=told, decisions=decisions, audit=audit, notes=notes, learners=learners,
                actions=allowed.actions, can_write_notes=allowed.can_write_notes,
                can_export=getattr(allowed, "can_export", True),
                note=getattr(allowed, "note", None),
                assigned_to=staff_name(registers, flag.assigned_to) if flag.assigned_to
                and history_visible("assign", allowed.sees_learner_details) else None,
                outcome=outcome)


def full_access(flag: m.Flag, findings: list[m.Finding], item: Item) -> Any:
    """Everything, for the operator at the command line (who holds the database anyway)."""
    from governance_bot.console.access import CaseAccess

    return CaseAccess(list(findings), "full", frozenset(), sees_learner_details=True,
                      can_export=True)


def learner_ids(findings: list[m.Finding], item: Item) -> list[str]:
    ids: list[str] = []
    for f in findings:
        entry = (f.evidence or {}).get("register_entry") or ""
        for part in [entry, *(f.subject or "").split(">")]:
            if part.startswith("learner:") and part[8:] not in ids:
                ids.append(part[8:])
    for p in [item.author, *item.recipients]:
        if p.role == Role.learner and p.register_id and p.register_id not in ids:
            ids.append(p.register_id)
    return ids


def _learners(session: Session, flag: m.Flag, findings: list[m.Finding], item: Item,
              registers: RegisterIndex, may_see: Callable[[int], bool]
              ) -> list[LearnerDetails]:
    """The learners the case is about, each with the earlier cases about them that the viewer
    may see (``may_see``)."""
    out = []
    for lid in learner_ids(findings, item):
        lr = registers.learners.get(lid)
        if lr is None:
            continue
        earlier = session.execute(
            select(m.Flag.id, m.Flag.created_at, m.Flag.category, m.Flag.severity, m.Flag.status)
            .where(m.Flag.id != flag.id, m.Flag.id.in_(
                select(m.Finding.flag_id).where(or_(
                    m.Finding.subject == f"learner:{lid}",
                    m.Finding.subject.like(f"%>learner:{lid}")))))
            .order_by(m.Flag.created_at)).all()
        out.append(LearnerDetails(lid, lr.full_name, lr.preferred_name, lr.date_of_birth,
                                  lr.photo_consent, lr.employer, list(lr.guardian_contacts),
                                  [tuple(r) for r in earlier  # type: ignore[misc]
                                   if may_see(r[0])]))
    return out


def is_route(value: str | None) -> bool:
    return value in {r.value for r in Route}


def restricted_case(session: Session, flag_id: int, nt: NeedToKnow) -> dict[str, Any] | None:
    """A case as the operator at the command line sees it without ``--as``
    (:meth:`NeedToKnow.for_operator`): that it exists, for whom, its state and whether its
    audience was told; never its findings, text, people, decisions or notes. None when there is
    no such flag or it is not a case (content is shown as the managers see it)."""
    from governance_bot.authz import FlagFacts
    from governance_bot.outbox import load_flag

    loaded = load_flag(session, flag_id)
    if loaded is None:
        return None
    flag, findings, item, _ = loaded
    ent = nt.for_operator(FlagFacts.from_records(flag, findings, item))
    if ent.findings or not ent.note:
        return None
    told = []
    for row in session.execute(select(m.OutboxMessage).where(
            m.OutboxMessage.flag_id == flag.id).order_by(m.OutboxMessage.id)).scalars():
        what = ROUTE_NAMES.get(row.route, row.route)
        told.append(f"told the {what} {row.delivered_at:%Y-%m-%d %H:%M}" if row.delivered_at
                    else f"waiting to tell the {what}")
    return {"flag_id": flag.id, "restricted": True, "note": ent.note,
            "status": STATUS_NAMES.get(flag.status, flag.status), "account": flag.account,
            "where": f"{item.platform} · {item.kind.value}",
            "flagged_at": flag.created_at.isoformat(), "told": "; ".join(told) or None}
