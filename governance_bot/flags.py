"""Findings become flags: one flag per item, deduplicated by finding fingerprint across re-scans.

A new flag (or new findings that add a route to an existing one) writes its outbox rows in the
same transaction, so a notification is never lost and never invented.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance_bot.data_protection import apply_automatic_hold
from governance_bot.findings import Finding, Route
from governance_bot.routing import ROUTE_PRIORITY
from governance_bot.storage import auditlog
from governance_bot.storage import models as m

__all__ = ["FlagChange", "FlagStatus", "record_findings"]


class FlagStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    actioned = "actioned"
    dismissed = "dismissed"
    escalated = "escalated"
    closed = "closed"


@dataclass(slots=True)
class FlagChange:
    flag: m.Flag
    created: bool
    new_findings: list[Finding] = field(default_factory=list)
    new_routes: list[Route] = field(default_factory=list)


def _strongest(findings: list[Finding]) -> Finding:
    return max(findings, key=lambda f: (int(f.severity), ROUTE_PRIORITY[f.route or Route.digest]))


def record_findings(session: Session, record: m.ItemRecord, findings: list[Finding],
                    actor: str = "governance-bot", now: datetime | None = None
                    ) -> FlagChange | None:
    """Store new findings for an archived item, creating or updating its flag and outbox rows.

    Findings must already carry their route (the detection engine sets it).
    """
    if not findings:
        return None
    now = now or datetime.now(UTC)
    unique: dict[str, Finding] = {}
    for f in findings:
        unique.setdefault(f.fingerprint, f)
    known = set(session.execute(
        select(m.Finding.fingerprint).where(m.Finding.fingerprint.in_(list(unique)))
    ).scalars())
    new = [f for fp, f in unique.items() if fp not in known]
    if not new:
        return None
    flag = session.execute(select(m.Flag).where(m.Flag.item_id == record.id)).scalar_one_or_none()
    created = flag is None
    routes_before: set[str] = set()
    top = _strongest(new)
    top_route = top.route or Route.digest
    if flag is None:
        flag = m.Flag(item_id=record.id, account=record.account, thread_key=record.thread_key,
                      category=top.category.value, severity=int(top.severity),
                      route=top_route.value, status=FlagStatus.open.value,
                      created_at=now, updated_at=now, item_created_at=record.created_at)
        session.add(flag)
        session.flush()
    else:
        routes_before = set(session.execute(
            select(m.Finding.route).where(m.Finding.flag_id == flag.id)).scalars())
        if int(top.severity) > flag.severity:
            flag.severity, flag.category = int(top.severity), top.category.value
        if ROUTE_PRIORITY[top_route] > ROUTE_PRIORITY[Route(flag.route)]:
            flag.route = top_route.value
        flag.updated_at = now
    for f in new:
        session.add(m.Finding(
            flag_id=flag.id, item_id=record.id, fingerprint=f.fingerprint, rule_id=f.rule_id,
            category=f.category.value, severity=int(f.severity), score=float(f.score),
            route=(f.route or Route.digest).value, subject=f.subject,
            evidence=f.evidence.to_dict(), explanation=f.explanation,
            item_created_at=record.created_at, created_at=now,
        ))
    new_routes = sorted(
        {(f.route or Route.digest) for f in new} - {Route(r) for r in routes_before}
        - {Route.record_only},
        key=lambda r: -ROUTE_PRIORITY[r],
    )
    for route in new_routes:
        session.add(m.OutboxMessage(
            flag_id=flag.id, kind="flag_created" if created else "flag_updated",
            route=route.value, payload={"flag_id": flag.id}, created_at=now, available_at=now,
        ))
    data: dict[str, Any] = {
        "item": record.key,
        "findings": [{"rule_id": f.rule_id, "category": f.category.value,
                      "severity": int(f.severity), "route": (f.route or Route.digest).value}
                     for f in new],
    }
    auditlog.append(session, actor, "flag.created" if created else "flag.updated",
                    f"flag:{flag.id}", data, at=now)
    apply_automatic_hold(session, flag, new, actor, now)  # safeguarding 4-5: legal hold
    session.flush()
    return FlagChange(flag, created, new, list(new_routes))
