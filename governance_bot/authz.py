"""Need to know: the one place that decides who may see and do what (docs/routing.md).

Every consumer asks this module: the Slack app and its sink, the console and JSON sinks, the
digests, the App Home, the web console, reports, exports and ``flags list``. Given the registers
(staff roles, account managers, safeguarding contacts) and a flag (its findings, the item's
author, the account), it answers

* **who receives what** (:meth:`NeedToKnow.audience`): for each person, the findings routed to
  them (the union over every route they are on: one message per person per flag), at what
  detail (full text, an excerpt, masked, a one-line summary, nothing), whether they see the
  child's identity, and the short note they get about parts sent elsewhere;
* **what a person may do** (:meth:`NeedToKnow.may`, :meth:`NeedToKnow.check`): remove, keep,
  escalate, acknowledge, record an outcome, assign, pre-approve a photo, view the case, export.

Rules it enforces (docs/routing.md):

* nobody receives a finding about themselves (its *subject*: the member of staff who wrote the
  item, or whom the finding names);
* staff-conduct findings go to the case manager (``[routing] staff_concerns_to``, default the
  DSL), and to the alternate (``[routing] staff_concerns_alternate``, else the chair of
  governors, else the headteacher) when the subject is the case manager or the DSL;
* safeguarding findings reach the DSL and deputies only; account managers and digests see
  content findings only, masked;
* a flag escalated by the managers is the DSL team's to close.

The inputs are small typed facts (:class:`FlagFacts`, :class:`FindingFacts`) built from the
stored records with :meth:`FlagFacts.from_records`, so the console and tests can use it without
Slack.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from governance_bot.findings import Category, Finding, Route
from governance_bot.items import Item, Role
from governance_bot.registers import Learner, RegisterIndex, StaffMember, StaffRole
from governance_bot.routing import finding_kind

if TYPE_CHECKING:
    from governance_bot.config import Config
    from governance_bot.storage import models as m

__all__ = [
    "CLOSED_STATUSES",
    "DSL_NOTE",
    "ELSEWHERE_NOTE",
    "EXPLICIT_RULES",
    "NOT_YOURS",
    "OPERATOR_NOTE",
    "Action",
    "ChildIdentity",
    "Detail",
    "Entitlement",
    "FindingFacts",
    "FlagFacts",
    "InformRole",
    "NeedToKnow",
    "Refused",
    "history_visible",
    "learners_named",
]

# the flag states in which nothing more is decided (status values of ``flags.status``)
CLOSED_STATUSES = frozenset({"actioned", "dismissed", "closed"})
EXPLICIT_RULES = frozenset({"explicit_image", "nsfw_image", "indecent_image", "csam_image"})
DSL_NOTE = "Hide/remove this post; the DSL has been informed."
ELSEWHERE_NOTE = "Also referred elsewhere."

# routes whose audience handles a case (safeguarding, staff conduct)
CASE_ROUTES = frozenset({Route.dsl, Route.case_manager, Route.case_digest})
CONTENT_ROUTES = frozenset({Route.account_managers, Route.digest})
# whose a case is (the operator's view names it, nothing more)
CASE_AUDIENCE = {Route.dsl: "DSL team", Route.case_manager: "case manager",
                 Route.case_digest: "case manager"}
# a refusal to someone who receives nothing of a flag, or about a flag that does not exist
NOT_YOURS = "There is no flag #{flag_id} that you may act on."
OPERATOR_NOTE = ("A case for the {whose}: its content is theirs only. `--as STAFF_ID` shows what "
                 "that member of staff may see.")


# what of a flag's history is the case side's work: who acknowledged it, who it is assigned to,
# that it was not acknowledged in time (decisions, ``flag_decisions.action``), and who read,
# noted, exported or held it (audit actions). Only those with the case view read them; the
# account managers of a post that also holds a disclosure read their own part's history
CASE_HISTORY = frozenset({
    "acknowledge", "assign", "escalation",
    "flag.acknowledge", "flag.assign", "flag.escalation", "console.view", "console.note",
    "console.export", "legal_hold.set", "legal_hold.placed", "legal_hold.released",
})


def history_visible(action: str, sees_case: bool) -> bool:
    """Whether an entry of a flag's history (a decision's action, or an audit action) is shown
    to a reader; ``sees_case``: the reader has the case view (the child's identity)."""
    return sees_case or action not in CASE_HISTORY


def _is_case(finding: FindingFacts) -> bool:
    """A safeguarding or staff-conduct finding, or one for a case audience. The route says
    it (routing never sends a case to the managers or a digest); a recorded-only finding is
    judged as if a member of staff wrote the item (the operator's view does not read the
    item): a recorded-only tone finding may be a concern about its author."""
    if finding.route in CASE_AUDIENCE:
        return True
    if finding.route in CONTENT_ROUTES:
        return False
    return finding_kind(finding.category, Role.staff, finding.subject) != "content"


# texts whose named staff a NeedToKnow remembers (as many items as the console's lens keeps)
MENTIONS_REMEMBERED = 200_000
_TITLES = r"(?:mr|mrs|ms|miss|mx|dr|sir|prof|mister|madam)\.?"


class _StaffNames:
    """Every way the staff register names someone (the full name, a title and the surname, a
    personal handle, a Slack mention; a first name alone is too common to count), as one
    regular expression: one pass over a text however many staff there are."""

    def __init__(self, staff: Iterable[StaffMember]):
        self.forms: dict[str, set[str]] = {}  # a normalised form -> the staff it names
        for person in staff:
            words = person.name.casefold().split()
            keys = [" ".join(words), f"title {words[-1]}"] if len(words) >= 2 else []
            keys += ["@" + h.casefold().lstrip("@") for h in person.personal_handles if h]
            if person.slack_user_id:
                keys.append(f"<@{person.slack_user_id.casefold()}>")
            for key in keys:
                self.forms.setdefault(key, set()).add(person.staff_id)

        def longest_first(keys: Iterable[str]) -> list[str]:
            return sorted(set(keys), key=lambda k: (-len(k), k))

        names = longest_first(k for k in self.forms if not k.startswith(("title ", "@", "<@")))
        surnames = longest_first(k[6:] for k in self.forms if k.startswith("title "))
        others = longest_first(k for k in self.forms if k.startswith(("@", "<@")))
        alternatives = []
        if names:
            alternatives.append("(?P<name>" + "|".join(
                r"\s+".join(re.escape(w) for w in n.split()) for n in names) + ")")
        if surnames:
            alternatives.append(_TITLES + r"\s+(?P<surname>" + "|".join(
                re.escape(x) for x in surnames) + ")")
        if others:
            alternatives.append("(?P<other>" + "|".join(re.escape(x) for x in others) + ")")
        self.pattern = (re.compile(r"(?<![\w@])(?:" + "|".join(alternatives) + r")(?!\w)",
                                   re.IGNORECASE) if alternatives else None)

    def named(self, text: str) -> frozenset[str]:
        if self.pattern is None:
            return frozenset()
        out: set[str] = set()
        for mt in self.pattern.finditer(text):
            groups = mt.groupdict()
            if groups.get("name"):
                key = " ".join(groups["name"].casefold().split())
            elif groups.get("surname"):
                key = f"title {groups['surname'].casefold()}"
            else:
                key = (groups.get("other") or "").casefold()
            out |= self.forms.get(key, set())
        return frozenset(out)


class Refused(Exception):
    """The person may not take this action (or see this); the message says why, for them."""


class Action(StrEnum):
    """What a person can do about a flag."""

    remove = "remove"
    keep = "keep"
    escalate = "escalate"
    acknowledge = "acknowledge"
    record_outcome = "record_outcome"
    assign = "assign"
    preapprove_photo = "preapprove_photo"
    view_case = "view_case"
    export = "export"


class Detail(StrEnum):
    """How much of the item a person sees (most to least)."""

    full = "full"  # the whole text
    excerpt = "excerpt"  # the text around the evidence
    masked = "masked"  # an excerpt with learner details blacked out
    summary = "summary"  # one line per finding, masked (digests)
    none = "none"  # no content at all


_DETAIL_ORDER = {Detail.none: 0, Detail.summary: 1, Detail.masked: 2, Detail.excerpt: 3,
                 Detail.full: 4}


@dataclass(frozen=True, slots=True)
class FindingFacts:
    """What need-to-know reads of one finding."""

    rule_id: str
    category: Category
    severity: int
    route: Route
    subject: str | None = None
    register_entry: str | None = None
    explicit_image: bool = False
    id: int | None = None  # the stored finding's id, when there is one
    fingerprint: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: m.Finding) -> FindingFacts:
        evidence = record.evidence or {}
        detail = evidence.get("detail") or {}
        return cls(rule_id=record.rule_id, category=Category(record.category),
                   severity=int(record.severity), route=Route(record.route),
                   subject=record.subject, register_entry=evidence.get("register_entry"),
                   explicit_image=(record.rule_id in EXPLICIT_RULES
                                   or detail.get("explicit_image") is True),
                   id=record.id, fingerprint=record.fingerprint, detail=detail)

    @classmethod
    def from_finding(cls, finding: Finding) -> FindingFacts:
        detail = finding.evidence.detail or {}
        return cls(rule_id=finding.rule_id, category=finding.category,
                   severity=int(finding.severity), route=finding.route or Route.record_only,
                   subject=finding.subject, register_entry=finding.evidence.register_entry,
                   explicit_image=(finding.rule_id in EXPLICIT_RULES
                                   or detail.get("explicit_image") is True),
                   fingerprint=finding.fingerprint, detail=detail)

    @property
    def key(self) -> str:
        """Identifies the finding within its flag."""
        return str(self.id) if self.id is not None else (self.fingerprint or self.rule_id)

    @property
    def staff_named(self) -> set[str]:
        """Staff ids the finding is about (``subject``/``register_entry`` parts "staff:...")."""
        out = set()
        for part in [*(self.subject or "").split(">"), self.register_entry or ""]:
            if part.startswith("staff:"):
                out.add(part.split(":", 1)[1])
        return out

    @property
    def learners(self) -> list[str]:
        out: list[str] = []
        for part in [self.register_entry or "", *(self.subject or "").split(">")]:
            if part.startswith("learner:"):
                lid = part.split(":", 1)[1]
                if lid not in out:
                    out.append(lid)
        for lid in self.detail.get("learners_without_consent") or []:
            if str(lid) not in out:
                out.append(str(lid))
        return out


@dataclass(frozen=True, slots=True)
class FlagFacts:
    """What need-to-know reads of one flag: its findings, the item's people, its state."""

    account: str
    findings: tuple[FindingFacts, ...]
    author_role: Role | None = None
    author_id: str | None = None  # the author's register id (a staff or learner id)
    recipients: tuple[tuple[Role | None, str | None], ...] = ()
    flag_id: int | None = None
    status: str = "open"
    removal: str | None = None  # None, "removing", "removed", "kept"
    escalated: bool = False  # the managers handed it to the DSL
    acknowledged: bool = False
    platform: str | None = None
    kind: str | None = None
    # a concern about staff its case manager did not acknowledge in time: the alternate has it
    # too (``EscalationJob``)
    case_escalated: bool = False
    # the item's text, only to find the staff it names (a concern never reaches them): never
    # shown, never printed
    text: str = field(default="", repr=False)

    @classmethod
    def from_records(cls, flag: m.Flag, findings: Iterable[m.Finding], item: Item) -> FlagFacts:
        return cls(
            account=flag.account,
            findings=tuple(FindingFacts.from_record(f) for f in findings),
            author_role=item.author.role, author_id=item.author.register_id,
            recipients=tuple((p.role, p.register_id) for p in item.recipients),
            flag_id=flag.id, status=flag.status, removal=getattr(flag, "removal", None),
            escalated=getattr(flag, "escalated_at", None) is not None
            or flag.status == "escalated",
            acknowledged=flag.acknowledged_at is not None,
            platform=item.platform, kind=item.kind.value,
            case_escalated=(flag.route == Route.case_manager.value
                            and (getattr(flag, "escalation_level", 0) or 0) >= 1),
            text=item.text or "",
        )

    @classmethod
    def from_findings(cls, item: Item, findings: Iterable[Finding]) -> FlagFacts:
        """Facts for routed findings not stored yet (``classify``, previews, tests)."""
        return cls(account=item.account,
                   findings=tuple(FindingFacts.from_finding(f) for f in findings),
                   author_role=item.author.role, author_id=item.author.register_id,
                   recipients=tuple((p.role, p.register_id) for p in item.recipients),
                   platform=item.platform, kind=item.kind.value, text=item.text or "")

    @property
    def closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    @property
    def has_case(self) -> bool:
        """Some finding is for the DSL team or the case manager (not only content)."""
        return any(f.route in CASE_ROUTES for f in self.findings)

    @property
    def staff_author(self) -> str | None:
        return self.author_id if self.author_role == Role.staff else None


@dataclass(frozen=True, slots=True)
class Entitlement:
    """What one person receives of one flag, and may do about it."""

    staff: StaffMember
    routes: frozenset[Route] = frozenset()
    findings: tuple[FindingFacts, ...] = ()
    detail: Detail = Detail.none
    child_identity: bool = False  # the learner's name, id, year group, tutor
    actions: frozenset[Action] = frozenset()
    note: str | None = None  # about parts of the flag sent to others

    @property
    def staff_id(self) -> str:
        return self.staff.staff_id

    @property
    def receives(self) -> bool:
        """Whether this person receives anything of the flag."""
        return bool(self.findings)

    @property
    def finding_keys(self) -> frozenset[str]:
        return frozenset(f.key for f in self.findings)

    @property
    def immediate(self) -> bool:
        """Whether the person gets a message now (not only a digest line)."""
        return bool(self.routes - {Route.digest, Route.case_digest, Route.record_only})

    @property
    def view(self) -> str:
        """"dsl" (case view: the child's identity, the text per dsl_content) or "managers"
        (masked)."""
        return "dsl" if self.child_identity else "managers"


@dataclass(frozen=True, slots=True)
class ChildIdentity:
    """The child a safeguarding alert is about (for the DSL's and the case manager's eyes)."""

    learner_id: str
    name: str
    year_group: str | None = None
    programme: str | None = None
    tutor: str | None = None  # the tutor's name (from the staff register)

    def line(self) -> str:
        parts = [f"{self.name} ({self.learner_id})"]
        if self.year_group:
            parts.append(self.year_group)
        if self.programme:
            parts.append(self.programme)
        if self.tutor:
            parts.append(f"tutor {self.tutor}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class InformRole:
    """Someone to tell about a removal, named by role only; the contact is looked up from the
    register when the removal is carried out (never shown in a form)."""

    key: str  # "learner:1", "guardian:1", "employer:2": no register id (the form is masked)
    relation: str  # learner, guardian, employer
    learner_id: str
    label: str  # e.g. "Learner 1's parent/carer (from the register)"


def learners_named(flag: FlagFacts) -> list[str]:
    """The learners a flag is about: named by its findings, or the item's author/recipients."""
    out: list[str] = []
    for f in flag.findings:
        for lid in f.learners:
            if lid not in out:
                out.append(lid)
    people = [(flag.author_role, flag.author_id), *flag.recipients]
    for role, rid in people:
        if role == Role.learner and rid and rid not in out:
            out.append(rid)
    return out


class NeedToKnow:
    """Who receives which findings of a flag and who may do what (docs/routing.md)."""

    def __init__(self, registers: RegisterIndex, *,
                 staff_concerns_to: str | Sequence[str] = "dsl",
                 staff_concerns_alternate: Sequence[str] = (),
                 dsl_content: str = "excerpt", mask_learner_details: bool = True,
                 administrators: Sequence[str] = (),
                 escalation_contacts: Iterable[str] = ()):
        self.registers = registers
        self._names: _StaffNames | None = None
        self._mentioned: dict[bytes, frozenset[str]] = {}
        # who an unacknowledged safeguarding flag may be sent to beyond the DSL team
        # (``[slack] escalate_to`` and the out-of-hours rota): they read it as the DSL team does
        self.escalation_contacts = frozenset(escalation_contacts)
        self.staff_concerns_to = staff_concerns_to
        self.staff_concerns_alternate = list(staff_concerns_alternate)
        self.dsl_content = Detail(dsl_content)
        self.mask_learner_details = mask_learner_details
        self.administrators = set(administrators)

    @classmethod
    def from_config(cls, config: Config, registers: RegisterIndex) -> NeedToKnow:
        console = getattr(config, "console", None)
        slack = config.slack
        return cls(registers,
                   escalation_contacts=[*slack.escalate_to,
                                        *(s for entry in slack.rota for s in entry.staff)],
                   staff_concerns_to=config.routing.staff_concerns_to,
                   staff_concerns_alternate=config.routing.staff_concerns_alternate,
                   dsl_content=config.slack.dsl_content,
                   mask_learner_details=config.delivery.mask_learner_details,
                   administrators=list(getattr(console, "administrators", []) or []))

    # --- people -------------------------------------------------------------------------------
    def _active(self, ids: Iterable[str]) -> list[StaffMember]:
        out = []
        for sid in ids:
            s = self.registers.staff.get(sid)
            if s is not None and s.active and s not in out:
                out.append(s)
        return out

    def _with_role(self, *roles: StaffRole) -> list[StaffMember]:
        return [s for s in self.registers.staff.values() if s.active and s.role in roles]

    def staff(self, staff_id: str) -> StaffMember | None:
        s = self.registers.staff.get(staff_id)
        return s if s is not None and s.active else None

    def by_slack_id(self, slack_user_id: str) -> StaffMember | None:
        """The active member of staff with this Slack member id."""
        for s in self.registers.staff.values():
            if s.slack_user_id == slack_user_id and s.active:
                return s
        return None

    def dsl_team(self) -> list[StaffMember]:
        """The DSL first, then the deputies (the escalation order)."""
        return self.registers.safeguarding_contacts()

    def dsl(self) -> list[StaffMember]:
        return self._with_role(StaffRole.dsl)

    def case_managers(self) -> list[StaffMember]:
        """Who handles concerns about staff: ``[routing] staff_concerns_to``."""
        if isinstance(self.staff_concerns_to, str):
            if self.staff_concerns_to == "dsl":
                return self.dsl() or self._with_role(StaffRole.deputy_dsl)
            return self._active([self.staff_concerns_to])
        return self._active(self.staff_concerns_to)

    def alternates(self) -> list[StaffMember]:
        """Who handles a concern about the case manager or the DSL."""
        configured = self._active(self.staff_concerns_alternate)
        if configured:
            return configured
        return (self._with_role(StaffRole.chair_of_governors)
                or self._with_role(StaffRole.headteacher))

    def is_administrator(self, staff: StaffMember) -> bool:
        return staff.role == StaffRole.it_admin or staff.staff_id in self.administrators

    def oversees(self, staff: StaffMember) -> bool:
        """May read the service's state over every flag (counts by status, notifications
        waiting) and the audit log: the IT administrators, the DSL team and those who handle
        concerns about staff (the case manager, the alternate). Anyone else learns only of
        their own flags: even a count of all flags tells a member of staff that a concern
        (perhaps about them) was raised."""
        return staff.active and (self.is_administrator(staff) or self.handles_cases(staff))

    def handles_cases(self, staff: StaffMember) -> bool:
        """The DSL team and those who handle concerns about staff (the case manager, the
        alternate): they read statistics over every case (the governors' report: flags by
        concern and month, removals and their reasons). An account manager does not: a count
        of concerns about staff in a month can be a concern about the reader."""
        handlers = {s.staff_id for s in [*self.dsl_team(), *self.case_managers(),
                                         *self.alternates()]}
        return staff.active and staff.staff_id in handlers

    def managers(self, account: str) -> list[StaffMember]:
        return [s for s in self.registers.managers(account) if s.active]

    # --- who receives a finding ---------------------------------------------------------------
    def subjects(self, finding: FindingFacts, flag: FlagFacts) -> set[str]:
        """The staff a finding is about: the item's author if staff, any it names, and for a
        case (safeguarding, staff conduct) any member of staff the item's text names: a
        disclosure that names a teacher, a deputy or the DSL never reaches them."""
        out = finding.staff_named
        if flag.staff_author:
            out.add(flag.staff_author)
        if flag.text and _is_case(finding):
            out |= self.staff_mentioned(flag.text)
        return out

    def staff_mentioned(self, text: str) -> frozenset[str]:
        """The staff ids a text names: by full name, by title and surname ("Mr Reid"), by a
        personal handle or a Slack mention, whatever the case and spacing. Remembered per text
        (by its digest, not the text) for as long as these registers: the console's queue
        judges every flag it counts at each request."""
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        found = self._mentioned.get(key)
        if found is not None:
            return found
        if self._names is None:
            self._names = _StaffNames(self.registers.staff.values())
        found = self._names.named(text)
        if len(self._mentioned) >= MENTIONS_REMEMBERED:
            self._mentioned.clear()  # a bound, not a cache policy: judged again if needed
        self._mentioned[key] = found
        return found
        if self._names is None:
            self._names = _StaffNames(self.registers.staff.values())
        found = self._names.named(text)
        if len(self._mentioned) >= 4096:
            self._mentioned.clear()  # a bound, not a cache policy: judged again if needed
        self._mentioned[text] = found
        return found

    def recipients(self, route: Route, flag: FlagFacts,
                   finding: FindingFacts | None = None) -> list[StaffMember]:
        """The people ``route`` reaches for ``finding`` of ``flag``: never its subjects."""
        subjects = self.subjects(finding, flag) if finding is not None else (
            {flag.staff_author} if flag.staff_author else set())

        def without(people: Iterable[StaffMember]) -> list[StaffMember]:
            return [p for p in people if p.staff_id not in subjects]

        if route == Route.dsl:
            # when the whole DSL team is named, whoever takes a concern about the DSL does
            return without(self.dsl_team()) or without(self.alternates())
        if route in (Route.case_manager, Route.case_digest):
            conflicted = {s.staff_id for s in [*self.case_managers(), *self.dsl()]}
            if subjects & conflicted:
                people = without(self.alternates())
                return people or without(self._with_role(StaffRole.deputy_dsl))
            handlers = without(self.case_managers())
            if handlers and route == Route.case_manager and flag.case_escalated:
                # not acknowledged in time: the alternate has it as well (KCSIE part 4)
                handlers += [p for p in without(self.alternates()) if p not in handlers]
            return handlers or without(self.alternates())
        if route in CONTENT_ROUTES:
            managers = self.managers(flag.account)
            people = without(managers)
            if managers and not people and route == Route.account_managers:
                # the only managers are the subject: the case manager decides instead
                return self.recipients(Route.case_manager, flag, finding)
            return people
        return []

    def audience(self, flag: FlagFacts) -> dict[str, Entitlement]:
        """Everyone who receives something of ``flag``, with what and how (one entry per person:
        the union of their routes), in a stable order: case audiences first."""
        routes_of: dict[str, set[Route]] = {}
        seen: dict[str, list[FindingFacts]] = {}
        people: dict[str, StaffMember] = {}
        for finding in sorted(flag.findings, key=lambda f: -int(f.severity)):
            routes = [finding.route]
            if flag.escalated and finding.route in CONTENT_ROUTES:
                routes.append(Route.dsl)  # the managers handed it over: the DSL team sees it
            for route in routes:
                for person in self.recipients(route, flag, finding):
                    people.setdefault(person.staff_id, person)
                    routes_of.setdefault(person.staff_id, set()).add(route)
                    mine = seen.setdefault(person.staff_id, [])
                    if finding not in mine:
                        mine.append(finding)
        out: dict[str, Entitlement] = {}
        order = sorted(people, key=lambda sid: (not (routes_of[sid] & CASE_ROUTES), sid))
        for sid in order:
            out[sid] = self._entitlement(people[sid], flag, frozenset(routes_of[sid]),
                                         tuple(seen[sid]))
        return out

    def entitlement(self, staff: StaffMember | str, flag: FlagFacts) -> Entitlement:
        """What ``staff`` receives of ``flag`` and may do (empty if nothing)."""
        person = self.staff(staff) if isinstance(staff, str) else staff
        if person is None:
            return Entitlement(StaffMember(staff_id=str(staff), name=str(staff), active=False))
        found = self.audience(flag).get(person.staff_id)
        return found or Entitlement(person)

    def for_reader(self, staff_id: str, flag: FlagFacts, route: Route) -> Entitlement:
        """What a message already sent to ``staff_id`` about ``flag`` may show now, each time
        it is shown again (an update after a decision, a change of the item, an escalation).

        Their own entitlement, over the current registers: someone who no longer receives the
        flag (a manager moved off the account, a deputy or DSL who stepped down, someone who
        left, a person the flag is now about) gets nothing more of it. The one exception is
        someone an unacknowledged flag is escalated to (only the escalation sends them a
        message about it): the safeguarding contacts beyond the DSL team (``[slack]
        escalate_to``, the out-of-hours rota) read it as the DSL team does, the alternate a
        concern about staff as its case manager does; never a finding about themselves."""
        person = self.staff(staff_id)
        if person is None:
            return Entitlement(StaffMember(staff_id=staff_id, name=staff_id, active=False))
        mine = self.entitlement(person, flag)
        if mine.receives:
            return mine
        if ((route == Route.dsl and person.staff_id in self.escalation_contacts)
                or (route == Route.case_manager and person in self.alternates())):
            return self.for_route(route, flag, person)
        return mine

    @staticmethod
    def shared(entitlements: Sequence[Entitlement]) -> Entitlement:
        """What a conversation several people share may show (a group DM: nobody can be taken
        out of it): the least of their entitlements when every other one includes it (its
        findings, its detail, the child's identity); nothing when one of them may no longer see
        it (they left the role, or it is now about them) or their views are not nested."""
        if not entitlements:
            raise ValueError("a conversation has at least one member")
        least = min(entitlements, key=lambda e: (len(e.findings), _DETAIL_ORDER[e.detail],
                                                 e.child_identity))
        for e in entitlements:
            if not (least.finding_keys <= e.finding_keys
                    and _DETAIL_ORDER[least.detail] <= _DETAIL_ORDER[e.detail]
                    and (e.child_identity or not least.child_identity)):
                return Entitlement(entitlements[0].staff)
        return least if least.receives else Entitlement(entitlements[0].staff)

    def for_route(self, route: Route, flag: FlagFacts,
                  staff: StaffMember | None = None) -> Entitlement:
        """What the audience of ``route`` as a whole may see of ``flag`` (a private channel for
        that route, or someone the escalation rules add to it, e.g. the on-call rota). Never a
        finding about ``staff``."""
        person = staff or StaffMember(staff_id=f"route:{route.value}", name=route.value)
        findings = tuple(f for f in flag.findings
                         if (f.route == route or (flag.escalated and route == Route.dsl
                                                  and f.route in CONTENT_ROUTES))
                         and person.staff_id not in self.subjects(f, flag))
        if not findings:
            return Entitlement(person)
        return self._entitlement(person, flag, frozenset({route}), findings)

    def for_operator(self, flag: FlagFacts) -> Entitlement:
        """What the operator at the command line sees of ``flag`` without saying who they are
        (``flags list``/``flags show`` without ``--as``). They run the service, as the IT
        administrator does, and hold no role on the flag (docs/routing.md, "The command line"):

        * a **case** (any safeguarding or staff-conduct finding, any finding for the DSL team or
          the case manager, or content the managers escalated): none of its findings, only
          that it exists, for whom, its state and delivery (``note`` says whose it is);
        * **content only** (a learner named in a post, an unapproved photo...): its findings as
          the account's managers see them (masked, never the child's identity), no actions.
        """
        person = StaffMember(staff_id="operator", name="the operator", active=False)
        if flag.escalated or any(_is_case(f) for f in flag.findings):
            whose = sorted({CASE_AUDIENCE[f.route] for f in flag.findings
                            if f.route in CASE_AUDIENCE} or {CASE_AUDIENCE[Route.dsl]})
            return Entitlement(person, note=OPERATOR_NOTE.format(whose=" and the ".join(whose)))
        findings = tuple(f for f in flag.findings if f.route != Route.record_only)
        if not findings:
            return Entitlement(person)
        detail = Detail.masked if self.mask_learner_details else Detail.excerpt
        if any(f.explicit_image for f in findings):
            detail = Detail.none
        return Entitlement(person, frozenset({Route.account_managers}), findings, detail)

    def _entitlement(self, person: StaffMember, flag: FlagFacts, routes: frozenset[Route],
                     findings: tuple[FindingFacts, ...]) -> Entitlement:
        case = bool(routes & CASE_ROUTES)
        if routes & {Route.dsl, Route.case_manager}:
            detail = self.dsl_content
        elif Route.case_digest in routes:
            detail = Detail.summary
        elif Route.account_managers in routes:
            detail = Detail.masked if self.mask_learner_details else Detail.excerpt
        else:
            detail = Detail.summary
        if any(f.explicit_image for f in findings):
            detail = Detail.none  # never shown, to anyone
        keys = {f.key for f in findings}
        elsewhere = [f for f in flag.findings if f.key not in keys
                     and f.route != Route.record_only]
        note = None
        if elsewhere:
            if not case and any(f.route == Route.dsl for f in elsewhere):
                note = DSL_NOTE
                # the post holds a safeguarding part: none of its text (it may be the
                # disclosure itself), only the managers' own reasons and the note
                detail = Detail.none
            else:
                note = ELSEWHERE_NOTE
        return Entitlement(person, routes, findings, detail, case,
                           self._actions(person, flag, routes, findings), note)

    def _actions(self, person: StaffMember, flag: FlagFacts, routes: frozenset[Route],
                 findings: tuple[FindingFacts, ...]) -> frozenset[Action]:
        actions = {Action.view_case}
        if flag.closed:
            return frozenset(actions | ({Action.export} if routes & CASE_ROUTES else set()))
        undecided = flag.removal is None
        if routes & CONTENT_ROUTES and not flag.escalated:
            if undecided:
                actions |= {Action.remove, Action.keep}
                if not flag.has_case:
                    actions.add(Action.escalate)
            if any(f.category == Category.unapproved_photo and f.detail.get("sha256")
                   for f in findings):
                actions.add(Action.preapprove_photo)
        if Route.dsl in routes:
            actions |= {Action.record_outcome, Action.assign, Action.export}
            if not flag.acknowledged:
                actions.add(Action.acknowledge)
            # the DSL team decides on the post when the managers handed it over, or when it is
            # content serious enough to come to them (severity 4-5); a disclosure's removal is
            # the managers' (their message says "hide/remove this post")
            if undecided and (flag.escalated or any(
                    f.route == Route.dsl and f.category != Category.safeguarding
                    for f in findings)):
                actions.add(Action.remove)
                if flag.escalated:
                    actions.add(Action.keep)
        if routes & {Route.case_manager, Route.case_digest}:
            actions |= {Action.record_outcome, Action.export}
            if not flag.acknowledged:
                actions.add(Action.acknowledge)
        return frozenset(actions)

    # --- may this person do this --------------------------------------------------------------
    def may(self, staff: StaffMember | str, action: Action | str, flag: FlagFacts) -> bool:
        try:
            self.check(staff, action, flag)
        except Refused:
            return False
        return True

    def check(self, staff: StaffMember | str | None, action: Action | str, flag: FlagFacts
              ) -> StaffMember:
        """The member of staff, if they may take ``action`` on ``flag``; else :class:`Refused`
        with a reason written for them."""
        person = (self.staff(staff) if isinstance(staff, str) else
                  staff if staff is not None and staff.active else None)
        if person is None:
            raise Refused("You are not in the staff register as an active member of staff, so "
                          "you cannot act on flags.")
        action = Action(action)
        mine = self.audience(flag).get(person.staff_id)
        if mine is not None and action in mine.actions:
            return person
        raise Refused(self._why_not(person, action, flag, mine))

    def _why_not(self, person: StaffMember, action: Action, flag: FlagFacts,
                 mine: Entitlement | None) -> str:
        ref = f"Flag #{flag.flag_id}" if flag.flag_id is not None else "This flag"
        if mine is None and self.is_administrator(person):
            return "IT administrators see that flags exist, never their content."
        if mine is None:
            # nothing of it is theirs: say nothing about it (its kind, its state), the same
            # words as for a flag that does not exist; a forged click must not tell a member
            # of staff that a concern (perhaps about them) was raised
            return NOT_YOURS.format(flag_id=flag.flag_id if flag.flag_id is not None else "")
        if flag.closed and action not in (Action.view_case, Action.export):
            return f"{ref} was already decided ({flag.status})."
        content = mine is not None and bool(mine.routes & CONTENT_ROUTES)
        if action in (Action.remove, Action.keep, Action.escalate, Action.preapprove_photo):
            if flag.escalated:
                return (f"{ref} was escalated to the DSL: only the DSL and deputies may decide "
                        "on it now.")
            if content and flag.removal is not None:
                return f"{ref}: the post was already {flag.removal}."
            if content and action == Action.escalate:
                return f"{ref} is already with the DSL."
            if content:
                return f"{ref}: there is no photo to pre-approve."
            return f"Only the designated managers of {flag.account} may decide on its removals."
        if mine is not None and action == Action.acknowledge and flag.acknowledged:
            return f"{ref} was already acknowledged."
        if any(f.route == Route.dsl for f in flag.findings) or flag.escalated:
            return f"{ref} is a safeguarding flag: only the DSL and deputies may act on it."
        if flag.has_case:
            return (f"{ref} is a concern about a member of staff: only its case manager may act "
                    "on it.")
        return "Only the DSL and deputies may act on safeguarding flags."

    # --- what the DSL needs to act ------------------------------------------------------------
    def children(self, flag: FlagFacts) -> list[ChildIdentity]:
        """The learners the flag is about, as the DSL and the case manager see them."""
        out = []
        for lid in learners_named(flag):
            lr = self.registers.learners.get(lid)
            if lr is None:
                continue
            out.append(self.child(lr))
        return out

    def child(self, lr: Learner) -> ChildIdentity:
        tutor = self.registers.staff.get(lr.tutor) if lr.tutor else None
        return ChildIdentity(lr.learner_id, lr.full_name, lr.year_group, lr.programme,
                             tutor.name if tutor else lr.tutor)

    def inform_roles(self, flag: FlagFacts) -> list[InformRole]:
        """The people a removal must be explained to, by role only (no names, no contacts):
        each learner named, their parents/carers, an apprentice's employer."""
        out: list[InformRole] = []
        learners = [lid for lid in learners_named(flag) if lid in self.registers.learners]
        many = len(learners) > 1
        for n, lid in enumerate(learners, start=1):
            lr = self.registers.learners[lid]
            who = f"learner {n} of {len(learners)}" if many else "the learner"
            out.append(InformRole(f"learner:{n}", "learner", lid,
                                  f"{who[0].upper()}{who[1:]} named (from the register)"))
            if lr.guardian_contacts:
                out.append(InformRole(f"guardian:{n}", "guardian", lid,
                                      f"{who[0].upper()}{who[1:]}'s parent/carer (from the "
                                      "register)"))
            if lr.employer:
                out.append(InformRole(f"employer:{n}", "employer", lid,
                                      f"{who[0].upper()}{who[1:]}'s employer (from the "
                                      "register)"))
        return out

    def resolve_contacts(self, role: InformRole) -> list[str]:
        """The contacts behind an :class:`InformRole`, from the register (at decision time)."""
        lr = self.registers.learners.get(role.learner_id)
        if lr is None:
            return []
        if role.relation == "learner":
            return [lr.email or (lr.handles[0] if lr.handles else "no contact in the register")]
        if role.relation == "guardian":
            return list(lr.guardian_contacts)
        if role.relation == "employer":
            return [lr.employer] if lr.employer else []
        return []

    def photo_consent(self, flag: FlagFacts) -> list[tuple[str, bool]]:
        """(learner label, has consent) for each learner tagged or named in a photo finding,
        labelled without names (for the managers' masked message)."""
        ids: list[str] = []
        for f in flag.findings:
            if f.category != Category.unapproved_photo:
                continue
            for key in ("learners_without_consent", "learners_with_consent"):
                for lid in f.detail.get(key) or []:
                    if str(lid) not in ids:
                        ids.append(str(lid))
        out = []
        for n, lid in enumerate(ids, start=1):
            lr = self.registers.learners.get(lid)
            out.append((f"Learner {n} ({lid})", bool(lr and lr.photo_consent)))
        return out

