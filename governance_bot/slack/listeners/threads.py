"""Flags recorded under an alert: "Show them in the thread" posts them as replies under it.

A further flag on a thread that adds nothing new for an alert's readers is recorded under that
alert's message instead of being sent (docs/routing.md, "Threads"); the message lists the open
ones. A reader who wants to decide on them here presses the button: each is posted in the
message's thread, as that reader may see it, with its own buttons (whose clicks go through the
role check like any other).
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from governance_bot.slack.deps import Deps, user_id
from governance_bot.slack.render import SHOW_GROUPED

__all__ = ["register"]


def register(app: App, deps: Deps) -> None:
    bot = deps.bot

    def ack_click(ack: Ack) -> None:
        ack()

    def show(body: dict[str, Any], client: WebClient) -> None:
        channel = (body.get("channel") or {}).get("id")
        ts = (body.get("container") or {}).get("message_ts")
        user = user_id(body)
        if not channel or not ts:
            return
        if bot.staff_by_slack_id(user) is None:
            deps.refuse(client, body, None, SHOW_GROUPED, "You are not in the staff register as "
                        "an active member of staff, so you cannot see flags.")
            return
        if bot.show_grouped(str(channel), str(ts), user) == 0:
            deps.tell(client, body, "Nothing more to show: the flags recorded under this "
                      "message were decided or are already in its thread.")

    app.action(SHOW_GROUPED)(ack=ack_click, lazy=[show])
