"""Out-of-hours contact: staff avoid contacting learners outside normal office hours
(P1 "What we expect of our staff"; P2 "Communicating with students")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from governance_bot.findings import Category, Finding, Route, Severity
from governance_bot.items import Item
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.engine import DetectionEngine, build_detector
from rules.out_of_hours import OfficeHours, OutOfHoursDetector, ordinal
from rules.packs import load_pack
from tests.helpers import MemoryHistory, config_with, example_index

TUTOR = {"id": "teams:aad-0006", "name": "Daniel Mensah"}  # S006
OTHER_TUTOR = {"id": "teams:aad-0007"}  # S007
OLIVER = {"email": "oliver.smithhughes@students.brookfield.example.org"}  # L003
MAISIE = {"email": "maisie.oconnell@students.brookfield.example.org"}  # L002
JAYDEN = {"email": "jayden.price@students.brookfield.example.org"}  # L001
TEXT = "Have you finished the worksheet on photosynthesis?"


def detector(overrides: dict[str, Any] | None = None) -> OutOfHoursDetector:
    return OutOfHoursDetector.from_pack(load_pack("out_of_hours"), config_with(overrides))


_counter = iter(range(1, 1_000_000))


def message(
    when: str,
    author: dict[str, Any] | None = None,
    to: list[dict[str, Any]] | None = None,
    kind: str = "chat_message",
    **extra: Any,
) -> Item:
    data = {
        "id": extra.pop("id", f"m{next(_counter)}"),
        "platform": "teams",
        "account": "brookfield-teams",
        "kind": kind,
        "author": author or TUTOR,
        "recipients": [OLIVER] if to is None else to,
        "created_at": when,
        "visibility": "direct",
        "text": TEXT,
        **extra,
    }
    return example_index().resolve(Item.model_validate(data))


def scan(items: list[Item], det: OutOfHoursDetector | None = None,
         history: MemoryHistory | None = None) -> list[list[Finding]]:
    """Run items in order through the detector, recording findings as the pipeline does."""
    det = det or detector()
    history = history if history is not None else MemoryHistory()
    out = []
    for item in items:
        ctx = DetectionContext(registers=example_index(), history=history)
        found = list(det.detect(item, ctx))
        history.record(item, found)
        out.append(found)
    return out


def flagged(when: str, overrides: dict[str, Any] | None = None, **kw: Any) -> list[Finding]:
    return scan([message(when, **kw)], detector(overrides))[0]


# --- single messages -------------------------------------------------------------------------

def test_a_tutors_message_to_a_learner_at_2230_on_a_weekday_goes_to_the_case_managers_summary(
) -> None:
    [finding] = flagged("2026-03-10T22:30:00+00:00")
    assert finding.category == Category.out_of_hours
    assert finding.severity == Severity.low
    assert Router().route_finding(finding) == Route.case_digest
    assert finding.subject == "staff:S006>learner:L003"
    assert finding.evidence.register_entry == "learner:L003"
    assert "22:30 on a Tuesday" in finding.explanation
    assert "outside normal office hours" in finding.explanation
    assert "What we expect of our staff" in finding.explanation
    assert "Communicating with students" in finding.explanation


def test_the_explanation_never_quotes_the_message() -> None:
    [finding] = flagged("2026-03-10T22:30:00+00:00")
    assert "photosynthesis" not in finding.explanation
    assert "photosynthesis" not in str(finding.evidence.to_dict())


def test_a_message_at_noon_on_a_bank_holiday_is_flagged_and_names_the_holiday() -> None:
    [finding] = flagged("2026-04-06T12:00:00+01:00")
    assert "Easter Monday (bank holiday)" in finding.explanation
    assert finding.evidence.detail["reason"] == "bank_holiday"


def test_bank_holidays_can_be_treated_as_working_days() -> None:
    assert flagged("2026-04-06T12:00:00+01:00",
                   {"working_hours": {"bank_holidays": False}}) == []


@pytest.mark.parametrize(
    ("when", "why"),
    [
        ("2026-03-14T15:00:00+00:00", "Saturday is not a working day"),
        ("2026-03-15T10:00:00+00:00", "Sunday is not a working day"),
        ("2026-03-10T07:59:00+00:00", "outside working hours (08:00-18:00 on Tuesdays)"),
        ("2026-03-10T18:00:00+00:00", "outside working hours (08:00-18:00 on Tuesdays)"),
        ("2026-03-11T02:10:00+00:00", "outside working hours"),
        ("2026-12-25T10:00:00+00:00", "Christmas Day (bank holiday)"),
        ("2026-12-28T10:00:00+00:00", "Boxing Day (observed) (bank holiday)"),
    ],
)
def test_messages_outside_working_hours_are_flagged_with_the_reason(when: str, why: str) -> None:
    [finding] = flagged(when)
    assert why in finding.explanation


@pytest.mark.parametrize(
    "when",
    ["2026-03-10T08:00:00+00:00", "2026-03-10T12:30:00+00:00", "2026-03-10T17:59:59+00:00",
     "2026-03-13T09:15:00+00:00"],
)
def test_messages_inside_working_hours_are_not_flagged(when: str) -> None:
    assert flagged(when) == []


def test_a_learner_messaging_a_tutor_at_midnight_is_not_a_staff_breach() -> None:
    assert flagged("2026-03-10T23:59:00+00:00", author=JAYDEN, to=[TUTOR]) == []


def test_a_staff_reply_out_of_hours_is_a_breach() -> None:
    question = message("2026-03-10T22:40:00+00:00", author=MAISIE, to=[TUTOR], id="q1",
                       thread_id="q1")
    reply = message("2026-03-10T22:55:00+00:00", to=[], kind="reply", id="r1",
                    parent_id="q1", thread_id="q1")
    first, second = scan([question, reply])
    assert first == []
    [finding] = second
    assert finding.subject == "staff:S006>learner:L002"


def test_a_staff_comment_answering_nobody_in_particular_is_not_contact() -> None:
    post = message("2026-03-10T22:00:00+00:00", author=TUTOR, to=[], kind="comment",
                   id="c1", parent_id="p1", thread_id="p1")
    assert scan([post])[0] == []


def test_staff_messaging_staff_late_is_not_contact_with_a_learner() -> None:
    assert flagged("2026-03-10T22:30:00+00:00", to=[OTHER_TUTOR]) == []


def test_a_message_to_two_learners_gives_one_finding_per_learner() -> None:
    found = flagged("2026-03-10T21:00:00+00:00", to=[OLIVER, MAISIE, OTHER_TUTOR])
    assert sorted(f.subject or "" for f in found) == [
        "staff:S006>learner:L002", "staff:S006>learner:L003"]


def test_contact_from_a_staff_members_personal_account_is_flagged_and_says_so() -> None:
    [finding] = flagged("2026-03-10T22:30:00+00:00", author={"handle": "@dan_mensah_88"})
    assert "from a personal account" in finding.explanation


# --- repeated contact ------------------------------------------------------------------------

def test_three_out_of_hours_messages_to_the_same_learner_within_two_weeks_go_to_the_dsl() -> None:
    results = scan([
        message("2026-03-02T21:00:00+00:00", to=[MAISIE]),
        message("2026-03-08T11:00:00+00:00", to=[MAISIE]),
        message("2026-03-15T22:45:00+00:00", to=[MAISIE]),
    ])
    assert [f.severity for [f] in results] == [Severity.low, Severity.low, Severity.high]
    third = results[2][0]
    assert third.route == Route.dsl
    assert "3rd out-of-hours message" in third.explanation
    assert third.evidence.detail["out_of_hours_count"] == 3


def test_messages_spread_over_more_than_the_window_do_not_escalate() -> None:
    results = scan([
        message("2026-03-02T21:00:00+00:00", to=[MAISIE]),
        message("2026-03-10T21:00:00+00:00", to=[MAISIE]),
        message("2026-03-17T21:00:01+00:00", to=[MAISIE]),  # 15 days after the first
    ])
    assert [f.severity for [f] in results] == [Severity.low] * 3


def test_repeats_are_counted_per_learner_and_per_staff_member() -> None:
    results = scan([
        message("2026-03-02T21:00:00+00:00", to=[MAISIE]),
        message("2026-03-03T21:00:00+00:00", to=[OLIVER]),
        message("2026-03-04T21:00:00+00:00", author=OTHER_TUTOR, to=[MAISIE]),
        message("2026-03-05T21:00:00+00:00", to=[MAISIE]),
    ])
    assert [f.severity for [f] in results] == [Severity.low] * 4


def test_messages_inside_hours_do_not_count_towards_a_repeat() -> None:
    results = scan([
        message("2026-03-02T21:00:00+00:00", to=[MAISIE]),
        message("2026-03-03T10:00:00+00:00", to=[MAISIE]),
        message("2026-03-04T21:00:00+00:00", to=[MAISIE]),
    ])
    assert [len(r) for r in results] == [1, 0, 1]
    assert results[2][0].severity == Severity.low


def test_rescanning_the_same_message_does_not_count_it_twice() -> None:
    history = MemoryHistory()
    det = detector()
    first = message("2026-03-02T21:00:00+00:00", to=[MAISIE], id="same")
    second = message("2026-03-03T21:00:00+00:00", to=[MAISIE], id="again")
    for _ in range(3):
        scan([first, second], det, history)
    [[f1], [f2]] = scan([first, second], det, history)
    assert (f1.severity, f2.severity) == (Severity.low, Severity.low)


def test_the_repeat_threshold_and_window_come_from_the_config() -> None:
    det = detector({"detection": {"out_of_hours_repeat_count": 2,
                                  "out_of_hours_repeat_window_days": 3}})
    results = scan([
        message("2026-03-02T21:00:00+00:00", to=[MAISIE]),
        message("2026-03-04T21:00:00+00:00", to=[MAISIE]),
        message("2026-03-09T21:00:00+00:00", to=[MAISIE]),
    ], det)
    assert [f.severity for [f] in results] == [Severity.low, Severity.high, Severity.low]


# --- time zones: British Summer Time and Greenwich Mean Time ---------------------------------

@pytest.mark.parametrize(
    ("when", "out_of_hours"),
    [
        ("2026-03-27T17:59:00Z", False),  # Friday before the clocks go forward: GMT
        ("2026-03-27T18:00:00Z", True),
        ("2026-03-30T07:30:00Z", False),  # Monday after: 08:30 BST
        ("2026-03-30T06:59:00Z", True),  # 07:59 BST
        ("2026-03-30T17:30:00Z", True),  # 18:30 BST
        ("2026-03-30T16:59:00Z", False),  # 17:59 BST
        ("2026-10-23T17:30:00Z", True),  # Friday before the clocks go back: 18:30 BST
        ("2026-10-26T17:30:00Z", False),  # Monday after: 17:30 GMT
        ("2026-10-26T07:30:00Z", True),  # 07:30 GMT
        ("2026-06-10T18:30:00+01:00", True),  # the same moment written with its BST offset
        ("2026-06-10T12:30:00-05:00", True),  # 17:30 UTC = 18:30 BST
        ("2026-06-10T11:30:00-05:00", False),  # 16:30 UTC = 17:30 BST
    ],
)
def test_working_hours_follow_uk_clock_changes(when: str, out_of_hours: bool) -> None:
    assert bool(flagged(when)) is out_of_hours


def test_the_local_time_named_is_bst_in_summer() -> None:
    [finding] = flagged("2026-06-10T21:15:00Z")
    assert "22:15 on a Wednesday (10 June 2026, BST)" in finding.explanation


def test_another_time_zone_can_be_configured() -> None:
    # 20:00 UTC is 09:00 the next morning in Auckland (NZDT, +13)
    assert flagged("2026-03-10T20:00:00Z", {"organisation": {"timezone": "Pacific/Auckland"},
                                            "working_hours": {"bank_holidays": False}}) == []


# --- bank holidays by nation -----------------------------------------------------------------

@pytest.mark.parametrize(
    ("day", "nation", "holiday"),
    [
        ("2026-11-30", "SCT", "Saint Andrew's Day"),
        ("2026-11-30", "ENG", None),
        ("2026-08-03", "SCT", "Summer Bank Holiday"),
        ("2026-08-03", "ENG", None),
        ("2026-08-31", "ENG", "Late Summer Bank Holiday"),
        ("2026-08-31", "SCT", None),
        ("2026-04-06", "ENG", "Easter Monday"),
        ("2026-04-06", "WLS", "Easter Monday"),
        ("2026-04-06", "SCT", None),
        ("2026-03-17", "NIR", "Saint Patrick's Day"),
        ("2026-03-17", "ENG", None),
        ("2026-01-02", "SCT", "New Year Holiday"),
        ("2026-01-02", "ENG", None),
    ],
)
def test_bank_holidays_are_those_of_the_configured_nation(
    day: str, nation: str, holiday: str | None
) -> None:
    found = flagged(f"{day}T11:00:00Z", {"organisation": {"nation": nation}})
    if holiday is None:
        assert found == []
    else:
        [finding] = found
        assert f"{holiday} (bank holiday)" in finding.explanation


# --- term dates and closures -----------------------------------------------------------------

TERMS = {
    "term_dates": [
        {"start": "2026-01-05", "end": "2026-02-13", "name": "Spring 1"},
        {"start": "2026-02-23", "end": "2026-03-27", "name": "Spring 2"},
    ],
    "outside_term_is_closed": True,
    "closures": [{"start": "2026-03-06", "end": "2026-03-06", "name": "INSET day"}],
}


def test_a_weekday_in_half_term_is_out_of_hours_when_outside_term_is_closed() -> None:
    [finding] = flagged("2026-02-18T11:00:00Z", {"working_hours": TERMS})
    assert "outside term time" in finding.explanation


def test_a_weekday_in_term_is_a_working_day() -> None:
    assert flagged("2026-02-24T11:00:00Z", {"working_hours": TERMS}) == []


def test_half_term_is_a_working_day_unless_outside_term_is_closed() -> None:
    terms = {**TERMS, "outside_term_is_closed": False}
    assert flagged("2026-02-18T11:00:00Z", {"working_hours": terms}) == []


def test_a_closure_day_is_out_of_hours_and_named() -> None:
    [finding] = flagged("2026-03-06T11:00:00Z", {"working_hours": TERMS})
    assert "a closure day (INSET day)" in finding.explanation


def test_per_weekday_hours_from_the_config() -> None:
    hours = {"saturday": "09:00-12:00", "friday": "08:00-15:30"}
    assert flagged("2026-03-14T10:00:00Z", {"working_hours": hours}) == []
    assert len(flagged("2026-03-13T16:00:00Z", {"working_hours": hours})) == 1


# --- wiring ----------------------------------------------------------------------------------

def test_the_engine_builds_the_rule_from_its_pack_and_the_router_routes_repeated_contact(
) -> None:
    config = config_with()
    engine = DetectionEngine([build_detector("out_of_hours", config)])
    history = MemoryHistory()
    routes = []
    for day in (2, 3, 4):
        item = message(f"2026-03-0{day}T21:00:00+00:00", to=[MAISIE])
        found = engine.detect(item, DetectionContext(registers=example_index(), history=history))
        history.record(item, found)
        assert all(f.route is None or f.route == Route.dsl for f in found)  # not routed here
        routes.append([f.route for f in Router().apply(found, item)])
    # a concern about staff: the case manager's summary, then the case manager at once
    assert routes == [[Route.case_digest], [Route.case_digest], [Route.case_manager]]
    assert all(f.item_key for f in found)


def test_office_hours_need_seven_days() -> None:
    with pytest.raises(ValueError, match="one entry per weekday"):
        OfficeHours("Europe/London", [None] * 5)


@pytest.mark.parametrize(("n", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"),
                                         (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"),
                                         (22, "22nd"), (101, "101st"), (111, "111th")])
def test_ordinals(n: int, text: str) -> None:
    assert ordinal(n) == text


def test_prior_findings_are_asked_for_with_the_window_and_without_the_item_itself() -> None:
    calls: list[tuple[Any, ...]] = []

    class Spy(MemoryHistory):
        def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                           exclude_item_key: str | None = None) -> list[datetime]:
            calls.append((rule_id, subject, since, until, exclude_item_key))
            return []

    item = message("2026-03-10T22:30:00+00:00", id="spy")
    list(detector().detect(item, DetectionContext(registers=example_index(), history=Spy())))
    [(rule_id, subject, since, until, excluded)] = calls
    assert (rule_id, subject, excluded) == ("out_of_hours", "staff:S006>learner:L003", item.key)
    assert until == datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
    assert until - since == timedelta(days=14)


def test_messages_sent_as_the_official_account_can_be_included_by_the_pack() -> None:
    pack = load_pack("out_of_hours")
    pack = {**pack, "messages": {**pack["messages"], "author_roles": ["staff", "organisation"]}}
    det = OutOfHoursDetector.from_pack(pack, config_with())
    org = {"id": "104000000001", "handle": "BrookfieldAcademy"}
    item = example_index().resolve(Item.model_validate({
        "id": "org-dm", "platform": "facebook", "account": "brookfield-facebook",
        "kind": "direct_message", "author": org, "recipients": [{"handle": "@maisie.fb"}],
        "created_at": "2026-03-10T22:30:00+00:00", "text": TEXT}))
    [finding] = scan([item], det)[0]
    assert finding.subject == "organisation:brookfield-facebook>learner:L002"
    assert finding.explanation.startswith("The account brookfield-facebook messaged")
    assert scan([item])[0] == []  # the shipped pack checks staff only
