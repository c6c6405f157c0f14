"""Search of the archive's flags by learner, member of staff, account, text and date.

Only flags the viewer may see are searched, and text is matched against what the viewer would be
shown: a manager searching for a learner's name finds nothing (names are masked for them), and a
concern about the person searching is never a hit. Safeguarding content is searched by the DSL
and deputies only (it is outside everyone else's scope).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import and_, or_, select

from governance_bot.console import access as authz_view
from governance_bot.console.cases import Case, load_case
from governance_bot.items import Item
from governance_bot.storage import models as m

__all__ = ["Hit", "SearchQuery", "run_search"]

MAX_CANDIDATES = 5000
MAX_HITS = 50


@dataclass(slots=True)
class SearchQuery:
    text: str = ""
    learner: str = ""
    staff: str = ""
    account: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_params(cls, params: Any) -> SearchQuery:
        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(params[name]) if params.get(name) else None
            except ValueError:
                return None

        return cls(text=(params.get("q") or "").strip()[:200],
                   learner=(params.get("learner") or "").strip()[:100],
                   staff=(params.get("staff") or "").strip()[:100],
                   account=(params.get("account") or "").strip()[:128],
                   since=day("from"), until=day("to"))

    @property
    def asked(self) -> bool:
        return bool(self.text or self.learner or self.staff or self.account or self.since
                    or self.until)

    def fields_used(self) -> list[str]:
        # the audit log records which fields were searched, never what was typed (a name)
        return [k for k in ("text", "learner", "staff", "account", "since", "until")
                if getattr(self, k)]


@dataclass(slots=True)
class Hit:
    case: Case
    snippet: str


def _ids(registers: Any, needle: str, kind: str) -> list[str]:
    low = needle.casefold()
    if kind == "learner":
        return [lr.learner_id for lr in registers.learners.values()
                if low in (lr.learner_id.casefold(), lr.full_name.casefold(),
                           (lr.preferred_name or "").casefold())
                or low in lr.full_name.casefold()]
    return [s.staff_id for s in registers.staff.values()
            if low == s.staff_id.casefold() or low in s.name.casefold()]


def run_search(console: Any, viewer: authz_view.Viewer, q: SearchQuery) -> list[Hit]:
    registers = console.registers()
    conditions = [authz_view.queue_scope(viewer)]
    if q.account:
        conditions.append(m.Flag.account == q.account)
    if q.since:
        conditions.append(m.Flag.item_created_at >= datetime.combine(q.since, time.min, UTC))
    if q.until:
        conditions.append(m.Flag.item_created_at <= datetime.combine(q.until, time.max, UTC))
    for needle, kind in ((q.learner, "learner"), (q.staff, "staff")):
        if not needle:
            continue
        if kind == "learner" and not viewer.safeguarding:
            return []  # learners' identities are the DSL's to search (need to know)
        people = _ids(registers, needle, kind)
        if not people:
            return []
        prefix = "learner" if kind == "learner" else "staff"
        about = or_(*[or_(m.Finding.subject == f"{prefix}:{i}",
                          m.Finding.subject.like(f"%{prefix}:{i}>%"),
                          m.Finding.subject.like(f"%>{prefix}:{i}")) for i in people])
        conditions.append(m.Flag.id.in_(select(m.Finding.flag_id).where(about)))
    access = console.access(viewer)
    hits: list[Hit] = []
    with console.db.session() as session:
        candidates = list(session.execute(select(m.Flag.id).where(and_(*conditions))
                                   .order_by(m.Flag.created_at.desc())
                                   .limit(MAX_CANDIDATES)).scalars())
        for flag_id in candidates:
            if len(hits) >= MAX_HITS:
                break
            if q.text and viewer.safeguarding:
                # the DSL's text search reads the item itself before building the case
                row = session.execute(
                    select(m.ItemVersion.data).join(m.Flag, m.Flag.item_id ==
                                                    m.ItemVersion.item_id)
                    .where(m.Flag.id == flag_id).order_by(m.ItemVersion.version.desc())
                    .limit(1)).scalar_one_or_none()
                if row is None or q.text.casefold() not in Item.model_validate(
                        row).text.casefold():
                    continue
            case = load_case(session, flag_id, config=console.config, registers=registers,
                             access=access)
            if case is None:
                continue
            if q.text and q.text.casefold() not in case.text.casefold():
                continue
            hits.append(Hit(case, _snippet(case.text, q.text)))
    return hits


def _snippet(text: str, needle: str, width: int = 90) -> str:
    at = text.casefold().find(needle.casefold()) if needle else 0
    at = max(at, 0)
    start, end = max(0, at - width), min(len(text), at + len(needle) + width)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
