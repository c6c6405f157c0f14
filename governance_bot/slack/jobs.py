"""Scheduled Slack jobs: escalation of unacknowledged safeguarding flags, and the daily digest.

Escalation (policy: the DSL and deputies receive safeguarding concerns at once; an
unacknowledged concern escalates): a safeguarding flag not acknowledged within
``[slack] escalation_minutes`` for its severity (15 for severity 5, 60 for 4 by default)

* level 1, after one period: re-notifies the DSL and deputies in the flag's thread and sends the
  flag to each deputy (and whoever the out-of-hours rota has on call) directly;
* level 2, after two periods: sends it to the next contacts (``[slack] escalate_to``).

Both jobs take the time from an injectable clock, so tests drive them minute by minute.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, time, timedelta

from sqlalchemy import select

from governance_bot.config import Config, _parse_span
from governance_bot.findings import Route
from governance_bot.flags import FlagStatus
from governance_bot.outbox import recipients_for
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
        done: list[tuple[int, int]] = []
        with self.bot.db.session() as session:
            flags = list(session.execute(select(m.Flag).where(
                m.Flag.route == Route.dsl.value, m.Flag.acknowledged_at.is_(None),
                m.Flag.status.in_([FlagStatus.open.value, FlagStatus.escalated.value]),
                m.Flag.escalation_level < 2)).scalars())
            ids = [(f.id, f.severity, f.created_at, f.escalation_level) for f in flags]
        for flag_id, severity, created, level in ids:
            period = minutes.get(severity)
            if not period:
                continue
            due = min(2, int((now - created) / timedelta(minutes=period)))
            while level < due:
                level += 1
                try:
                    self._escalate(flag_id, level, period * level, now)
                except Exception:
                    log.exception("escalation of flag #%d to level %d failed; will retry",
                                  flag_id, level)
                    break
                done.append((flag_id, level))
        return done

    def _escalate(self, flag_id: int, level: int, after_minutes: int, now: datetime) -> None:
        bot = self.bot
        regs = bot.registers
        contacts = regs.safeguarding_contacts()
        if level == 1:
            targets = [s for s in contacts if s.role.value == "deputy_dsl"]
            targets += [s for s in self._people(on_call(bot.config, now))
                        if s not in targets]
            what = (f"not acknowledged after {after_minutes} minutes: re-notified the DSL and "
                    f"deputies ({', '.join(s.name for s in targets) or 'none registered'})")
        else:
            targets = self._people(bot.settings.escalate_to)
            targets += [s for s in self._people(on_call(bot.config, now)) if s not in targets]
            what = (f"not acknowledged after {after_minutes} minutes: escalated to the next "
                    f"contact ({', '.join(s.name for s in targets) or 'none configured'})")
        with bot.db.session() as session:
            flag = session.get(m.Flag, flag_id)
            assert flag is not None
            if flag.acknowledged_at is not None or flag.escalation_level >= level:
                return
            if level == 1:
                mentions = " ".join(f"<@{s.slack_user_id}>" for s in contacts if s.slack_user_id)
                for row in session.execute(select(m.FlagMessage).where(
                        m.FlagMessage.flag_id == flag_id, m.FlagMessage.sink == SINK,
                        m.FlagMessage.route == Route.dsl.value)).scalars():
                    bot.client.chat_postMessage(
                        channel=row.channel, thread_ts=row.thread_ts or row.ts,
                        reply_broadcast=True,
                        text=f":alarm_clock: {mentions} flag #{flag_id} (severity "
                             f"{flag.severity}) is still not acknowledged after "
                             f"{after_minutes} minutes.")
            reached = [p for p in targets if p.slack_user_id]
            if reached:  # committed before anything is posted (and before this session writes)
                bot.note_direct_post(flag_id)
            for person in reached:
                bot.show(session, flag_id, Route.dsl, bot.open_conversation([person]))
            flag.escalation_level = level
            session.add(m.FlagDecision(flag_id=flag_id, action="escalation",
                                       staff_id="governance-bot", reason=what,
                                       data={"level": level,
                                             "to": [s.staff_id for s in targets]},
                                       created_at=now))
            auditlog.append(session, "governance-bot", "flag.escalated_unacknowledged",
                            f"flag:{flag_id}", {"level": level, "after_minutes": after_minutes,
                                                "to": [s.staff_id for s in targets]}, at=now)
        bot.refresh(flag_id)


class DigestJob:
    """Low-severity flags, once a day, one message per account to its managers."""

    def __init__(self, bot: SlackBot, clock: Callable[[], datetime] | None = None):
        self.bot = bot
        self._clock = clock

    def clock(self) -> datetime:
        return (self._clock or self.bot.clock)()

    def run(self) -> int:
        """Send the digest of everything waiting. Returns the number of flags sent."""
        bot = self.bot
        now = self.clock()
        sent = 0
        with bot.db.session() as session:
            entries = list(session.execute(select(m.DigestEntry).where(
                m.DigestEntry.sent_at.is_(None)).order_by(m.DigestEntry.id)).scalars())
            by_account: dict[str, list[m.DigestEntry]] = defaultdict(list)
            for e in entries:
                by_account[e.account].append(e)
        for account, rows in sorted(by_account.items()):
            people = recipients_for(Route.digest, account, bot.registers)
            try:
                channel = bot.destination(Route.digest, people)
            except Exception as exc:
                log.warning("digest for %s not sent: %s", account, exc)
                continue
            lines = []
            with bot.db.session() as session:
                for e in rows:
                    flag, findings, item, _ = bot.load(session, e.flag_id)
                    reason = findings[0].explanation if findings else ""
                    if bot.config.delivery.mask_learner_details:
                        reason = mask_learners(reason, bot.registers)
                    lines.append(
                        f"• #{flag.id} {CATEGORY_NAMES.get(flag.category, flag.category)} · "
                        f"severity {flag.severity} · {item.platform} · "
                        f"{item.created_at.astimezone(bot.tz):%d %b %H:%M} · {reason}")
            text = (f"Daily digest for {account}: {len(rows)} low-severity flag(s)\n"
                    + "\n".join(lines))
            bot.client.chat_postMessage(channel=channel, text=text[:3900], blocks=[
                {"type": "header", "text": {"type": "plain_text",
                                            "text": f"Daily digest: {account}"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}])
            with bot.db.session() as session:
                for e in rows:
                    row = session.get(m.DigestEntry, e.id)
                    if row is not None:
                        row.sent_at = now
                auditlog.append(session, "governance-bot", "digest.sent", f"account:{account}",
                                {"flags": [e.flag_id for e in rows]}, at=now)
            sent += len(rows)
        return sent

    def run_time(self) -> time:
        return time.fromisoformat(self.bot.settings.digest_time)
