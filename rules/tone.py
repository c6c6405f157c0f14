"""``tone``: kisses, pet names, slang and over-familiar language from staff to learners.

Policy duty: staff keep a professional tone with learners: no kisses (x's), slang or
inappropriate language (P1 "What we expect of our staff"; P2 "Communicating with students"); the
organisation's own posts are consistent with its aims and tone (P1 "Managing our online
presence"). The lexicons live in ``rules/packs/tone.toml`` so a DSL can read and tune them.

Only staff messages addressed to learners and the organisation's own items are checked: a learner
writing "xx" is not a staff breach. Kisses are recognised as whole tokens in sign-off position so
that "3 x 4", "Year 10x", "X (formerly Twitter)", "box", "Xmas" and "solve for x" do not count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, Role
from rules.base import DetectionContext, DetectorBase
from rules.normalise import plain_apostrophes
from rules.out_of_hours import addressed_learners
from rules.packs import TONE_DUTY, TONE_ORGANISATION_DUTY, ToneLexiconSpec, TonePack

if TYPE_CHECKING:
    from governance_bot.config import Config

__all__ = ["KissFinder", "Lexicon", "Signal", "ToneDetector"]

# a kiss token: x, xx, xxx..., xo, xoxo, xox
_KISS = re.compile(
    r"(?<![^\s!?,;)~(\"'])(?P<kiss>[xX]{1,6}|(?:[xX][oO]){1,4}[xX]?)"
    r"(?=$|[\s!?,;)~\"'\u2026]|[.:](?!\w))"
)
_TOKENS = re.compile(r"[\w']+")
_WORD_BEFORE = re.compile(r"([\w'.]+)[\s,:]*$")
_OPERATOR_BEFORE = re.compile(r"[\d=+\-*/×^<>%£$€#@:(\[]\s*$")


@dataclass(frozen=True, slots=True)
class Signal:
    """One match: what kind of breach, the term as the lexicon names it, and where."""

    kind: str  # kiss | pet_name | slang | over_familiar
    term: str
    start: int
    end: int
    severity: Severity
    score: float


def _phrase_pattern(term: str) -> str:
    words = plain_apostrophes(term).split()
    parts = []
    for word in words:
        escaped = re.escape(word).replace("'", "'?")
        parts.append(escaped)
    return r"\s+".join(parts)


_GREETINGS = (
    "hi", "hey", "hiya", "hello", "morning", "good morning", "evening", "night", "night night",
    "thanks", "thank you", "ta", "cheers", "bye", "well done", "congrats", "congratulations",
    "sorry", "aw", "aww", "awww", "oh", "yes", "no", "ok", "okay", "alright", "love you",
    "miss you", "see you", "see ya", "good luck", "you ok", "you okay", "take care",
)


@dataclass
class Lexicon:
    """A group of terms from the pack: one kind, severity, audience and position.

    position: ``any`` (a whole word anywhere), ``address`` (only when speaking to someone:
    "thanks gorgeous", "Morning darling," or ", darling!" at the end) or ``signoff`` (at the end
    of a line). audience: ``learners`` (staff messages to learners only) or ``all`` (also the
    organisation's own posts)."""

    kind: str
    terms: list[str]
    severity: Severity = Severity.low
    score: float = 0.7
    audience: str = "all"
    position: str = "any"
    not_after: frozenset[str] = field(default_factory=frozenset)
    label: str = ""
    pattern: re.Pattern[str] = field(init=False, repr=False)
    first_words: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.audience not in {"all", "learners"}:
            raise ValueError(f"lexicon {self.kind!r}: audience must be 'all' or 'learners'")
        if self.position not in {"any", "address", "signoff"}:
            raise ValueError(f"lexicon {self.kind!r}: position must be any, address or signoff")
        # a cheap prefilter: the lexicon's regex runs only if one of these words is in the text
        self.first_words = frozenset(
            plain_apostrophes(t).split()[0].casefold().replace("'", "") for t in self.terms
        )
        alternation = "|".join(
            _phrase_pattern(t) for t in sorted(self.terms, key=len, reverse=True)
        )
        def term(group: str = "term") -> str:
            return rf"(?<![\w'])(?P<{group}>{alternation})(?![\w'])"

        if self.position == "address":
            greet = "|".join(_phrase_pattern(g) for g in _GREETINGS)
            pattern = (
                rf"(?:(?<![\w'])(?:{greet})[\s,!]+{term('term')}(?=\s*(?:$|[^\w\s']|[xX]+\b))"
                rf"|(?:^|(?<=[.!?]))[ \t]*{term('term2')}(?=\s*,)"
                rf"|,\s*{term('term3')}(?=\s*(?:[xX]+\b)?\s*[^\w\s]*\s*$))"
            )
        elif self.position == "signoff":
            pattern = rf"{term()}(?=[^\w\n]*(?:\n|$))"
        else:
            pattern = term()
        self.pattern = re.compile(pattern, re.IGNORECASE | re.MULTILINE)

    @classmethod
    def from_pack(cls, entry: ToneLexiconSpec) -> Lexicon:
        return cls(
            kind=entry.kind,
            terms=list(entry.terms),
            severity=entry.severity,
            score=entry.score,
            audience=entry.audience,
            position=entry.position,
            not_after=frozenset(w.casefold() for w in entry.not_after),
            label=entry.label or entry.kind.replace("_", " "),
        )

    def find(self, text: str) -> Iterator[Signal]:
        for m in self.pattern.finditer(text):
            group = m.lastgroup or "term"
            start, end = m.span(group)
            if self.not_after:
                before = _WORD_BEFORE.search(text[max(0, start - 40):start])
                if before and before.group(1).casefold() in self.not_after:
                    continue
            yield Signal(self.kind, text[start:end].casefold(), start, end, self.severity,
                         self.score)


@dataclass
class KissFinder:
    """Kisses: x's as whole tokens where a kiss goes, kiss emoji anywhere.

    * a lower-case run of two or more (``xx``, ``xxx``, ``xoxo``) anywhere as a token;
    * a single ``x``/``X`` or an upper-case run only at the end of a line (a sign-off), so
      "X (formerly Twitter)" and "XX/XX/2026" do not count;
    * never after a digit or an operator ("3 x 4", "= x") or after a word in ``not_after``
      ("solve for x", "follow us on X"); a capital one never after a word in
      ``not_after_capital`` ("Mr X", "Generation X", "Chapter XX").
    """

    emoji: Sequence[str]
    not_after: frozenset[str]
    not_after_capital: frozenset[str] = frozenset()
    severity: Severity = Severity.low
    score: float = 0.8

    def __post_init__(self) -> None:
        self._emoji = re.compile("|".join(re.escape(e) for e in self.emoji) or r"(?!)")

    def find(self, text: str) -> Iterator[Signal]:
        for m in self._emoji.finditer(text):
            yield Signal("kiss", m.group(), m.start(), m.end(), self.severity, self.score)
        if "x" not in text and "X" not in text:
            return
        for m in _KISS.finditer(text):
            token = m.group("kiss")
            start, end = m.span("kiss")
            line_end = text.find("\n", end)
            rest = text[end:] if line_end < 0 else text[end:line_end]
            at_signoff = not any(c.isalnum() for c in rest)
            strong = len(token) >= 2 and token.islower()
            if not (strong or at_signoff):
                continue
            before = text[max(0, start - 40):start]
            if _OPERATOR_BEFORE.search(before):
                continue
            word = _WORD_BEFORE.search(before)
            if word:
                previous = word.group(1).casefold().rstrip(".")
                if previous in self.not_after or (
                    token[0] == "X" and previous in self.not_after_capital
                ):
                    continue
            yield Signal("kiss", token.lower(), start, end, self.severity, self.score)


class ToneDetector(DetectorBase):
    """Unprofessional tone in staff messages to learners and in the organisation's own posts
    (P1 "What we expect of our staff", P2 "Communicating with students": no kisses, slang or
    inappropriate language; P1 "Managing our online presence"). Severity 2; 3 for the stronger
    over-familiarity the pack marks so (secrecy, favouritism, remarks on looks)."""

    rule_id = "tone"

    def __init__(
        self,
        kisses: KissFinder,
        lexicons: Iterable[Lexicon],
        duty: str = TONE_DUTY,
        organisation_duty: str = TONE_ORGANISATION_DUTY,
        check_organisation: bool = True,
    ):
        self.kisses = kisses
        self.lexicons = list(lexicons)
        self.duty = duty
        self.organisation_duty = organisation_duty
        self.check_organisation = check_organisation

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | TonePack, config: Config | None = None
                  ) -> ToneDetector:
        """Built from the pack read into :class:`rules.packs.TonePack` (defaults there; a bad
        key is a PackError naming the file and the key)."""
        model = TonePack.load(pack)
        kiss = model.kisses
        return cls(
            kisses=KissFinder(
                emoji=kiss.emoji,
                not_after=frozenset(w.casefold() for w in kiss.not_after),
                not_after_capital=frozenset(w.casefold() for w in kiss.not_after_capital),
                severity=kiss.severity,
                score=kiss.score,
            ),
            lexicons=[Lexicon.from_pack(e) for e in model.lexicon],
            duty=model.rule.duty,
            organisation_duty=model.rule.organisation_duty,
            check_organisation=model.audience.organisation,
        )

    def signals(self, text: str, to_learners: bool) -> list[Signal]:
        """Every tone signal in ``text``; learner-only lexicons when ``to_learners``."""
        text = plain_apostrophes(text)  # one character for one: spans stay put
        found = list(self.kisses.find(text))
        words = {w.replace("'", "") for w in _TOKENS.findall(text.casefold())}
        for lexicon in self.lexicons:
            if lexicon.audience == "learners" and not to_learners:
                continue
            if lexicon.first_words.isdisjoint(words):
                continue
            found.extend(lexicon.find(text))
        # one signal per span: the most serious wins where lexicons overlap
        found.sort(key=lambda s: (s.start, -s.severity, -(s.end - s.start)))
        kept: list[Signal] = []
        for sig in found:
            if kept and sig.start < kept[-1].end:
                continue
            kept.append(sig)
        return kept

    def detect(self, item: Item, ctx: DetectionContext) -> Iterator[Finding]:
        if not item.text:
            return
        author = item.author
        learners = []
        if author.role == Role.staff:
            learners = addressed_learners(item, ctx)
            if not learners:
                return
        elif not (author.role == Role.organisation and self.check_organisation):
            return
        found = self.signals(item.text, to_learners=bool(learners))
        if not found:
            return
        severity = max(s.severity for s in found)
        kinds: dict[str, list[str]] = {}
        for sig in found:
            terms = kinds.setdefault(sig.kind, [])
            if sig.term not in terms:
                terms.append(sig.term)
        # the kinds only: the words themselves are message text (kept in the evidence, which is
        # encrypted at rest, never in the explanation that is printed and logged)
        described = _join([_LABELS.get(k, k) for k in kinds])
        learner_id = learners[0].register_id if learners else None
        if learners:
            sender = f"staff:{author.register_id}"
            staff = ctx.registers.staff.get(author.register_id or "")
            name = f" ({staff.name})" if staff else ""
            to = ", ".join(f"learner {p.register_id}" for p in learners)
            explanation = (f"Staff member {author.register_id}{name} wrote to {to} with "
                           f"{described}. {self.duty}")
            subject: str | None = f"{sender}>learner:{learner_id}"
        else:
            explanation = (f"The official account's {item.kind.value.replace('_', ' ')} uses "
                           f"{described}. {self.organisation_duty}")
            subject = f"account:{item.account}"
        yield Finding(
            rule_id=self.rule_id,
            category=Category.tone,
            severity=severity,
            score=max(s.score for s in found),
            explanation=explanation,
            evidence=Evidence(
                spans=tuple((s.start, s.end) for s in found),
                register_entry=f"learner:{learner_id}" if learner_id else None,
                detail={"signals": [{"kind": s.kind, "term": s.term} for s in found]},
            ),
            subject=subject,
        )


_LABELS = {
    "kiss": "a kiss",
    "pet_name": "a pet name",
    "slang": "slang",
    "over_familiar": "over-familiar language",
}


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
