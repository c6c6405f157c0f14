"""``accountability``: one-to-one staff-learner conversations that nobody else can see.

Policy duty: "a method of accountability: copies to another member of staff or parents" (P2
"Communicating with students"; P1 "What we expect of our staff"). A private conversation (direct
message, chat or email thread) between exactly one staff member and one learner, with no second
staff member, parent/carer or organisation mailbox ever copied in, is a finding: at the pack's
severity on the staff member's first message to the learner in the thread, and recorded only
(severity 1, not notified again) on each later one. Messages from a staff member's personal
account are left to personal_account_contact, which flags them more seriously.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, ItemKind, Role
from rules.base import DetectionContext, DetectorBase
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

_DEFAULT_DUTY = (
    "Staff use a method of accountability when messaging learners: copies to another member of "
    "staff or parents (P2 \"Communicating with students\"; P1 \"What we expect of our staff\")."
)


class AccountabilityDetector(DetectorBase):
    """One-to-one staff-learner threads with no second staff member or copy (P2 "Communicating
    with students": a method of accountability, copies to another member of staff or parents)."""

    rule_id = "accountability"

    def __init__(
        self,
        kinds: Iterable[str] = PRIVATE_KIND_NAMES,
        severity: Severity = Severity.low,
        unknown_participant_is_copy: bool = False,
        duty: str = _DEFAULT_DUTY,
    ):
        self.kinds = frozenset(ItemKind(k) for k in kinds)
        self.severity = severity
        self.unknown_participant_is_copy = unknown_participant_is_copy
        self.duty = duty

    @classmethod
    def from_pack(cls, pack: dict[str, Any], config: Config | None = None
                  ) -> AccountabilityDetector:
        threads = pack.get("threads", {})
        return cls(
            kinds=threads.get("kinds", PRIVATE_KIND_NAMES),
            severity=Severity(pack.get("severity", {}).get("one_to_one", Severity.low)),
            unknown_participant_is_copy=bool(threads.get("unknown_participant_is_copy", False)),
            duty=pack.get("rule", {}).get("duty", _DEFAULT_DUTY),
        )

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
        # later messages in a thread already flagged are recorded, not notified again
        repeat = any(e.kind in self.kinds and self._staff_to_learner(e, ctx) for e in earlier)
        (staff_id,) = people.staff
        (learner_id,) = people.learners
        staff = ctx.registers.staff.get(staff_id)
        name = f" ({staff.name})" if staff else ""
        channel = item.kind.value.replace("_", " ")
        again = (" This thread was flagged at its first message; this one is recorded only."
                 if repeat else "")
        yield Finding(
            rule_id=self.rule_id,
            category=Category.accountability,
            severity=Severity.information if repeat else self.severity,
            score=1.0,
            explanation=(
                f"Staff member {staff_id}{name} is in a one-to-one {channel} conversation with "
                f"learner {learner_id} on {item.platform}, with no second member of staff "
                f"or parent/carer copied in. {self.duty}{again}"
            ),
            evidence=Evidence(
                register_entry=f"learner:{learner_id}",
                detail={"staff": staff_id, "thread": item.thread_key,
                        "messages_in_thread": len(earlier) + 1},
            ),
            subject=f"staff:{staff_id}>learner:{learner_id}",
        )
