"""What one viewer sees of many flags at once: the console's queue and its counts, ``flags list``.

Every flag in a list is judged by need to know itself (:class:`~governance_bot.authz.NeedToKnow`),
never by a database condition alone: whom a concern is about (the item's author, staff the
finding names), who the case manager and the alternate are, which managers are left when a
subject is taken out: only ``authz`` knows. A list shows a flag as the viewer may see it: the
severity, category and route of the most severe finding they receive, and their rules only (a
manager never reads "safeguarding" in the row of a post that also holds a disclosure).

To do that for 10,000 flags per page view, the facts that never change are read and decrypted
once per process and kept (:class:`FlagLens`, bounded): a finding's route, subject and evidence
(checked against its fingerprint), an item's author (checked against its current version). The
flag's own state (status, escalation, acknowledgement) is read each time. Flags of the same
shape (the same state, author and findings but for their ids) get the same answer, so each
shape is judged once per call: need to know reads nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from governance_bot.authz import Action, Entitlement, FindingFacts, FlagFacts, NeedToKnow
from governance_bot.findings import Route
from governance_bot.items import Item, Role
from governance_bot.registers import StaffMember
from governance_bot.routing import ROUTE_PRIORITY
from governance_bot.storage import models as m

__all__ = ["FlagLens", "Listed", "Shown"]

# how many findings and items a lens keeps (about 300 bytes each)
MAX_CACHED = 200_000
CHUNK = 900  # ids per IN (...) query: below SQLite's variable limit


@dataclass(frozen=True, slots=True)
class Shown:
    """A flag as one viewer sees it in a list (shared by the flags of one shape)."""

    severity: int | None  # None: a case the operator sees only as such
    category: str | None
    route: str
    rules: tuple[str, ...] = ()
    note: str | None = None  # the operator's "a case for the DSL team" and the like

    @property
    def restricted(self) -> bool:
        return self.severity is None


@dataclass(frozen=True, slots=True)
class Listed:
    """A flag in a list: its own state, and how the viewer sees it."""

    flag_id: int
    status: str
    account: str
    assigned_to: str | None
    acknowledged: bool
    shown: Shown


@dataclass(frozen=True, slots=True)
class _Author:
    role: Role | None
    register_id: str | None
    recipients: tuple[tuple[Role | None, str | None], ...]
    platform: str | None
    kind: str | None
    # the item's text, only for the staff it names (need to know keeps a concern from them);
    # not part of a flag's shape: what it names is (``listed``)
    text: str = field(default="", compare=False, repr=False)


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _finding_shape(f: FindingFacts) -> tuple[Any, ...]:
    """What need to know reads of a finding (not its id)."""
    return (f.rule_id, f.category, f.severity, f.route, f.subject, f.register_entry,
            f.explicit_image, tuple(sorted((k, repr(v)) for k, v in f.detail.items())))


class FlagLens:
    """Need to know over many flags of one database (see the module's docstring)."""

    def __init__(self, nt: NeedToKnow | None = None):
        self.nt = nt  # the rules, unless each call gives them (the console: per request)
        # finding id -> (fingerprint, facts, shape number)
        self._findings: dict[int, tuple[str, FindingFacts, int]] = {}
        self._finding_shapes: dict[tuple[Any, ...], int] = {}
        self._authors: dict[tuple[int, int], _Author] = {}
        self._lock = threading.Lock()

    # --- facts --------------------------------------------------------------------------------
    def _read(self, session: Session, where: ColumnElement[bool]
              ) -> list[tuple[Any, list[int]]]:
        """The flags matching ``where``, newest first (their state and item version), each
        with its findings' ids, in one query; reads and keeps the findings and authors not
        known yet."""
        # booleans, not datetimes: converting 10,000 timestamps costs more than the query
        rows = session.connection().execute(select(
            m.Flag.id, m.Flag.item_id, m.Flag.account, m.Flag.status, m.Flag.route,
            m.Flag.removal, m.Flag.escalated_at.is_not(None), m.Flag.acknowledged_at.is_not(None),
            m.Flag.escalation_level, m.ItemRecord.current_version, m.Flag.assigned_to,
            m.Finding.id, m.Finding.fingerprint)
            .join(m.ItemRecord, m.ItemRecord.id == m.Flag.item_id)
            .outerjoin(m.Finding, m.Finding.flag_id == m.Flag.id).where(where)
            .order_by(m.Flag.created_at.desc(), m.Flag.id.desc(), m.Finding.id)).all()
        known = self._findings
        missing = [r[11] for r in rows
                   if r[11] is not None and (r[11] not in known or known[r[11]][0] != r[12])]
        for chunk in _chunks(missing):
            for record in session.execute(select(m.Finding).where(m.Finding.id.in_(chunk))
                                          ).scalars():
                facts = FindingFacts.from_record(record)
                shape = self._finding_shapes.setdefault(_finding_shape(facts),
                                                        len(self._finding_shapes))
                self._keep(known, record.id, (record.fingerprint, facts, shape))
        flags: list[tuple[Any, list[int]]] = []
        for row in rows:
            if not flags or flags[-1][0][0] != row[0]:
                flags.append((row, []))
            if row[11] is not None:
                flags[-1][1].append(row[11])
        self._read_authors(session, [(f[1], f[9]) for f, _ in flags
                                     if (f[1], f[9]) not in self._authors])
        return flags

    def _read_authors(self, session: Session, wanted: Sequence[tuple[int, int]]) -> None:
        """Read (and decrypt) the current version of these items, once: their authors."""
        for chunk in _chunks([item_id for item_id, _ in wanted]):
            for item_id, version, data in session.execute(
                    select(m.ItemVersion.item_id, m.ItemVersion.version, m.ItemVersion.data)
                    .join(m.ItemRecord, and_(m.ItemRecord.id == m.ItemVersion.item_id,
                                             m.ItemRecord.current_version
                                             == m.ItemVersion.version))
                    .where(m.ItemVersion.item_id.in_(chunk))).all():
                item = Item.model_validate(data)
                self._keep(self._authors, (item_id, version), _Author(
                    item.author.role, item.author.register_id,
                    tuple((p.role, p.register_id) for p in item.recipients),
                    item.platform, item.kind.value, item.text or ""))

    def _keep(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        with self._lock:
            if len(cache) >= MAX_CACHED:
                cache.clear()  # rare (a very large archive): start again rather than grow
                if cache is self._findings:
                    self._finding_shapes.clear()
            cache[key] = value

    def _facts(self, row: Any, finding_ids: list[int]) -> FlagFacts:
        (flag_id, item_id, account, status, route, removal, escalated, acknowledged, level,
         version) = row[:10]
        a = self._authors.get((item_id, version))
        return FlagFacts(
            account=account, findings=tuple(self._findings[i][1] for i in finding_ids),
            author_role=a.role if a else None, author_id=a.register_id if a else None,
            recipients=a.recipients if a else (), flag_id=flag_id, status=status,
            removal=removal, escalated=bool(escalated) or status == "escalated",
            acknowledged=bool(acknowledged), platform=a.platform if a else None,
            kind=a.kind if a else None,
            case_escalated=route == Route.case_manager.value and (level or 0) >= 1,
            text=a.text if a else "")

    # --- what a viewer sees -------------------------------------------------------------------
    def listed(self, session: Session, which: Sequence[int] | ColumnElement[bool],
               viewer: StaffMember | None, nt: NeedToKnow | None = None) -> list[Listed]:
        """The flags of ``which`` (ids, or a condition on ``flags``: one query however many
        match) that ``viewer`` may see, newest first, each as they see it. ``viewer`` None: the
        operator at the command line (:meth:`NeedToKnow.for_operator`). ``nt``: the rules of
        the registers now (after a reload), else the lens's own."""
        nt = nt or self.nt
        if nt is None:
            raise ValueError("FlagLens needs the need-to-know rules")
        where = m.Flag.id.in_(list(which)) if isinstance(which, Sequence) else which
        out: list[Listed] = []
        judged: dict[tuple[Any, ...], Shown | None] = {}
        findings, authors = self._findings, self._authors
        case_route = Route.case_manager.value
        for row, ids in self._read(session, where):
            # the flag's shape: its state, its item's author and its findings' shapes
            author = authors.get((row[1], row[9]))
            shape = (row[2], row[3], row[5], bool(row[6]), bool(row[7]),
                     row[4] == case_route and (row[8] or 0) >= 1, author,
                     nt.staff_mentioned(author.text) if author else frozenset(),
                     tuple(findings[i][2] for i in ids))
            if shape not in judged:
                judged[shape] = self._judge(nt, self._facts(row, ids), viewer)
            seen = judged[shape]
            if seen is not None:
                out.append(Listed(row[0], row[3], row[2], row[10], bool(row[7]), seen))
        return out

    def shown(self, session: Session, which: Sequence[int] | ColumnElement[bool],
              viewer: StaffMember | None, nt: NeedToKnow | None = None) -> dict[int, Shown]:
        """:meth:`listed`, by flag id."""
        return {x.flag_id: x.shown for x in self.listed(session, which, viewer, nt)}

    @staticmethod
    def _judge(nt: NeedToKnow, facts: FlagFacts, viewer: StaffMember | None) -> Shown | None:
        """The flag as ``viewer`` sees it, or None: it does not exist for them."""
        ent: Entitlement
        if viewer is None:
            ent = nt.for_operator(facts)
            if not ent.findings:
                return Shown(None, None, _case_route(facts), (), ent.note) if ent.note else None
        else:
            ent = nt.entitlement(viewer, facts)
            if not ent.receives or Action.view_case not in ent.actions:
                return None
        top = max(ent.findings, key=lambda f: (int(f.severity), ROUTE_PRIORITY[f.route]))
        return Shown(int(top.severity), top.category.value, top.route.value,
                     tuple(sorted({f.rule_id for f in ent.findings})), ent.note)


def _case_route(facts: FlagFacts) -> str:
    routes = [f.route for f in facts.findings]
    return max(routes, key=lambda r: ROUTE_PRIORITY[r]).value if routes else Route.dsl.value
