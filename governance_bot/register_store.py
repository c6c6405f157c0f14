"""Registers in the database: idempotent import (from TOML or CSV) and loading for detection.

Every change is written to the audit log with who made it and what changed (field names and
record ids only: the audit log carries no learner details).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance_bot.registers import Account, Learner, Registers, StaffMember
from governance_bot.storage import auditlog
from governance_bot.storage import models as m

__all__ = ["ImportSummary", "import_registers", "load_registers"]

_KINDS: dict[str, tuple[type[Any], str, type[Any]]] = {
    "staff": (m.Staff, "staff_id", StaffMember),
    "learners": (m.Learner, "learner_id", Learner),
    "accounts": (m.Account, "account_id", Account),
}


@dataclass(slots=True)
class ImportSummary:
    added: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        parts = []
        for kind in _KINDS:
            if kind in self.added or kind in self.updated or kind in self.unchanged:
                parts.append(f"{kind}: {self.added.get(kind, 0)} added, "
                             f"{self.updated.get(kind, 0)} updated, "
                             f"{self.unchanged.get(kind, 0)} unchanged")
        return "; ".join(parts) or "nothing to import"

    @property
    def changed(self) -> bool:
        return any(self.added.values()) or any(self.updated.values())


def import_registers(session: Session, kinds: Mapping[str, Sequence[Any]], actor: str,
                     source: str) -> ImportSummary:
    """Insert or update the given records; re-importing the same data changes nothing."""
    summary = ImportSummary()
    for kind, records in kinds.items():
        table, key_name, _model = _KINDS[kind]
        summary.added[kind] = summary.updated[kind] = summary.unchanged[kind] = 0
        for record in records:
            data = record.model_dump(mode="json")
            key = data[key_name]
            row = session.get(table, key)
            if row is None:
                session.add(table(**{key_name: key, "data": data}))
                summary.added[kind] += 1
                auditlog.append(session, actor, f"register.{kind}.added", f"{kind}:{key}",
                                {"source": source})
            elif row.data != data:
                changed = sorted(k for k in set(data) | set(row.data)
                                 if data.get(k) != row.data.get(k))
                row.data = data
                summary.updated[kind] += 1
                auditlog.append(session, actor, f"register.{kind}.updated", f"{kind}:{key}",
                                {"source": source, "fields": changed})
            else:
                summary.unchanged[kind] += 1
    session.flush()
    return summary


def load_registers(session: Session) -> Registers:
    return Registers(
        staff=[StaffMember.model_validate(r) for r in
               session.execute(select(m.Staff.data).order_by(m.Staff.staff_id)).scalars()],
        learners=[Learner.model_validate(r) for r in
                  session.execute(select(m.Learner.data).order_by(m.Learner.learner_id)).scalars()],
        accounts=[Account.model_validate(r) for r in
                  session.execute(select(m.Account.data).order_by(m.Account.account_id)).scalars()],
    )
