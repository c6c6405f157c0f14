"""The safeguarding detector's literal prefilter never hides a cue that the full scan finds.

A DSL needs zero misses, so the prefilter (``rules/literal_prefilter.py``) (a cue, idiom or context
pattern runs on a text only when the text holds the words any match of it must contain) may only
save work. These tests run the same pack twice, with the prefilter and with the full scan
(``_prefilter = False``: every pattern on every text), and require the same idiom masking, the
same cues with the same spans in the same order, and the same contexts:

* on every text corpus there is: the dev set, the unseen set, the pack's own exemplars and
  must-catch / must-not-catch tables, the example organisation's posts, the load benchmark's
  texts, and (through ``tests/shared.py``) the Davidson tweets and Presidio's synthetic sentences;
* on texts that hypothesis assembles from the patterns' own words with random casing,
  punctuation, apostrophes and the characters Unicode case folding turns into ASCII letters;
* for a cue whose pattern names no word (always run), and for how patterns are read.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.literal_prefilter import (
    alternatives,
    case_fold_table,
    fold,
    pattern_requirements,
)
from rules.normalise import normalise
from rules.packs import load_pack
from rules.safeguarding import SafeguardingDetector
from tests.shared import require_shared

REPO = Path(__file__).resolve().parent.parent
PACK = load_pack("safeguarding")
LEXICAL_PACK = {**PACK, "settings": {**PACK["settings"], "semantic": False}}


@pytest.fixture(scope="module")
def prefiltered() -> SafeguardingDetector:
    det = SafeguardingDetector.from_pack(LEXICAL_PACK)
    assert det._prefilter, "the prefilter is on by default"
    return det


@pytest.fixture(scope="module")
def full_scan() -> SafeguardingDetector:
    det = SafeguardingDetector.from_pack(LEXICAL_PACK)
    det._prefilter = False
    return det


def _what_each_finds(det: SafeguardingDetector, text: str
                     ) -> tuple[str, list[list[tuple[int, tuple[int, int]]]], set[str],
                                list[bool]]:
    """The masked text; the cues that fire (index in the pack, span) in order, for a post by
    someone else and by the organisation itself; the contexts mentioned; which sub-categories'
    ``semantic_requires`` words are there (a meaning match needs them)."""
    masked = det.mask_idioms(text)
    index = {id(c): i for i, c in enumerate(det.cues)}
    hits = [[(index[id(h.cue)], h.span)
             for h in det.lexical_hits(masked, from_organisation=from_organisation)]
            for from_organisation in (False, True)]
    return masked, hits, det.contexts_in(masked), det._requires_met(masked)


def _assert_no_matching_pattern_is_skipped(det: SafeguardingDetector, text: str) -> None:
    """The prefilter's own promise, pattern by pattern (stronger than equal hits, which negation
    and context words thin out): any idiom, cue (with its ``near`` words), context word or
    semantic-requires word that matches the text has all its required strings found in it."""
    normalised = normalise(text).text
    found = det._scan(normalised)
    for rx, need in zip(det.idioms, det._idiom_needs, strict=True):
        assert not rx.search(normalised) or found & need == need, (rx.pattern, text)
    masked = det.mask_idioms(text)
    found = det._scan(masked)
    for cue, need in zip(det.cues, det._cue_needs, strict=True):
        if cue.regex.search(masked) and (cue.near is None or cue.near.search(masked)):
            assert found & need == need, (cue.label, text)
    word_lists = [*det._context_words, *det._requires_words]
    for words in word_lists:
        for rx, need in words:
            assert not rx.search(masked) or found & need == need, (rx.pattern, text)


def _assert_same(prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector,
                 texts: Iterable[str], *, minimum: int, every_pattern: bool = True) -> int:
    """Every text gives the same masking, hits and contexts both ways (and, with
    ``every_pattern``, no pattern that matches it is skipped); returns how many texts had a cue
    fire (so a corpus that never exercises a cue cannot pass unnoticed)."""
    seen = fired = 0
    for text in texts:
        seen += 1
        full = _what_each_finds(full_scan, text)
        assert _what_each_finds(prefiltered, text) == full, text
        if every_pattern:
            _assert_no_matching_pattern_is_skipped(prefiltered, text)
        fired += bool(full[1][0])
    assert seen >= minimum, f"only {seen} texts read"
    return fired


def _jsonl_texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]


def test_on_the_dev_set_the_prefilter_finds_every_cue_the_full_scan_finds(
    prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector
) -> None:
    texts = _jsonl_texts(REPO / "tests" / "data" / "safeguarding_dev.jsonl")
    assert _assert_same(prefiltered, full_scan, texts, minimum=400) >= 50


def test_on_the_unseen_set_the_prefilter_finds_every_cue_the_full_scan_finds(
    prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector
) -> None:
    texts = _jsonl_texts(REPO / "bench" / "data" / "safeguarding_unseen.jsonl")
    assert _assert_same(prefiltered, full_scan, texts, minimum=100) >= 10


def test_on_the_packs_own_exemplars_and_tables_the_prefilter_finds_every_cue(
    prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector
) -> None:
    catch, clear = prefiltered.examples()
    texts = ([t for *_, t in catch] + [t for _, t in clear]
             + [t for _, _, t in prefiltered._exemplars] + [t for _, t in prefiltered._benign])
    assert _assert_same(prefiltered, full_scan, texts, minimum=600) >= 150


def test_on_the_example_organisations_posts_the_prefilter_finds_every_cue(
    prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector
) -> None:
    texts = []
    for path in sorted((REPO / "examples" / "items").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the malformed-lines example file
            if isinstance(row, dict) and isinstance(row.get("text"), str):
                texts.append(row["text"])
    assert _assert_same(prefiltered, full_scan, texts, minimum=350) >= 5


def test_on_the_load_benchmarks_texts_the_prefilter_finds_every_cue(
    prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector
) -> None:
    from bench.pipeline_load import text_for

    names = [("Ava", "Okafor"), ("Leo", "Brennan")]
    texts = [text_for(i, names) for i in range(200)]
    _assert_same(prefiltered, full_scan, texts, minimum=200)


@pytest.mark.shared
@pytest.mark.slow  # 7,452 tweets through the full scan: ~15 s
def test_on_the_davidson_tweets_the_prefilter_finds_every_cue(
    prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector
) -> None:
    path = require_shared("datasets", "davidson", "labeled_data.dev.csv")
    with path.open(newline="") as f:
        texts = [row["tweet"] for row in csv.DictReader(f)]
    fired = _assert_same(prefiltered, full_scan, texts, minimum=7000, every_pattern=False)
    assert fired >= 100


@pytest.mark.shared
@pytest.mark.slow  # 1,500 sentences through the full scan: ~5 s
def test_on_presidios_synthetic_sentences_the_prefilter_finds_every_cue(
    prefiltered: SafeguardingDetector, full_scan: SafeguardingDetector
) -> None:
    path = require_shared("datasets", "presidio", "synth_dataset_v2.json")
    texts = [row["full_text"] for row in json.loads(path.read_text())]
    _assert_same(prefiltered, full_scan, texts, minimum=1500)


# -- texts made of the patterns' own words ---------------------------------------------------

def _fragments() -> list[str]:
    """The required strings of every cue, idiom and context, the pack's negations and context
    words, and the words of its must-catch sentences: what the prefilter looks for, and what
    lies around it."""
    det = SafeguardingDetector.from_pack(LEXICAL_PACK)
    words = set(det._literals._values)
    words.update(PACK.get("negations", []))
    for ctx in PACK.get("contexts", {}).values():
        words.update(ctx["words"])
    catch, _ = det.examples()
    for *_, text in catch:
        words.update(re.findall(r"[\w'’]+", text))
    return sorted(words)


FRAGMENTS = _fragments()
MUST_CATCH = [t for *_, t in SafeguardingDetector.from_pack(LEXICAL_PACK).examples()[0]]
_DETECTORS = (SafeguardingDetector.from_pack(LEXICAL_PACK),  # with the prefilter, full scan
              SafeguardingDetector.from_pack(LEXICAL_PACK))
_DETECTORS[1]._prefilter = False
# characters Python's case-insensitive matching equates with ASCII letters, and apostrophes
UNICODE_LOOKALIKES = {"i": ["İ", "ı"], "s": ["ſ"], "k": ["\u212a"], "'": ["\u2019", "`", "\u02bc"]}


@st.composite
def _cased(draw: st.DrawFn, word: str) -> str:
    style = draw(st.sampled_from(["lower", "upper", "title", "random", "lookalike"]))
    if style == "lower":
        return word.lower()
    if style == "upper":
        return word.upper()
    if style == "title":
        return word.title()
    out = []
    for ch in word:
        if style == "lookalike" and ch.lower() in UNICODE_LOOKALIKES and draw(st.booleans()):
            out.append(draw(st.sampled_from(UNICODE_LOOKALIKES[ch.lower()])))
        else:
            out.append(ch.upper() if draw(st.booleans()) else ch.lower())
    return "".join(out)


SEPARATORS = st.sampled_from([" "] * 6 + ["  ", "\n", ", ", ". ", "! ", "? ", "; ", "'", "\u2019",
                                          "-", "", " not ", " never ", " in the lesson ", "\t"])


@st.composite
def _assembled_text(draw: st.DrawFn) -> str:
    """Words and required strings strung together, or a must-catch sentence with its words
    re-cased and re-joined, followed by more words."""
    words: list[str] = []
    if draw(st.booleans()):
        words += re.findall(r"[\w'’]+", draw(st.sampled_from(MUST_CATCH)))
    words += draw(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=8))
    parts = []
    for word in words:
        parts.append(draw(_cased(word)))
        parts.append(draw(SEPARATORS))
    return "".join(parts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_assembled_text())
def test_texts_made_of_the_cues_own_words_give_the_same_hits_with_and_without_the_prefilter(
    text: str,
) -> None:
    fast, full = _DETECTORS
    assert _what_each_finds(fast, text) == _what_each_finds(full, text)
    _assert_no_matching_pattern_is_skipped(fast, text)



def test_the_assembled_texts_do_make_cues_fire() -> None:
    """The property above is only worth something if its texts reach the cues: the pack's own
    cue words, run together, do fire them (including through case-folding lookalikes)."""
    fast, full = _DETECTORS
    for text in ("I want to kill MYSELF", "ſend me nudes", "ı will \u212aill you after school",
                 "KİLL myself"):
        assert _what_each_finds(fast, text)[1][0], text
        assert _what_each_finds(fast, text) == _what_each_finds(full, text)


# -- how patterns are read ------------------------------------------------------------------

def _pack_with_cues(cues: list[str], contextual: list[dict[str, Any]] | None = None
                    ) -> dict[str, Any]:
    return {
        "settings": {"semantic": False},
        "families": {"self_harm": {
            "title": "Self-harm", "duty": "Disclosures go to the DSL at once.",
            "sub": {"disclosure": {
                "cues": [{"label": f"cue {i}", "pattern": c} for i, c in enumerate(cues)],
                "contextual": contextual or []}},
        }},
    }


def test_a_cue_whose_pattern_names_no_word_is_run_on_every_text() -> None:
    det = SafeguardingDetector.from_pack(_pack_with_cues([r"[a-z]+ful", "suicidal",
                                                          r"\w{3}-\w{3}"]))
    needs = dict(zip((c.label for c in det.cues), det._cue_needs, strict=True))
    assert needs["cue 0"] != 0, "'ful' is required"
    assert needs["cue 2"] == 0, "a lone '-' is not worth testing: always run"
    assert needs["cue 1"] != 0
    hits = det.lexical_hits(det.mask_idioms("abc-def and a wonderful day"))
    assert [h.cue.label for h in hits] == ["cue 0", "cue 2"]


@pytest.mark.parametrize(("pattern", "required"), [
    (r"\bkill\s+myself\b", [{"kill"}, {"myself"}]),
    (r"(kill|end)\s+it", [{"kill", "end"}]),  # "it" is too short to test on its own
    (r"self[-\s+]?harm(ing|ed)?", [{"self"}, {"harm", "harming", "harmed"}]),
    (r"(send|show) me", [{"send", "show"}]),
    (r"k\.m\.s", [{"k.m.s"}]),
    (r"suicid(e|al)", [{"suicide", "suicidal"}]),
    (r"(?:nudes)?\s*pics", [{"pics"}]),  # an optional word is not required
    (r"(a|b)?x\w+", []),  # nothing of three characters or two is required: always run
    (r"[^a-z]+", []),
    (r"\w+ing", [{"ing"}]),
    (r"go(ing)?\s+through", [{"through"}]),  # "go"/"going" is too short to be worth testing
])
def test_a_pattern_is_read_into_the_words_every_match_of_it_contains(
    pattern: str, required: list[set[str]]
) -> None:
    rx = re.compile(pattern, re.IGNORECASE)
    got = pattern_requirements(rx)
    assert [set(r) for r in got] == required
    for req in got:  # and what is read is true of real matches
        for sample in ("kill myself", "end it", "self-harming", "send me", "k.m.s", "suicidal",
                       "nudes pics", "going through"):
            m = rx.search(sample)
            if m:
                assert any(s in fold(sample) for s in req), (pattern, sample, req)


def test_every_character_that_matches_an_ascii_letter_ignoring_case_folds_to_it() -> None:
    """The prefilter looks for ASCII strings in a folded text; Python's ``re`` with IGNORECASE
    also matches "İ", "ı", "ſ" and the Kelvin sign to ASCII letters. Asked of ``re`` one
    character at a time over every code point: each such character folds to that letter."""
    everything = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    det = _DETECTORS[0]
    used = {ch for s in det._literals._values for ch in s}
    assert used, "the pack's patterns give literals"
    table = case_fold_table()
    for ch in sorted(used):
        for m in re.finditer(re.escape(ch), everything, re.IGNORECASE):
            assert table.get(ord(m.group(0))) == ch, (ch, m.group(0))
            assert fold(m.group(0)) == ch


@pytest.mark.parametrize(("pattern", "parts"), [
    (r"(?:\b(?:lesson)\b)|(?:\b(?:rse)\b)", [r"(?:\b(?:lesson)\b)", r"(?:\b(?:rse)\b)"]),
    (r"(a|b)|c", ["(a|b)", "c"]),
    (r"[|]|x", ["[|]", "x"]),
    (r"[]|]|y", ["[]|]", "y"]),
    (r"[^]|]|y", ["[^]|]", "y"]),
    (r"\||z", [r"\|", "z"]),
    (r"\(|w", [r"\(", "w"]),
    (r"(a)|\1", [r"(a)|\1"]),  # a back-reference: not split
    (r"(?P<x>a)|(?P=x)", [r"(?P<x>a)|(?P=x)"]),
    (r"justone", ["justone"]),
])
def test_a_word_list_is_split_into_its_words_only_at_the_top_level(
    pattern: str, parts: list[str]
) -> None:
    rx = re.compile(pattern, re.IGNORECASE)
    assert [p.pattern for p in alternatives(rx)] == parts


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab|()[]^\\1xyzLESONrse -", max_size=20),
       pattern=st.sampled_from([r"(?:\b(?:lesson)\b)|(?:\b(?:rse)\b)", r"(a|b)|c", r"[|]|x",
                                r"[]|]|y", r"[^]|]|y", r"\||z", r"\(|w", r"a(b|c)|x[yz]|\(\)"]))
def test_a_word_list_is_mentioned_exactly_when_one_of_its_words_is(text: str, pattern: str
                                                                    ) -> None:
    rx = re.compile(pattern, re.IGNORECASE)
    assert bool(rx.search(text)) == any(p.search(text) for p in alternatives(rx))
