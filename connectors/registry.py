"""Known connectors: the built-ins below plus any installed package that registers one under the
``governance_bot.connectors`` entry-point group (``name = "package.module:ConnectorClass"``)."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from connectors.base import Connector

__all__ = ["BUILTINS", "available", "load"]

ENTRY_POINT_GROUP = "governance_bot.connectors"

# name -> "module:Class"; imported only when used, so one broken optional dependency
# does not stop the others.
BUILTINS: dict[str, str] = {
    "jsonl": "connectors.jsonl:JsonlConnector",
    "facebook": "connectors.facebook:FacebookPageConnector",
    "instagram": "connectors.instagram:InstagramConnector",
    "x": "connectors.x:XConnector",
    "youtube": "connectors.youtube:YouTubeConnector",
    "mastodon": "connectors.mastodon:MastodonConnector",
    "bluesky": "connectors.bluesky:BlueskyConnector",
    "tiktok": "connectors.tiktok:TikTokConnector",
    "imap": "connectors.imap:ImapConnector",
    "teams": "connectors.teams:TeamsConnector",
    "whatsapp": "connectors.whatsapp:WhatsAppConnector",
    "zoom": "connectors.zoom:ZoomConnector",
    "website": "connectors.website:WebsiteConnector",
    "slack_workspace": "connectors.slack_workspace:SlackWorkspaceConnector",
}


def available() -> dict[str, str]:
    """Every connector name with where it comes from (built-in or the package providing it)."""
    names = {name: "built-in" for name in BUILTINS}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(ep.name, f"plugin ({ep.value})")
    return dict(sorted(names.items()))


def load(name: str) -> type[Connector]:
    """The connector class for ``name``; KeyError with the known names if there is none."""
    target = BUILTINS.get(name)
    if target is None:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                cls = ep.load()
                break
        else:
            raise KeyError(f"unknown connector type {name!r}; known: {', '.join(available())}")
    else:
        module, _, attr = target.partition(":")
        cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise TypeError(f"connector {name!r} does not provide a Connector subclass")
    return cls
