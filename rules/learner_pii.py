"""``learner_pii``: identifying details of learners on the official accounts.

Policy duty: no identifying details of learners (name, phone number...) are posted on the
organisation's official accounts (P1 "Managing our online presence"; P2 "Information security").

What is matched (docs/learner-pii.md has the whole rule in plain words):

* from the learners' register: full names in any order and case, with hyphens, apostrophes
  (straight, curly or left out) and possessives; preferred names, aliases and common short forms
  with the surname; handles and hashtags (``@maisie.fb``, ``#JaydenPrice``); learners' emails;
  learners tagged in photos (``[scope] photo_tags``); a learner's register date of birth;
* not tied to the register: UK phone numbers (validated with ``phonenumbers``), email addresses,
  valid UK postcodes, street addresses and dates of birth (a date near "born", "DOB"...);
* weak identifiers that count only together with another one: "Jayden P." and a first name
  alone (see ``docs/learner-pii.md``, "When a first name counts").

Staff names are never learner details; a name shared by a learner and a staff member is the staff
member's when the register context says so (a title such as "Mr", the staff member wrote the item,
a staff word such as "tutor" nearby).

All register names go into ONE Aho-Corasick automaton (pyahocorasick) built once per
``RegisterIndex`` and kept in ``ctx.registers.derived``; word boundaries are checked on each hit.
Explanations and logs never repeat the matched text: evidence is character spans plus the
register entry ("learner:L001").
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

import ahocorasick
import phonenumbers

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, ItemKind, Person, Role, normalise_handle
from rules.base import DetectionContext, DetectorBase
from rules.normalise import fold, normalise, unleet
from rules.packs import LearnerPiiPack, PackError

if TYPE_CHECKING:
    from governance_bot.config import Config
    from governance_bot.registers import Learner, RegisterIndex

__all__ = [
    "LearnerMatcher",
    "LearnerPiiDetector",
    "PiiSettings",
    "fold",
    "is_valid_postcode",
]

log = logging.getLogger(__name__)

RULE_ID = "learner_pii"
_INSTANCES = itertools.count(1)  # each detector (its settings) keeps its own matcher

# ---------------------------------------------------------------------------------------------
# Text: obfuscation is undone by the shared normaliser (rules/normalise.py: invisible characters,
# look-alike letters, full-width letters, leetspeak, spaced letters, "[at]" emails), then folded
# (lowercase, one apostrophe, one hyphen, accents off) without changing length; spans found are
# mapped back to the original text at the end.
# ---------------------------------------------------------------------------------------------


_MULTISPACE = re.compile(r" {2,}")
# a letter written three or more times in a row ("Jaaayden", "Priiiice"): no name has that
_STRETCHED = re.compile(r"([^\W\d_])\1{2,}", re.IGNORECASE)


def _collapse(text: str, runs: re.Pattern[str]) -> tuple[str, list[int]]:
    """``text`` with each match of ``runs`` cut to its first character, and a map from the
    result's offsets to ``text``'s (with one more entry, for the end)."""
    parts: list[str] = []
    offsets: list[int] = []
    pos = 0
    for m in runs.finditer(text):
        parts.append(text[pos:m.start() + 1])
        offsets.extend(range(pos, m.start() + 1))
        pos = m.end()
    parts.append(text[pos:])
    offsets.extend(range(pos, len(text) + 1))
    return "".join(parts), offsets


def _unstretch(text: str) -> tuple[str, list[int]]:
    """``text`` with each letter written three or more times in a row written once."""
    return _collapse(text, _STRETCHED)


def _squeeze(folded: str) -> tuple[str, list[int] | None]:
    """Collapse runs of spaces; returns the text and a map from its offsets to the original's
    (None when nothing changed)."""
    if "  " not in folded:
        return folded, None
    return _collapse(folded, _MULTISPACE)


# ---------------------------------------------------------------------------------------------
# Settings from the pack
# ---------------------------------------------------------------------------------------------

_KIND_LABEL = {
    "full_name": "full name",
    "handle": "handle",
    "hashtag": "hashtag",
    "email": "email address",
    "photo_tag": "photo tag",
    "date_of_birth": "date of birth",
    "name_with_initial": "first name and surname initial",
    "first_name": "first name",
    "phone": "phone number",
    "postcode": "postcode",
    "street_address": "street address",
}
_OWN_NAME_KINDS = ("full_name", "hashtag", "handle", "first_name", "name_with_initial",
                   "photo_tag")
_GENERIC_KINDS = ("phone", "email", "postcode", "street_address", "date_of_birth")


@dataclass(slots=True)
class PiiSettings:
    """Everything the detector reads from ``rules/packs/learner_pii.toml``."""

    policy_duty: str
    severity: Severity
    severity_unattributed: Severity
    kinds: frozenset[str]
    visibilities: frozenset[str]
    authors: frozenset[str]
    exempt_learner_staff_conversations: bool
    unattributed_authors: frozenset[str]
    unattributed_always: frozenset[str]
    flag_learners_own_names: bool
    photo_tags: bool
    scores: dict[str, float]
    ambiguous_words: frozenset[str]
    staff_titles: tuple[str, ...]
    staff_words: tuple[str, ...]
    staff_word_window: int
    short_forms: dict[str, tuple[str, ...]]
    class_re: re.Pattern[str]
    country_codes: frozenset[int]
    default_region: str
    allow_organisation_domains: bool
    dob_context_re: re.Pattern[str]
    dob_words: tuple[str, ...]
    dob_window: int
    postcode_re: re.Pattern[str]
    postcode_full_re: re.Pattern[str]
    postcode_areas: frozenset[str]
    address_re: re.Pattern[str]
    street_types: frozenset[str]
    lowercase_street_types: frozenset[str]
    address_stopwords: frozenset[str]
    allow_phones: frozenset[str]
    allow_emails: frozenset[str]
    allow_postcodes: frozenset[str]
    allow_addresses: frozenset[str]
    must_catch: list[dict[str, Any]] = field(default_factory=list)
    must_not_catch: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | LearnerPiiPack) -> PiiSettings:
        """Read from the pack (``rules/packs/learner_pii.toml``) through its typed model
        (:class:`rules.packs.LearnerPiiPack`: defaults there, a bad key is a
        :class:`PackError` naming the file and the key); patterns compiled here, once."""
        model = LearnerPiiPack.load(pack)
        where = model.path

        def regex(key: str, source: str, flags: int = 0) -> re.Pattern[str]:
            try:
                return re.compile(source, flags)
            except re.error as exc:
                raise PackError(f"{where}: {key}: not a valid regular expression: {exc}") from None

        short = {fold(formal): tuple(fold(f) for f in forms)
                 for formal, forms in model.names.short_forms.items()}
        class_re = regex("first_names.class_patterns",
                         "|".join(f"(?:{p})" for p in model.first_names.class_patterns)
                         or r"(?!x)x", re.I)
        words = sorted(model.dates_of_birth.context_words, key=len, reverse=True)
        dob_context_re = regex(
            "dates_of_birth.context_words",
            r"(?<![a-z])(?:" + "|".join(re.escape(fold(w)) for w in words) + r")(?![a-z])",
        )
        grammar = model.postcodes.grammar
        postcode_re = regex("postcodes.grammar", rf"(?<![A-Za-z0-9])({grammar})(?![A-Za-z0-9])",
                            re.I)
        postcode_full_re = regex("postcodes.grammar", grammar)
        types = list(model.addresses.street_types)
        lower_types = list(model.addresses.lowercase_street_types)
        every_type = sorted({t.lower() for t in [*types, *lower_types]}, key=len, reverse=True)
        # one case-insensitive pass; which case counts is decided per match (_addresses)
        address_re = regex(
            "addresses.street_types",
            r"\d{1,3}[a-z]?,?\s+((?:[a-z][a-z'’-]+\s+){1,3})("
            + ("|".join(re.escape(t) for t in every_type) or r"(?!x)x") + r")\b\.?",
            re.I,
        )
        scope = model.scope
        return cls(
            policy_duty=model.policy_duty,
            severity=model.severity,
            severity_unattributed=model.severity_unattributed,
            kinds=frozenset(scope.kinds),
            visibilities=frozenset(scope.visibilities),
            authors=frozenset(r.value for r in scope.authors),
            exempt_learner_staff_conversations=scope.exempt_learner_staff_conversations,
            flag_learners_own_names=scope.flag_learners_own_names,
            photo_tags=scope.photo_tags,
            unattributed_authors=frozenset(r.value for r in scope.unattributed_details_from),
            unattributed_always=frozenset(scope.unattributed_details_always),
            scores={k: float(v) for k, v in model.scores.items()},
            ambiguous_words=frozenset(fold(w) for w in model.names.ambiguous_words),
            staff_titles=tuple(fold(w) for w in model.names.staff_titles),
            staff_words=tuple(fold(w) for w in model.names.staff_words),
            staff_word_window=model.names.staff_word_window,
            short_forms=short,
            class_re=class_re,
            country_codes=frozenset(model.phones.country_codes),
            default_region=model.phones.default_region,
            allow_organisation_domains=model.emails.allow_organisation_domains,
            dob_context_re=dob_context_re,
            dob_words=tuple(fold(w) for w in words),
            dob_window=model.dates_of_birth.context_window,
            postcode_re=postcode_re,
            postcode_full_re=postcode_full_re,
            postcode_areas=frozenset(a.upper() for a in model.postcodes.areas),
            address_re=address_re,
            street_types=frozenset(types),
            lowercase_street_types=frozenset(t.lower() for t in lower_types),
            address_stopwords=frozenset(model.addresses.lowercase_stopwords),
            allow_phones=frozenset(
                filter(None, (_e164(p, "GB") for p in model.allow.phones))),
            allow_emails=frozenset(e.casefold() for e in model.allow.emails),
            allow_postcodes=frozenset(_compact(p) for p in model.allow.postcodes),
            allow_addresses=frozenset(
                " ".join(fold(a).split()) for a in model.allow.addresses),
            must_catch=[dict(e) for e in model.must_catch],
            must_not_catch=[dict(e) for e in model.must_not_catch],
        )

    def score(self, kind: str) -> float:
        return self.scores.get(kind, self.scores.get("unattributed", 0.7))


def _compact(postcode: str) -> str:
    return "".join(postcode.split()).upper()


def _e164(number: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=8192)
def _phone_number(candidate: str, region: str, country_codes: frozenset[int]) -> str | None:
    """The E.164 form of ``candidate`` if it is a phone number of one of ``country_codes``.

    Cached: the same numbers (the office, a club secretary) turn up again and again."""
    digits = sum(c.isdigit() for c in candidate)
    if not 9 <= digits <= 15:
        return None
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if number.country_code not in country_codes:
        return None
    if not phonenumbers.is_valid_number(number):
        # Ofcom's ranges for drama (07700 900xxx, 01632 960xxx, 020 7946 0xxx) are not "valid"
        # numbers, but to a reader they are phone numbers all the same
        national = str(number.national_number)
        if len(national) != 10 or national[0] not in "1237" or (
            not phonenumbers.is_possible_number(number)
        ):
            return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def is_valid_postcode(text: str, grammar: str | None = None) -> bool:
    """Whether ``text`` is a UK postcode by the pack's grammar (with or without the space)."""
    if grammar is None:
        from rules.packs import load_pack

        grammar = LearnerPiiPack.load(load_pack(RULE_ID)).postcodes.grammar
    return re.fullmatch(grammar, text.strip().upper()) is not None


# ---------------------------------------------------------------------------------------------
# The register matcher: one automaton for every learner name form, handle and email
# ---------------------------------------------------------------------------------------------

_NAME, _HANDLE, _EMAIL = 0, 1, 2
_WORD_TOKEN = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
# "Jayden P." / "Jayden P": a capitalised word, one space, a capital letter standing alone
_INITIAL_AFTER = re.compile(r" ([A-Z])(?:\.|(?![\w'’-]))")


def _initial_forms(text: str) -> Iterable[tuple[int, int, str]]:
    """(start, end, initial) of each word followed by a capital letter standing alone."""
    for match in _INITIAL_AFTER.finditer(text):
        end = match.start()
        if end == 0 or not text[end - 1].isalpha():
            continue
        start = end
        while start > 0 and (text[start - 1].isalpha() or text[start - 1] in "'’-"):
            start -= 1
        yield start, end, match.group(1)


def _token_variants(token: str) -> set[str]:
    """Ways a name part is written: "o'connell" -> {"o'connell", "oconnell", "o connell"}."""
    token = " ".join(fold(token).split())
    out = {token}
    for sep in ("'", "-", " "):
        for t in list(out):
            if sep in t:
                out.add(t.replace(sep, ""))
                out.add(t.replace(sep, " "))
                if sep == " ":
                    out.add(t.replace(sep, "-"))
    return {" ".join(t.split()) for t in out if t.strip()}


@dataclass(slots=True)
class _Key:
    kind: int
    length: int
    learners: set[str]
    label: str  # "full_name", "hashtag", "handle", "email"
    capital_offsets: set[tuple[int, int]] = field(default_factory=set)
    staff: set[str] = field(default_factory=set)
    loose: bool = False  # a handle distinctive enough to match without "@"


class LearnerMatcher:
    """Register-derived lookups, built once per ``RegisterIndex`` and settings."""

    def __init__(self, registers: RegisterIndex, settings: PiiSettings):
        self.settings = settings
        keys: dict[str, _Key] = {}
        staff_keys = self._staff_name_keys(registers, settings)
        self.first_names: dict[str, set[str]] = {}
        self.surname_initial: dict[str, str] = {}
        self.dob: dict[date, set[str]] = {}
        self.learner_domains: set[str] = set()
        self.learner_emails: set[str] = set()
        for learner in registers.iter_learners():
            lid = learner.learner_id
            for form, caps in self._name_forms(learner, settings):
                entry = keys.get(form)
                if entry is None:
                    label = "hashtag" if " " not in form and "'" not in form else "full_name"
                    entry = keys[form] = _Key(_NAME, len(form), set(), label)
                entry.learners.add(lid)
                entry.capital_offsets |= caps
                entry.staff |= staff_keys.get(form, set())
            for first in self._first_forms(learner, settings):
                for variant in _token_variants(first):
                    self.first_names.setdefault(variant, set()).add(lid)
            self.surname_initial[lid] = fold(learner.last_name).lstrip("'")[:1]
            if learner.date_of_birth:
                self.dob.setdefault(learner.date_of_birth, set()).add(lid)
            emails = [e for e in [learner.email, *learner.handles] if e and "@" in e.strip("@")]
            for email in emails:
                key = email.strip().casefold()
                entry = keys.setdefault(key, _Key(_EMAIL, len(key), set(), "email"))
                entry.learners.add(lid)
                self.learner_domains.add(key.rpartition("@")[2])
                self.learner_emails.add(key)
            for handle in learner.handles:
                if "@" in handle.strip().lstrip("@"):
                    continue
                key = normalise_handle(handle)
                if len(key) < 3:
                    continue
                entry = keys.setdefault(key, _Key(_HANDLE, len(key), set(), "handle"))
                entry.learners.add(lid)
                entry.loose = bool(re.search(r"[0-9._]", key)) and len(key) >= 5
        self.automaton: Any = ahocorasick.Automaton()
        for key, entry in keys.items():
            self.automaton.add_word(key, entry)
        if keys:
            self.automaton.make_automaton()
        self.has_keys = bool(keys)
        self.staff_emails = {
            e.casefold()
            for s in registers.registers.staff
            for e in [s.email, *s.personal_handles]
            if e and "@" in e.strip("@")
        }
        domains = {s.email.casefold().rpartition("@")[2] for s in registers.registers.staff
                   if s.email}
        domains |= {a.handle.casefold().rpartition("@")[2] for a in registers.accounts.values()
                    if "@" in a.handle.strip("@")}
        self.org_domains = domains - self.learner_domains
        # a learner's birth year written in full, or as the two-digit year of a date
        years = sorted({d.year for d in self.dob})
        self.dob_year_re: re.Pattern[str] | None = re.compile(
            r"(?<!\d)(?:" + "|".join(str(y) for y in years) + r")(?!\d)|[/.-](?:"
            + "|".join(f"{y % 100:02d}" for y in years) + r")(?!\d)") if years else None

    @staticmethod
    def _first_forms(learner: Learner, settings: PiiSettings) -> set[str]:
        firsts = {learner.first_name}
        if learner.preferred_name:
            firsts.add(learner.preferred_name)
        for name in list(firsts):
            firsts.update(settings.short_forms.get(fold(name), ()))
        return {fold(f) for f in firsts if f.strip()}

    @classmethod
    def _name_forms(cls, learner: Learner,
                    settings: PiiSettings) -> Iterable[tuple[str, set[tuple[int, int]]]]:
        """Every written form of the learner's name with the spans that need a capital letter."""
        lasts = _token_variants(learner.last_name)
        for first in cls._first_forms(learner, settings):
            for f in _token_variants(first):
                for last in lasts:
                    yield from cls._joined(f, last, settings)
        for alias in learner.aliases:
            words = fold(alias).split()
            if len(words) >= 2:
                yield " ".join(words), set()
                yield "".join(w.replace("'", "").replace("-", "") for w in words), set()

    @staticmethod
    def _joined(first: str, last: str,
                settings: PiiSettings) -> Iterable[tuple[str, set[tuple[int, int]]]]:
        # everyday words on both sides ("will turner"): only with capitals ("Will Turner")
        amb_first = amb_last = first in settings.ambiguous_words and (
            last in settings.ambiguous_words)
        # forward: "jayden price", reversed: "price jayden" / "price, jayden"
        for sep in (" ",):
            caps: set[tuple[int, int]] = set()
            if amb_first:
                caps.add((0, len(first)))
            if amb_last:
                caps.add((len(first) + len(sep), len(last)))
            yield f"{first}{sep}{last}", caps
        for sep in (" ", ", "):
            caps = set()
            if amb_last:
                caps.add((0, len(last)))
            if amb_first:
                caps.add((len(last) + len(sep), len(first)))
            yield f"{last}{sep}{first}", caps
        # joined up as in hashtags, handles and email local parts: "jaydenprice", "jayden.price"
        if " " not in first and " " not in last:
            f, la = first.replace("'", "").replace("-", ""), last.replace("'", "").replace("-", "")
            if len(f) + len(la) >= 6:
                yield f + la, set()
                yield f + "_" + la, set()
                yield f + "." + la, set()

    @staticmethod
    def _staff_name_keys(registers: RegisterIndex, settings: PiiSettings) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for s in registers.registers.staff:
            words = fold(s.name).split()
            if len(words) < 2:
                continue
            firsts = {words[0], *settings.short_forms.get(words[0], ())}
            for first in firsts:
                for last in _token_variants(" ".join(words[1:])) | _token_variants(words[-1]):
                    for form, _ in LearnerMatcher._joined(first, last, settings):
                        out.setdefault(form, set()).add(s.staff_id)
        return out


# ---------------------------------------------------------------------------------------------
# Finding the details in one item
# ---------------------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")
# a run of digits; its start is checked (and widened over "+" or "(") in _phones
_PHONE_CANDIDATE = re.compile(r"\d[\d \-().]{7,40}\d(?![\w/])")
# digits written as words or letters ("oh seven nine one two...", "o7912", "0791two345678"): a
# number word, or the letter o between or before digits, read as the digit it stands for
_DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "nought": "0", "one": "1", "two": "2",
                "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
                "nine": "9"}
_SPOKEN_DIGIT = re.compile(
    r"(?i)(?:\b(?:(?P<times>double|triple) )?(?P<word>zero|oh|o|nought|one|two|three|four|five|six|"
    r"seven|eight|nine)\b|(?<=\d)(?P<inner>zero|one|two|three|four|five|six|seven|eight|nine|o)"
    r"|(?P<lead>o)(?=\d))")


def _spoken_digits(text: str) -> tuple[str, list[int], list[int]] | None:
    """``text`` with digits written as words or letters read as digits, and for each character
    of the result the original span it came from; None when there are none next to digits (the
    usual text: a lone "one" or "oh" is not a phone number)."""
    hits = list(_SPOKEN_DIGIT.finditer(text))
    if len(hits) < 3 and not any(m.group("inner") or m.group("lead") for m in hits):
        return None
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in hits:
        out.append(text[pos:m.start()])
        starts.extend(range(pos, m.start()))
        ends.extend(range(pos + 1, m.start() + 1))
        word = (m.group("word") or m.group("inner") or m.group("lead")).lower()
        digit = _DIGIT_WORDS[word]
        times = {"double": 2, "triple": 3}.get((m.group("times") or "").lower(), 1)
        out.append(digit * times)
        starts.extend([m.start()] * times)
        ends.extend([m.end()] * times)
        pos = m.end()
    out.append(text[pos:])
    starts.extend(range(pos, len(text)))
    ends.extend(range(pos + 1, len(text) + 1))
    return "".join(out), starts, ends
_INWARD = re.compile(r"[0-9][A-Za-z]{2}(?![A-Za-z0-9])")  # a postcode's inward code
_EMAIL_RE = re.compile(r"(?<![\w.%+'-])[\w.%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}
_MONTH_RE = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
             r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_DATE_NUMERIC = re.compile(r"(?<![\d/.-])(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?(?![\d/-])")
_DATE_ISO = re.compile(r"(?<![\d/.-])(\d{4})-(\d{2})-(\d{2})(?![\d/-])")
_DATE_TEXT = re.compile(
    r"(?<![a-z0-9])(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH_RE
    + r"\.?(?:,?\s+(\d{4}))?(?![a-z0-9])")
_DATE_TEXT_US = re.compile(
    r"(?<![a-z0-9])" + _MONTH_RE + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?(?![a-z0-9])")


@dataclass(slots=True)
class _Detail:
    kind: str
    span: tuple[int, int]
    learners: frozenset[str] = frozenset()  # register learners it belongs to (DOB only)


def _is_word(ch: str) -> bool:
    return ch.isalnum()


def _year(text: str | None) -> int | None:
    if not text:
        return None
    y = int(text)
    if len(text) == 2:
        y += 2000 if y <= date.today().year % 100 else 1900
    return y


class LearnerPiiDetector(DetectorBase):
    """Flags identifying details of learners in what the public or followers can see on the
    official accounts: "no identifying details of learners on official accounts"
    (P1 "Managing our online presence"; P2 "Information security")."""

    rule_id = RULE_ID

    def __init__(self, settings: PiiSettings):
        self.settings = settings
        self._cache_key = f"{RULE_ID}:matcher:{next(_INSTANCES)}"

    @classmethod
    def from_pack(cls, pack: dict[str, Any], config: Config | None = None) -> LearnerPiiDetector:
        return cls(PiiSettings.from_pack(pack))

    # -- the register matcher, cached per RegisterIndex ----------------------------------------

    def matcher(self, registers: RegisterIndex) -> LearnerMatcher:
        cached = registers.derived.get(self._cache_key)
        if cached is None:
            cached = LearnerMatcher(registers, self.settings)
            registers.derived[self._cache_key] = cached
            log.debug("learner_pii: built the name matcher for %d learners",
                      len(registers.learners))
        matcher: LearnerMatcher = cached
        return matcher

    # -- scope --------------------------------------------------------------------------------

    def in_scope(self, item: Item, author: Person, registers: RegisterIndex) -> bool:
        s = self.settings
        # StrEnum members hash and compare as their string values
        if item.kind not in s.kinds or item.visibility not in s.visibilities:
            return False
        if (author.role or Role.unknown) not in s.authors:
            return False
        if s.exempt_learner_staff_conversations and item.kind in (
            ItemKind.direct_message, ItemKind.chat_message, ItemKind.email
        ):
            people = [author, *(registers.resolve_person(p, item.account) if p.role is None
                                else p for p in item.recipients)]
            roles = {p.role for p in people}
            if Role.learner in roles and roles <= {Role.learner, Role.staff, Role.organisation}:
                return False
        return True

    # -- detection ----------------------------------------------------------------------------

    def detect(self, item: Item, ctx: DetectionContext) -> list[Finding]:
        registers = ctx.registers
        author = item.author
        if author.role is None:
            author = registers.resolve_person(author, item.account)
        if not self.in_scope(item, author, registers):
            return []
        # everything below reads the text with obfuscation undone (spans are mapped back to what
        # was written at the end); names are also read with leetspeak undone ("J4yd3n"), numbers
        # and codes without ("SW1A 1AA" is a postcode, not "SWIA")
        norm = normalise(item.text, emails=True, leet=False) if item.text else None
        text = norm.text if norm is not None else item.text
        m = self.matcher(registers)
        # learner id -> identifier kind -> spans
        found: dict[str, dict[str, list[tuple[int, int]]]] = {}
        folded = fold(text) if text else ""
        if text and m.has_keys:
            self._register_matches(text, folded, item, author, m, found)
            letters = unleet(text)
            again = letters != text
            if again:
                self._register_matches(letters, fold(letters), item, author, m, found)
            if _STRETCHED.search(letters):
                again = True
                # letters drawn out for effect ("well done Jaaayden!!"), read once each
                short, back = _unstretch(letters)
                drawn_out: dict[str, dict[str, list[tuple[int, int]]]] = {}
                self._register_matches(short, fold(short), item, author, m, drawn_out)
                for lid, kinds in drawn_out.items():
                    for kind, spans in kinds.items():
                        found.setdefault(lid, {}).setdefault(kind, []).extend(
                            (back[a], back[b - 1] + 1) for a, b in spans)
            if again:  # a name found by more than one reading is one finding
                for kinds in found.values():
                    for kind, spans in kinds.items():
                        kinds[kind] = list(dict.fromkeys(spans))
        for media in item.media if self.settings.photo_tags else ():
            for person in media.tagged:
                identifiers = person.keys()
                for key in identifiers:
                    match = registers.lookup(key)
                    if match and match.role == Role.learner:
                        found.setdefault(match.register_id, {}).setdefault("photo_tag", [])
                        break
        details = self._details(text, folded, m) if text else []
        # weak identifiers: "Jayden P." and first names, counted only with another identifier
        if text and m.first_names:
            self._weak_names(text, folded, item, details, m, found)
        if not found and not details:
            return []
        if norm is not None and norm.starts is not None:
            for kinds in found.values():
                for kind, spans in kinds.items():
                    if kind != "_candidates":
                        kinds[kind] = [norm.span(*sp) for sp in spans]
            for d in details:
                d.span = norm.span(*d.span)
        return self._findings(item, author, found, details)

    def _register_matches(self, text: str, folded: str, item: Item, author: Person,
                          m: LearnerMatcher,
                          found: dict[str, dict[str, list[tuple[int, int]]]]) -> None:
        squeezed, offsets = _squeeze(folded)
        for end, entry in m.automaton.iter(squeezed):
            start = end - entry.length + 1
            stop = end + 1
            if not self._boundary_ok(squeezed, text, offsets, start, stop, entry):
                continue
            a = offsets[start] if offsets else start
            b = (offsets[stop - 1] + 1) if offsets else stop
            if entry.capital_offsets and not all(
                text[(offsets[start + o] if offsets else start + o)].isupper()
                for o, _ in entry.capital_offsets
            ):
                continue
            if entry.staff and self._is_staff_mention(folded, a, b, entry.staff, author):
                continue
            label = entry.label
            if entry.kind == _NAME and label == "hashtag" and not (
                start > 0 and squeezed[start - 1] in "#@"
            ):
                label = "full_name"
            for lid in entry.learners:
                found.setdefault(lid, {}).setdefault(label, []).append((a, b))

    @staticmethod
    def _boundary_ok(s: str, text: str, offsets: list[int] | None, start: int, stop: int,
                     entry: _Key) -> bool:
        """Whether a hit stands as a word of its own (or a camel-case part of a hashtag)."""
        before = s[start - 1] if start > 0 else " "
        before2 = s[start - 2] if start > 1 else " "
        after = s[stop] if stop < len(s) else " "
        after2 = s[stop + 1] if stop + 1 < len(s) else " "
        after3 = s[stop + 2] if stop + 2 < len(s) else " "
        if entry.kind == _NAME:
            if _is_word(before):
                if not _camel(text, offsets, start, s):
                    return False
            elif before in "-'" and _is_word(before2):
                return False  # "Anne-Jayden Price": part of another name
            if _is_word(after):
                return _camel(text, offsets, stop, s)
            if after == "-" and _is_word(after2):
                return False  # "Jayden Price-Walsh": another surname
            if after == "'" and _is_word(after2):
                return after2 == "s" and not _is_word(after3)  # possessive "Price's"
            return True
        if entry.kind == _HANDLE:
            if before not in "@/" and (_is_word(before) or before in "._-" or not entry.loose):
                return False
        elif _is_word(before) or before in "._%+-'":
            return False
        return not (_is_word(after) or after == "_" or (after in ".-" and _is_word(after2)))

    def _is_staff_mention(self, folded: str, a: int, b: int, staff_ids: set[str],
                          author: Person) -> bool:
        """A name shared with a staff member: is it the staff member here?"""
        if author.role == Role.staff and author.register_id in staff_ids:
            return True
        head = folded[max(0, a - 12):a].rstrip()
        head = head.rstrip(".").rstrip()
        for title in self.settings.staff_titles:
            if head.endswith(title) and (len(head) == len(title)
                                         or not _is_word(head[-len(title) - 1])):
                return True
        w = self.settings.staff_word_window
        window = folded[max(0, a - w):a] + " " + folded[b:b + w]
        return any(word in window for word in self.settings.staff_words)

    # -- contact and identity details ---------------------------------------------------------

    def _details(self, text: str, folded: str, m: LearnerMatcher) -> list[_Detail]:
        out: list[_Detail] = []
        if "@" in text:
            out.extend(self._emails(text, m))
        spoken = _spoken_digits(text)
        if spoken is not None:
            # a phone number written out ("oh seven nine one two...") is read as its digits
            reading, starts, ends = spoken
            seen = {d.span for d in out}
            for d in self._phones(reading):
                d.span = (starts[d.span[0]], ends[d.span[1] - 1])
                if d.span not in seen:
                    out.append(d)
        if _DIGIT.search(text):
            out.extend(d for d in self._phones(text) if d.span not in {x.span for x in out})
            out.extend(self._postcodes(text))
            out.extend(self._addresses(text, folded))
            out.extend(self._dates_of_birth(text, folded, m))
        return out

    def _emails(self, text: str, m: LearnerMatcher) -> Iterable[_Detail]:
        s = self.settings
        for match in _EMAIL_RE.finditer(text):
            address = match.group(0).rstrip(".").casefold()
            domain = address.rpartition("@")[2]
            if address in s.allow_emails or address in m.staff_emails or (
                address in m.learner_emails  # matched to the learner through the register
            ):
                continue
            if s.allow_organisation_domains and any(
                domain == d or domain.endswith("." + d) for d in m.org_domains
            ) and not any(domain == d for d in m.learner_domains):
                continue
            yield _Detail("email", (match.start(), match.start() + len(address)))

    def _phones(self, text: str) -> Iterable[_Detail]:
        s = self.settings
        for match in _PHONE_CANDIDATE.finditer(text):
            begin, end = match.span()
            if begin > 0 and text[begin - 1] in "+(":
                begin -= 1
            if begin > 0 and (_is_word(text[begin - 1]) or text[begin - 1] in "_+/."):
                continue
            candidate = text[begin:end]
            if not candidate.lstrip("( ").startswith(("0", "+")):
                continue  # a UK number is written with its trunk 0 or an international prefix
            digits = sum(c.isdigit() for c in candidate)
            e164 = _phone_number(candidate, s.default_region, s.country_codes) if (
                digits <= 15) else None
            if e164 is None and digits > 11:
                # several numbers in a row ("07912 345678 07912 345679"): the longest valid
                # number starting at each group of digits
                groups = [g.span() for g in re.finditer(r"\S+", candidate)]
                i = 0
                while i < len(groups):
                    best = None
                    if candidate[groups[i][0]] in "0+(":
                        for j in range(i, min(i + 5, len(groups))):
                            part = candidate[groups[i][0]:groups[j][1]]
                            if sum(c.isdigit() for c in part) > 15:
                                break
                            e164 = _phone_number(part, s.default_region, s.country_codes)
                            if e164 is not None:
                                best = (j, e164)
                    if best is None:
                        i += 1
                        continue
                    j, e164 = best
                    if e164 not in s.allow_phones:
                        yield _Detail("phone", (begin + groups[i][0], begin + groups[j][1]))
                    i = j + 1
                continue
            if e164 is not None and e164 not in s.allow_phones:
                yield _Detail("phone", (begin, end))

    def _postcodes(self, text: str) -> Iterable[_Detail]:
        s = self.settings
        if not _INWARD.search(text):
            return
        for match in s.postcode_re.finditer(text):
            code = match.group(1)
            compact = _compact(code)
            if compact in s.allow_postcodes:
                continue
            area = re.match(r"[A-Z]+", compact)
            letters = area.group(0) if area else ""
            known = letters in s.postcode_areas or letters[:2] in s.postcode_areas
            ordinal = re.search(r"\d(ST|ND|RD|TH)$", compact) is not None
            if code.isupper():
                if not known and ordinal:
                    continue
            elif not known or ordinal or " " not in code:
                continue
            yield _Detail("postcode", match.span(1))

    def _addresses(self, text: str, folded: str) -> Iterable[_Detail]:
        s = self.settings
        for match in s.address_re.finditer(text):
            a, b = match.span()
            if a > 0 and (_is_word(text[a - 1]) or text[a - 1] in "/.,-"):
                continue  # part of a longer number, a date or a code
            words = match.group(1).split()
            street = match.group(2)
            capitalised = street in s.street_types and all(w[0].isupper() for w in words)
            if not capitalised and (
                street.lower() not in s.lowercase_street_types or len(words) > 2
                or any(w.lower() in s.address_stopwords for w in words)
            ):
                continue
            if " ".join(folded[a:b].rstrip(".").split()) in s.allow_addresses:
                continue
            yield _Detail("street_address", (a, b))

    def _dates_of_birth(self, text: str, folded: str, m: LearnerMatcher) -> Iterable[_Detail]:
        s = self.settings
        seen: set[tuple[int, int]] = set()
        birth_word = any(w in folded for w in s.dob_words) and (
            s.dob_context_re.search(folded) is not None)
        if not birth_word and (m.dob_year_re is None or m.dob_year_re.search(folded) is None):
            return  # no birth word and no learner's birth year: no date of birth here
        for span, day, month, year in _dates(folded):
            if span in seen:
                continue
            seen.add(span)
            when: date | None = None
            if year is not None:
                try:
                    when = date(year, month, day)
                except ValueError:
                    continue
            elif not (1 <= month <= 12 and 1 <= day <= 31):
                continue
            learners = frozenset(m.dob.get(when, ())) if when else frozenset()
            w = s.dob_window
            near = folded[max(0, span[0] - w):span[0]] + " " + folded[span[1]:span[1] + w]
            if learners or (birth_word and s.dob_context_re.search(near)):
                yield _Detail("date_of_birth", span, learners)

    # -- weak identifiers ---------------------------------------------------------------------

    def _weak_names(self, text: str, folded: str, item: Item, details: list[_Detail],
                    m: LearnerMatcher,
                    found: dict[str, dict[str, list[tuple[int, int]]]]) -> None:
        """First names alone and "Jayden P.": only together with another identifier."""
        has_detail = bool(details)
        has_photo = bool(item.media)
        class_re = self.settings.class_re
        if has_detail:
            full_scan = True
        else:
            if not has_photo and next(iter(_initial_forms(text)), None) is None:
                return  # nothing a first name could be combined with
            class_mention = class_re.search(text) is not None
            if not has_photo and not class_mention:
                return
            full_scan = has_photo and class_mention
        # (start, end, folded token, surname initial or None)
        tokens: list[tuple[int, int, str, str | None]] = []
        if full_scan:
            for match in _WORD_TOKEN.finditer(folded):
                a, b = match.span()
                token = match.group(0)
                if token not in m.first_names and token.endswith("'s"):  # "Jayden's"
                    token, b = token[:-2], b - 2
                if token not in m.first_names:
                    continue
                im = _INITIAL_AFTER.match(text, b)
                tokens.append((a, b, token, im.group(1).lower() if im else None))
        else:
            for a, b, letter in _initial_forms(text):
                tokens.append((a, b, folded[a:b], letter.lower()))
        if not tokens:
            return
        dob_learners = {lid for d in details for lid in d.learners}
        taken = [sp for kinds in found.values() for spans in kinds.values() for sp in spans]
        for a, b, token, initial in tokens:
            lids = m.first_names.get(token)
            if not lids or any(x <= a < y for x, y in taken):
                continue
            if not text[a].isupper() and token in self.settings.ambiguous_words:
                continue
            candidates = set(lids)
            if initial is not None:
                narrowed = {lid for lid in candidates if m.surname_initial.get(lid) == initial}
                if narrowed:
                    candidates = narrowed
                else:
                    initial = None  # "Jayden P." where no Jayden's surname starts with P
            already = candidates & found.keys()
            if already:  # the same learner is named in full or by handle elsewhere in the item
                for lid in already:
                    found[lid].setdefault("first_name", []).append((a, b))
                continue
            if initial is not None:
                kind = "name_with_initial"
                span = (a, b + 2 + (text[b + 2:b + 3] == "."))
            elif has_detail or full_scan:
                kind, span = "first_name", (a, b)
            else:
                continue
            narrowed = candidates & dob_learners
            if narrowed:
                candidates = narrowed
            if len(candidates) == 1:
                lid = next(iter(candidates))
                found.setdefault(lid, {}).setdefault(kind, []).append(span)
            else:
                found.setdefault("", {}).setdefault(kind, []).append(span)
                found[""].setdefault("_candidates", []).append((len(candidates), 0))

    # -- findings -----------------------------------------------------------------------------

    def _findings(self, item: Item, author: Person,
                  found: dict[str, dict[str, list[tuple[int, int]]]],
                  details: list[_Detail]) -> list[Finding]:
        s = self.settings
        findings: list[Finding] = []
        own = None
        if not s.flag_learners_own_names and author.role == Role.learner:
            own = author.register_id
        # a date of birth that is a learner's register DOB belongs to that learner if they are
        # the only one with it, or the one also named in the item
        loose: list[_Detail] = []
        for d in details:
            owners = d.learners & found.keys() if d.learners else frozenset()
            if not owners and len(d.learners) == 1:
                owners = d.learners
            if owners:
                for lid in owners:
                    found.setdefault(lid, {}).setdefault("date_of_birth", []).append(d.span)
            else:
                loose.append(d)
        named = [lid for lid in found if lid]
        # contact details in an item naming exactly one learner are that learner's details
        attach_to = named[0] if len(named) == 1 and "" not in found else (
            "" if not named and "" in found else None)
        if attach_to is not None:
            for d in loose:
                found[attach_to].setdefault(d.kind, []).append(d.span)
            loose = []
        # in the organisation's and staff's own posts naming no learner, contact details are
        # venues and office numbers; in what others post they may be a learner's
        role = (author.role or Role.unknown).value
        if role not in s.unattributed_authors and not found:
            loose = [d for d in loose if d.kind in s.unattributed_always]
        if own and own in found:
            # the author's own name is already shown by the platform: only their contact and
            # identity details count
            mine = found[own]
            for kind in _OWN_NAME_KINDS:
                mine.pop(kind, None)
            if not mine:
                del found[own]
        where = f"{item.visibility.value} {item.kind.value}"
        for lid in sorted(found):
            kinds = found[lid]
            candidates = kinds.pop("_candidates", None)
            _drop_names_inside_addresses(kinds)
            labels = sorted(kinds, key=lambda k: -self._weight(k))
            spans = tuple(sorted({sp for k in labels for sp in kinds[k]}))
            score = max(s.score(k) for k in labels)
            described = ", ".join(_KIND_LABEL.get(k, k) for k in labels)
            if lid:
                explanation = (f"A learner's {described} in a {where} on an official account: "
                               f"{s.policy_duty}.")
                entry: str | None = f"learner:{lid}"
                detail: dict[str, Any] = {"identifiers": labels}
            else:
                count = max(c for c, _ in candidates) if candidates else 0
                explanation = (f"A first name shared by {count} learners, with a {described}, "
                               f"in a {where} on an official account: {s.policy_duty}.")
                entry = None
                detail = {"identifiers": labels, "candidates": count}
            findings.append(Finding(
                rule_id=RULE_ID, category=Category.learner_pii, severity=s.severity,
                score=score, explanation=explanation,
                evidence=Evidence(spans=spans, register_entry=entry, detail=detail),
                subject=entry,
            ))
        if loose:
            labels = sorted({d.kind for d in loose}, key=_GENERIC_KINDS.index)
            described = ", ".join(_KIND_LABEL[k] for k in labels)
            findings.append(Finding(
                rule_id=RULE_ID, category=Category.learner_pii, severity=s.severity_unattributed,
                score=s.score("unattributed"),
                explanation=(f"Personal details ({described}) in a {where} on an official "
                             f"account, possibly a learner's: {s.policy_duty}."),
                evidence=Evidence(spans=tuple(sorted({d.span for d in loose})),
                                  detail={"identifiers": labels}),
            ))
        if findings:
            log.debug("learner_pii: %d finding(s) on %s", len(findings), item.key)
        return findings

    _WEIGHTS: ClassVar[dict[str, int]] = {
        "email": 9, "handle": 8, "full_name": 7, "hashtag": 7, "photo_tag": 6, "date_of_birth": 5,
        "phone": 4, "street_address": 4, "postcode": 3,
        "name_with_initial": 2, "first_name": 1,
    }

    def _weight(self, kind: str) -> int:
        return self._WEIGHTS.get(kind, 0)


def _drop_names_inside_addresses(kinds: dict[str, list[tuple[int, int]]]) -> None:
    """"jayden.price" inside the learner's own email address is the email, not a second name."""
    outer = kinds.get("email", []) + kinds.get("handle", [])
    if not outer:
        return
    for kind in ("full_name", "hashtag", "first_name"):
        spans = [sp for sp in kinds.get(kind, ())
                 if not any(a <= sp[0] and sp[1] <= b for a, b in outer)]
        if kind in kinds:
            if spans:
                kinds[kind] = spans
            else:
                del kinds[kind]


def _camel(text: str, offsets: list[int] | None, pos: int, s: str) -> bool:
    """A camel-case boundary at ``pos`` inside a hashtag or handle ("#WellDoneJaydenPrice")."""
    o = offsets[pos] if offsets else pos
    if o <= 0 or o >= len(text) or not (text[o].isupper() and text[o - 1].islower()):
        return False
    i = pos - 1
    while i >= 0 and _is_word(s[i]):
        i -= 1
    return i >= 0 and s[i] in "#@"


def _dates(folded: str) -> Iterable[tuple[tuple[int, int], int, int, int | None]]:
    """(span, day, month, year or None) for every date written in ``folded``."""
    for m in _DATE_ISO.finditer(folded):
        yield m.span(), int(m.group(3)), int(m.group(2)), int(m.group(1))
    for m in _DATE_NUMERIC.finditer(folded):
        if m.group(3) is None and "/" not in m.group(0):
            continue  # "3.5" and "3-2" are a number and a score; "3/2" may be a date
        yield m.span(), int(m.group(1)), int(m.group(2)), _year(m.group(3))
    for m in _DATE_TEXT.finditer(folded):
        yield m.span(), int(m.group(1)), _MONTHS[m.group(2)[:3]], _year(m.group(3))
    for m in _DATE_TEXT_US.finditer(folded):
        yield m.span(), int(m.group(2)), _MONTHS[m.group(1)[:3]], _year(m.group(3))
