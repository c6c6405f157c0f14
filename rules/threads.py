"""Who takes part in a conversation: shared by the thread rules (accountability, drift, personal
accounts).

A thread's participants are the authors and recipients of its items, resolved against the
registers: staff (work or personal accounts), learners, the learners' parents/carers (from the
learners register's ``guardian_contacts``), the organisation's own accounts, and anyone else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr

from governance_bot.items import Item, ItemKind, Person, Role, normalise_handle
from governance_bot.registers import RegisterIndex
from rules.base import DetectionContext

__all__ = [
    "PRIVATE_KINDS",
    "PRIVATE_KIND_NAMES",
    "Participants",
    "guardian_of",
    "is_personal_account",
    "resolved",
    "thread_participants",
]

# one-to-one or small-group conversation, as opposed to public posts and comments
PRIVATE_KINDS = frozenset({ItemKind.direct_message, ItemKind.chat_message, ItemKind.email})
PRIVATE_KIND_NAMES = ("direct_message", "chat_message", "email")

_GUARDIANS_KEY = "threads.guardians"


def is_personal_account(person: Person) -> bool:
    """True when the registers matched ``person`` on a staff member's *personal* handle/email."""
    return bool((person.model_extra or {}).get("personal_account"))


def resolved(person: Person, item: Item, registers: RegisterIndex) -> Person:
    """``person`` with its role filled in (items reach detectors resolved; examples may not)."""
    if person.role is None:
        return registers.resolve_person(person, item.account)
    return person


def _guardians(registers: RegisterIndex) -> dict[str, str]:
    """Parent/carer contact (email or handle, normalised) -> learner_id, built once per index."""
    cached = registers.derived.get(_GUARDIANS_KEY)
    if cached is None:
        cached = {}
        for learner in registers.iter_learners():
            for contact in learner.guardian_contacts:
                _, address = parseaddr(contact)
                key = address or contact
                if key.strip():
                    cached[normalise_handle(key)] = learner.learner_id
        registers.derived[_GUARDIANS_KEY] = cached
    return dict(cached)


def guardian_of(person: Person, registers: RegisterIndex) -> str | None:
    """The learner_id whose parent/carer ``person`` is, if the learners register says so."""
    table = _guardians(registers)
    for key in person.keys():  # noqa: SIM118 (Person.keys: its identifiers)
        if key in table:
            return table[key]
    return None


@dataclass(slots=True)
class Participants:
    """Everyone who wrote or received an item of a thread, by what they are to the organisation."""

    staff: set[str] = field(default_factory=set)  # staff_ids, work or personal accounts
    learners: set[str] = field(default_factory=set)  # learner_ids
    guardians: set[str] = field(default_factory=set)  # parent/carer contacts (normalised)
    organisation: bool = False  # an official account or shared mailbox took part or was copied
    others: set[str] = field(default_factory=set)  # identifiers of people not in the registers

    def add(self, person: Person, registers: RegisterIndex) -> None:
        if person.role == Role.staff and person.register_id:
            self.staff.add(person.register_id)
        elif person.role == Role.learner and person.register_id:
            self.learners.add(person.register_id)
        elif person.role == Role.organisation:
            self.organisation = True
        elif guardian_of(person, registers) is not None:
            self.guardians.add(person.keys()[0])
        elif person.keys():
            self.others.add(person.keys()[0])


def thread_participants(items: Iterable[Item], ctx: DetectionContext) -> Participants:
    found = Participants()
    for item in items:
        for person in [item.author, *item.recipients]:
            found.add(resolved(person, item, ctx.registers), ctx.registers)
    return found


def conversation(item: Item, ctx: DetectionContext, limit: int = 200) -> Sequence[Item]:
    """The thread so far, oldest first, ending with ``item``."""
    return [*ctx.history.thread(item, limit=limit), item]
