"""Scheduled Slack jobs: escalation of unacknowledged flags, the daily digest and the case
manager's weekly summary.

Escalation (policy: the DSL and deputies receive safeguarding concerns at once; an
unacknowledged concern escalates): a safeguarding flag not acknowledged within
``[slack] escalation_minutes`` for its severity (15 for severity 5, 60 for 4 by default)

* level 1, after one period: re-notifies the DSL and deputies in the flag's thread and sends the
  flag to each deputy (and whoever the out-of-hours rota has on call) directly;
* level 2, after two periods: sends it to the next contacts (``[slack] escalate_to``).

A concern about a member of staff on the case manager's route (severity 3-5: a possible
allegation, KCSIE part 4, which asks that allegations are handled promptly) not acknowledged
within ``[slack] staff_concern_escalation_minutes`` for its severity (60 for 5, 240 for 4, one
day for 3 by default) escalates once: the case manager is reminded in their message, and the
flag is sent to the alternate (``[routing] staff_concerns_alternate``, else the chair of
governors, else the headteacher), never to a member of staff the concern is about, nor to the
deputies or the rota (a concern about staff stays with its case manager and alternate).

Both jobs take the time from an injectable clock, so tests drive them minute by minute.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance_bot.authz import Action, Entitlement, FlagFacts
from governance_bot.config import Config, _parse_span
from governance_bot.findings import Category, Route
from governance_bot.flags import FlagStatus
from governance_bot.items import Item
from governance_bot.registers import StaffMember
from governance_bot.slack.bot import SINK, SlackBot
from governance_bot.slack.render import CATEGORY_NAMES, mask_learners
from governance_bot.storage import auditlog
from governance_bot.storage import models as m

__all__ = ["DigestJob", "EscalationJob", "on_call"]

log = logging.getLogger(__name__)
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def on_call(config: Config, now: datetime) -> list[str]:
    """staff_ids the out-of-hours rota has on call at ``now`` (organisation's local time)."""
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(config.organisation.timezone))
    day = _DAYS[local.weekday()]
    out: list[str] = []
    for entry in config.slack.rota:
        start, end = _parse_span(entry.hours)
        if day in entry.days and start <= local.time().replace(tzinfo=None) <= end:
            out.extend(s for s in entry.staff if s not in out)
    return out


class EscalationJob:
    def __init__(self, bot: SlackBot, clock: Callable[[], datetime] | None = None):
        self.bot = bot
        self._clock = clock

    def clock(self) -> datetime:
        return (self._clock or self.bot.clock)()

    def _people(self, ids: list[str]) -> list[StaffMember]:
        regs = self.bot.registers
        return [regs.staff[i] for i in ids if i in regs.staff and regs.staff[i].active]

    def run(self) -> list[tuple[int, int]]:
        """Escalate what is due now. Returns (flag id, new level) for each escalation."""
        now = self.clock()
        minutes = {int(k): v for k, v in self.bot.settings.escalation_minutes.items()}
        staff_minutes = {int(k): v for k, v in
                         self.bot.settings.staff_concern_escalation_minutes.items()}
        done: list[tuple[int, int]] = []
        with self.bot.db.session() as session:
            flags = list(session.execute(select(m.Flag).where(
                m.Flag.route.in_([Route.dsl.value, Route.case_manager.value]),
                m.Flag.acknowledged_at.is_(None),
                m.Flag.status.in_([FlagStatus.open.value, FlagStatus.escalated.value]),
                m.Flag.escalation_level < 2)).scalars())
            ids = [(f.id, f.route, f.severity, f.created_at, f.escalation_level) for f in flags]
        for flag_id, route, severity, created, level in ids:
            staff_concern = route == Route.case_manager.value
            period = (staff_minutes if staff_concern else minutes).get(severity)
            if not period:
                continue
            # a concern about staff escalates once (to the alternate); safeguarding twice
            due = min(1 if staff_concern else 2, int((now - created) / timedelta(minutes=period)))
            while level < due:
                level += 1
                try:
                    if staff_concern:
                        self._escalate_staff_concern(flag_id, period, now)
                    else:
                        self._escalate(flag_id, level, period * level, now)
                except Exception:
                    log.exception("escalation of flag #%d to level %d failed; will retry",
                                  flag_id, level)
                    break
                done.append((flag_id, level))
        return done

    def _escalate_staff_concern(self, flag_id: int, after_minutes: int, now: datetime) -> None:
        """Remind the case manager and send the flag to the alternate (need to know decides
        who that is, never anyone the concern is about, and what they see of it)."""
        bot = self.bot
        nt = bot.need_to_know()

        def plan(session: Session, flag: m.Flag) -> _Escalation:
            _, findings, item, _ = bot.load(session, flag_id)
            facts = FlagFacts.from_records(flag, findings, item)
            audience = nt.audience(facts)
            concerns = [f for f in facts.findings if f.route == Route.case_manager]
            about = set().union(*(nt.subjects(f, facts) for f in concerns)) if concerns else set()
            targets = [s for s in nt.alternates()
                       if s.staff_id not in about and s.staff_id not in audience]
            names = ", ".join(s.name for s in targets)
            what = (f"not acknowledged after {after_minutes} minutes: sent to the alternate "
                    f"({names})" if targets else
                    f"not acknowledged after {after_minutes} minutes: the case manager was "
                    "reminded (no alternate who is not involved is registered)")
            handlers = [e.staff for e in audience.values()
                        if e.routes & {Route.case_manager}]
            return _Escalation(targets, what, remind=handlers,
                               about="a concern about a member of staff, ")

        self._escalate_flag(flag_id, 1, after_minutes, now, Route.case_manager, plan)

    def _escalate(self, flag_id: int, level: int, after_minutes: int, now: datetime) -> None:
        """Level 1: remind the DSL and deputies in the flag's threads and send it to each deputy
        and whoever the rota has on call; level 2: send it to the next contacts. Never to anyone
        need to know does not let read it (a deputy its text names...): not even a message
        saying there is a flag they may not see."""
        bot = self.bot
        nt = bot.need_to_know()

        def plan(session: Session, flag: m.Flag) -> _Escalation:
            contacts = bot.registers.safeguarding_contacts()
            if level == 1:
                targets = [s for s in contacts if s.role.value == "deputy_dsl"]
                targets += [s for s in self._people(on_call(bot.config, now))
                            if s not in targets]
            else:
                targets = self._people(bot.settings.escalate_to)
                targets += [s for s in self._people(on_call(bot.config, now))
                            if s not in targets]
            facts = FlagFacts.from_records(*bot.load(session, flag_id)[:3])
            targets = [s for s in targets
                       if nt.for_reader(s.staff_id, facts, Route.dsl).receives]
            names = ", ".join(s.name for s in targets)
            if level == 1:
                contacts = [s for s in contacts
                            if nt.for_reader(s.staff_id, facts, Route.dsl).receives]
                what = (f"not acknowledged after {after_minutes} minutes: re-notified the DSL "
                        f"and deputies ({names or 'none registered'})")
                return _Escalation(targets, what, remind=contacts)
            what = (f"not acknowledged after {after_minutes} minutes: escalated to the next "
                    f"contact ({names or 'none configured'})")
            return _Escalation(targets, what)

        self._escalate_flag(flag_id, level, after_minutes, now, Route.dsl, plan)

    def _escalate_flag(self, flag_id: int, level: int, after_minutes: int, now: datetime,
                       route: Route, plan: Callable[[Session, m.Flag], _Escalation]) -> None:
        """Escalate the flag to ``level`` on ``route`` unless it was acknowledged or escalated
        meanwhile, in one transaction: ``plan`` says to whom and why; the people it names to
        remind are mentioned in a reply in the thread of each of the flag's messages on
        ``route``; each target with a Slack id gets the flag directly; the escalation is
        recorded (a decision and an audit event). The flag's messages are refreshed after."""
        bot = self.bot
        with bot.db.session() as session:
            flag = session.get(m.Flag, flag_id)
            assert flag is not None
            if flag.acknowledged_at is not None or flag.escalation_level >= level:
                return
            escalation = plan(session, flag)
            if escalation.remind is not None:
                mentions = " ".join(f"<@{s.slack_user_id}>" for s in escalation.remind
                                    if s.slack_user_id)
                for row in session.execute(select(m.FlagMessage).where(
                        m.FlagMessage.flag_id == flag_id, m.FlagMessage.sink == SINK,
                        m.FlagMessage.route == route.value)).scalars():
                    bot.client.chat_postMessage(
                        channel=row.channel, thread_ts=row.thread_ts or row.ts,
                        reply_broadcast=True,
                        text=f":alarm_clock: {mentions} flag #{flag_id} ({escalation.about}"
                             f"severity {flag.severity}) is still not acknowledged after "
                             f"{after_minutes} minutes.")
            targets = escalation.targets
            reached = [p for p in targets if p.slack_user_id]
            if reached:  # committed before anything is posted (and before this session writes)
                bot.note_direct_post(flag_id)
            for person in reached:
                bot.show(session, flag_id, route, bot.open_conversation([person]),
                         recipient=person.staff_id)
            flag.escalation_level = level
            session.add(m.FlagDecision(flag_id=flag_id, action="escalation",
                                       staff_id="governance-bot", reason=escalation.what,
                                       data={"level": level,
                                             "to": [s.staff_id for s in targets]},
                                       created_at=now))
            auditlog.append(session, "governance-bot", "flag.escalated_unacknowledged",
                            f"flag:{flag_id}", {"level": level, "after_minutes": after_minutes,
                                                "to": [s.staff_id for s in targets]}, at=now)
        bot.refresh(flag_id)


@dataclass(slots=True)
class _Escalation:
    """One escalation of a flag: whom it is sent to directly, what the decision records, whom
    a reminder in the flag's threads mentions (None: no reminder) and what that reminder says
    the flag is, before its severity."""

    targets: list[StaffMember]
    what: str
    remind: list[StaffMember] | None = None
    about: str = ""


class DigestJob:
    """Once a day, one message per person: the account managers' digest (low-severity content
    findings only: never safeguarding, never a concern about staff) and the case manager's
    summary of low-severity staff conduct. Each flag is shown as the reader may see it (masked
    for managers), grouped by account and category with counts, with Remove and Keep buttons
    where the reader may decide. A person who already has a message about the flag (their part
    of it went to them at once) finds these findings there instead.

    The case manager's **weekly** summary (:meth:`run_weekly`, Monday at ``digest_time``) lists
    the one-to-one staff-learner conversations without a second adult (``accountability``, one
    finding per conversation per week): a flag whose findings for its reader are all
    accountability waits for it instead of the daily summary."""

    MAX_WITH_BUTTONS = 12  # Slack allows 50 blocks; the rest are listed, with a pointer

    def __init__(self, bot: SlackBot, clock: Callable[[], datetime] | None = None):
        self.bot = bot
        self._clock = clock

    def clock(self) -> datetime:
        return (self._clock or self.bot.clock)()

    def run(self) -> int:
        """Send the daily digests of everything waiting (not what waits for the weekly
        summary). Returns the number of flags sent."""
        return self._run(weekly=False)

    def run_weekly(self) -> int:
        """Send the case manager's weekly summary of conversations without a second adult.
        Returns the number of flags sent."""
        return self._run(weekly=True)

    @staticmethod
    def weekly(route: Route, findings: list[m.Finding]) -> bool:
        """Whether these findings (what one person sees of a flag) wait for the weekly
        summary: the case manager's, all accountability."""
        return (route == Route.case_digest and bool(findings)
                and all(f.category == Category.accountability.value for f in findings))

    def _run(self, weekly: bool) -> int:
        bot = self.bot
        now = self.clock()
        nt = bot.need_to_know()
        # person -> route -> [(flag, their entitlement, their findings, item)]
        per_person: dict[str, dict[Route, list[tuple[m.Flag, Entitlement, list[m.Finding],
                                                     Item]]]] = {}
        people: dict[str, StaffMember] = {}
        waiting: set[int] = set()  # flags someone still needs in the other summary
        with bot.db.session() as session:
            entries = list(session.execute(select(m.DigestEntry).where(
                m.DigestEntry.sent_at.is_(None)).order_by(m.DigestEntry.id)).scalars())
            # a group DM's row names each of its members (comma-separated)
            messaged = {(r.flag_id, who) for r in session.execute(
                select(m.FlagMessage).where(m.FlagMessage.flag_id.in_(
                    {e.flag_id for e in entries}))).scalars()
                for who in (r.recipient or "").split(",")} if entries else set()
            for e in entries:
                flag, findings, item, _ = bot.load(session, e.flag_id)
                facts = FlagFacts.from_records(flag, findings, item)
                route = Route(e.route)
                for ent in nt.audience(facts).values():
                    if route not in ent.routes or ent.immediate:
                        continue
                    if (flag.id, ent.staff_id) in messaged or flag.status in (
                            "actioned", "dismissed", "closed"):
                        continue
                    mine = [f for f in findings if str(f.id) in ent.finding_keys]
                    if self.weekly(route, mine) != weekly:
                        waiting.add(flag.id)
                        continue  # the other summary's
                    people[ent.staff_id] = ent.staff
                    per_person.setdefault(ent.staff_id, {}).setdefault(route, []).append(
                        (flag, ent, mine, item))
                session.expunge_all()  # read once; shown after this transaction
        # people whose digest is the same (the same flags, seen the same way) share one message
        # in their group DM, as their alerts do
        shared: dict[tuple[Route, tuple[tuple[int, frozenset[str], str], ...]],
                     list[str]] = defaultdict(list)
        for staff_id, routes in sorted(per_person.items()):
            for route, rows in routes.items():
                key = tuple((f.id, e.finding_keys, e.detail.value) for f, e, _, _ in rows)
                shared[(route, key)].append(staff_id)
        sent_flags: set[int] = set()
        for (route, _), staff_ids in shared.items():
            rows = per_person[staff_ids[0]][route]
            group = [people[s] for s in staff_ids]
            try:
                channel = (bot.destination(route, group) if bot.settings.delivery == "channel"
                           else bot.open_conversation(group))
                text, blocks = self.render(route, rows, weekly=weekly)
                bot.client.chat_postMessage(channel=channel, text=text[:3900], blocks=blocks)
            except Exception as exc:  # the entries stay unsent: the next run tries again
                log.warning("digest for %s not sent: %s", ",".join(staff_ids),
                            type(exc).__name__)
                continue
            sent_flags.update(flag.id for flag, *_ in rows)
        wanted = {f.id for routes in per_person.values() for rows in routes.values()
                  for f, *_ in rows} | waiting
        with bot.db.session() as session:
            for e in entries:
                row = session.get(m.DigestEntry, e.id)
                # sent, or nobody needs it any more (decided, or shown in their message); what
                # waits for the other summary stays
                if row is not None and (e.flag_id in sent_flags or e.flag_id not in wanted):
                    row.sent_at = now
            if sent_flags:
                auditlog.append(session, "governance-bot",
                                "digest.weekly_sent" if weekly else "digest.sent", None,
                                {"flags": sorted(sent_flags),
                                 "people": sorted(per_person)}, at=now)
        return len(sent_flags)

    def render(self, route: Route, rows: list[tuple[m.Flag, Entitlement, list[m.Finding], Item]],
               weekly: bool = False) -> tuple[str, list[dict[str, Any]]]:
        """One digest message: grouped by account, then category, counted; a line and buttons
        per flag (as many as fit), readable on a phone."""
        bot = self.bot
        mask = bot.config.delivery.mask_learner_details
        title = ("Staff conduct: weekly summary of conversations without a second adult"
                 if weekly else "Daily digest" if route == Route.digest
                 else "Staff conduct: daily summary for the case manager")
        groups: dict[tuple[str, str], list[tuple[m.Flag, Entitlement, list[m.Finding], Item]]]
        groups = defaultdict(list)
        for row in rows:
            top = max(row[2], key=lambda f: f.severity) if row[2] else None
            groups[(row[0].account, top.category if top else row[0].category)].append(row)
        text = f"{title}: {len(rows)} flag(s)"
        blocks: list[Block] = [HeaderBlock(text=title[:150]),
                               ContextBlock(elements=[MarkdownTextObject(text=(
                                   f"{len(rows)} flag(s), low severity. "
                                   + ("Learner details are masked." if mask and route ==
                                      Route.digest else "")))])]
        shown = 0
        for (account, category), items in sorted(groups.items()):
            name = CATEGORY_NAMES.get(category, category)
            blocks.append(SectionBlock(text=MarkdownTextObject(
                text=f"*{account} · {name}* ({len(items)})")))
            for flag, ent, findings, item in items:
                reason = findings[0].explanation if findings else ""
                if mask and not ent.child_identity:
                    reason = mask_learners(reason, bot.registers)
                when = item.created_at.astimezone(bot.tz).strftime("%d %b %H:%M")
                line = f"#{flag.id} · {item.platform} · {when} · {reason}"[:600]
                text += f"\n• {line}"
                if shown < self.MAX_WITH_BUTTONS:
                    blocks.append(SectionBlock(text=MarkdownTextObject(text=line)))
                    buttons = [ButtonElement(action_id=aid, text=label, value=str(flag.id),
                                             style=style)
                               for action, aid, label, style in (
                                   (Action.remove, "gb_remove", "Remove", "danger"),
                                   (Action.keep, "gb_keep", "Keep", None))
                               if action in ent.actions]
                    url = bot.case_url(flag.id)
                    if buttons:
                        blocks.append(ActionsBlock(block_id=f"gb_digest_{flag.id}",
                                                   elements=buttons))
                    elif url:
                        blocks.append(ContextBlock(elements=[MarkdownTextObject(
                            text=f"<{url}|Open the case>")]))
                    shown += 1
        if shown < len(rows):
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=(
                f"{len(rows) - shown} more: see your App Home or the console."))]))
        return text, [b.to_dict() for b in blocks[:50]]

    def run_time(self) -> time:
        return time.fromisoformat(self.bot.settings.digest_time)

    def weekly_day(self) -> str:
        """The day of the weekly summary (apscheduler's name: "mon")."""
        return self.bot.settings.weekly_summary_day[:3]
