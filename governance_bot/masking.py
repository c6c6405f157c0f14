"""Masking what a person may not see: learner details in managers' messages, digests and
reports (``[delivery] mask_learner_details``), and excerpts around the evidence.

Registered learners' names, preferred names, aliases, emails and handles are replaced by
"[learner]" and evidence spans blacked out ("█████"): a flag must not repeat the breach it
reports. The register's names are found in one pass with an Aho-Corasick automaton built once per
register (cost independent of the register's size); ``learner_pattern`` is the same rule as one
regular expression. Used by Slack, the console and JSON sinks, the digests and the web console.
"""

from __future__ import annotations

import re
from typing import Any

import ahocorasick

from governance_bot.authz import EXPLICIT_RULES
from governance_bot.registers import RegisterIndex

__all__ = ["MASK", "LearnerMasker", "evidence_spans", "excerpt", "is_explicit_image",
           "learner_masker", "learner_pattern", "mask_learners"]

MASK = "█████"


def is_explicit_image(findings: list[Any]) -> bool:
    """A finding about a possibly explicit image: a known image rule id, or evidence detail
    ``explicit_image = true`` (any detector can set it)."""
    for f in findings:
        detail = (f.evidence or {}).get("detail") or {}
        if f.rule_id in EXPLICIT_RULES or detail.get("explicit_image") is True:
            return True
    return False


def _learner_terms(registers: RegisterIndex) -> tuple[set[str], set[str]]:
    """(names, handles) to mask: names with their capital letters, handles and emails in any
    case. Both spellings of an apostrophe."""
    names: set[str] = set()
    handles: set[str] = set()
    for lr in registers.iter_learners():
        for value in (lr.full_name, lr.first_name, lr.last_name, lr.preferred_name, *lr.aliases):
            if value and len(value.strip()) >= 2:
                names.add(value.strip())
                names.add(value.strip().replace("'", "’"))
        for value in (lr.email, *lr.handles):
            if value and len(value.strip()) >= 2:
                handles.add(value.strip().lstrip("@"))
    return names, handles


def learner_pattern(registers: RegisterIndex) -> re.Pattern[str] | None:
    """One regex matching every registered learner's names, aliases, email and handles (cached).

    Names match with their capital letter (so "Will" is masked, the verb "will" is not); emails
    and handles match in any case, with or without a leading "@"; neither inside a longer word.
    ``mask_learners`` applies the same rule with an automaton (and this regex where a text's
    lower case has a different length)."""
    cached = registers.derived.get("slack.learner_pattern")
    if cached is not None:
        return cached if isinstance(cached, re.Pattern) else None
    names, handles = _learner_terms(registers)
    if not names and not handles:
        registers.derived["slack.learner_pattern"] = False
        return None

    def alternation(terms: set[str]) -> str:
        return "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) or "(?!)"

    pattern = re.compile(
        rf"(?<![\w@])(?:@?(?i:{alternation(handles)})|{alternation(names)})(?!\w)")
    registers.derived["slack.learner_pattern"] = pattern
    return pattern


def _word(ch: str) -> bool:
    """A word character, as the regex ``\\w``."""
    return ch.isalnum() or ch == "_"


class LearnerMasker:
    """Finds registered learners' names and handles in a text in one pass (Aho-Corasick over the
    lower-cased text), then keeps the matches that obey ``learner_pattern``'s rule: a name in its
    own capitalisation, a handle or email in any case with an optional "@", neither preceded by a
    word character or "@" nor followed by a word character. Of overlapping matches the leftmost,
    then the longest, is masked."""

    def __init__(self, names: set[str], handles: set[str]):
        terms: dict[str, tuple[set[str], bool]] = {}
        for name in names:
            terms.setdefault(name.lower(), (set(), False))[0].add(name)
        for handle in handles:
            exact, _ = terms.get(handle.lower(), (set(), False))
            terms[handle.lower()] = (exact, True)
        self.automaton: Any = ahocorasick.Automaton()
        for key, (exact, is_handle) in terms.items():
            self.automaton.add_word(key, (len(key), frozenset(exact), is_handle))
        self.automaton.make_automaton()

    def spans(self, text: str) -> list[tuple[int, int]] | None:
        """Non-overlapping (start, end) of every learner detail; None if the text's lower case
        has another length (a few non-Latin letters), where offsets would not line up."""
        low = text.lower()
        if len(low) != len(text):
            return None
        found: list[tuple[int, int]] = []
        for last, (length, exact, is_handle) in self.automaton.iter(low):
            start, end = last - length + 1, last + 1
            if end < len(text) and _word(text[end]):
                continue
            if is_handle:
                at = start - 1 if start > 0 and text[start - 1] == "@" else start
                if at == 0 or not (_word(text[at - 1]) or text[at - 1] == "@"):
                    found.append((at, end))
                    continue
            if text[start:end] in exact and (
                    start == 0 or not (_word(text[start - 1]) or text[start - 1] == "@")):
                found.append((start, end))
        found.sort(key=lambda span: (span[0], -span[1]))
        kept: list[tuple[int, int]] = []
        for start, end in found:
            if not kept or start >= kept[-1][1]:
                kept.append((start, end))
        return kept


def learner_masker(registers: RegisterIndex) -> LearnerMasker | None:
    """The register's masker, built once per register (cached on it)."""
    cached = registers.derived.get("slack.learner_masker")
    if cached is not None:
        return cached if isinstance(cached, LearnerMasker) else None
    names, handles = _learner_terms(registers)
    masker = LearnerMasker(names, handles) if names or handles else None
    registers.derived["slack.learner_masker"] = masker if masker is not None else False
    return masker


def mask_learners(text: str, registers: RegisterIndex) -> str:
    """``text`` with every registered learner's name, alias, email and handle replaced by
    "[learner]"."""
    masker = learner_masker(registers)
    if masker is None or not text:
        return text
    spans = masker.spans(text)
    if spans is None:
        pattern = learner_pattern(registers)
        return pattern.sub("[learner]", text) if pattern else text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append("[learner]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def excerpt(text: str, spans: list[tuple[int, int]], mask: bool, width: int = 120) -> str:
    """Up to ``width`` characters each side of the first evidence span; spans blacked out when
    ``mask``."""
    if mask:
        for a, b in sorted(spans, reverse=True):
            text = text[:a] + MASK + text[b:]
        # spans moved: find the first mask instead
        first = text.find(MASK) if spans else 0
    else:
        first = spans[0][0] if spans else 0
    start = max(0, first - width)
    end = min(len(text), first + width + (len(MASK) if mask else 0))
    piece = text[start:end].replace("\n", " ").strip()
    return ("…" if start > 0 else "") + piece + ("…" if end < len(text) else "")


def evidence_spans(evidence: list[dict[str, Any]], length: int) -> list[tuple[int, int]]:
    """The character spans of the findings' evidence (``Finding.evidence`` dicts) that fall
    inside a text of ``length``, sorted."""
    out = []
    for ev in evidence:
        for span in (ev or {}).get("spans") or []:
            a, b = int(span[0]), int(span[1])
            if 0 <= a < b <= length:
                out.append((a, b))
    return sorted(out)
