"""Text normalisation shared by every text rule: what was written, folded so that obfuscation does
not hide it, with every character traceable to where it was written.

People who want a word past a filter, or who just write the way young people write, use the same
tricks: invisible characters inside a word ("kill\u200bmyself", a soft hyphen in a name), letters
from other scripts that look Latin (Cyrillic "а", Greek "ο"), full-width or mathematical letters
("Ｊａｙｄｅｎ", "𝐉𝐚𝐲𝐝𝐞𝐧"), digits and symbols for letters ("k1ll mys3lf", "J4yd3n"), letters spaced
or dotted apart ("J.a.y.d.e.n", "k i l l"), and written-out email punctuation
("jay[at]mail[dot]com").
:func:`normalise` undoes each of them, in this order:

1. text between a right-to-left override and its end (U+202E ... U+202C, or the end of the
   line) put in the order it is displayed in ("\u202eecirP\u202c" shows, and is read, as
   "Price"); then default-ignorable code points removed (zero-width spaces and joiners, soft
   hyphens, the byte order mark, bidirectional controls, variation selectors, tag characters:
   Unicode's ``Default_Ignorable_Code_Point`` property, through the ``regex`` library);
2. each grapheme cluster outside ASCII folded: Unicode NFKC (full-width, mathematical and circled
   letters, ligatures), look-alike letters of other scripts mapped to the Latin letter they
   imitate (Unicode's confusables data, ``confusable-homoglyphs``), letters that Unicode names
   as a Latin letter but NFKC leaves alone (small capitals "ᴊᴀʏᴅᴇɴ", parenthesised "⒥⒜⒴",
   regional indicators "🇯🇦🇾", negative squared and circled "🅹🅐"), accents taken off, curly
   apostrophes, dashes and odd spaces made plain;
3. letters written apart with one repeated separator joined ("J.a.y.d.e.n" -> "Jayden", also with
   tabs, line breaks or an emoji between them; a wider gap between two such runs stays a space:
   "k.i.l.l m.y.s.e.l.f" -> "kill myself");
4. leetspeak inside words: a digit or symbol with a letter on both sides becomes the letter it
   stands for ("k1ll" -> "kill", "J4yd3n" -> "Jayden"), and a zero opening a word of letters is
   an "O" ("0liver"); "2nd", "Y10", "5pm" and "mp3" are left alone (any other digit at a word's
   edge is a number, not a letter);
5. optionally (``emails=True``) written-out email punctuation: "[at]", "(at)", "{dot}", and
   "name at mail dot com" where a known top-level domain ends it.

Case is kept (``lower=True`` lowercases too). The result knows, for every character, the span of
the original text it came from, so evidence points at what was written: :meth:`NormalisedText.span`.
Text that needs none of this (plain ASCII without digits inside words or spaced letters, the usual
case) costs three regular-expression searches and is returned as it is.

Invalid UTF-8 is reported, never silently replaced: :func:`decode_utf8` names the byte offset of
the first bad sequence, and text decoded with ``errors="surrogateescape"`` keeps its bad bytes as
lone surrogates, which :func:`normalise` lists in ``problems`` (and leaves in place).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import regex

__all__ = [
    "InvalidUtf8",
    "NormalisedText",
    "decode_utf8",
    "fold",
    "fold_cluster",
    "invalid_utf8_positions",
    "normalise",
    "plain_apostrophes",
    "unleet",
]

_IGNORABLE = regex.compile(r"\p{Default_Ignorable_Code_Point}+")
# a right-to-left override and what it reverses: up to the pop (U+202C), another bidirectional
# control or the end of the line
_OVERRIDDEN = regex.compile(r"\u202e([^\u202a-\u202e\u2066-\u2069\n\r]*)\u202c?")
# characters Unicode names as a Latin letter that NFKC and the confusables data leave alone
_NAMED_LETTER = regex.compile(
    r"LATIN LETTER SMALL CAPITAL (?P<lower>[A-Z])"
    r"|PARENTHESIZED LATIN SMALL LETTER (?P<lower2>[A-Z])"
    r"|REGIONAL INDICATOR SYMBOL LETTER (?P<upper>[A-Z])"
    r"|NEGATIVE (?:SQUARED|CIRCLED) LATIN CAPITAL LETTER (?P<upper2>[A-Z])")
_CLUSTER = regex.compile(r"\X")
_NOT_ASCII = regex.compile(r"[^\x00-\x7f]")
_SURROGATE = regex.compile(r"[\udc80-\udcff]")
# letters written apart: three or more single letters/digits (at least two letters), each pair
# separated by the same short separator
_SPACED = regex.compile(
    r"(?<![\w@.'])\w(?P<sep>(?:[\s.\-_*·•/+~]|\p{So}){1,2})\w(?:(?P=sep)\w)+(?![\w@])")
_LEET_CHARS = "0134579@$!|"
# a run of leet characters with a letter on each side ("k1ll", "n00dz", "J4yd3n")
_LEET = regex.compile(r"(?<=\p{L})[" + regex.escape(_LEET_CHARS) + r"]+(?=\p{L})")
# a zero opening a word of at least three letters, all lower or all upper case ("0liver",
# "0WEN"); other digits there are numbers ("1st", "4pm", "3days"), and links and codes
# ("t.co/0xKFnW", "v=0Ljpk", "0dictators.pdf") are left as written
_LEET_ZERO = regex.compile(
    r"(?<![\w@$.'/=%])0(?=(?:\p{Ll}{3,}|\p{Lu}{3,})(?![\w@/]|\.\w))")
_LEET_MAP = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "9": "g", "@": "a",
             "$": "s", "!": "i", "|": "l"}
_EMAIL_DOMAIN_AFTER_AT = regex.compile(r"[\p{L}\d-]+\.[\p{L}\d]")
_BRACKETED = regex.compile(r"\s*[\[({<]\s*(at|dot)\s*[\])}>]\s*", regex.IGNORECASE)
_TLD = r"(?:com|org|net|uk|co|ac|sch|gov|edu|io|me|info|biz|ie|eu|us)"
_SPOKEN_EMAIL = regex.compile(
    r"(?<![\w.])[\w.+-]+(?:\s+dot\s+[\w+-]+)*\s+(?:at|@)\s+"
    r"[a-z0-9-]+(?:\s+dot\s+[a-z0-9-]+)*\s+dot\s+" + _TLD + r"(?![\w])",
    regex.IGNORECASE,
)
_SPOKEN_PART = regex.compile(r"\s+(at|dot)\s+", regex.IGNORECASE)
# the characters people (and phones' keyboards) write for an apostrophe
_APOSTROPHE_CHARS = "\u2018\u2019\u201b\u02bc\u00b4\u0060\u2032"
_APOSTROPHES = str.maketrans(dict.fromkeys(_APOSTROPHE_CHARS, "'"))
# what NFKC leaves that matching needs plain: apostrophes, dashes, spaces
_PUNCTUATION = {
    **dict.fromkeys(_APOSTROPHE_CHARS, "'"),
    **{c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"},
    **{c: " " for c in "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                        "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"},
    "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ß": "ss",
}


class InvalidUtf8(ValueError):
    """Input that is not valid UTF-8; the message names where."""

    def __init__(self, where: str, offset: int, byte: int) -> None:
        super().__init__(f"{where}: not valid UTF-8 at byte {offset} (0x{byte:02x}); the text "
                         "was not read (fix the encoding at its source)")
        self.where = where
        self.offset = offset


def decode_utf8(data: bytes, where: str = "input") -> str:
    """``data`` decoded as UTF-8, or :class:`InvalidUtf8` naming the first bad byte: a message
    is never silently altered with replacement characters."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidUtf8(where, exc.start, data[exc.start]) from None


def invalid_utf8_positions(text: str) -> list[int]:
    """Where ``text`` (decoded with ``errors="surrogateescape"``) holds bytes that were not
    UTF-8."""
    return [m.start() for m in _SURROGATE.finditer(text)]


@dataclass(frozen=True, slots=True)
class NormalisedText:
    """``text`` as matching sees it, and where each of its characters was written in
    ``original``: ``starts[i]``/``ends[i]`` is the original span character ``i`` came from
    (``None``: the same length and positions as the original)."""

    original: str
    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None
    problems: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of the normalised span ``[start, end)``."""
        if self.starts is None or self.ends is None:
            return start, end
        if end <= start:
            pos = self.starts[start] if start < len(self.starts) else len(self.original)
            return pos, pos
        return self.starts[start], self.ends[end - 1]

    def offset(self, index: int) -> int:
        """The original position of normalised character ``index``."""
        if self.starts is None:
            return index
        return self.starts[index] if index < len(self.starts) else len(self.original)


class _Builder:
    """The text being normalised and, once a step changes a length, its offset map."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts: list[int] | None = None
        self.ends: list[int] | None = None

    def edit(self, edits: Sequence[tuple[int, int, str]]) -> None:
        """Replace each ``[a, b)`` (sorted, not overlapping) with its string; each new character
        maps to the original span of the whole replaced part."""
        if not edits:
            return
        text = self.text
        same_length = all(b - a == len(s) for a, b, s in edits)
        if same_length and self.starts is None:
            parts, pos = [], 0
            for a, b, s in edits:
                parts += [text[pos:a], s]
                pos = b
            parts.append(text[pos:])
            self.text = "".join(parts)
            return
        starts = self.starts if self.starts is not None else list(range(len(text)))
        ends = self.ends if self.ends is not None else list(range(1, len(text) + 1))
        out: list[str] = []
        new_starts: list[int] = []
        new_ends: list[int] = []
        pos = 0
        for a, b, s in edits:
            out.append(text[pos:a])
            new_starts += starts[pos:a]
            new_ends += ends[pos:a]
            if s:
                if len(s) == b - a:  # one for one: each character keeps its own place
                    new_starts += starts[a:b]
                    new_ends += ends[a:b]
                else:
                    lo = starts[a] if a < len(starts) else (ends[-1] if ends else 0)
                    hi = ends[b - 1] if b > a else lo
                    new_starts += [lo] * len(s)
                    new_ends += [hi] * len(s)
                out.append(s)
            pos = b
        out.append(text[pos:])
        new_starts += starts[pos:]
        new_ends += ends[pos:]
        self.text = "".join(out)
        self.starts, self.ends = new_starts, new_ends

    def sub(self, pattern: regex.Pattern[str], repl: Callable[[regex.Match[str]], str]) -> None:
        self.edit([(m.start(), m.end(), repl(m)) for m in pattern.finditer(self.text)])


@lru_cache(maxsize=1)
def _confusable_table() -> dict[str, str]:
    """Non-ASCII characters that imitate an ASCII letter or digit -> that character, from
    Unicode's confusables data (``confusable-homoglyphs``). Upper case stays upper case (Greek
    capital iota, listed as like "l", is an "I")."""
    from confusable_homoglyphs import confusables

    table: dict[str, str] = {}
    for char, glyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        candidates = [g["c"] for g in glyphs
                      if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum()]
        if not candidates:
            continue
        letters = [c for c in candidates if c.isalpha()] or candidates
        upper = unicodedata.category(char) == "Lu"
        best = sorted(letters, key=lambda c: (c.isupper() != upper, c))[0]
        if upper and best == "l":
            best = "I"
        table[char] = best
    return table


@lru_cache(maxsize=65536)
def fold_cluster(cluster: str) -> str:
    """One grapheme cluster outside ASCII as matching sees it: NFKC, look-alikes to Latin,
    accents off, plain apostrophes, dashes and spaces. Emoji and letters of other scripts with no
    Latin look-alike stay as they are."""
    confusable = _confusable_table()
    out: list[str] = []
    for raw in cluster:
        # a look-alike is read before NFKC too: NFKC turns the lunate sigma "ϲ" (like "c") into
        # a final sigma, which looks like nothing Latin
        mapped = confusable.get(raw)
        if mapped is None and not raw.isascii():
            mapped = _named_letter(raw)
        for ch in (mapped,) if mapped is not None else unicodedata.normalize("NFKC", raw):
            out.append(_fold_char_nfkc(ch, confusable))
    return "".join(out)


def _named_letter(ch: str) -> str | None:
    """The Latin letter ``ch`` is named as, for letters NFKC does not fold (small capitals,
    parenthesised, regional indicator, negative squared and circled letters), else None."""
    m = _NAMED_LETTER.fullmatch(unicodedata.name(ch, ""))
    if m is None:
        return None
    lower = m.group("lower") or m.group("lower2")
    return lower.lower() if lower else (m.group("upper") or m.group("upper2"))


def _fold_char_nfkc(ch: str, confusable: dict[str, str]) -> str:
    if ch.isascii():
        return ch
    if ch in _PUNCTUATION:
        return _PUNCTUATION[ch]
    mapped = confusable.get(ch)
    if mapped is not None:
        return mapped
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and base.isascii() and base.isalnum():
        return base
    if unicodedata.combining(ch):
        return ""  # a mark left alone on an ASCII letter: accents off
    return ch


def fold(text: str) -> str:
    """``text`` lowercased, white space as spaces, each character outside ASCII folded as
    :func:`fold_cluster` where that gives one character (accents off, look-alikes to Latin,
    plain apostrophes, dashes and spaces), with the same length: a span in the result is the
    same span in ``text``."""
    low = text.lower()
    if len(low) != len(text):  # rare characters whose lower case is longer ("İ")
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    low = low.translate(_WHITESPACE)
    if low.isascii():
        return low
    return "".join(c if c.isascii() else _fold_char(c) for c in low)


_WHITESPACE = str.maketrans(dict.fromkeys("\t\n\r\x0b\x0c", " "))


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    folded = fold_cluster(char).lower()
    return folded if len(folded) == 1 else char


def _leet(m: regex.Match[str]) -> str:
    run = m.group(0)
    if "@" in run:
        # an email address ("jayden@mail.org") keeps its "@"
        after = m.string[m.end():m.end() + 64]
        if _EMAIL_DOMAIN_AFTER_AT.match(after):
            return run
    return "".join(_LEET_MAP[c] for c in run)


def plain_apostrophes(text: str) -> str:
    """``text`` with every kind of apostrophe written as ``'`` ("you\u2019re" -> "you're"), one
    character for one, so spans stay valid: for rules that match words as written, without the
    rest of :func:`normalise`."""
    return text.translate(_APOSTROPHES)


def unleet(text: str) -> str:
    """``text`` with leetspeak inside words read as letters ("k1ll" -> "kill"); the same length,
    so it can be applied to a normalised text without changing its offsets (postcodes such as
    "SW1A" look like leetspeak: read them in the text before this step)."""
    if _LEET.search(text):
        text = _LEET.sub(_leet, text)
    if "0" in text and _LEET_ZERO.search(text):
        text = _LEET_ZERO.sub("O", text)
    return text


def _join_spaced(m: regex.Match[str]) -> str:
    run = m.group(0)
    joined = run.replace(m.group("sep"), "")
    # letters, not a list of numbers or initials of a sentence: at least two letters
    return joined if sum(c.isalpha() for c in joined) >= 2 else run


def _bracketed(m: regex.Match[str]) -> str:
    return "@" if m.group(1).lower() == "at" else "."


def _spoken_email(m: regex.Match[str]) -> str:
    return _SPOKEN_PART.sub(lambda p: "@" if p.group(1).lower() == "at" else ".",
                            m.group(0)).replace(" @ ", "@")


def normalise(
    text: str,
    *,
    lower: bool = False,
    leet: bool = True,
    separators: bool = True,
    emails: bool = False,
) -> NormalisedText:
    """``text`` with obfuscation undone (see the module's docstring), and the map back to it."""
    problems = tuple(
        f"character {i}: a byte that is not UTF-8 (0x{ord(text[i]) - 0xDC00:02x}), kept as is"
        for i in invalid_utf8_positions(text)
    ) if not text.isascii() else ()
    b = _Builder(text)
    if not text.isascii():
        if "\u202e" in b.text:
            b.sub(_OVERRIDDEN, lambda m: m.group(1)[::-1])
        b.sub(_IGNORABLE, lambda m: "")
        b.edit([(m.start(), m.end(), fold_cluster(m.group(0)))
                for m in _CLUSTER.finditer(b.text)
                if not m.group(0).isascii() and fold_cluster(m.group(0)) != m.group(0)])
    if separators and _SPACED.search(b.text):
        b.sub(_SPACED, _join_spaced)
    if leet:
        b.text = unleet(b.text)
    if emails:
        if _BRACKETED.search(b.text):
            b.sub(_BRACKETED, _bracketed)
        if _SPOKEN_EMAIL.search(b.text):
            b.sub(_SPOKEN_EMAIL, _spoken_email)
    out = b.text.lower() if lower else b.text
    if len(out) != len(b.text):  # a rare letter whose lower case is longer ("İ")
        out = "".join(c.lower() if len(c.lower()) == 1 else c for c in b.text)
    return NormalisedText(
        text, out,
        tuple(b.starts) if b.starts is not None else None,
        tuple(b.ends) if b.ends is not None else None,
        problems,
    )
