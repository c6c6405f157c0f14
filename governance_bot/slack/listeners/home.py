"""App Home: the viewer's open flags, each as the viewer may see it (need to know)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import HeaderBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from governance_bot.slack.deps import Deps
from governance_bot.slack.render import headline

__all__ = ["register"]


def register(app: App, deps: Deps) -> None:
    bot = deps.bot

    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        user = str(event.get("user", ""))
        staff = bot.staff_by_slack_id(user)
        blocks: list[Any] = [HeaderBlock(text="Your open flags")]
        if staff is None:
            blocks.append(SectionBlock(text=MarkdownTextObject(
                text="You are not in the staff register, so no flags are shown.")))
        else:
            mine = bot.flags_for(staff.staff_id)
            if not mine:
                blocks.append(SectionBlock(text=MarkdownTextObject(
                    text="Nothing waiting for you.")))
            for flag, entitlement in mine[:90]:
                since = flag.created_at.astimezone(bot.tz).strftime("%d %b %H:%M")
                blocks.append(SectionBlock(text=MarkdownTextObject(
                    text=f"*#{flag.id}* {headline(entitlement)} · {flag.account} · "
                         f"{flag.status} · since {since}")))
        client.views_publish(user_id=user, view=View(type="home", blocks=blocks).to_dict())

    def ack_event(ack: Ack) -> None:
        ack()

    app.event("app_home_opened")(ack=ack_event, lazy=[publish_home])
