"""What the Slack app's listeners share: the bot and the decisions (:class:`Deps`, with the one
way a request is refused, :meth:`Deps.refuse`), and reading which flag a click or form is about.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import BoltContext
from slack_sdk import WebClient

from governance_bot.authz import Action, NeedToKnow, Refused
from governance_bot.decisions import AlreadyRecorded, Decisions
from governance_bot.slack.bot import SlackBot

__all__ = ["ACTIONS", "SUBMISSIONS", "Deps", "Unreadable", "flag_target", "form_version",
           "refuse", "tell", "user_id"]

log = logging.getLogger(__name__)

# button action id -> what it asks to do
ACTIONS = {"gb_remove": Action.remove, "gb_keep": Action.keep, "gb_escalate": Action.escalate,
           "gb_ack": Action.acknowledge, "gb_outcome": Action.record_outcome,
           "gb_assign": Action.assign, "gb_photo": Action.preapprove_photo}
# form (modal) callback id -> what submitting it does
SUBMISSIONS = {"gb_remove_submit": Action.remove, "gb_keep_submit": Action.keep,
               "gb_outcome_submit": Action.record_outcome, "gb_assign_submit": Action.assign}


class Unreadable(ValueError):
    """A signed request whose payload is not what Slack sends."""


def flag_target(body: dict[str, Any]) -> tuple[str, Action, int] | None:
    """(Slack action or callback id, action, flag id) of a click or form about a flag, None for
    anything else. Raises :class:`Unreadable` for a payload that names a flag action but cannot
    be read."""
    try:
        if body.get("type") == "block_actions":
            for a in body.get("actions") or []:
                action_id = str(a.get("action_id"))
                if action_id in ACTIONS:
                    value = str(a.get("value") or "")
                    return action_id, ACTIONS[action_id], int(value.split(":", 1)[0])
        if body.get("type") == "view_submission":
            view = body.get("view") or {}
            callback = str(view.get("callback_id") or "")
            if callback in SUBMISSIONS:
                meta = json.loads(view.get("private_metadata") or "{}")
                return callback, SUBMISSIONS[callback], int(meta["flag_id"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise Unreadable(f"{type(exc).__name__}") from None
    return None


def form_version(body: dict[str, Any]) -> int | None:
    """The flag's version a form was opened at (a repeated submission finds it changed)."""
    try:
        meta = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
        version = meta.get("version")
        return int(version) if version is not None else None
    except (ValueError, TypeError, AttributeError):
        return None


def user_id(body: dict[str, Any]) -> str:
    user = body.get("user") or {}
    return str(user.get("id", "")) if isinstance(user, dict) else ""


def tell(client: WebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral note to whoever clicked (a direct message when there is no channel, e.g.
    after a form)."""
    user = user_id(body)
    if not user:
        return
    channel = (body.get("channel") or {}).get("id") if isinstance(
        body.get("channel"), dict) else None
    try:
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            dm = client.conversations_open(users=user)["channel"]["id"]
            client.chat_postMessage(channel=dm, text=text)
    except Exception:  # the note is a courtesy: the decision or refusal stands
        log.warning("slack: could not tell %s", user)


def refuse(client: WebClient, body: dict[str, Any], why: str, audit: Callable[[], None]
           ) -> None:
    """The one way the Slack app refuses a request (a flag's, or the access audit's): the
    attempt is written to the audit log first (``audit``), then explained to the person."""
    audit()
    tell(client, body, f":no_entry: {why}")


@dataclass
class Deps:
    """What the listeners share: the bot (Slack and the database) and the decisions."""

    bot: SlackBot
    given: Decisions | None = None  # else the bot's, built at each use (its connectors now)

    @property
    def decisions(self) -> Decisions:
        return self.given or self.bot.decisions()

    def need_to_know(self) -> NeedToKnow:
        return self.bot.need_to_know()

    def tell(self, client: WebClient, body: dict[str, Any], text: str) -> None:
        tell(client, body, text)

    def refuse(self, client: WebClient, body: dict[str, Any], flag_id: int | None,
               action: str, why: str) -> None:
        """Refuse a request about a flag (through the one :func:`refuse`)."""
        user = user_id(body)
        refuse(client, body, why, lambda: self.decisions.refused(
            flag_id, action, f"slack:{user}", why))
        log.info("slack: refused %s on flag #%s by %s", action, flag_id, user)

    def already(self, client: WebClient, body: dict[str, Any], why: str) -> None:
        self.tell(client, body, f":ballot_box_with_check: Already recorded. {why}")

    def guarded(self, work: Callable[[dict[str, Any], BoltContext, WebClient], None]
                ) -> Callable[..., None]:
        """A lazy listener whose decision may still be refused or found already taken."""

        def run(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
            try:
                work(body, context, client)
            except AlreadyRecorded as exc:
                self.already(client, body, str(exc))
            except Refused as exc:
                self.refuse(client, body, context.get("flag_id"), work.__name__, str(exc))

        run.__name__ = work.__name__
        return run
