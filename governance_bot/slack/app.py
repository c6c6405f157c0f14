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

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_sdk import WebClient

from governance_bot.authz import Refused
from governance_bot.decisions import AlreadyRecorded, Decisions
from governance_bot.slack.bot import SlackBot
from governance_bot.slack.deps import Deps, Unreadable, flag_target, user_id
from governance_bot.slack.listeners import commands, home, removals, safeguarding, threads

__all__ = ["build_app", "role_check"]

log = logging.getLogger(__name__)


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
    deps = Deps(bot, decisions)
    app = App(client=bot.client, signing_secret=signing_secret, token_verification_enabled=False,
              process_before_response=process_before_response, name="governance-bot",
              raise_error_for_unhandled_request=False)
    app.middleware(role_check(deps))
    app.error(_on_error)
    for feature in (removals, safeguarding, threads, home, commands):
        feature.register(app, deps)
    return app
