"""What a flag message may show: learner details masked for managers, explicit images never."""

from __future__ import annotations

from pathlib import Path

import pytest

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
