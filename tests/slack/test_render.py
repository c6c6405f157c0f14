"""What a flag message may show: learner details masked for managers, explicit images never."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance_bot.registers import RegisterIndex, read_toml
from governance_bot.slack.render import excerpt, mask_learners

REGISTERS = RegisterIndex(read_toml(Path(__file__).resolve().parents[2] / "examples" /
                                    "registers.toml"))


@pytest.mark.parametrize(("text", "hidden"), [
    ("Well done Jayden Price!", "Jayden"),
    ("Jay's goal won it", "Jay"),
    ("thanks @maisieoc for the photos", "maisieoc"),
    ("THANKS @MAISIEOC", "MAISIEOC"),
    ("congrats Maisie O'Connell", "O'Connell"),
    ("congrats Maisie O\u2019Connell", "O\u2019Connell"),
    ("email jayden.price@students.brookfield.example.org", "jayden.price"),
    ("Kacper Zielinski starts at Northgate", "Zielinski"),
    ("Olly scored twice", "Olly"),
])
def test_learner_details_are_masked(text: str, hidden: str) -> None:
    masked = mask_learners(text, REGISTERS)
    assert hidden not in masked
    assert "[learner]" in masked


@pytest.mark.parametrize("text", [
    "We will see you on Monday",           # "will" is not Will Turner
    "the ruby anniversary of the school",  # lower-case word, not Ruby Fletcher
    "A price list for the trip",
    "Jaydenson Hall is open",              # a longer word is not the name
])
def test_ordinary_words_are_not_masked(text: str) -> None:
    assert mask_learners(text, REGISTERS) == text


def test_the_excerpt_blacks_out_evidence_spans_and_keeps_context() -> None:
    text = "Our chess team travelled to Leeds. Jayden Price won the final. Back at 6pm."
    start = text.index("Jayden")
    shown = excerpt(text, [(start, start + len("Jayden Price"))], mask=True, width=30)
    assert "Jayden" not in shown and "█████" in shown and "won the final" in shown
    assert shown.startswith("…")


# --- the automaton applies exactly the regular expression's rule -------------------------------
def _by_regex(text: str) -> str:
    from governance_bot.slack.render import learner_pattern

    pattern = learner_pattern(REGISTERS)
    assert pattern is not None
    return pattern.sub("[learner]", text)


@pytest.mark.parametrize("text", [
    "Well done Jayden Price and Jay, see you @jaydenprice10!",
    "Jayden Prices is not a name but Jayden is",              # a longer word: the first name only
    "mail jaydenp@mail.example.com or JAYDENP@MAIL.EXAMPLE.COM today",
    "x@maisieoc and @@maisieoc are not handles, (@maisieoc) is",
    "Maisie O'Connell, Maisie O’Connell and maisie o'connell",  # names keep their capitals
    "Olly_sh Olly-sh @olly_sh olly_sh.",
    "Will will see Will Turner; @willt_10 will not",
    "Clo, Cloe and Clo's bag",
    "Jayden\nPrice on two lines; Jayden Price on one",
    "",
    "nobody registered here at all",
])
def test_the_automaton_masks_exactly_what_the_regular_expression_masks(text: str) -> None:
    assert mask_learners(text, REGISTERS) == _by_regex(text)


def test_a_text_whose_lower_case_is_longer_is_still_masked() -> None:
    # "İ" lower-cases to two characters: offsets would not line up, so the regex does it
    text = "İstanbul trip: well done Jayden Price"
    assert mask_learners(text, REGISTERS) == "İstanbul trip: well done [learner]"


_TERMS = ["Jayden Price", "Jay", "Maisie", "O'Connell", "O’Connell", "@maisieoc", "maisie.fb",
          "Olly", "olly_sh", "Will", "will", "Will Turner", "@willt_10", "Kacper", "kacperz",
          "jaydenp@mail.example.com", "Ruby", "ruby", "Price", "price", "Prices"]


@given(st.lists(st.one_of(st.sampled_from(_TERMS),
                          st.text(alphabet="abcXYZ _-.'@,\n", max_size=6)), max_size=12))
@settings(max_examples=300, deadline=None)
def test_any_mix_of_names_handles_and_words_is_masked_as_the_regular_expression_does(
        parts: list[str]) -> None:
    text = "".join(parts)
    assert mask_learners(text, REGISTERS) == _by_regex(text)
