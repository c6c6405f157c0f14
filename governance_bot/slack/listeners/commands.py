"""``/governance status | flags | audit``: answers only the asker sees (ephemeral). The state
over every flag and the audit log are for those need to know says oversee the service
(:meth:`NeedToKnow.oversees`); anyone else hears of their own flags only."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from sqlalchemy import func, select

from governance_bot.slack.deps import Deps
from governance_bot.slack.render import headline
from governance_bot.storage import auditlog
from governance_bot.storage import models as m

__all__ = ["register"]


def register(app: App, deps: Deps) -> None:
    bot = deps.bot

    def governance(ack: Ack, command: dict[str, Any]) -> None:
        user = str(command.get("user_id", ""))
        staff = bot.staff_by_slack_id(user)
        words = str(command.get("text") or "").split()
        sub = words[0].lower() if words else "status"
        if staff is None:
            deps.decisions.refused(None, f"/governance {sub}", f"slack:{user}",
                                   "not in the staff register")
            ack(text=":no_entry: You are not in the staff register as an active member of "
                "staff.", response_type="ephemeral")
            return
        nt = deps.need_to_know()
        if sub == "status" and not nt.oversees(staff):
            # only their own flags: a count of everyone's would tell of a concern raised
            mine = bot.flags_for(staff.staff_id)
            ack(text=f"Your open flags: {len(mine)}" + (" (`/governance flags` lists them)."
                                                         if mine else "."),
                response_type="ephemeral")
        elif sub == "status":
            with bot.db.session() as session:
                counts = dict(session.execute(select(m.Flag.status, func.count(m.Flag.id))
                                              .group_by(m.Flag.status)).all())
                pending = session.execute(select(func.count(m.OutboxMessage.id)).where(
                    m.OutboxMessage.delivered_at.is_(None))).scalar_one()
                chain = auditlog.verify(session)
            lines = [f"Flags: {counts.get('open', 0)} open, {counts.get('acknowledged', 0)} "
                     f"acknowledged, {counts.get('escalated', 0)} escalated, "
                     f"{counts.get('actioned', 0)} removed, {counts.get('dismissed', 0)} kept, "
                     f"{counts.get('closed', 0)} closed.",
                     f"Notifications waiting: {pending}.",
                     "Audit log: intact." if chain.ok else f"Audit log: BROKEN ({chain.problem})"]
            ack(text="\n".join(lines), response_type="ephemeral")
        elif sub == "flags":
            lines = [f"#{f.id} {headline(e)} · {f.account} · {f.status}"
                     for f, e in bot.flags_for(staff.staff_id)]
            ack(text="\n".join(lines) or "No open flags for you.", response_type="ephemeral")
        elif sub == "audit":
            if not nt.oversees(staff):
                deps.decisions.refused(None, "/governance audit", f"slack:{user}",
                                       "does not oversee the service")
                ack(text=":no_entry: The audit log is for the administrators and the DSL (it "
                    "names every case's events).", response_type="ephemeral")
                return
            with bot.db.session() as session:
                events = list(session.execute(select(m.AuditEvent)
                                              .order_by(m.AuditEvent.seq.desc()).limit(15))
                              .scalars())
            lines = [f"{e.seq} · {e.created_at.astimezone(bot.tz):%d %b %H:%M} · {e.actor} · "
                     f"{e.action} · {e.subject or ''}" for e in events]
            ack(text="Latest audit events:\n" + "\n".join(lines), response_type="ephemeral")
        else:
            ack(text="Usage: /governance status | flags | audit", response_type="ephemeral")

    app.command("/governance")(governance)
