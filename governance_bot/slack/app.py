"""The bolt app: buttons, forms, App Home and ``/governance``, organised like bolt-python apps.

* One listener module per feature under ``governance_bot.slack.listeners`` (removals, the
  safeguarding team's actions, App Home, the slash command), each with ``register(app, deps)``.
* One role check (:func:`role_check`, global middleware): before any listener runs, a click or
  form about a flag is checked with need-to-know (``governance_bot.authz`` through
  ``governance_bot.decisions``). A refusal goes through the one :meth:`Deps.refuse`: an
  ephemeral explanation and an audit event, nothing else happens. A click on something already
  decided is answered "already recorded".
* Every listener acknowledges Slack at once and does its work lazily (after the 3-second
  acknowledgement), so platform moderation may take its time.
* A request that is signed but cannot be read (a malformed payload) is answered 200 with a short
  error, logged in one line, never a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_sdk import WebClient

from governance_bot.authz import Action, NeedToKnow, Refused
from governance_bot.decisions import AlreadyRecorded, Decisions
from governance_bot.slack.bot import SlackBot

__all__ = ["ACTIONS", "SUBMISSIONS", "Deps", "build_app", "flag_target", "role_check"]

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
        """An ephemeral note to whoever clicked (a direct message when there is no channel,
        e.g. after a form)."""
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

    def refuse(self, client: WebClient, body: dict[str, Any], flag_id: int | None,
               action: str, why: str) -> None:
        """The one way a request is refused: audited, then explained to the person."""
        user = user_id(body)
        self.decisions.refused(flag_id, action, f"slack:{user}", why)
        log.info("slack: refused %s on flag #%s by %s", action, flag_id, user)
        self.tell(client, body, f":no_entry: {why}")

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


def role_check(deps: Deps) -> Callable[..., BoltResponse | None]:
    """Global middleware: only those need-to-know names may act on a flag."""

    def middleware(body: dict[str, Any], context: BoltContext, next: Callable[[], None],
                   ack: Ack, client: WebClient) -> BoltResponse | None:
        try:
            found = flag_target(body)
        except Unreadable as exc:
            log.warning("slack: an unreadable %s request was ignored (%s)",
                        body.get("type", "unknown"), exc)
            ack()
            return BoltResponse(status=200, body="This request could not be read.")
        if found is None:
            next()
            return None
        slack_action, action, flag_id = found
        user = user_id(body)
        staff = deps.bot.staff_by_slack_id(user)
        try:
            person, _ = deps.decisions.authorise(flag_id, staff, action)
        except AlreadyRecorded as exc:
            deps.already(client, body, str(exc))
        except Refused as exc:
            deps.refuse(client, body, flag_id, slack_action, str(exc))
        else:
            context["staff"], context["flag_id"] = person, flag_id
            next()
            return None
        ack()
        return BoltResponse(status=200, body="")

    return middleware


def _on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
    """Anything a listener could not handle: one line in the log, a 200 with a short message
    for Slack (never a 500 with a traceback)."""
    log.warning("slack: a %s request failed: %s", body.get("type", "unknown")
                if isinstance(body, dict) else "malformed", type(error).__name__)
    return BoltResponse(status=200, body="Sorry, that could not be done. Nothing was changed.")


def build_app(bot: SlackBot, signing_secret: str, *, decisions: Decisions | None = None,
              process_before_response: bool = False) -> App:
    """The bolt app. ``process_before_response`` is for FaaS hosts; the service leaves it off so
    lazy listeners run after the acknowledgement."""
    from governance_bot.slack.listeners import commands, home, removals, safeguarding

    deps = Deps(bot, decisions)
    app = App(client=bot.client, signing_secret=signing_secret, token_verification_enabled=False,
              process_before_response=process_before_response, name="governance-bot",
              raise_error_for_unhandled_request=False)
    app.middleware(role_check(deps))
    app.error(_on_error)
    for feature in (removals, safeguarding, home, commands):
        feature.register(app, deps)
    return app
