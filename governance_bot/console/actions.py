"""Actions taken in the console, carried out by the service's decisions module
(``governance_bot.decisions``): the same rules, the same compare-and-set on the flag's state,
the same audit events and the same re-rendering of every Slack message about the flag as the
Slack buttons. The console only turns a form into a call and the answer into a sentence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance_bot.console.access import Viewer
from governance_bot.decisions import AlreadyRecorded, Refused

__all__ = ["NAMES", "Result", "carry_out"]

NAMES = frozenset({"acknowledge", "outcome", "assign", "remove", "keep", "escalate",
                   "preapprove"})


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    message: str = ""


def _version(fields: dict[str, str]) -> int | None:
    value = fields.get("version", "")
    return int(value) if value.isdigit() else None


def carry_out(decisions: Any, viewer: Viewer, flag_id: int, action: str,
              fields: dict[str, str], inform: list[str]) -> Result:
    """Take ``action`` on ``flag_id`` as ``viewer`` with the form's ``fields``; ``inform``: the
    people to inform about a removal, as the role keys the form offered."""
    actor = viewer.staff
    version = _version(fields)
    try:
        if action == "acknowledge":
            decisions.acknowledge(flag_id, actor, via="console")
        elif action == "outcome":
            decisions.record_outcome(flag_id, actor, fields.get("outcome", ""),
                                     fields.get("note", "").strip(), expected_version=version,
                                     via="console")
        elif action == "assign":
            decisions.assign(flag_id, actor, fields.get("assignee", ""),
                             expected_version=version, via="console")
        elif action == "remove":
            decisions.remove(flag_id, actor, reason=fields.get("reason", ""),
                             moderation=fields.get("moderation", "manual"), inform=inform,
                             method=fields.get("method", "not_yet"), expected_version=version,
                             via="console")
        elif action == "keep":
            decisions.keep(flag_id, actor, fields.get("reason", ""), expected_version=version,
                           via="console")
        elif action == "escalate":
            decisions.escalate(flag_id, actor, via="console")
        elif action == "preapprove":
            decisions.preapprove_photo(flag_id, actor, fields.get("sha256", ""), via="console")
        else:
            return Result(False, "There is no such action.")
    except AlreadyRecorded as exc:
        return Result(False, str(exc))
    except Refused as exc:
        decisions.refused(flag_id, action, f"staff:{actor.staff_id}", str(exc), via="console")
        return Result(False, str(exc))
    return Result(True)
