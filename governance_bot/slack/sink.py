"""The Slack sink: the outbox sender hands each flag to ``SlackSink.deliver``.

Delivery happens inside the sender's transaction: the ``FlagMessage`` row (where the flag was
posted) commits together with the outbox row's ``delivered_at``. If the process dies after Slack
accepted the post but before that commit, the outbox row is claimed again when its lease runs
out, and ``SlackBot.show`` finds the earlier post by its message metadata instead of posting
twice. It looks only on a later attempt: on a message's first claim (``FlagView.first_attempt``)
nothing can have been posted, so the first attempt costs no history read. Slack errors (429 after
retries, 5xx, network) raise ``DeliveryError`` so the sender retries with backoff: an outage
delays alerts but loses none.

A flag grouped under an earlier flag's message (a reply on the same thread) marks that message
due for a refresh in the same transaction; ``flush``, called by the sender after each batch,
refreshes each marked message once. A crash in between leaves the mark for the next drain.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy.orm import object_session

from governance_bot.config import Config
from governance_bot.outbox import DeliveryError, FlagView
from governance_bot.slack.bot import SlackBot, make_client
from governance_bot.storage.db import Database

__all__ = ["SlackSink"]

log = logging.getLogger(__name__)


class SlackSink:
    name = "slack"

    def __init__(self, bot: SlackBot):
        self.bot = bot

    @classmethod
    def from_config(cls, config: Config, db: Database | None = None, **kwargs: Any) -> SlackSink:
        db = db or Database(config.database_url, echo=config.database.echo)
        return cls(SlackBot(config, db, make_client(config), **kwargs))

    def deliver(self, view: FlagView) -> None:
        session = object_session(view.flag)
        if session is None:  # pragma: no cover - the sender always passes attached objects
            raise DeliveryError("the flag is not attached to a database session")
        try:
            self.bot.deliver(session, view)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "unknown"
            raise DeliveryError(f"Slack answered {exc.response.status_code}: {error}") from exc
        except SlackClientError as exc:
            raise DeliveryError(f"Slack unreachable: {type(exc).__name__}") from exc
        except OSError as exc:
            raise DeliveryError(f"Slack unreachable: {type(exc).__name__}") from exc

    def flush(self) -> None:
        """Refresh the messages further flags were grouped under in this batch (or before a
        crash): once each, with the final count. Errors leave them marked for the next drain."""
        try:
            self.bot.refresh_anchors()
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("slack: grouped-flag counts not refreshed now (%s); tried again at the "
                        "next drain", type(exc).__name__)
