"""A literal prefilter for many regular expressions: run a pattern only on texts that can match it.

Most cue, idiom and context patterns of a lexicon cannot match most texts: each needs a word such
as "kill", "nudes" or "olders" that the text does not contain. At build time every pattern is read
into the literal strings one of which any match must contain (from Python's own parse of the
pattern); per text, one Aho-Corasick pass (pyahocorasick) finds which of those strings occur, and a
pattern runs only where all of its requirements are met. A pattern from which nothing can be read
is always run, so the prefilter can only save work, never hide a match
(tests/test_safeguarding_prefilter.py shows the results are the same as the full scan).
"""

from __future__ import annotations

import logging
import re
import re._parser as _sre_parser  # the standard library's own parse of a pattern
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import ahocorasick
import numpy as np

__all__ = [
    "LiteralPrefilter",
    "WordList",
    "alternatives",
    "any_of",
    "case_fold_table",
    "fold",
    "pattern_requirements",
]

log = logging.getLogger(__name__)

_MAX_EXACT = 64  # a part of a pattern matching more strings than this is not spelled out
_SELECTIVE = 3  # required strings at least this long are worth testing for


@dataclass(frozen=True, slots=True)
class _Literals:
    """What a part of a pattern tells about the text it matches (all strings case-folded).

    ``exact``: every string the part can match, when they are few; ``required``: sets of strings
    such that every match contains one string of each set."""

    exact: frozenset[str] | None
    required: tuple[frozenset[str], ...] = ()

    def requirements(self) -> list[frozenset[str]]:
        out = list(self.required)
        if self.exact is not None and self.exact and "" not in self.exact:
            out.append(self.exact)
        return out


_UNKNOWN = _Literals(None)
_ZERO_WIDTH = _Literals(frozenset({""}))


@lru_cache(maxsize=1)
def case_fold_table() -> dict[int, str]:
    """The characters outside ASCII that Python's ``re`` with IGNORECASE matches to an ASCII
    character ("İ", "ı" -> "i", "ſ" -> "s", Kelvin "K" -> "k"), each with the ASCII letter in
    lower case; asked of the ``re`` engine itself over every code point, so it follows the
    running Python's own case folding. A character that matches two different letters would
    break the prefilter's reasoning: then the table is refused (:class:`LiteralPrefilter`
    is off)."""
    everything = np.arange(0x80, 0x110000, dtype="<u4").tobytes().decode("utf-32-le",
                                                                          "surrogatepass")
    table: dict[int, str] = {}
    for m in re.finditer(r"[\x00-\x7f]", everything, re.IGNORECASE):
        ch = m.group(0)
        targets = {chr(a).lower() for a in range(0x80)
                   if re.fullmatch(re.escape(chr(a)), ch, re.IGNORECASE)}
        if len(targets) != 1:
            raise ValueError(f"U+{ord(ch):04X} matches several ASCII characters: {targets}")
        table[ord(ch)] = targets.pop()
    return table


def fold(text: str) -> str:
    """``text`` folded so that wherever a case-insensitive pattern matches ASCII literals, the
    folded text holds those literals in lower case (not length-preserving outside ASCII)."""
    if not text.isascii():
        text = text.translate(case_fold_table())
    return text.lower()


def _literal_char(ch: str) -> frozenset[str] | None:
    """A character of a pattern as a prefilter literal: ASCII other than white space (blanked
    idioms become spaces, so a literal never includes one), else None (not spelled out)."""
    if not ch.isascii() or ch.isspace():
        return None
    return frozenset({ch.lower()})


def _sequence_literals(items: Iterable[tuple[Any, Any]]) -> _Literals:
    """A run of pattern parts one after the other: adjacent spelled-out parts join into longer
    strings; each run that ends (at a part that cannot be spelled out) becomes a requirement."""
    run: frozenset[str] = frozenset({""})
    required: list[frozenset[str]] = []
    all_exact = True
    for op, av in items:
        part = _node_literals(op, av)
        if part.exact is not None and len(run) * len(part.exact) <= _MAX_EXACT:
            run = frozenset(a + b for a in run for b in part.exact)
            continue
        all_exact = False
        if "" not in run:
            required.append(run)
        required.extend(part.required)
        run = part.exact if part.exact is not None else frozenset({""})
    if all_exact:
        return _Literals(run)
    if "" not in run:
        required.append(run)
    return _Literals(None, tuple(required))


def _node_literals(op: Any, av: Any) -> _Literals:
    """One node of ``re``'s parse tree. Anything not understood here is ``_UNKNOWN`` (no
    requirement), which is always safe."""
    name = getattr(op, "name", str(op))
    if name == "LITERAL":
        exact = _literal_char(chr(av))
        return _Literals(exact) if exact is not None else _UNKNOWN
    if name == "IN":
        chars: set[str] = set()
        for iop, iav in av:
            iname = getattr(iop, "name", str(iop))
            if iname == "LITERAL":
                chars.add(chr(iav))
            elif iname == "RANGE" and iav[1] - iav[0] < _MAX_EXACT:
                chars.update(chr(c) for c in range(iav[0], iav[1] + 1))
            else:  # NEGATE, CATEGORY (\s, \w...), big ranges
                return _UNKNOWN
        folded = [_literal_char(c) for c in chars]
        if not chars or len(chars) > _MAX_EXACT or any(f is None for f in folded):
            return _UNKNOWN
        return _Literals(frozenset().union(*cast(list[frozenset[str]], folded)))
    if name in ("AT", "ASSERT", "ASSERT_NOT"):  # zero width: \b, ^, $, lookarounds
        return _ZERO_WIDTH
    if name == "SUBPATTERN":  # (group, add_flags, del_flags, pattern)
        return _sequence_literals(av[-1])
    if name == "ATOMIC_GROUP":
        return _sequence_literals(av)
    if name == "BRANCH":
        branches = [_sequence_literals(b) for b in av[1]]
        exacts = [b.exact for b in branches]
        if all(e is not None for e in exacts):
            union = frozenset().union(*cast(list[frozenset[str]], exacts))
            if len(union) <= _MAX_EXACT:
                return _Literals(union)
        # every branch must give one requirement; their union is required of the whole
        chosen: list[frozenset[str]] = []
        for b in branches:
            reqs = b.requirements()
            if not reqs:
                return _UNKNOWN
            chosen.append(max(reqs, key=_selectivity))
        return _Literals(None, (frozenset().union(*chosen),))
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        lo, hi, sub = av
        inner = _sequence_literals(sub)
        if lo == 0:
            if hi == 1 and inner.exact is not None:
                return _Literals(inner.exact | {""})
            return _UNKNOWN
        if lo == hi and inner.exact is not None and len(inner.exact) ** lo <= _MAX_EXACT:
            exact = frozenset({""})
            for _ in range(lo):
                exact = frozenset(a + b for a in exact for b in inner.exact)
            return _Literals(exact)
        return _Literals(None, tuple(inner.requirements()))
    return _UNKNOWN  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, GROUPREF_EXISTS...


def _selectivity(strings: frozenset[str]) -> tuple[int, int]:
    """Longer shortest string first, then fewer strings: the less often a set is met by chance."""
    return (min((len(s) for s in strings), default=0), -len(strings))


def pattern_requirements(rx: re.Pattern[str]) -> list[frozenset[str]]:
    """Sets of case-folded literal strings such that every match of ``rx`` contains one string
    of each set; only sets worth testing (strings of at least ``_SELECTIVE`` characters, else
    the best set if its strings have two). Empty: nothing could be read, ``rx`` always runs."""
    try:
        parsed = _sre_parser.parse(rx.pattern, rx.flags)
        reqs = _sequence_literals(parsed).requirements()
    except Exception:  # a construct this version's parser spells differently: always run
        log.debug("prefilter: none for %r", rx.pattern, exc_info=True)
        return []
    unique = list(dict.fromkeys(reqs))
    strong = [r for r in unique if _selectivity(r)[0] >= _SELECTIVE]
    if strong:
        return strong
    best = max(unique, key=_selectivity, default=None)
    return [best] if best is not None and _selectivity(best)[0] >= 2 else []


def alternatives(rx: re.Pattern[str]) -> list[re.Pattern[str]]:
    """``rx``'s top-level alternatives ``A|B|C`` as patterns of their own (``rx`` searched finds
    a match exactly where one of them does), or ``[rx]`` where splitting is not plainly safe:
    back-references and conditionals (group numbers change), verbose mode (comments)."""
    p = rx.pattern
    if rx.flags & re.VERBOSE or re.search(r"\\[1-9]|\(\?P=|\(\?\(", p):
        return [rx]
    parts: list[str] = []
    depth = start = 0
    i, in_class = 0, False
    while i < len(p):
        ch = p[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if p.startswith("^", i + 1):
                i += 1
            if p.startswith("]", i + 1):  # a "]" first in a class is a literal
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(p[start:i])
            start = i + 1
        i += 1
    parts.append(p[start:])
    if depth != 0 or in_class or len(parts) == 1:
        return [rx]
    try:
        return [re.compile(part, rx.flags) for part in parts]
    except re.error:
        return [rx]


class WordList(list[tuple[re.Pattern[str], int]]):
    """A word list's patterns with their needs (what :meth:`LiteralPrefilter.any_of` makes),
    indexed by each need's lowest bit, so that "is any of them in the text" looks only at the
    words whose required strings a scan found, not at every word of the list."""

    def __init__(self, words: Iterable[tuple[re.Pattern[str], int]]) -> None:
        super().__init__(words)
        self.always = [rx for rx, need in self if not need]
        self.by_bit: dict[int, list[tuple[re.Pattern[str], int]]] = {}
        for rx, need in self:
            if need:
                self.by_bit.setdefault(need & -need, []).append((rx, need))

    def any(self, text: str, found: int) -> bool:
        if any(rx.search(text) for rx in self.always):
            return True
        if not found:
            return False
        by_bit = self.by_bit
        if found.bit_count() < len(by_bit):  # the few strings found, not every word's bit
            rest = found
            while rest:
                bit = rest & -rest
                rest ^= bit
                for rx, need in by_bit.get(bit, ()):
                    if found & need == need and rx.search(text):
                        return True
            return False
        return any(found & need == need and rx.search(text)
                   for bit, group in by_bit.items() if found & bit for rx, need in group)


def any_of(words: list[tuple[re.Pattern[str], int]], text: str, found: int) -> bool:
    """Whether a word of ``words`` whose required strings are all in ``found`` matches
    ``text`` (every other word cannot)."""
    if isinstance(words, WordList):
        return words.any(text, found)
    return any(found & need == need and rx.search(text) for rx, need in words)


class LiteralPrefilter:
    """One Aho-Corasick automaton (pyahocorasick) over the required strings of every pattern.

    Each distinct required set is a bit; a string's value is the bits of the sets it is in.
    :meth:`scan` ORs the values of the strings found in a text; a pattern whose bits (its
    ``need``) are all in the scan may match, any other cannot."""

    def __init__(self) -> None:
        self._bits: dict[frozenset[str], int] = {}
        self._values: dict[str, int] = {}
        self._automaton: Any = None

    def need(self, patterns: Iterable[re.Pattern[str] | None]) -> int:
        """The bits a text must have for all of ``patterns`` to be able to match (0: always)."""
        need = 0
        for rx in patterns:
            if rx is None:
                continue
            for req in pattern_requirements(rx):
                bit = self._bits.get(req)
                if bit is None:
                    bit = self._bits[req] = 1 << len(self._bits)
                    for s in req:
                        self._values[s] = self._values.get(s, 0) | bit
                need |= bit
        return need

    def any_of(self, rx: re.Pattern[str]) -> list[tuple[re.Pattern[str], int]]:
        """``rx`` split into its top-level alternatives (one per word of a word list), each
        with its need; ``rx`` whole where it cannot be split. The alternatives nothing can be
        read from (need 0: they run on every text) are joined again into one pattern, one
        search instead of several."""
        words = [(alt, self.need((alt,))) for alt in alternatives(rx)]
        always = [alt for alt, need in words if need == 0]
        if len(always) < 2:
            return WordList(words)
        joined = re.compile("|".join(alt.pattern for alt in always), rx.flags)
        return WordList([(alt, need) for alt, need in words if need] + [(joined, 0)])

    def build(self) -> None:
        automaton = ahocorasick.Automaton()
        for s, bits in self._values.items():
            automaton.add_word(s, bits)
        if self._values:
            automaton.make_automaton()
            self._automaton = automaton

    def scan(self, text: str) -> int:
        """The bits of the required sets met in ``text``."""
        if self._automaton is None:
            return 0
        found = 0
        for _, bits in self._automaton.iter(fold(text)):
            found |= bits
        return found
