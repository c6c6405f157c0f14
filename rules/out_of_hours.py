"""``out_of_hours``: staff messaging learners outside normal office hours.

Policy duty: "staff avoid contacting learners outside normal office hours" (P1 "What we expect of
our staff"; P2 "Communicating with students"). A staff member's message to a learner sent outside
the configured working hours (per weekday, in the organisation's time zone, closed on UK bank
holidays of the configured nation, on closures and, if configured, outside term) is a low-severity
finding for the digest; repeated out-of-hours contact by one staff member with one learner inside
a window is a high-severity finding for the Designated Safeguarding Lead.

Learner-initiated messages are not staff breaches; a staff member's reply out of hours is.
The explanation names the local time and why it is out of hours, never the message text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import holidays

from governance_bot.findings import Category, Evidence, Finding, Route, Severity
from governance_bot.items import Item, ItemKind, Person, Role
from rules.base import DetectionContext, DetectorBase
from rules.packs import OUT_OF_HOURS_DUTY, OutOfHoursMessages, OutOfHoursPack

if TYPE_CHECKING:
    from governance_bot.config import Config, Period, WorkingHoursSettings

__all__ = [
    "OfficeHours",
    "OutOfHoursDetector",
    "OutOfHoursReason",
    "addressed_learners",
    "ordinal",
]

# English names whatever the machine's locale (strftime's %A and %B follow the locale)
_DEFAULT_KINDS = tuple(k.value for k in OutOfHoursMessages().kinds)  # the pack model's
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
                "September", "October", "November", "December")


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def addressed_learners(item: Item, ctx: DetectionContext) -> list[Person]:
    """The learners ``item`` is addressed to: its learner recipients or, when it names no
    recipients (a comment or reply), the learner whose post or message it answers."""
    learners = [p for p in item.recipients if p.role == Role.learner and p.register_id]
    if learners or item.recipients or not item.parent_id:
        return learners
    for earlier in ctx.history.thread(item):
        if earlier.id == item.parent_id:
            author = earlier.author
            if author.role is None:
                author = ctx.registers.resolve_person(author, earlier.account)
            if author.role == Role.learner and author.register_id:
                return [author]
            break
    return []


@dataclass(frozen=True, slots=True)
class OutOfHoursReason:
    """Why a moment is outside office hours, in words a DSL can read."""

    local: datetime
    reason: str  # "outside working hours (08:00-18:00)", "Easter Monday (bank holiday)"...
    code: str  # after_hours | closed_day | bank_holiday | closure | outside_term

    @property
    def weekday(self) -> str:
        return _WEEKDAY_NAMES[self.local.weekday()]

    @property
    def when(self) -> str:
        """e.g. "22:30 on a Tuesday (10 March 2026, GMT)"."""
        month = _MONTH_NAMES[self.local.month - 1]
        return (
            f"{self.local:%H:%M} on a {self.weekday} "
            f"({self.local.day} {month} {self.local.year}, {self.local.tzname()})"
        )


def _in_periods(day: date, periods: Sequence[Period]) -> Period | None:
    for period in periods:
        if period.start <= day <= period.end:
            return period
    return None


class OfficeHours:
    """The organisation's working hours: weekday spans, bank holidays, closures and terms.

    A moment is inside working hours when its weekday has a span and ``start <= time < end``
    in the organisation's time zone (so "08:00-18:00" includes 08:00 and 17:59, not 18:00).
    """

    def __init__(
        self,
        timezone: str,
        spans: Sequence[tuple[time, time] | None],
        nation: str | None = "ENG",
        term_dates: Sequence[Period] = (),
        closures: Sequence[Period] = (),
        outside_term_is_closed: bool = False,
    ):
        if len(spans) != 7:
            raise ValueError("spans: one entry per weekday, Monday first")
        self.tz = ZoneInfo(timezone)
        self.spans = tuple(spans)
        self.bank_holidays: holidays.HolidayBase | None = (
            holidays.country_holidays("GB", subdiv=nation) if nation else None
        )
        self.term_dates = tuple(term_dates)
        self.closures = tuple(closures)
        self.outside_term_is_closed = outside_term_is_closed and bool(term_dates)

    @classmethod
    def from_settings(
        cls, hours: WorkingHoursSettings, timezone: str, nation: str
    ) -> OfficeHours:
        return cls(
            timezone=timezone,
            spans=[hours.span(d) for d in range(7)],
            nation=nation if hours.bank_holidays else None,
            term_dates=hours.term_dates,
            closures=hours.closures,
            outside_term_is_closed=hours.outside_term_is_closed,
        )

    def check(self, moment: datetime) -> OutOfHoursReason | None:
        """None inside working hours, else the reason ``moment`` is out of hours."""
        local = moment.astimezone(self.tz)
        day = local.date()
        closure = _in_periods(day, self.closures)
        if closure is not None:
            label = f" ({closure.name})" if closure.name else ""
            return OutOfHoursReason(local, f"a closure day{label}", "closure")
        if self.bank_holidays is not None:
            name = self.bank_holidays.get(day)
            if name:
                return OutOfHoursReason(local, f"{name} (bank holiday)", "bank_holiday")
        if self.outside_term_is_closed and _in_periods(day, self.term_dates) is None:
            return OutOfHoursReason(local, "outside term time", "outside_term")
        span = self.spans[local.weekday()]
        day_name = _WEEKDAY_NAMES[local.weekday()]
        if span is None:
            return OutOfHoursReason(local, f"{day_name} is not a working day", "closed_day")
        start, end = span
        now = local.time().replace(tzinfo=None)
        if not (start <= now < end):
            return OutOfHoursReason(
                local,
                f"outside working hours ({start:%H:%M}-{end:%H:%M} on {day_name}s)",
                "after_hours",
            )
        return None


class OutOfHoursDetector(DetectorBase):
    """Staff -> learner messages outside working hours (P1 "What we expect of our staff",
    P2 "Communicating with students": staff avoid contacting learners outside normal office
    hours). One message: severity 2 (the managers' digest). Repeated contact by one staff member
    with one learner within the window: severity 4, routed to the DSL."""

    rule_id = "out_of_hours"

    def __init__(
        self,
        office_hours: OfficeHours,
        kinds: Iterable[str] = _DEFAULT_KINDS,
        author_roles: Iterable[str] = ("staff",),
        repeat_count: int = 3,
        repeat_window: timedelta = timedelta(days=14),
        single_severity: Severity = Severity.low,
        repeat_severity: Severity = Severity.high,
        duty: str = OUT_OF_HOURS_DUTY,
    ):
        self.office_hours = office_hours
        self.kinds = frozenset(ItemKind(k) for k in kinds)
        self.author_roles = frozenset(Role(r) for r in author_roles)
        self.repeat_count = repeat_count
        self.repeat_window = repeat_window
        self.single_severity = single_severity
        self.repeat_severity = repeat_severity
        self.duty = duty

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | OutOfHoursPack, config: Config
                  ) -> OutOfHoursDetector:
        """Built from the pack read into :class:`rules.packs.OutOfHoursPack` (defaults there;
        a bad key is a PackError naming the file and the key) and the organisation's working
        hours and repeat policy from the configuration."""
        model = OutOfHoursPack.load(pack)
        return cls(
            office_hours=OfficeHours.from_settings(
                config.working_hours, config.organisation.timezone, config.organisation.nation
            ),
            kinds=[k.value for k in model.messages.kinds],
            author_roles=[r.value for r in model.messages.author_roles],
            repeat_count=config.detection.out_of_hours_repeat_count,
            repeat_window=timedelta(days=config.detection.out_of_hours_repeat_window_days),
            single_severity=model.severity.single,
            repeat_severity=model.severity.repeated,
            duty=model.rule.duty,
        )

    def detect(self, item: Item, ctx: DetectionContext) -> Iterator[Finding]:
        author = item.author
        if item.kind not in self.kinds or author.role not in self.author_roles:
            return
        if not author.register_id:
            return
        reason = self.office_hours.check(item.created_at)
        if reason is None:
            return
        sender = f"{author.role.value}:{author.register_id}"
        for learner in addressed_learners(item, ctx):
            yield self._finding(item, ctx, reason, sender, learner)

    def _finding(
        self, item: Item, ctx: DetectionContext, reason: OutOfHoursReason, sender: str,
        learner: Person,
    ) -> Finding:
        subject = f"{sender}>learner:{learner.register_id}"
        prior = ctx.history.prior_findings(
            self.rule_id,
            subject,
            item.created_at - self.repeat_window,
            item.created_at,
            exclude_item_key=item.key,
        )
        count = len(prior) + 1
        repeated = count >= self.repeat_count
        who = _describe_sender(item.author, ctx)
        days = self.repeat_window.days
        explanation = (
            f"{who} messaged learner {learner.register_id} at {reason.when}: "
            f"{reason.reason}. {self.duty}"
        )
        if repeated:
            explanation += (
                f" This is the {ordinal(count)} out-of-hours message from this staff member to "
                f"this learner within {days} days, so it goes to the DSL."
            )
        return Finding(
            rule_id=self.rule_id,
            category=Category.out_of_hours,
            severity=self.repeat_severity if repeated else self.single_severity,
            score=1.0,
            explanation=explanation,
            evidence=Evidence(
                register_entry=f"learner:{learner.register_id}",
                detail={
                    "local_time": reason.local.isoformat(),
                    "reason": reason.code,
                    "why": reason.reason,
                    "sender": sender,
                    "out_of_hours_count": count,
                    "window_days": days,
                },
            ),
            route=Route.dsl if repeated else None,
            subject=subject,
        )


def _describe_sender(author: Person, ctx: DetectionContext) -> str:
    if author.role == Role.staff and author.register_id:
        staff = ctx.registers.staff.get(author.register_id)
        name = f" ({staff.name})" if staff else ""
        via = " from a personal account" if getattr(author, "personal_account", False) else ""
        return f"Staff member {author.register_id}{name}{via}"
    return f"The account {author.register_id}"
