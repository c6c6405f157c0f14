"""``accountability``: one-to-one staff-learner conversations that nobody else can see.

Policy duty: "a method of accountability: copies to another member of staff or parents" (P2
"Communicating with students"; P1 "What we expect of our staff"). A private conversation (direct
message, chat or email thread) between exactly one staff member and one learner, with no second
staff member, parent/carer or organisation mailbox ever copied in, is reported **once per
conversation per week** (the organisation's week, Monday to Sunday): on the staff member's first
message to the learner in that conversation that week. Later messages that week add nothing
(noise: every message of a tutor's weekly chat would otherwise be a flag); the case manager's
summary lists the conversation once a week for as long as it stays one-to-one. Messages from a
staff member's personal account are left to personal_account_contact, which flags them more
seriously.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, ItemKind, Role
from rules.base import DetectionContext, DetectorBase
from rules.packs import ACCOUNTABILITY_DUTY, AccountabilityPack
from rules.threads import (
    PRIVATE_KIND_NAMES,
    Participants,
    is_personal_account,
    resolved,
    thread_participants,
)

if TYPE_CHECKING:
    from governance_bot.config import Config

__all__ = ["AccountabilityDetector"]



class AccountabilityDetector(DetectorBase):
    """One-to-one staff-learner threads with no second staff member or copy (P2 "Communicating
    with students": a method of accountability, copies to another member of staff or parents)."""

    rule_id = "accountability"

    def __init__(
        self,
        kinds: Iterable[str] = PRIVATE_KIND_NAMES,
        severity: Severity = Severity.low,
        unknown_participant_is_copy: bool = False,
        duty: str = ACCOUNTABILITY_DUTY,
        timezone: str = "Europe/London",
    ):
        self.kinds = frozenset(ItemKind(k) for k in kinds)
        self.severity = severity
        self.unknown_participant_is_copy = unknown_participant_is_copy
        self.duty = duty
        self.tz = ZoneInfo(timezone)

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | AccountabilityPack, config: Config | None = None
                  ) -> AccountabilityDetector:
        """Built from the pack read into :class:`rules.packs.AccountabilityPack` (defaults
        there; a bad key is a PackError naming the file and the key)."""
        model = AccountabilityPack.load(pack)
        return cls(
            kinds=[k.value for k in model.threads.kinds],
            severity=model.severity.one_to_one,
            unknown_participant_is_copy=model.threads.unknown_participant_is_copy,
            duty=model.rule.duty,
            timezone=config.organisation.timezone if config is not None else "Europe/London",
        )

    def week_start(self, at: datetime) -> datetime:
        """Monday 00:00 (the organisation's time) of the week of ``at``, in UTC."""
        local = at.astimezone(self.tz)
        monday = local.date() - timedelta(days=local.weekday())
        return datetime.combine(monday, time(0), self.tz).astimezone(UTC)

    def _staff_to_learner(self, item: Item, ctx: DetectionContext) -> bool:
        author = resolved(item.author, item, ctx.registers)
        if author.role != Role.staff:
            return False
        return any(resolved(p, item, ctx.registers).role == Role.learner for p in item.recipients)

    def _is_one_to_one(self, people: Participants) -> bool:
        if len(people.staff) != 1 or len(people.learners) != 1:
            return False
        if people.guardians or people.organisation:
            return False
        return not (people.others and self.unknown_participant_is_copy)

    def detect(self, item: Item, ctx: DetectionContext) -> Iterator[Finding]:
        if item.kind not in self.kinds or not self._staff_to_learner(item, ctx):
            return
        if is_personal_account(resolved(item.author, item, ctx.registers)):
            return  # personal_account_contact flags it, more seriously; one flag is enough
        earlier = list(ctx.history.thread(item))
        people = thread_participants([*earlier, item], ctx)
        if not self._is_one_to_one(people):
            return
        (staff_id,) = people.staff
        (learner_id,) = people.learners
        # one finding per conversation per week: the subject names the conversation
        conversation = hashlib.sha256(item.thread_key.encode()).hexdigest()[:16]
        subject = f"staff:{staff_id}>learner:{learner_id}>conversation:{conversation}"
        if ctx.history.prior_findings(self.rule_id, subject, self.week_start(item.created_at),
                                      item.created_at, exclude_item_key=item.key):
            return  # already reported this week
        staff = ctx.registers.staff.get(staff_id)
        name = f" ({staff.name})" if staff else ""
        channel = item.kind.value.replace("_", " ")
        yield Finding(
            rule_id=self.rule_id,
            category=Category.accountability,
            severity=self.severity,
            score=1.0,
            explanation=(
                f"Staff member {staff_id}{name} is in a one-to-one {channel} conversation with "
                f"learner {learner_id} on {item.platform}, with no second member of staff "
                f"or parent/carer copied in (reported once a week per conversation). "
                f"{self.duty}"
            ),
            evidence=Evidence(
                register_entry=f"learner:{learner_id}",
                detail={"staff": staff_id, "thread": item.thread_key,
                        "messages_in_thread": len(earlier) + 1,
                        "week_of": self.week_start(item.created_at).astimezone(
                            self.tz).date().isoformat()},
            ),
            subject=subject,
        )
