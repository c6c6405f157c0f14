"""Actions taken in the console, carried out by the service's decisions module: the same rules,
the same compare-and-set on the flag's status, the same audit events and the same Slack message
updates (through the outbox) as the Slack buttons."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from governance_bot.console import access as authz_view

__all__ = ["Result", "carry_out"]


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    message: str = ""


def carry_out(console: Any, viewer: authz_view.Viewer, flag_id: int, action: str,
              fields: dict[str, str]) -> Result:
    try:
        from governance_bot import decisions
    except ImportError:
        return Result(False, "actions are not available in this version")
    return Result(False, f"{action} is not wired yet ({decisions.__name__})")
