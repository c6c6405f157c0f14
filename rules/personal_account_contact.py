"""``personal_account_contact``: staff talking to learners from personal accounts.

Policy duty: "staff do not communicate with learners via personal accounts" (P1 "What we expect
of our staff", "Using mobile phones"; P2 "Communicating with students"). On any connected
channel, a message between a staff member's known personal handle or email (the staff register's
``personal_handles``) and a learner is a medium-severity finding for the DSL, whichever of the
two wrote it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, ItemKind, Person, Role
from rules.base import DetectionContext, DetectorBase
from rules.out_of_hours import addressed_learners
from rules.packs import PersonalAccountContactPack
from rules.threads import is_personal_account, resolved

if TYPE_CHECKING:
    from governance_bot.config import Config

__all__ = ["PersonalAccountContactDetector"]

_ALL_KINDS = tuple(kind.value for kind in ItemKind)

_DEFAULT_DUTY = (
    "Staff do not communicate with learners via personal accounts (P1 \"What we expect of our "
    "staff\"; P2 \"Communicating with students\")."
)


class PersonalAccountContactDetector(DetectorBase):
    """A staff member's personal handle or email in contact with a learner, on any channel (P1
    "What we expect of our staff"; P2 "Communicating with students")."""

    rule_id = "personal_account_contact"

    def __init__(
        self,
        kinds: Iterable[str] = _ALL_KINDS,
        severity: Severity = Severity.medium,
        duty: str = _DEFAULT_DUTY,
    ):
        self.kinds = frozenset(ItemKind(k) for k in kinds)
        self.severity = severity
        self.duty = duty

    @classmethod
    def from_pack(cls, pack: dict[str, Any], config: Config | None = None
                  ) -> PersonalAccountContactDetector:
        model = PersonalAccountContactPack.load(pack)  # defaults there; bad keys refused
        return cls(
            kinds=list(model.messages.kinds),
            severity=model.severity.contact,
            duty=model.rule.duty or _DEFAULT_DUTY,
        )

    def detect(self, item: Item, ctx: DetectionContext) -> Iterator[Finding]:
        if item.kind not in self.kinds:
            return
        regs = ctx.registers
        author = resolved(item.author, item, regs)
        recipients = [resolved(p, item, regs) for p in item.recipients]
        pairs: list[tuple[Person, str, str]] = []  # (personal account, learner_id, direction)
        if author.role == Role.staff and is_personal_account(author):
            resolved_item = item.model_copy(update={"author": author, "recipients": recipients})
            for learner in addressed_learners(resolved_item, ctx):
                pairs.append((author, str(learner.register_id), "to"))
        elif author.role == Role.learner and author.register_id:
            for person in recipients:
                if person.role == Role.staff and is_personal_account(person):
                    pairs.append((person, author.register_id, "from"))
        seen: set[tuple[str, str]] = set()
        for account, learner_id, direction in pairs:
            staff_id = str(account.register_id)
            if (staff_id, learner_id) in seen:
                continue
            seen.add((staff_id, learner_id))
            yield self._finding(item, ctx, account, staff_id, learner_id, direction)

    def _finding(self, item: Item, ctx: DetectionContext, account: Person, staff_id: str,
                 learner_id: str, direction: str) -> Finding:
        staff = ctx.registers.staff.get(staff_id)
        name = f" ({staff.name})" if staff else ""
        # the handle itself is personal data: it stays in the evidence, not the explanation
        handle = account.email or account.handle or account.id
        if direction == "to":
            what = (f"Staff member {staff_id}{name} wrote to learner {learner_id} from a "
                    "personal account (one of their personal_handles in the staff register)")
        else:
            what = (f"Learner {learner_id} wrote to a personal account of staff member "
                    f"{staff_id}{name} (one of their personal_handles in the staff register)")
        return Finding(
            rule_id=self.rule_id,
            category=Category.personal_account_contact,
            severity=self.severity,
            score=1.0,
            explanation=f"{what} ({item.platform} {item.kind.value.replace('_', ' ')}). "
                        f"{self.duty}",
            evidence=Evidence(
                register_entry=f"learner:{learner_id}",
                detail={"staff": staff_id, "personal_account": handle, "direction": direction},
            ),
            subject=f"staff:{staff_id}>learner:{learner_id}",
        )
