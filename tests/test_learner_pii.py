"""learner_pii: no identifying details of learners on the official accounts
(P1 "Managing our online presence"; P2 "Information security").

People are the invented Brookfield Academy in examples/registers.toml.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from governance_bot.config import Config
from governance_bot.findings import Category, Finding, Route, Severity
from governance_bot.history import MemoryHistory
from governance_bot.items import Item, ItemKind, Media, Person, Visibility
from governance_bot.registers import (
    Learner,
    RegisterIndex,
    Registers,
    StaffMember,
    StaffRole,
    read_toml,
)
from rules.base import DetectionContext
from rules.engine import DetectionEngine
from rules.learner_pii import LearnerPiiDetector, fold, is_valid_postcode
from rules.packs import load_pack
from tests.shared import require_shared

REPO = Path(__file__).resolve().parent.parent
PACK = load_pack("learner_pii")


def example_registers() -> Registers:
    return read_toml(REPO / "examples" / "registers.toml")


def context(registers: Registers | None = None) -> DetectionContext:
    return DetectionContext(registers=RegisterIndex(registers or example_registers()),
                            history=MemoryHistory())


CTX = context()
DETECTOR = LearnerPiiDetector.from_pack(PACK, Config())


def make_item(text: str, *, kind: str = "post", visibility: str = "public",
              account: str = "brookfield-facebook", author_handle: str | None = None,
              author_id: str | None = None, recipients: Sequence[str] = (), photo: bool = False,
              tagged: Sequence[str] = (), ctx: DetectionContext = CTX) -> Item:
    """An item as a connector delivers it, with author and recipients resolved as the pipeline
    does. With no author given, the post is the account's own (the organisation)."""
    if author_handle is None and author_id is None:
        account_rec = ctx.registers.accounts[account]
        author_id = account_rec.platform_id or account_rec.handle
    media = [Media(url="https://cdn.example/1.jpg", mime_type="image/jpeg",
                   tagged=[Person(handle=h) for h in tagged])] if photo or tagged else []
    item = Item(
        id=f"x{abs(hash(text)) % 10**8}", platform="facebook", account=account,
        kind=ItemKind(kind),
        author=Person(id=author_id, handle=author_handle),
        recipients=[Person(handle=h) for h in recipients],
        created_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC), visibility=Visibility(visibility),
        text=text,
        media=media,
    )
    return ctx.registers.resolve(item)


def from_example(example: dict[str, Any]) -> Item:
    return make_item(
        example["text"], kind=example.get("kind", "post"),
        visibility=example.get("visibility", "public"),
        account=example.get("account", "brookfield-facebook"),
        author_handle=example.get("author_handle"), author_id=example.get("author_id"),
        recipients=example.get("recipients", ()), photo=example.get("photo", False),
    )


def detect(item: Item, ctx: DetectionContext = CTX,
           detector: LearnerPiiDetector = DETECTOR) -> list[Finding]:
    return list(detector.detect(item, ctx))


def learners_named(findings: list[Finding]) -> set[str]:
    return {f.evidence.register_entry for f in findings if f.evidence.register_entry} - {None}


def covered(text: str, findings: list[Finding]) -> list[str]:
    return [text[a:b] for f in findings for a, b in f.evidence.spans]


# ---------------------------------------------------------------------------------------------
# Every example shipped in the pack
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("example", PACK["must_catch"], ids=lambda e: e.get("why", e["text"]))
def test_pack_must_catch(example: dict[str, Any]) -> None:
    findings = detect(from_example(example))
    assert findings, f"not flagged: {example['why']}"
    if "learner" in example:
        assert f"learner:{example['learner']}" in learners_named(findings)


@pytest.mark.parametrize("example", PACK["must_not_catch"], ids=lambda e: e.get("why", e["text"]))
def test_pack_must_not_catch(example: dict[str, Any]) -> None:
    findings = detect(from_example(example))
    assert findings == [], f"flagged: {example['why']}: {[f.explanation for f in findings]}"


def test_the_pack_ships_examples_both_ways() -> None:
    assert len(PACK["must_catch"]) >= 15
    assert len(PACK["must_not_catch"]) >= 10


# ---------------------------------------------------------------------------------------------
# The policy, case by case
# ---------------------------------------------------------------------------------------------

MUST_CATCH = [
    # (policy sentence, text, learner the finding must name or None, extra item fields)
    ("a learner's full name in a public post is flagged to the account managers",
     "Congratulations Jayden Price!", "L001", {}),
    ("a learner's name in any order is flagged", "price jayden, year 9", "L001", {}),
    ("a learner's name in capitals is flagged", "WELL DONE JAYDEN PRICE", "L001", {}),
    ("a learner's name across a line break is flagged", "Well done Jayden\nPrice", "L001", {}),
    ("a learner's name with two spaces is flagged", "Well done Jayden  Price", "L001", {}),
    ("a hyphenated surname is matched with its hyphen", "Oliver Smith-Hughes", "L003", {}),
    ("a hyphenated surname is matched with an en dash", "Oliver Smith–Hughes", "L003", {}),
    ("a hyphenated surname is matched run together", "Oliver SmithHughes", "L003", {}),
    ("a short form of the first name is flagged", "Ollie Smith-Hughes", "L003", {}),
    ("the register's preferred name is flagged with the surname", "Clo Brennan", "L008", {}),
    ("William's short forms are flagged", "Billy Turner and Liam Turner", "L011", {}),
    ("an apostrophe surname without the apostrophe is flagged", "maisie oconnell", "L002", {}),
    ("an apostrophe surname with a space is flagged", "Maisie O Connell", "L002", {}),
    ("a curly apostrophe is the same apostrophe", "Maisie O‘Connell’s poem", "L002", {}),
    ("a possessive with a curly apostrophe is flagged", "Jayden Price’s robot", "L001", {}),
    ("an accented spelling matches the register's plain one", "Kacper Zieliński", "L005", {}),
    ("a learner's hashtag is flagged", "#JaydenPrice", "L001", {}),
    ("a learner's hashtag in camel case inside a longer tag is flagged",
     "#WellDoneJaydenPrice", "L001", {}),
    ("a learner's hashtag in lowercase is flagged", "#freyamacleod", "L012", {}),
    ("a learner's handle is flagged", "thanks @maisie.fb!", "L002", {}),
    ("a learner's handle at the end of a sentence is flagged", "Thanks @maisie.fb.", "L002", {}),
    ("a learner's handle in a profile link is flagged",
     "see instagram.com/amira.h.art for more", "L004", {}),
    ("a learner's personal email from the register is flagged",
     "contact jaydenp@mail.example.com", "L001", {}),
    ("a learner's school email is flagged",
     "JAYDEN.PRICE@students.brookfield.example.org", "L001", {}),
    ("a learner's first name with their surname initial and year group is flagged",
     "Star of the week: Ruby F. in Year 8", "L006", {}),
    ("a learner's first name with their surname initial and a photo is flagged",
     "Harvey D. on work placement", "L009", {"photo": True}),
    ("a learner's first name with their year group and a photo is flagged",
     "Zara from Year 7 with her medal", "L010", {"photo": True}),
    ("a learner's first name with a postcode is flagged",
     "Chloe lives near LS11 5BT", "L008", {}),
    ("a learner's first name with their register date of birth is flagged",
     "Ethan - 4th April 2009", "L007", {}),
    ("a learner's name in a public comment by the public is flagged",
     "Ethan Nwosu is in my son's class", "L007",
     {"kind": "comment", "author_handle": "@random_parent_77"}),
    ("a learner's name in a reply is flagged", "Ruby Fletcher!", "L006",
     {"kind": "reply", "author_handle": "@someone"}),
    ("a learner tagged in a photo is flagged", "Sports day!", "L009",
     {"tagged": ["@harvdoyle"]}),
    ("a learner's name on the organisation's X account is flagged", "Go Harvey Doyle",
     "L009", {"account": "brookfield-x"}),
]


@pytest.mark.parametrize(("policy", "text", "learner", "extra"), MUST_CATCH,
                         ids=[c[0] for c in MUST_CATCH])
def test_must_catch(policy: str, text: str, learner: str | None, extra: dict[str, Any]) -> None:
    findings = detect(make_item(text, **extra))
    assert findings, policy
    if learner:
        assert f"learner:{learner}" in learners_named(findings), policy
    assert all(f.category == Category.learner_pii for f in findings)


MUST_NOT_CATCH = [
    ("a learner's first name alone is not flagged", "Jayden was brilliant today", {}),
    ("a learner's first name with a photo alone is not flagged", "Amira in the art room",
     {"photo": True}),
    ("a learner's first name with a year group but no photo is not flagged",
     "Ruby in Year 8 read at assembly", {}),
    ("first name and surname initial alone is not flagged", "Good luck Harvey D!", {}),
    ("a staff member's name is not a learner detail",
     "Helen Okafor, our Designated Safeguarding Lead", {}),
    ("a staff member's work email is not a learner detail",
     "Email h.okafor@brookfield.example.org", {}),
    ("a staff member's personal email is not a learner detail",
     "danmensah88@gmail.example.com", {}),
    ("the school's own office email is not a learner detail",
     "office@brookfield.example.org", {}),
    ("a surname alone is not flagged", "The Turner Prize exhibition", {}),
    ("an everyday sentence with name-like words is not flagged",
     "Will you turn the lights off? ruby red, grace and hope", {}),
    ("a name inside a longer word is not flagged", "MacJayden Pricewell", {}),
    ("a longer double-barrelled surname is a different person",
     "Maisie O'Connell-Byrne", {}),
    ("a handle that merely starts like a learner's is not theirs", "@maisie.fb.official", {}),
    ("a learner's handle without an @ is flagged only if it is distinctive", "kacperz", {}),
    ("a direct message from staff to a learner is the learner's own conversation",
     "Jayden Price: call 07912 345678",
     {"kind": "direct_message", "visibility": "direct", "author_id": "teams:aad-0006",
      "recipients": ["@jaydenprice10"]}),
    ("a direct message labelled public between a learner and staff is still not checked",
     "Jayden Price: call 07912 345678",
     {"kind": "direct_message", "visibility": "public", "author_id": "teams:aad-0006",
      "recipients": ["@jaydenprice10"]}),
    ("a private item is not checked", "Jayden Price", {"visibility": "private"}),
    ("a learner's own name in their own comment is not flagged", "Harvey Doyle here, thanks!",
     {"kind": "comment", "author_handle": "@harvdoyle"}),
    ("a date that is not a birth date is not flagged", "Trip on 14 March 2026", {}),
    ("prices, scores and times are not phone numbers",
     "£1,250.00 raised; 3-2 win; 10:30-12:00; 0.5 miles; 2025/26", {}),
    ("a house number without a street type is not an address", "We raised 250 pounds", {}),
    ("a distance is not an address", "it is 10 minutes walk from the station", {}),
    ("a postcode-like year and team label is not a postcode", "Y11 2nd place, y7 3rd", {}),
]


@pytest.mark.parametrize(("policy", "text", "extra"), MUST_NOT_CATCH,
                         ids=[c[0] for c in MUST_NOT_CATCH])
def test_must_not_catch(policy: str, text: str, extra: dict[str, Any]) -> None:
    findings = detect(make_item(text, **extra))
    assert findings == [], f"{policy}: {[f.explanation for f in findings]}"


def test_a_learners_own_phone_number_in_their_own_comment_is_still_flagged() -> None:
    item = make_item("Harvey Doyle here, ring me on 07912 345678", kind="comment",
                     author_handle="@harvdoyle")
    findings = detect(item)
    assert [f.evidence.register_entry for f in findings] == ["learner:L009"]
    assert covered(item.text, findings) == ["07912 345678"]


# ---------------------------------------------------------------------------------------------
# Evidence and explanation
# ---------------------------------------------------------------------------------------------

def test_evidence_names_the_learner_record_and_spans_without_echoing_the_name() -> None:
    text = "Well done Jayden Price (@jaydenprice10)!"
    findings = detect(make_item(text))
    assert len(findings) == 1
    finding = findings[0]
    assert finding.evidence.register_entry == "learner:L001"
    assert finding.severity == Severity.medium
    assert covered(text, findings) == ["Jayden Price", "jaydenprice10"]
    assert "P1 Managing our online presence" in finding.explanation
    assert "no identifying details of learners on official accounts" in finding.explanation
    assert "Jayden" not in finding.explanation and "Price" not in finding.explanation
    assert "Jayden" not in json.dumps(finding.to_dict()).replace(text, "")


def test_a_learners_name_is_routed_to_the_account_managers() -> None:
    # the engine finds; the pipeline routes (governance_bot.routing, the need-to-know table)
    from governance_bot.routing import Router

    engine = DetectionEngine.from_config(Config(), only=["learner_pii"])
    item = make_item("Jayden Price won!")
    findings = engine.detect(item, CTX)
    assert [Router().route_finding(f, item) for f in findings] == [Route.account_managers]


def test_the_fingerprint_is_stable_across_rescans() -> None:
    item = make_item("Jayden Price and Ruby Fletcher won")
    engine = DetectionEngine.from_config(Config(), only=["learner_pii"])
    first = sorted(f.fingerprint for f in engine.detect(item, CTX))
    second = sorted(f.fingerprint for f in engine.detect(item, context()))
    assert first == second and len(first) == 2


def test_two_learners_make_two_findings_and_loose_contact_details_a_third() -> None:
    text = "Jayden Price and Ruby Fletcher at 14 Acacia Avenue"
    findings = detect(make_item(text))
    assert learners_named(findings) == {"learner:L001", "learner:L006"}
    loose = [f for f in findings if f.evidence.register_entry is None]
    assert len(loose) == 1 and covered(text, loose) == ["14 Acacia Avenue"]


def test_contact_details_with_one_named_learner_are_that_learners() -> None:
    text = "Ruby Fletcher, 14 Acacia Avenue, LS11 5BT"
    findings = detect(make_item(text))
    assert len(findings) == 1
    assert findings[0].evidence.detail["identifiers"] == ["full_name", "street_address",
                                                           "postcode"]


def test_a_first_name_shared_by_several_learners_is_flagged_without_guessing_who() -> None:
    registers = example_registers()
    registers.learners.append(Learner(learner_id="L099", first_name="Jayden", last_name="Ng"))
    ctx = context(registers)
    findings = detect(make_item("Jayden's number is 07912 345678", ctx=ctx), ctx=ctx)
    assert len(findings) == 1
    assert findings[0].evidence.register_entry is None
    assert findings[0].evidence.detail["candidates"] == 2


def test_nothing_about_learners_is_logged_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="rules.learner_pii")
    text = "Jayden Price 07912 345678"
    detect(make_item(text), ctx=context())
    for record in caplog.records:
        assert "Jayden" not in record.getMessage() and "07912" not in record.getMessage()
        assert record.levelno <= logging.DEBUG


# ---------------------------------------------------------------------------------------------
# Staff named like learners: the register context decides
# ---------------------------------------------------------------------------------------------

def _with_staff_named_like_a_learner() -> DetectionContext:
    registers = example_registers()
    registers.staff.append(StaffMember(staff_id="S099", name="Ruby Fletcher", role=StaffRole.tutor,
                                       email="r.fletcher@brookfield.example.org",
                                       platform_ids=["fb:5599"]))
    return context(registers)


@pytest.mark.parametrize(("policy", "text", "extra", "flagged"), [
    ("with a title the name is the staff member's", "Thank you Mrs Ruby Fletcher", {}, False),
    ("with a staff word nearby the name is the staff member's",
     "Ruby Fletcher, our maths tutor, retires this year", {}, False),
    ("the staff member signing their own comment is not a learner detail",
     "See you all Monday - Ruby Fletcher", {"author_id": "fb:5599", "kind": "comment"}, False),
    ("without register context the shared name is still flagged as the learner's",
     "Ruby Fletcher won the poetry prize", {}, True),
])
def test_a_staff_member_named_like_a_learner(policy: str, text: str, extra: dict[str, Any],
                                             flagged: bool) -> None:
    ctx = _with_staff_named_like_a_learner()
    findings = detect(make_item(text, ctx=ctx, **extra), ctx=ctx)
    assert bool(findings) is flagged, policy


# ---------------------------------------------------------------------------------------------
# Phone numbers, postcodes, dates of birth, addresses
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("number", [
    "07912 345678", "07912345678", "07912 345 678", "0791 234 5678", "+44 7912 345678",
    "+447912345678", "+44 (0)7912 345678", "0044 7912 345678", "(0161) 496 0123",
    "0161 496 0123", "0161-496-0123", "01614960123", "+44 161 496 0123", "020 7946 0123",
    "(020) 7946 0123", "0207 946 0123", "029 2018 0123", "0131 496 0123", "028 9018 0123",
    "01632 960123", "0800 123 4567", "07912.345.678",
])
def test_every_common_written_form_of_a_uk_phone_number_is_flagged(number: str) -> None:
    text = f"call {number} tonight"
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert covered(text, findings) == [number]


@pytest.mark.parametrize("number", [
    "oh seven nine one two three four five six seven eight",
    "07912 three four five six seven eight",
    "zero seven nine double one two three four five six seven",
    "o7912 345678",
    "0791two345678",
])
def test_a_phone_number_with_digits_written_as_words_or_letters_is_flagged(number: str) -> None:
    text = f"call {number} tonight"
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert covered(text, findings) == [number]


@pytest.mark.parametrize("text", [
    "one two three four, everyone clap along!",
    "Oh, I have two brothers, one sister and three cats",
    "Year 7 team won by 2 goals to 1 and oh what a match",
    "+1 415 555 2671 is the US office",      # not a UK number
    "07700 90012",                            # too short
    "ISBN 978-0-306-40615-7",
    "Order 12345678901234",
    "Scores 10-12-14-16-18",
])
def test_things_that_are_not_uk_phone_numbers(text: str) -> None:
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert [k for f in findings for k in f.evidence.detail["identifiers"]
            if k == "phone"] == []


def test_uk_postcode_grammar_against_the_shared_validation_cases() -> None:
    cases = json.loads(require_shared("datasets", "uk-postcodes", "validation.json").read_text())
    tests = cases["tests"]
    assert len(tests) >= 10
    for case in tests:
        assert is_valid_postcode(case["base"]) is case["expected"], case["base"]


def test_valid_postcodes_written_in_a_sentence_are_flagged() -> None:
    cases = json.loads(require_shared("datasets", "uk-postcodes", "validation.json").read_text())
    for case in cases["tests"]:
        text = f"Found near {case['base']} yesterday"
        findings = detect(make_item(text, kind="comment", author_handle="@x"))
        got = [k for f in findings for k in f.evidence.detail["identifiers"]]
        assert ("postcode" in got) is case["expected"], case["base"]


@pytest.mark.parametrize(("text", "flagged"), [
    ("send it to ls11 5bt", True),
    ("send it to Ls11 5Bt", True),
    ("SW1A 1AA", True),
    ("EC1A1BB", True),
    ("my ls115bt", False),       # lowercase needs the space
    ("y10 1st", False),
    ("B12 4TH", True),           # a real area, uppercase
])
def test_postcodes_in_lowercase(text: str, flagged: bool) -> None:
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert bool(findings) is flagged


@pytest.mark.parametrize(("text", "flagged"), [
    ("born 14/03/2011", True),
    ("DOB: 2011-07-02", True),
    ("D.O.B 2.7.11", True),
    ("her birthday is 2nd July", True),
    ("date of birth March 14, 2010", True),
    ("14th of March 2010 is when he was born", True),
    ("it's on 14/03/2027", False),
    ("the 2nd July meeting", False),
    ("14/03/2010", True),                         # Jayden Price's register date of birth
    ("see you 14/03/10", True),                   # the same, with a two-digit year
    ("14 March 2010", True),
    ("30/02/2010 born", False),                   # not a date
])
def test_dates_of_birth(text: str, flagged: bool) -> None:
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert bool(findings) is flagged


@pytest.mark.parametrize(("text", "flagged"), [
    ("14 Acacia Avenue", True),
    ("Flat 2, 17 Park View", True),
    ("4a Victoria Road", True),
    ("221B Baker Street", True),
    ("lives at 12 mill lane", True),
    ("12 Old Mill Close", True),
    ("1 Brookfield Way", False),                  # the school's own address (pack allow list)
    ("3 main roads closed", False),
    ("we drove 3 miles down the road", False),
])
def test_street_addresses(text: str, flagged: bool) -> None:
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert bool(findings) is flagged


# ---------------------------------------------------------------------------------------------
# Recall sanity checks on the shared datasets
# ---------------------------------------------------------------------------------------------

def test_uk_phone_numbers_postcodes_and_addresses_of_invented_people_are_found() -> None:
    path = require_shared("datasets", "fake-identities", "fake_identities_gb.csv")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:200]
    assert rows
    missed: dict[str, list[str]] = {"phone": [], "postcode": [], "street_address": []}
    for row in rows:
        for kind, value in (("phone", row["TelephoneNumber"]), ("postcode", row["ZipCode"]),
                            ("street_address", row["StreetAddress"])):
            text = f"Contact: {value} (thanks)"
            findings = detect(make_item(text, kind="comment", author_handle="@x"))
            if kind not in [k for f in findings for k in f.evidence.detail["identifiers"]]:
                missed[kind].append(value)
    for kind, values in missed.items():
        assert len(values) <= len(rows) * 0.05, (kind, values[:10])


def test_presidio_uk_phone_numbers_and_emails_are_found() -> None:
    data = json.loads(require_shared("datasets", "presidio", "synth_dataset_v2.json").read_text())
    uk_phones = emails = found_phones = found_emails = 0
    for sample in data:
        text = sample["full_text"]
        findings = detect(make_item(text, kind="comment", author_handle="@x"))
        spans = [s for f in findings for s in f.evidence.spans]
        for entity in sample["spans"]:
            start, end = entity["start_position"], entity["end_position"]
            hit = any(a < end and start < b for a, b in spans)
            value = entity["entity_value"]
            if entity["entity_type"] == "EMAIL_ADDRESS":
                emails += 1
                found_emails += hit
            elif entity["entity_type"] == "PHONE_NUMBER" and (
                value.startswith(("+44", "07", "01", "02")) and
                sum(c.isdigit() for c in value) in (11, 12)
            ):
                uk_phones += 1
                found_phones += hit
    assert emails >= 20 and uk_phones >= 3
    assert found_emails / emails >= 0.95
    assert found_phones / uk_phones >= 0.9


# ---------------------------------------------------------------------------------------------
# Many learners: one automaton, built once per register index
# ---------------------------------------------------------------------------------------------

def test_the_matcher_is_built_once_per_register_index_and_cached() -> None:
    ctx = context()
    detect(make_item("Jayden Price", ctx=ctx), ctx=ctx)
    cached = [v for k, v in ctx.registers.derived.items() if k.startswith("learner_pii:")]
    assert len(cached) == 1
    detect(make_item("Ruby Fletcher", ctx=ctx), ctx=ctx)
    again = [v for k, v in ctx.registers.derived.items() if k.startswith("learner_pii:")]
    assert again[0] is cached[0]


def test_thousands_of_learners_are_matched_exactly() -> None:
    firsts = ["Aaron", "Bethany", "Callum", "Daisy", "Eli", "Farah", "Georgia", "Hamza", "Isla",
              "Jamal"]
    lasts = [f"Surname{chr(65 + i // 26)}{chr(65 + i % 26)}x" for i in range(300)]
    learners = [Learner(learner_id=f"L{i:05d}", first_name=firsts[i % 10],
                        last_name=lasts[i % 300]) for i in range(3000)]
    ctx = context(Registers(learners=learners))
    item = make_item("Well done Isla SurnameAIx and Callum SurnameKPx", ctx=ctx,
                     author_handle="@someone", kind="comment")
    named = learners_named(detect(item, ctx=ctx))
    expected = {f"learner:{lr.learner_id}" for lr in learners
                if lr.full_name in ("Isla SurnameAIx", "Callum SurnameKPx")}
    assert named == expected and len(expected) >= 2


def test_fold_keeps_the_length_so_spans_stay_true() -> None:
    for text in ["Maisie O’Connell", "Zieliński—İstanbul", "a\u00a0b\tc"]:
        assert len(fold(text)) == len(text)


def test_a_learners_own_email_in_their_own_comment_is_still_flagged() -> None:
    text = "Harvey Doyle here, email harvey.doyle@students.brookfield.example.org"
    findings = detect(make_item(text, kind="comment", author_handle="@harvdoyle"))
    assert [f.evidence.register_entry for f in findings] == ["learner:L009"]
    assert covered(text, findings) == ["harvey.doyle@students.brookfield.example.org"]


def test_two_phone_numbers_in_a_row_are_both_flagged() -> None:
    text = "ring 07912 345678 07912 345679"
    findings = detect(make_item(text, kind="comment", author_handle="@x"))
    assert covered(text, findings) == ["07912 345678", "07912 345679"]


def test_a_score_next_to_birthday_is_not_a_date_of_birth() -> None:
    findings = detect(make_item("Birthday boy scored in the 3-2 win", kind="comment",
                                author_handle="@x"))
    assert findings == []


def test_a_learners_email_is_one_identifier_not_also_a_name() -> None:
    text = "jayden.price@students.brookfield.example.org"
    findings = detect(make_item(text))
    assert findings[0].evidence.detail["identifiers"] == ["email"]
    assert covered(text, findings) == [text]


@pytest.mark.parametrize(("author", "flagged"), [
    ({}, False),                                          # the organisation: a venue
    ({"author_id": "fb:5501", "kind": "comment"}, False),  # a staff member (Tom Ashworth)
    ({"author_handle": "@a_parent", "kind": "comment"}, True),
])
def test_a_street_address_naming_no_learner_depends_on_who_posts_it(
        author: dict[str, Any], flagged: bool) -> None:
    findings = detect(make_item("Meet at 3 Church Street, LS11 5BT", **author))
    assert bool(findings) is flagged


@pytest.mark.parametrize(("change", "message"), [
    ({"severity": 9}, "severity: Input should be 1, 2, 3, 4 or 5"),
    ({"scope": {"kinds": "post"}}, "scope.kinds: expected a list"),
    ({"first_names": {"class_patterns": ["(unclosed"]}}, "first_names.class_patterns"),
    ({"scores": {"full_name": "high"}}, "scores.full_name: expected a number"),
    ({"scores": {"full_name": 3}}, "scores.full_name: expected a number from 0 to 1"),
    ({"scope": {"kinds": ["post"], "visibilty": ["public"]}},
     "scope.visibilty: not a known key (misspelt?)"),
])
def test_a_bad_pack_value_names_the_file_and_key(change: dict[str, Any], message: str) -> None:
    from rules.learner_pii import PackError

    pack = {**PACK, **change}
    with pytest.raises(PackError) as caught:
        LearnerPiiDetector.from_pack(pack)
    assert PACK["_path"] in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize(("text", "flagged"), [
    ("Will Young read the lesson", True),
    ("WILL YOUNG read the lesson", True),
    ("this will young people help", False),     # both parts everyday words: capitals needed
    ("Grace Hall joined the choir", True),
    ("we said grace hall by hall", False),
    ("will young? call 07912 345678", False),   # a lowercase everyday first name never counts
])
def test_names_made_of_everyday_words_need_capitals(text: str, flagged: bool) -> None:
    registers = example_registers()
    registers.learners += [
        Learner(learner_id="L201", first_name="William", last_name="Young"),
        Learner(learner_id="L202", first_name="Grace", last_name="Hall"),
    ]
    ctx = context(registers)
    findings = detect(make_item(text, ctx=ctx), ctx=ctx)
    named = learners_named(findings)
    assert bool(named) is flagged


def test_a_lowercase_name_with_one_everyday_word_is_flagged() -> None:
    assert learners_named(detect(make_item("jay price is a legend", kind="comment",
                                           author_handle="@x"))) == {"learner:L001"}


def test_spans_across_extra_spaces_and_line_breaks_are_the_original_text() -> None:
    text = "A  b   c Well done Jayden  Price   and   Ruby \n  Fletcher!!"
    assert covered(text, detect(make_item(text))) == ["Jayden  Price", "Ruby \n  Fletcher"]


def test_two_learners_with_the_same_name_are_both_named() -> None:
    registers = example_registers()
    registers.learners.append(Learner(learner_id="L300", first_name="Ruby",
                                      last_name="Fletcher"))
    ctx = context(registers)
    findings = detect(make_item("Ruby Fletcher won", ctx=ctx), ctx=ctx)
    assert learners_named(findings) == {"learner:L006", "learner:L300"}


@pytest.mark.parametrize(("photo_tags", "flagged"), [(True, True), (False, False)])
def test_a_learner_tagged_in_a_photo_is_named_unless_the_pack_leaves_tags_to_photo_consent(
        photo_tags: bool, flagged: bool) -> None:
    pack = {**PACK, "scope": {**PACK["scope"], "photo_tags": photo_tags}}
    detector = LearnerPiiDetector.from_pack(pack)
    findings = detect(make_item("Sports day!", tagged=["@harvdoyle"]), detector=detector)
    assert (learners_named(findings) == {"learner:L009"}) is flagged
