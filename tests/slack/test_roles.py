"""Who may decide what (policy: designated managers decide removals on their own accounts; only
the DSL and deputies act on safeguarding flags)."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance_bot.registers import RegisterIndex, read_toml
from governance_bot.slack.decisions import Refused, authorise
from governance_bot.storage import models as m

REGISTERS = RegisterIndex(read_toml(Path(__file__).resolve().parents[2] / "examples" /
                                    "registers.toml"))


def _flag(account: str, route: str) -> m.Flag:
    return m.Flag(id=7, account=account, route=route, status="open", severity=3)


@pytest.mark.parametrize(("slack_user", "action", "account", "route", "allowed"), [
    ("U0TASHWOR", "gb_remove", "brookfield-facebook", "account_managers", True),
    ("U0GLINDQV", "gb_keep", "brookfield-facebook", "account_managers", True),
    ("U0GLINDQV", "gb_escalate", "brookfield-facebook", "account_managers", True),
    # a manager of other accounts only
    ("U0MREID", "gb_remove", "brookfield-facebook", "account_managers", False),
    # a tutor, the DSL herself: not the account's managers
    ("U0DMENSAH", "gb_remove", "brookfield-facebook", "account_managers", False),
    ("U0HOKAFOR", "gb_remove", "brookfield-facebook", "account_managers", False),
    # a manager who has left (inactive) is still listed on the Instagram account
    ("U0LFAIRBA", "gb_remove", "brookfield-instagram", "account_managers", False),
    # safeguarding flags: DSL and deputies only, whatever the account
    ("U0HOKAFOR", "gb_ack", "brookfield-facebook", "dsl", True),
    ("U0MREID", "gb_outcome", "brookfield-facebook", "dsl", True),
    ("U0PNATARA", "gb_assign", "brookfield-facebook", "dsl", True),
    ("U0TASHWOR", "gb_ack", "brookfield-facebook", "dsl", False),
    ("U0TASHWOR", "gb_remove", "brookfield-facebook", "dsl", False),
    # somebody not in the staff register at all
    ("U0STRANGER", "gb_ack", "brookfield-facebook", "dsl", False),
])
def test_who_may_act(slack_user: str, action: str, account: str, route: str,
                     allowed: bool) -> None:
    flag = _flag(account, route)
    if allowed:
        assert authorise(REGISTERS, flag, action, slack_user).slack_user_id == slack_user
    else:
        with pytest.raises(Refused):
            authorise(REGISTERS, flag, action, slack_user)
