"""Who is who: staff, learners, official accounts and safeguarding contacts.

The registers live in the database; they are edited as TOML or imported from CSV
(``governance-bot registers import``). ``RegisterIndex`` is the in-memory view detectors use.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from governance_bot.items import Item, Person, Role, normalise_handle

__all__ = [
    "ID_FIELDS",
    "Account",
    "Learner",
    "Match",
    "RegisterError",
    "RegisterIndex",
    "Registers",
    "StaffMember",
    "StaffRole",
    "read_csv",
    "read_toml",
]


class StaffRole(StrEnum):
    """Documented in docs/registers.md."""

    account_manager = "account_manager"
    dsl = "dsl"
    deputy_dsl = "deputy_dsl"
    tutor = "tutor"
    staff = "staff"
    headteacher = "headteacher"  # the case manager's alternate when the DSL is the subject
    chair_of_governors = "chair_of_governors"  # handles concerns about the headteacher/DSL
    it_admin = "it_admin"  # runs the service; never sees case content


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected a list or ';'-separated text, got {type(value).__name__}")
    return [str(v).strip() for v in value if str(v).strip()]


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().casefold()
    if text in {"1", "true", "yes", "y", "granted", "consented"}:
        return True
    if text in {"", "0", "false", "no", "n", "refused", "none", "withdrawn"}:
        return False
    raise ValueError(f"expected yes/no, true/false or 1/0, got {value!r}")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StaffMember(_Record):
    staff_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    email: str | None = None
    slack_user_id: str | None = None
    role: StaffRole = StaffRole.staff
    personal_handles: list[str] = Field(default_factory=list)
    platform_ids: list[str] = Field(default_factory=list)
    active: bool = True

    _lists = field_validator("personal_handles", "platform_ids", mode="before")(_split)
    _active = field_validator("active", mode="before")(_bool)

    @field_validator("email", "slack_user_id", mode="before")
    @classmethod
    def _blank_none(cls, v: Any) -> Any:
        return v or None


class Learner(_Record):
    learner_id: str = Field(min_length=1)
    first_name: str = Field(min_length=1)
    last_name: str = Field(min_length=1)
    preferred_name: str | None = None
    aliases: list[str] = Field(default_factory=list)
    date_of_birth: date | None = None
    email: str | None = None
    photo_consent: bool = False
    comms_consent: bool = False
    employer: str | None = None
    handles: list[str] = Field(default_factory=list)
    guardian_contacts: list[str] = Field(default_factory=list)
    # what the DSL needs to find the child: shown in safeguarding alerts only
    year_group: str | None = None  # e.g. "Year 9"
    programme: str | None = None  # e.g. "Level 3 Engineering apprenticeship"
    tutor: str | None = None  # the tutor's staff_id

    _lists = field_validator("handles", "aliases", "guardian_contacts", mode="before")(_split)
    _consent = field_validator("photo_consent", "comms_consent", mode="before")(_bool)

    @field_validator("preferred_name", "email", "employer", "date_of_birth", "year_group",
                     "programme", "tutor", mode="before")
    @classmethod
    def _blank_none(cls, v: Any) -> Any:
        return v or None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Account(_Record):
    account_id: str = Field(min_length=1)
    platform: str = Field(min_length=1)
    handle: str = Field(min_length=1)
    platform_id: str | None = None
    managers: list[str] = Field(default_factory=list)

    _lists = field_validator("managers", mode="before")(_split)

    @field_validator("platform_id", mode="before")
    @classmethod
    def _blank_none(cls, v: Any) -> Any:
        return v or None


class Registers(BaseModel):
    staff: list[StaffMember] = Field(default_factory=list)
    learners: list[Learner] = Field(default_factory=list)
    accounts: list[Account] = Field(default_factory=list)


class RegisterError(Exception):
    """A register file had rows that could not be read; ``problems`` lists every one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


ID_FIELDS = {"staff": "staff_id", "learners": "learner_id", "accounts": "account_id"}

_CSV_MODELS: dict[str, type[_Record]] = {
    "learners": Learner,
    "staff": StaffMember,
    "accounts": Account,
}


def read_csv(path: Path, kind: str) -> tuple[list[Any], list[str]]:
    """Read one register CSV. Returns the good rows and a problem line per bad row."""
    model = _CSV_MODELS[kind]
    rows: list[Any] = []
    problems: list[str] = []
    lineno = 1
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            known = set(model.model_fields)
            unknown = [c for c in (reader.fieldnames or []) if c and c.strip() not in known]
            if unknown:
                problems.append(
                    f"{path}:1: unknown column(s) {', '.join(unknown)}; "
                    f"{kind} columns are: {', '.join(model.model_fields)}"
                )
                return rows, problems
            id_field = ID_FIELDS[kind]
            first_row: dict[str, int] = {}
            for lineno, raw in enumerate(reader, start=2):
                data = {k.strip(): v for k, v in raw.items()
                        if k is not None and v not in (None, "")}
                try:
                    record = model.model_validate(data)
                except ValidationError as exc:
                    for err in exc.errors():
                        loc = ".".join(str(p) for p in err["loc"]) or "row"
                        problems.append(f"{path}:{lineno}: {loc}: {err['msg']}")
                    continue
                # one id twice: the later row would silently replace the first person, who
                # would lose the register's protection. Refuse the file, naming both rows.
                ident = getattr(record, id_field)
                if ident in first_row:
                    problems.append(
                        f"{path}:{lineno}: {id_field} {ident!r} is already used on line "
                        f"{path}:{first_row[ident]}; nothing imported from this file. Fix: give "
                        "each row its own id (or merge the two rows).")
                    continue
                first_row[ident] = lineno
                rows.append(record)
    except UnicodeDecodeError as exc:
        problems.append(f"{path}: not UTF-8 text (byte {exc.start}); save the file as "
                        "\"CSV UTF-8\"")
    except csv.Error as exc:
        problems.append(f"{path}:{lineno + 1}: not a readable CSV row ({exc})")
    return rows, problems


def read_toml(path: Path) -> Registers:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise RegisterError([f"{path}: not valid TOML: {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise RegisterError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    except OSError as exc:
        raise RegisterError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None
    try:
        registers = Registers.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        raise RegisterError(problems) from exc
    problems = []
    for kind, id_field in ID_FIELDS.items():
        first: dict[str, int] = {}
        for n, record in enumerate(getattr(registers, kind)):
            ident = getattr(record, id_field)
            if ident in first:
                problems.append(
                    f"{path}: {kind}[{n}]: {id_field} {ident!r} is already used by "
                    f"{kind}[{first[ident]}] (entries count from 0); nothing imported from this "
                    "file. Fix: give each entry its own id (or merge the two).")
            else:
                first[ident] = n
    if problems:
        raise RegisterError(problems)
    return registers


@dataclass(frozen=True, slots=True)
class Match:
    role: Role
    register_id: str
    personal: bool = False  # matched on a staff member's *personal* handle or email


class RegisterIndex:
    """Fast lookups over the registers: identifiers to people, accounts to managers."""

    def __init__(self, registers: Registers):
        self.registers = registers
        self.staff = {s.staff_id: s for s in registers.staff}
        self.learners = {lr.learner_id: lr for lr in registers.learners}
        self.accounts = {a.account_id: a for a in registers.accounts}
        # detectors keep structures derived from the registers here (e.g. name automata)
        self.derived: dict[str, Any] = {}
        self._people: dict[str, Match] = {}
        self._org: dict[str, set[str]] = {}
        for s in registers.staff:
            for key in filter(None, [s.email, s.slack_user_id, *s.platform_ids]):
                self._people.setdefault(normalise_handle(key), Match(Role.staff, s.staff_id))
            for key in s.personal_handles:
                self._people.setdefault(
                    normalise_handle(key), Match(Role.staff, s.staff_id, personal=True)
                )
        for lr in registers.learners:
            for key in filter(None, [lr.email, *lr.handles]):
                self._people.setdefault(normalise_handle(key), Match(Role.learner, lr.learner_id))
        for a in registers.accounts:
            keys = {normalise_handle(a.handle)}
            if a.platform_id:
                keys.add(normalise_handle(a.platform_id))
            self._org[a.account_id] = keys

    @classmethod
    def empty(cls) -> RegisterIndex:
        return cls(Registers())

    def lookup(self, key: str) -> Match | None:
        return self._people.get(normalise_handle(key))

    def resolve_person(self, person: Person, account_id: str | None) -> Person:
        """Return a copy of ``person`` with ``role`` and ``register_id`` filled in."""
        keys = person.keys()
        org_keys = self._org.get(account_id or "", set())
        if any(k in org_keys for k in keys):
            return person.model_copy(update={"role": Role.organisation, "register_id": account_id})
        for key in keys:
            match = self._people.get(key)
            if match:
                update: dict[str, Any] = {"role": match.role, "register_id": match.register_id}
                if match.personal:
                    update["personal_account"] = True
                return person.model_copy(update=update)
        role = Role.public if keys else Role.unknown
        return person.model_copy(update={"role": role, "register_id": None})

    def resolve(self, item: Item) -> Item:
        """Resolve the author and every recipient of ``item`` to a role."""
        return item.model_copy(
            update={
                "author": self.resolve_person(item.author, item.account),
                "recipients": [self.resolve_person(p, item.account) for p in item.recipients],
            }
        )

    def managers(self, account_id: str) -> list[StaffMember]:
        account = self.accounts.get(account_id)
        if account is None:
            return []
        return [self.staff[m] for m in account.managers if m in self.staff]

    def safeguarding_contacts(self) -> list[StaffMember]:
        """The DSL first, then deputies, active staff only (the escalation order)."""
        dsl = [s for s in self.registers.staff if s.active and s.role == StaffRole.dsl]
        deputies = [s for s in self.registers.staff if s.active and s.role == StaffRole.deputy_dsl]
        return dsl + deputies

    def iter_learners(self) -> Iterator[Learner]:
        return iter(self.registers.learners)

    def staff_ids_in(self, people: Iterable[Person]) -> list[str]:
        return [p.register_id for p in people if p.role == Role.staff and p.register_id]
