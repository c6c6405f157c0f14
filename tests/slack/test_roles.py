"""Who may decide what (policy: designated managers decide removals on their own accounts; only
the DSL and deputies act on safeguarding flags), as the Slack role check asks it."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance_bot.authz import Action, FindingFacts, FlagFacts, NeedToKnow
from governance_bot.findings import Category, Route
from governance_bot.items import Role
from governance_bot.registers import RegisterIndex, read_toml

REGISTERS = RegisterIndex(read_toml(Path(__file__).resolve().parents[2] / "examples" /
                                    "registers.toml"))
NEED_TO_KNOW = NeedToKnow(REGISTERS)


def _flag(account: str, route: str) -> FlagFacts:
    category = Category.learner_pii if route == "account_managers" else Category.safeguarding
    finding = FindingFacts("rule", category, 3 if route == "account_managers" else 4,
                           Route(route), id=1)
    return FlagFacts(account=account, findings=(finding,), author_role=Role.public, flag_id=7)


@pytest.mark.parametrize(("slack_user", "action", "account", "route", "allowed"), [
    ("U0TASHWOR", Action.remove, "brookfield-facebook", "account_managers", True),
    ("U0GLINDQV", Action.keep, "brookfield-facebook", "account_managers", True),
    ("U0GLINDQV", Action.escalate, "brookfield-facebook", "account_managers", True),
    # a manager of other accounts only
    ("U0MREID", Action.remove, "brookfield-facebook", "account_managers", False),
    # a tutor, the DSL herself: not the account's managers
    ("U0DMENSAH", Action.remove, "brookfield-facebook", "account_managers", False),
    ("U0HOKAFOR", Action.remove, "brookfield-facebook", "account_managers", False),
    # a manager who has left (inactive) is still listed on the Instagram account
    ("U0LFAIRBA", Action.remove, "brookfield-instagram", "account_managers", False),
    # safeguarding flags: DSL and deputies only, whatever the account
    ("U0HOKAFOR", Action.acknowledge, "brookfield-facebook", "dsl", True),
    ("U0MREID", Action.record_outcome, "brookfield-facebook", "dsl", True),
    ("U0PNATARA", Action.assign, "brookfield-facebook", "dsl", True),
    ("U0TASHWOR", Action.acknowledge, "brookfield-facebook", "dsl", False),
    ("U0TASHWOR", Action.remove, "brookfield-facebook", "dsl", False),
    # somebody not in the staff register at all
    ("U0STRANGER", Action.acknowledge, "brookfield-facebook", "dsl", False),
])
def test_who_may_act(slack_user: str, action: Action, account: str, route: str,
                     allowed: bool) -> None:
    staff = NEED_TO_KNOW.by_slack_id(slack_user)
    assert NEED_TO_KNOW.may(staff or slack_user, action, _flag(account, route)) is allowed
