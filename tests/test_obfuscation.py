"""A learner's name is still found when it is disguised; the evidence points at what was written.

Policy: no identifying details of learners on the official accounts (P1 "Managing our online
presence"). Someone who wants a learner's name past a filter, or a bot that mangles text, writes it
with invisible characters, look-alike letters from other scripts, full-width letters, digits for
letters, or letters spaced apart; an email as "name[at]school[dot]org". The shared normaliser
(rules/normalise.py) undoes each of these for every text rule; these tests go through the
learner_pii rule (one per technique) and through the normaliser itself.

People are the invented Brookfield Academy in examples/registers.toml (learner L001 is Jayden
Price, L003 Oliver Smith-Hughes).
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.normalise import (
    InvalidUtf8,
    decode_utf8,
    fold,
    invalid_utf8_positions,
    normalise,
    unleet,
)
from tests.test_learner_pii import CTX, detect, learners_named, make_item

# (technique, the learner's name or email as written, the post around it)
_DISGUISES = [
    ("zero-width space inside the first name", "Jay\u200bden Price", "Well done {}!"),
    ("zero-width joiner and non-joiner", "J\u200day\u200cden Price", "Well done {}!"),
    ("soft hyphens inside both names", "Jay\u00adden Pri\u00adce", "Well done {}!"),
    ("a byte order mark and a word joiner", "Jayden\u2060 Price", "\ufeffWell done {}"),
    ("Cyrillic look-alike letters", "Јауdеn Рrісе", "Well done {}!"),
    ("Greek look-alike letters", "Jayden Ρriϲe", "Well done {} and OΛiver"),
    ("full-width letters", "Ｊａｙｄｅｎ Ｐｒｉｃｅ", "Well done {}!"),
    ("mathematical bold letters", "𝐉𝐚𝐲𝐝𝐞𝐧 𝐏𝐫𝐢𝐜𝐞", "Well done {}!"),
    ("leetspeak digits for letters", "J4yd3n Pr1ce", "Well done {}!"),
    ("leetspeak with symbols", "J@yden Pr!ce", "big up {}"),
    ("letters separated by dots", "J.a.y.d.e.n P.r.i.c.e", "Well done {}"),
    ("letters separated by spaces", "J a y d e n  P r i c e", "Well done {}"),
    ("letters separated by dashes", "J-a-y-d-e-n P-r-i-c-e", "shout out {}"),
    ("combining accents added", "Ja\u0301yde\u0300n Pri\u0308ce", "Well done {}"),
    ("small capital letters", "ᴊᴀʏᴅᴇɴ ᴘʀɪᴄᴇ", "Well done {}!"),
    ("circled letters", "Ⓙⓐⓨⓓⓔⓝ Ⓟⓡⓘⓒⓔ", "Well done {}!"),
    ("negative squared letters", "🅹🅰🆈🅳🅴🅽 🅿🆁🅸🅲🅴", "Well done {}!"),
    ("parenthesised letters", "⒥⒜⒴⒟⒠⒩ ⒫⒭⒤⒞⒠", "Well done {}!"),
    ("regional indicator letters (flag emoji)", "🇯🇦🇾🇩🇪🇳 🇵🇷🇮🇨🇪", "Well done {}!"),
    ("letters separated by an emoji", "J🌟a🌟y🌟d🌟e🌟n P🌟r🌟i🌟c🌟e", "Well done {}"),
    ("letters on separate lines", "J\na\ny\nd\ne\nn Price", "Well done {}"),
    ("letters separated by tabs", "J\ta\ty\td\te\tn P\tr\ti\tc\te", "Well done {}"),
    ("letters drawn out", "Jaaayden Priiiice", "Well done {}!!"),
    ("letters drawn out and leetspeak", "J44aaayd3nnn Pr1ce", "Well done {}!!"),
    ("a right-to-left override showing a reversed surname the right way round",
     "Jayden \u202eecirP\u202c", "Well done {}!"),
    ("an email written with [at] and [dot]",
     "jayden.price[at]students.brookfield.example.org", "write to {}"),
    ("an email written with (at) and (dot)",
     "jayden.price (at) students (dot) brookfield (dot) example (dot) org", "write to {}"),
]
OBFUSCATED = [(t, post.format(written), written) for t, written, post in _DISGUISES]


@pytest.mark.parametrize(("technique", "text", "written"), OBFUSCATED,
                         ids=[t for t, _, _ in OBFUSCATED])
def test_a_disguised_learner_name_is_flagged_with_evidence_on_what_was_written(
    technique: str, text: str, written: str,
) -> None:
    findings = detect(make_item(text, kind="comment", author_handle="@someone.else"))
    assert "learner:L001" in learners_named(findings), technique
    finding = next(f for f in findings if f.evidence.register_entry == "learner:L001")
    start = text.index(written)
    # the evidence covers exactly what was written, disguise included
    assert (start, start + len(written)) in finding.evidence.spans, (
        [text[a:b] for a, b in finding.evidence.spans])


def test_a_zero_for_the_first_letter_of_a_name_is_read_as_an_o() -> None:
    text = "Congrats 0liver Smith-Hughes"
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert "learner:L003" in learners_named(findings)


def test_a_hyphenated_surname_in_look_alike_letters_is_flagged() -> None:
    text = "Congrats Оlivеr Smith‐Нughеs"  # Cyrillic O, e, H and a Unicode hyphen
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert "learner:L003" in learners_named(findings)


@pytest.mark.parametrize("text", [
    "Year 10R and Y11 came 2nd at 5pm",
    "The postcode is on the letter",
    "Sports day results: 1st place Year 9",
    "well done everyone at sports day",
])
def test_everyday_posts_stay_clear_after_normalisation(text: str) -> None:
    assert detect(make_item(text, kind="comment", author_handle="@x")) == []


def test_a_postcode_is_still_read_as_a_postcode_not_leetspeak() -> None:
    findings = detect(make_item("she lives at SW1A 1AA", kind="comment", author_handle="@x"))
    assert findings and "postcode" in findings[0].evidence.detail["identifiers"]


# -- a property: any invisible characters and look-alikes inside a register name ------------------

_INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff", "\u180e",
               "\U000e0020"]
# Latin letter -> look-alikes from other scripts and full-width forms
_LOOK_ALIKES = {
    "a": ["а", "ａ", "α"], "e": ["е", "ｅ"], "o": ["о", "ο", "ｏ"], "p": ["р", "ｐ"],
    "c": ["с", "ϲ", "ｃ"], "y": ["у", "ｙ"], "i": ["і", "ｉ"], "j": ["ј", "ｊ"], "x": ["х"],
    "s": ["ѕ", "ｓ"], "h": ["һ", "ｈ"], "d": ["ԁ", "ｄ"], "n": ["ｎ"], "r": ["ｒ"], "l": ["ｌ"],
    "J": ["Ј", "Ｊ"], "P": ["Р", "Ρ", "Ｐ"], "O": ["О", "Ο", "Ｏ"], "S": ["Ѕ", "Ｓ"],
    "H": ["Н", "Η", "Ｈ"], "C": ["С", "Ｃ"], "B": ["В", "Β"], "M": ["М", "Μ"], "T": ["Т", "Τ"],
    "E": ["Е", "Ε"], "A": ["А", "Α"], "K": ["К", "Κ"],
}
_NAMES = [(lr.learner_id, f"{lr.first_name} {lr.last_name}")
          for lr in CTX.registers.iter_learners()]


@st.composite
def _disguised(draw: st.DrawFn) -> tuple[str, str, str]:
    learner_id, name = draw(st.sampled_from(_NAMES))
    out = []
    for ch in name:
        choices = _LOOK_ALIKES.get(ch)
        if choices and draw(st.booleans()):
            ch = draw(st.sampled_from(choices))
        out.append(ch)
        if ch != " " and draw(st.integers(0, 3)) == 0:
            out.append("".join(draw(st.lists(st.sampled_from(_INVISIBLES), min_size=1,
                                              max_size=3))))
    return learner_id, name, "".join(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_disguised())
def test_register_names_with_invisible_characters_and_look_alikes_are_found(
    case: tuple[str, str, str],
) -> None:
    learner_id, name, disguised = case
    text = f"Congratulations to {disguised} on the award"
    findings = detect(make_item(text, kind="comment", author_handle="@someone.else"))
    assert f"learner:{learner_id}" in learners_named(findings), (name, disguised)
    finding = next(f for f in findings if f.evidence.register_entry == f"learner:{learner_id}")
    start = len("Congratulations to ")
    assert any(a <= start and b >= start + len(disguised.rstrip("".join(_INVISIBLES)))
               for a, b in finding.evidence.spans), (disguised, finding.evidence.spans)


# -- the normaliser itself -------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "read"), [
    ("k1ll mys3lf", "kill myself"),
    ("k.i.l.l m.y.s.e.l.f", "kill myself"),
    ("s e w e r s l i d e", "sewerslide"),
    ("n00dz", "noodz"),
    ("un\u200balive", "unalive"),
    ("ｋｉｌｌ", "kill"),
    ("suіcіdе", "suicide"),
    ("café", "cafe"),
    ("O’Connell", "O'Connell"),
    ("ᴋɪʟʟ ᴍʏꜱᴇʟꜰ", "kill myself"),
    ("k\ni\nl\nl", "kill"),
    ("0verdose", "Overdose"),
    ("\u202eflesym llik\u202c", "kill myself"),
])
def test_the_normaliser_reads_disguised_words(written: str, read: str) -> None:
    assert normalise(written).text == read


@pytest.mark.parametrize("text", [
    "Year 10R and Y11, 2nd place at 5pm, mp3 player",
    "07912 345678",
    "SW1A 1AA",
    "jayden@mail.example.org",
    "e.g. this",
    "plain text stays the same",
])
def test_numbers_codes_and_plain_text_are_left_as_written(text: str) -> None:
    norm = normalise(text, leet=False)
    assert norm.text == text
    assert norm.starts is None  # nothing to map: no cost on the usual text


def test_every_normalised_character_maps_back_into_the_original() -> None:
    text = "Ｈｉ J.a.y \u200bk1ll Рrісе x[at]y[dot]com ﬁne"
    norm = normalise(text, emails=True)
    for i in range(len(norm.text)):
        a, b = norm.span(i, i + 1)
        assert 0 <= a < b <= len(text)
    assert norm.span(0, len(norm.text)) == (0, len(text))


def test_fold_keeps_the_length_so_spans_stay_true() -> None:
    for text in ["Zieliński O’Connell – Smith", "İstanbul ẞ straße", "Jayden\nPrice\tok"]:
        assert len(fold(text)) == len(text)
    assert fold("Zieliński O’Connell–Smith") == "zielinski o'connell-smith"


def test_unleet_keeps_the_length_and_leaves_numbers_alone() -> None:
    assert unleet("J4yd3n won 2nd at 5pm") == "Jayden won 2nd at 5pm"
    numbers = "1st, 3days, 4pm, 0800 123 456, 007, 10am, 0.5mg, £0bn, v0ice"
    assert unleet(numbers) == numbers.replace("v0ice", "voice")
    assert unleet("0liver and 0wen") == "Oliver and Owen"


def test_invalid_utf8_is_reported_with_where_it_is_not_replaced() -> None:
    with pytest.raises(InvalidUtf8, match=r"items\.jsonl:3: not valid UTF-8 at byte 6 \(0xff\)"):
        decode_utf8(b"hello \xff there", "items.jsonl:3")
    text = b"hello \xff there".decode("utf-8", "surrogateescape")
    assert invalid_utf8_positions(text) == [6]
    norm = normalise(text)
    assert "\udcff" in norm.text  # kept, not replaced
    assert norm.problems and "character 6" in norm.problems[0]


def test_default_ignorable_characters_come_from_unicode_data() -> None:
    # tag characters, variation selectors and the Mongolian vowel separator are all ignorable
    for ch in ["\U000e0041", "\ufe0f", "\u180e", "\u2064"]:
        assert normalise(f"ki{ch}ll").text == "kill", unicodedata.name(ch, hex(ord(ch)))
