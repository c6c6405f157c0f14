"""Who receives a concern about a member of staff, and who may act on it (docs/routing.md):
the case manager ([routing] staff_concerns_to), never the subject, and the alternate when the
subject is the case manager or the DSL; one message per person with the union of their parts."""

from __future__ import annotations

import pytest

from governance_bot.authz import (
    DSL_NOTE,
    ELSEWHERE_NOTE,
    Action,
    Detail,
    FindingFacts,
    FlagFacts,
    NeedToKnow,
)
from governance_bot.findings import Category, Route
from governance_bot.items import Role
from governance_bot.registers import Account, Learner, RegisterIndex, Registers, StaffMember

PEOPLE = {"D": "dsl", "P": "deputy_dsl", "M1": "account_manager", "M2": "account_manager",
          "H": "headteacher", "C": "chair_of_governors", "T": "tutor", "IT": "it_admin"}
REGISTERS = RegisterIndex(Registers(
    staff=[StaffMember(staff_id=s, name=f"Person {s}", role=r) for s, r in PEOPLE.items()],
    learners=[Learner(learner_id="L1", first_name="Lee", last_name="Learner",
                      year_group="Year 8", tutor="T")],
    accounts=[Account(account_id="acc", platform="facebook", handle="@school",
                      managers=["M1", "M2", "P"])]))


def _conduct(subject: str, route: Route = Route.case_manager) -> FlagFacts:
    finding = FindingFacts("tone", Category.tone, 3, route,
                           subject=f"staff:{subject}>learner:L1", id=1)
    return FlagFacts(account="acc", findings=(finding,), author_role=Role.staff,
                     author_id=subject, flag_id=1)


def _who(nt: NeedToKnow, flag: FlagFacts) -> set[str]:
    return set(nt.audience(flag))


@pytest.mark.parametrize(("case_manager", "subject", "expected"), [
    ("dsl", "T", {"D"}),  # a tutor: the DSL, the default case manager
    ("dsl", "M1", {"D"}),  # an account manager: never to the other managers
    ("dsl", "H", {"D"}),  # the headteacher, when the DSL is the case manager
    ("dsl", "D", {"C"}),  # the DSL herself: the chair of governors
    (["H"], "T", {"H"}),  # the headteacher as case manager
    (["H"], "H", {"C"}),  # the case manager herself: the chair
    (["H"], "D", {"C"}),  # the DSL, even when she is not the case manager: the chair
])
def test_a_concern_about_staff_goes_to_the_case_manager_never_to_its_subject(
        case_manager: str | list[str], subject: str, expected: set[str]) -> None:
    nt = NeedToKnow(REGISTERS, staff_concerns_to=case_manager)
    assert _who(nt, _conduct(subject)) == expected


def test_a_configured_alternate_takes_precedence_over_the_chair() -> None:
    nt = NeedToKnow(REGISTERS, staff_concerns_alternate=["H"])
    assert _who(nt, _conduct("D")) == {"H"}


def test_the_subject_may_not_act_on_a_concern_about_themselves() -> None:
    nt = NeedToKnow(REGISTERS)
    flag = _conduct("D")
    assert not nt.may("D", Action.acknowledge, flag)
    assert nt.may("C", Action.acknowledge, flag) and nt.may("C", Action.record_outcome, flag)
    assert not nt.may("P", Action.view_case, flag)  # a deputy is not the alternate


def test_a_deputy_who_also_manages_the_account_gets_one_message_with_both_parts() -> None:
    pii = FindingFacts("learner_pii", Category.learner_pii, 3, Route.account_managers,
                       register_entry="learner:L1", id=1)
    disclosure = FindingFacts("safeguarding", Category.safeguarding, 4, Route.dsl, id=2)
    flag = FlagFacts(account="acc", findings=(pii, disclosure), author_role=Role.learner,
                     author_id="L1", flag_id=9)
    audience = NeedToKnow(REGISTERS).audience(flag)
    assert {f.id for f in audience["P"].findings} == {1, 2}
    assert audience["P"].child_identity and audience["P"].note is None
    assert {f.id for f in audience["M1"].findings} == {1}
    assert audience["M1"].note == DSL_NOTE and audience["M1"].detail == Detail.none
    assert not audience["M1"].child_identity
    assert {f.id for f in audience["D"].findings} == {2}
    assert audience["D"].note == ELSEWHERE_NOTE
    assert Action.remove in audience["M1"].actions  # the post is the managers' to take down
    assert Action.escalate not in audience["M1"].actions  # already with the DSL
    assert "IT" not in audience and "T" not in audience


def test_the_dsl_sees_the_child_as_the_register_knows_them() -> None:
    nt = NeedToKnow(REGISTERS)
    [child] = nt.children(_conduct("M1"))
    assert child.line() == "Lee Learner (L1), Year 8, tutor Person T"


def test_an_it_administrator_is_told_they_never_see_case_content() -> None:
    nt = NeedToKnow(REGISTERS)
    with pytest.raises(Exception, match="IT administrators"):
        nt.check("IT", Action.view_case, _conduct("T"))


NAMED = RegisterIndex(Registers(
    staff=[StaffMember(staff_id="D", name="Dana Lead", role="dsl"),
           StaffMember(staff_id="P", name="Pat O'Deputy", role="deputy_dsl",
                       personal_handles=["@pat.private"]),
           StaffMember(staff_id="Q", name="Quinn Deputy", role="deputy_dsl"),
           StaffMember(staff_id="M1", name="Morgan One", role="account_manager"),
           StaffMember(staff_id="M2", name="Morgan Two", role="account_manager"),
           StaffMember(staff_id="C", name="Casey Chair", role="chair_of_governors")],
    accounts=[Account(account_id="acc", platform="facebook", handle="@school",
                      managers=["M1", "M2"])]))


def _named(text: str, category: Category = Category.safeguarding,
           route: Route = Route.dsl) -> FlagFacts:
    finding = FindingFacts("rule", category, 4, route, subject="facebook:@kid", id=1)
    return FlagFacts(account="acc", findings=(finding,), author_role=Role.public, flag_id=1,
                     text=text)


@pytest.mark.parametrize(("text", "named"), [
    ("mrs o'deputy keeps messaging me", {"P"}),  # a title and the surname
    ("PAT  O'DEPUTY said not to tell", {"P"}),  # the full name, any case and spacing
    ("he dms me from @pat.private", {"P"}),  # a personal handle
    ("Dr Deputy and Miss Lead know", {"Q", "D"}),
    ("Pat said hello", set()),  # a first name alone is too common to count
    ("the O'Deputyship", set()),  # not a name
])
def test_a_concern_never_reaches_staff_its_text_names(text: str, named: set[str]) -> None:
    nt = NeedToKnow(NAMED)
    assert nt.staff_mentioned(text) == named
    assert not named & set(nt.audience(_named(text)))


def test_a_concern_naming_the_whole_dsl_team_goes_to_the_chair() -> None:
    nt = NeedToKnow(NAMED)
    flag = _named("Dana Lead, Pat O'Deputy and Quinn Deputy all know")
    assert set(nt.audience(flag)) == {"C"}
    assert nt.audience(flag)["C"].child_identity


def test_a_member_of_staff_named_in_a_post_still_decides_on_its_content() -> None:
    # a learner's name in a post thanking Morgan One is content, not a concern about her
    flag = _named("Thank you Morgan One for the trip!", Category.learner_pii,
                  Route.account_managers)
    assert set(NeedToKnow(NAMED).audience(flag)) == {"M1", "M2"}


def test_a_conversation_shared_by_the_dsl_and_a_deputy_who_manages_the_account_shows_the_dsls_part(
) -> None:
    nt = NeedToKnow(REGISTERS)
    pii = FindingFacts("pii", Category.learner_pii, 3, Route.account_managers, id=1)
    disclosure = FindingFacts("sg", Category.safeguarding, 4, Route.dsl, id=2)
    flag = FlagFacts(account="acc", findings=(pii, disclosure), author_role=Role.learner,
                     author_id="L1", flag_id=1)
    dsl, deputy = nt.entitlement("D", flag), nt.entitlement("P", flag)  # P manages acc too
    assert nt.shared([dsl, deputy]) == dsl
    assert nt.shared([deputy, dsl]) == dsl
    # a manager may not see the DSL's part: nothing is shown in a conversation with her
    assert not nt.shared([dsl, nt.entitlement("M1", flag)]).receives
    assert not nt.shared([dsl, nt.entitlement("T", flag)]).receives  # the tutor: nothing
