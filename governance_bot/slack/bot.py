"""The Slack side of a flag: where it goes, how it looks, and keeping every message true.

``SlackBot`` owns the Web API client and knows the database. It

* delivers a flag to its route (one group DM with the route's people, or a private channel),
  idempotently: a flag already shown in a conversation is updated, never posted again, and a post
  whose record was lost in a crash (or whose answer was lost) is found again by its message
  metadata. It looks only when such a post can exist: not on the first attempt to show a flag
  (``FlagView.first_attempt``, from the outbox's claim count), which saves a read of the
  conversation's history before every new alert;
* records a further flag on an already-alerted thread under that alert's message instead of
  sending it, when it adds nothing new for the message's readers (``_fold_under``: never an
  escalation, no safeguarding finding, nothing critical, no concern or severity they were not
  already alerted to on the thread); the message's count and latest time of the flags recorded
  under it are marked due (``FlagMessage.refresh_due``, in the transaction that records the
  flag) and refreshed once at the end of the outbox's batch (``refresh_anchors``), however many
  the batch added. A flag recorded so is a ``FlagMessage`` row at the message it was recorded under
  (``ts == thread_ts``); "Show them in the thread" posts such flags as replies, each with its own
  buttons (``show_grouped``);
* re-renders every message about a flag when its state changes (``refresh``: one truth
  everywhere, so nobody acts twice).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from connectors.base import Connector, ModerationAction
from governance_bot.authz import (
    Detail,
    Entitlement,
    FindingFacts,
    FlagFacts,
    NeedToKnow,
    history_visible,
)
from governance_bot.config import Config
from governance_bot.decisions import OUTCOMES, Decisions
from governance_bot.findings import Category, Route, Severity
from governance_bot.flags import FlagStatus
from governance_bot.items import Item
from governance_bot.outbox import DeliveryError, FlagView, load_flag
from governance_bot.register_store import load_registers
from governance_bot.registers import RegisterIndex, StaffMember
from governance_bot.slack.render import FlagSummary, mask_learners, render_flag
from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = ["METADATA_EVENT", "SINK", "SlackBot", "make_client", "moderation_actions",
           "slack_tokens"]

log = logging.getLogger(__name__)

SINK = "slack"
# how often a process looks for grouped-flag counts marked due that it did not mark itself (left
# by another replica that died before refreshing them); its own marks it refreshes at once, and a
# process's first drain looks for any a crash left
SWEEP_SECONDS = 60.0
METADATA_EVENT = "governance_flag"
OUTCOME_NAMES = OUTCOMES


# The statements of a delivery and a refresh, built once (their cache keys too): building a
# select with its comparisons cost more interpreter time per flag than running it.
_SHOWN_IN = select(m.FlagMessage).where(m.FlagMessage.flag_id == bindparam("flag_id"),
                                        m.FlagMessage.sink == SINK,
                                        m.FlagMessage.channel == bindparam("channel"))
_SHOWN_ELSEWHERE = select(m.FlagMessage).where(m.FlagMessage.flag_id == bindparam("flag_id"),
                                               m.FlagMessage.sink == SINK,
                                               m.FlagMessage.id != bindparam("shown_id"))
_SHOWN = select(m.FlagMessage).where(m.FlagMessage.flag_id == bindparam("flag_id"),
                                     m.FlagMessage.sink == SINK)
_THREAD = (select(m.ItemVersion.data)
           .join(m.ItemRecord, (m.ItemRecord.id == m.ItemVersion.item_id)
                 & (m.ItemVersion.version == m.ItemRecord.current_version))
           .where(m.ItemRecord.thread_key == bindparam("thread_key"),
                  m.ItemRecord.created_at < bindparam("before"))
           .order_by(m.ItemRecord.created_at.desc())
           .limit(5))
_DECISIONS = (select(m.FlagDecision).where(m.FlagDecision.flag_id == bindparam("flag_id"))
              .order_by(m.FlagDecision.id))
# Reads of plain columns and the updates go to the table directly (no ORM layer, half the cost
# of a query). They run after an ORM query of the same transaction (which flushed whatever was
# pending, so they see it) or in a transaction that changed nothing.
_FLAG_MESSAGES = m.Base.metadata.tables[m.FlagMessage.__tablename__]
_FM = _FLAG_MESSAGES.c
_FLAG_TABLE = m.Base.metadata.tables[m.Flag.__tablename__]
_FLAGS = _FLAG_TABLE.c
_DIGEST = m.Base.metadata.tables[m.DigestEntry.__tablename__].c
_DIGESTED = select(_DIGEST.id).where(_DIGEST.flag_id == bindparam("flag_id"),
                                     _DIGEST.route == bindparam("route"))
# the flag's own first message (in whichever conversation: the first found), and the replies
# under it (two statements: a count is made only where there is such a message)
_LIVE = [FlagStatus.open.value, FlagStatus.acknowledged.value, FlagStatus.escalated.value]
# the flags recorded under a message (not sent separately) or shown as replies in its thread
_GROUPED = (select(_FM.flag_id, _FM.ts, _FLAGS.item_created_at, _FLAGS.status)
            .join_from(_FLAG_MESSAGES, _FLAG_TABLE, _FLAGS.id == _FM.flag_id)
            .where(_FM.channel == bindparam("channel"), _FM.thread_ts == bindparam("anchor_ts"),
                   _FM.sink == SINK)
            .order_by(_FM.id))
# the open flags of the same thread already alerted in this conversation (a message of their
# own): what a further flag there is compared with
_ALERTED = (
    select(_FM.flag_id, _FM.ts, _FM.recipient)
    .join_from(_FLAG_MESSAGES, _FLAG_TABLE, _FLAGS.id == _FM.flag_id)
    .where(_FLAGS.thread_key == bindparam("thread_key"), _FLAGS.id != bindparam("flag_id"),
           _FM.channel == bindparam("channel"), _FM.sink == SINK, _FM.thread_ts.is_(None),
           _FLAGS.status.in_(_LIVE))
    .order_by(_FM.id)
)
_MARK_DUE = (update(_FLAG_MESSAGES)
             .where(_FM.channel == bindparam("in_channel"), _FM.ts == bindparam("at_ts"),
                    _FM.sink == SINK, _FM.thread_ts.is_(None))
             .values(refresh_due=_FM.refresh_due + 1))
_CLEAR_DUE = (update(_FLAG_MESSAGES)
              .where(_FM.id == bindparam("row_id"), _FM.refresh_due == bindparam("seen"))
              .values(refresh_due=0))
_MARK_AGAIN = (update(_FLAG_MESSAGES).where(_FM.id == bindparam("row_id"))
               .values(refresh_due=_FM.refresh_due + 1))
# no ORDER BY: SQLite then finds them by the refresh_due index instead of scanning the table in
# id order (they are sorted here)
_DUE = select(_FM.id).where(_FM.refresh_due > 0, _FM.sink == SINK)
# the message itself (a flag recorded under it has the same ts, and a thread_ts)
_MESSAGE_AT = select(m.FlagMessage).where(m.FlagMessage.channel == bindparam("channel"),
                                          m.FlagMessage.ts == bindparam("ts"),
                                          m.FlagMessage.sink == SINK,
                                          m.FlagMessage.thread_ts.is_(None))
_LOCK_DUE = (select(m.FlagMessage).where(m.FlagMessage.id == bindparam("row_id"),
                                         m.FlagMessage.refresh_due > 0)
             .with_for_update(skip_locked=True))


def slack_tokens(config: Config, env: dict[str, str] | None = None
                 ) -> tuple[str | None, str | None, str | None]:
    """(bot token, signing secret, app token): from the config, else SLACK_BOT_TOKEN,
    SLACK_SIGNING_SECRET and SLACK_APP_TOKEN."""
    env = dict(os.environ) if env is None else env
    s = config.slack

    def pick(secret: Any, name: str) -> str | None:
        return secret.get_secret_value() if secret is not None else (env.get(name) or None)

    return (pick(s.bot_token, "SLACK_BOT_TOKEN"), pick(s.signing_secret, "SLACK_SIGNING_SECRET"),
            pick(s.app_token, "SLACK_APP_TOKEN"))


def make_client(config: Config, token: str | None = None, max_retries: int = 2) -> WebClient:
    """A WebClient that honours 429 Retry-After and retries 5xx and network errors a few times;
    longer outages are the outbox's job (it retries with backoff and loses nothing)."""
    token = token or slack_tokens(config)[0]
    if not token:
        raise DeliveryError("no Slack bot token: set SLACK_BOT_TOKEN (or [slack] bot_token = "
                            "\"${SLACK_BOT_TOKEN}\")")
    kwargs: dict[str, Any] = {"token": token, "timeout": 15, "retry_handlers": [
        RateLimitErrorRetryHandler(max_retry_count=max_retries),
        ServerErrorRetryHandler(max_retry_count=max_retries),
        ConnectionErrorRetryHandler(max_retry_count=max_retries),
    ]}
    if config.slack.web_api_url:
        url = config.slack.web_api_url
        kwargs["base_url"] = url if url.endswith("/") else url + "/"
    return WebClient(**kwargs)


def moderation_actions(connector: Connector) -> frozenset[ModerationAction]:
    """What the connector can do to an item (the Remove form offers only these)."""
    return connector.moderation_actions()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SlackBot:
    def __init__(self, config: Config, db: Database, client: WebClient, *,
                 registers: RegisterIndex | None = None,
                 connectors: Sequence[Connector] = (),
                 clock: Callable[[], datetime] = _utcnow,
                 anchor_refresh_seconds: float = 0.0):
        """``anchor_refresh_seconds``: refresh a message's count of grouped flags at most once
        in that many seconds (0: at the end of every batch). Only for a process that drains the
        outbox again and again (the service), so that a count left for later is brought up to
        date by a later drain; further flags meanwhile are in the thread already."""
        self.config = config
        self.settings = config.slack
        self.db = db
        self.client = client
        self.connectors = list(connectors)
        self.clock = clock
        self.tz = ZoneInfo(config.organisation.timezone)
        self._registers = registers
        self._need_to_know: NeedToKnow | None = None
        self._conversations: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self.anchor_refresh_seconds = anchor_refresh_seconds
        self.monotonic: Callable[[], float] = time.monotonic
        self._refreshed_at: dict[int, float] = {}  # FlagMessage id -> when this process did it
        self._marked_here = threading.local()  # this thread marked a count due since its flush
        self._look_again = True  # marks may be waiting (at start: a crash may have left some)
        self._swept_at = float("-inf")

    # --- registers ----------------------------------------------------------------------------
    @property
    def registers(self) -> RegisterIndex:
        if self._registers is None:
            with self.db.session() as session:
                self._registers = RegisterIndex(load_registers(session))
        return self._registers

    @registers.setter
    def registers(self, value: RegisterIndex) -> None:
        self._registers = value

    def need_to_know(self) -> NeedToKnow:
        """Who may see and do what, over the current registers (cached per register load)."""
        regs = self.registers
        cached = self._need_to_know
        contacts = frozenset([*self.settings.escalate_to,
                              *(s for entry in self.settings.rota for s in entry.staff)])
        if (cached is None or cached.registers is not regs
                or cached.dsl_content.value != self.settings.dsl_content
                or cached.escalation_contacts != contacts):
            cached = NeedToKnow.from_config(self.config, regs)
            cached.dsl_content = Detail(self.settings.dsl_content)
            cached.escalation_contacts = contacts
            self._need_to_know = cached
        return cached

    def decisions(self) -> Decisions:
        """The service's decisions, carried out through this bot's connectors; every message
        about a flag is re-rendered after each decision."""
        return Decisions(self.db, self.need_to_know, connectors=self.connectors,
                         clock=lambda: self.clock(), on_change=[self.refresh])

    def case_url(self, flag_id: int) -> str | None:
        """The flag's case page in the web console (``[service] public_url``), if served."""
        base = getattr(self.config.service, "public_url", None)
        return f"{str(base).rstrip('/')}/flags/{flag_id}" if base else None

    def flags_for(self, staff_id: str, limit: int = 200) -> list[tuple[m.Flag, Entitlement]]:
        """The open flags waiting for this person, each with what they may see of it, most
        severe first."""
        live = [FlagStatus.open.value, FlagStatus.acknowledged.value,
                FlagStatus.escalated.value]
        nt = self.need_to_know()
        person = nt.staff(staff_id)
        if person is None:
            return []
        out: list[tuple[m.Flag, Entitlement]] = []
        with self.db.session() as session:
            ids = list(session.execute(
                select(m.Flag.id).where(m.Flag.status.in_(live),
                                        m.Flag.route != Route.record_only.value)
                .order_by(m.Flag.severity.desc(), m.Flag.id).limit(limit)).scalars())
            for flag_id in ids:
                loaded = load_flag(session, flag_id)
                if loaded is None:
                    continue
                flag, findings, item, _ = loaded
                mine = nt.entitlement(person, FlagFacts.from_records(flag, findings, item))
                if mine.receives and mine.immediate:
                    session.expunge(flag)
                    out.append((flag, mine))
        return out

    def staff_by_slack_id(self, slack_user_id: str) -> StaffMember | None:
        for s in self.registers.staff.values():
            if s.slack_user_id == slack_user_id and s.active:
                return s
        return None

    def connector_for(self, account: str) -> Connector | None:
        for c in self.connectors:
            if c.account == account and moderation_actions(c):
                return c
        return None

    # --- destinations -------------------------------------------------------------------------
    def open_conversation(self, people: Iterable[StaffMember]) -> str:
        ids = tuple(sorted({s.slack_user_id for s in people if s.slack_user_id}))
        if not ids:
            raise DeliveryError("nobody to send to has a slack_user_id in the staff register")
        with self._lock:
            known = self._conversations.get(ids)
        if known:
            return known
        resp = self.client.conversations_open(users=",".join(ids))
        channel = str(resp["channel"]["id"])
        with self._lock:
            self._conversations[ids] = channel
        return channel

    def destination(self, route: Route, recipients: list[StaffMember]) -> str:
        if self.settings.delivery == "channel":
            channel = self.settings.channels.get(route.value)  # type: ignore[call-overload]
            if not channel:
                raise DeliveryError(f"[slack] channels has no channel for route {route.value}")
            return str(channel)
        return self.open_conversation(recipients)

    # --- rendering ----------------------------------------------------------------------------
    def load(self, session: Session, flag_id: int
             ) -> tuple[m.Flag, list[m.Finding], Item, m.ItemRecord]:
        loaded = load_flag(session, flag_id)
        if loaded is None:
            raise LookupError(f"no flag #{flag_id}")
        return loaded

    def staff_name(self, staff_id: str | None) -> str:
        if not staff_id:
            return "nobody"
        s = self.registers.staff.get(staff_id)
        return s.name if s else staff_id

    def entitlement_for(self, facts: FlagFacts, recipient: str | None, route: Route
                        ) -> Entitlement:
        """What a message shows: its recipient's entitlement (a direct message), or the route's
        (a private channel, or someone the escalation added, e.g. the on-call rota)."""
        nt = self.need_to_know()
        if recipient is not None:
            # a group DM (its members' ids, comma-separated) shows what they all may see, asked
            # again each time: nobody can be taken out of it when they leave the role
            return nt.shared([nt.for_reader(r, facts, route)
                              for r in recipient.split(",") if r])
        return nt.for_route(route, facts)

    def summary(self, session: Session, flag: m.Flag, entitlement: Entitlement,
                facts: FlagFacts, item: Item, at: tuple[str, str] | None = None
                ) -> FlagSummary:
        """The decisions so far, as the reader may see them, and what the reader needs to act
        (the child and the thread for the case view; photo consent for the managers).
        ``at``: the message (channel, ts) being rendered, for the flags recorded under it."""
        case = entitlement.child_identity
        mask = not case and self.config.delivery.mask_learner_details
        nt = self.need_to_know()
        lines: list[str] = []
        decisions = list(session.execute(_DECISIONS, {"flag_id": flag.id}).scalars())
        for d in decisions:
            if not history_visible(d.action, bool(case)):
                continue  # the case side's work (who acknowledged it, who has it)
            who = (self.staff_name(d.staff_id) if d.staff_id != "governance-bot"
                   else "governance-bot")
            when = d.created_at.astimezone(self.tz).strftime("%d %b %H:%M")
            reason = d.reason or ""
            if mask:
                reason = mask_learners(reason, self.registers)
            if d.action == "remove":
                how = d.data.get("moderation", "removal")
                ok = d.data.get("platform_ok")
                result = ("" if ok else " (in progress)" if ok is None
                          else " (the platform could not do it: remove it by hand)")
                informed = d.data.get("informed_count", 0)
                lines.append(f"• Removed ({how}) by {who}, {when}{result}: {reason}. "
                             f"{informed} person(s) to inform recorded.")
            elif d.action == "keep":
                lines.append(f"• Kept by {who}, {when}: {reason}")
            elif d.action == "escalate":
                lines.append(f"• Escalated to the DSL by {who}, {when}")
            elif d.action == "acknowledge":
                lines.append(f"• Acknowledged by {who}, {when}")
            elif d.action == "assign":
                lines.append(f"• Assigned to {self.staff_name(d.data.get('assignee'))} "
                             f"by {who}, {when}")
            elif d.action == "outcome":
                if case:
                    outcome = OUTCOME_NAMES.get(d.outcome or "", d.outcome or "")
                    note = f": {reason}" if reason else ""
                    lines.append(f"• Outcome recorded by {who}, {when}: {outcome}{note}")
                else:
                    lines.append(f"• Handled by the DSL ({when})")
            elif d.action == "preapprove_photo" and not case:
                lines.append(f"• Photo pre-approved by {who}, {when}")
            elif d.action == "escalation":
                lines.append(f"• Not acknowledged in time: {d.reason} ({when})")
        out = FlagSummary(lines=lines, case_url=self.case_url(flag.id))
        if at is not None and flag.thread_key:
            grouped = session.execute(_GROUPED, {"channel": at[0], "anchor_ts": at[1]}).all()
            if grouped:
                out.group_count = len(grouped)
                out.group_latest = max(r.item_created_at for r in grouped)
                out.grouped_open = [r.flag_id for r in grouped
                                    if r.ts == at[1] and r.status in _LIVE]
        if case:
            out.children = nt.children(facts)
            if entitlement.detail.value in ("full", "excerpt") and flag.thread_key:
                rows = session.execute(_THREAD, {"thread_key": flag.thread_key,
                                                 "before": flag.item_created_at}).scalars()
                out.thread = [Item.model_validate(data) for data in reversed(list(rows))]
        else:
            out.photo_consent = nt.photo_consent(facts)
        return out

    def _read(self, session: Session, flag_id: int, view: FlagView | None
              ) -> tuple[m.Flag, list[m.Finding], Item, m.ItemRecord]:
        """The flag, from ``view`` (as the outbox sender just read it in this transaction) when
        it is that flag's, else from the database."""
        if view is not None and view.flag.id == flag_id:
            return view.flag, view.all_findings or view.findings, view.item, view.item_record
        return self.load(session, flag_id)

    def render(self, session: Session, flag_id: int, route: Route,
               view: FlagView | None = None, recipient: str | None = None,
               at: tuple[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
        """The message about the flag for ``recipient`` (or for ``route``'s channel).
        ``view``: the flag as the outbox sender just read it in this transaction; ``at``: the
        message (channel, ts) this renders, for the flags recorded under it."""
        flag, findings, item, record = self._read(session, flag_id, view)
        facts = FlagFacts.from_records(flag, findings, item)
        entitlement = self.entitlement_for(facts, recipient, route)
        if not entitlement.receives:
            text = f"Flag #{flag_id} is no longer shown to you."
            return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
        keys = entitlement.finding_keys
        mine = [f for f in findings if str(f.id) in keys]
        return render_flag(flag, entitlement, mine, item, self.registers, tz=self.tz,
                           summary=self.summary(session, flag, entitlement, facts, item, at),
                           deleted=record.deleted_at is not None)

    @staticmethod
    def recorded_under(row: m.FlagMessage) -> bool:
        """The flag was recorded under another flag's message (not sent as a message)."""
        return row.thread_ts is not None and row.ts == row.thread_ts

    def _message_of(self, session: Session, row: m.FlagMessage) -> m.FlagMessage | None:
        """The Slack message that shows ``row``'s flag: its own, or the one it is recorded
        under."""
        if not self.recorded_under(row):
            return row
        return session.execute(_MESSAGE_AT, {"channel": row.channel, "ts": row.ts}
                               ).scalar_one_or_none()

    def _render_row(self, session: Session, row: m.FlagMessage
                    ) -> tuple[str, list[dict[str, Any]]]:
        return self.render(session, row.flag_id, Route(row.route or "dsl"),
                           recipient=row.recipient, at=(row.channel, row.ts))

    def _update_rows(self, session: Session, rows: Iterable[m.FlagMessage],
                     skip: Iterable[int] = ()) -> int:
        """Re-render the messages showing these rows' flags (a flag recorded under another's
        message updates that message: its count of open flags), each once."""
        done = set(skip)
        count = 0
        for row in rows:
            message = self._message_of(session, row)
            if message is None or message.id in done:
                continue
            done.add(message.id)
            text, blocks = self._render_row(session, message)
            try:
                self._update(message.channel, message.ts, text, blocks)
                count += 1
            except SlackApiError as exc:
                log.warning("slack: could not update the message for flag #%d in %s: %s",
                            message.flag_id, message.channel, exc.response.get("error"))
        return count

    # --- delivery -----------------------------------------------------------------------------
    def deliver(self, session: Session, view: FlagView) -> None:
        """Show ``view`` to its people, in the sender's transaction (``session``): one message
        per group of people who see the same thing (a group DM), so each person gets one
        message per flag carrying everything they may see (the message of their most urgent
        route posts it; the others update it). Someone whose only route is a digest gets a
        digest line instead. With ``[slack] delivery = "channel"``, one message per route in
        that route's private channel."""
        route = view.route
        if route == Route.record_only:
            return
        # an escalation is always a message of its own (never recorded under another alert)
        fold = view.kind != "flag_escalated"
        shown_ids: list[int] = []
        if self.settings.delivery == "channel":
            if route in (Route.digest, Route.case_digest):
                self._digest_entry(session, view.flag, route)
                return
            channel = self.destination(route, view.recipients)
            shown = self.show(session, view.flag.id, route, channel, view=view,
                              first_attempt=view.first_attempt, defer_anchor=True, fold=fold)
            shown_ids.append(shown.id)
        else:
            if not view.entitlements:
                raise DeliveryError(f"nobody registered receives the {route.value} part of "
                                    f"flag #{view.flag.id}")
            for people, _findings in view.audiences():
                if route in (Route.digest, Route.case_digest):
                    self._digest_entry(session, view.flag, route)
                    continue
                reachable = [e for e in people if e.staff.slack_user_id]
                for e in people:
                    if not e.staff.slack_user_id:
                        log.warning("slack: %s has no slack_user_id; flag #%d not sent to them",
                                    e.staff_id, view.flag.id)
                if not reachable:
                    raise DeliveryError("nobody to send to has a slack_user_id in the staff "
                                        "register")
                # one conversation per group of people who see the same thing (a group DM)
                channel = self.open_conversation([e.staff for e in reachable])
                shown = self.show(session, view.flag.id, route, channel, view=view,
                                  first_attempt=view.first_attempt, defer_anchor=True,
                                  recipient=_members(reachable), fold=fold)
                shown_ids.append(shown.id)
        if view.kind != "flag_created":
            # the flag changed (e.g. a finding was added): every other message about it must
            # show that too
            rows = list(session.execute(_SHOWN, {"flag_id": view.flag.id}).scalars())
            self._update_rows(session, [r for r in rows if r.id not in shown_ids],
                              skip=shown_ids)

    def _digest_entry(self, session: Session, flag: m.Flag, route: Route) -> None:
        exists = session.execute(_DIGESTED, {"flag_id": flag.id, "route": route.value}).first()
        if exists is None:
            session.add(m.DigestEntry(flag_id=flag.id, account=flag.account, route=route.value,
                                      created_at=self.clock()))

    def show(self, session: Session, flag_id: int, route: Route, channel: str, *,
             view: FlagView | None = None, first_attempt: bool = False,
             defer_anchor: bool = False, recipient: str | None = None,
             fold: bool = False) -> m.FlagMessage:
        """Show the flag in ``channel`` once (rendered for ``recipient``, or for ``route``);
        afterwards, update that message in place. With ``fold`` (the outbox's delivery of a new
        or changed flag; never an escalation), a flag that adds nothing new for the
        conversation's readers to an alert already there about the same thread is recorded
        under that alert's message instead of being sent (``_fold_under``), and that message's
        count and latest time are brought up to date.

        ``first_attempt``: nothing can have posted this flag before (the outbox's first claim),
        so there is no earlier post to look for. ``defer_anchor``: a flag recorded under another
        flag's message only marks that message due for a refresh (``refresh_anchors`` does it,
        once for all the flags of a batch) instead of refreshing it now."""
        existing = session.execute(_SHOWN_IN, {"flag_id": flag_id, "channel": channel}
                                   ).scalar_one_or_none()
        reader = existing.recipient if existing is not None else recipient
        if existing is not None and not self.recorded_under(existing):
            text, blocks = self.render(session, flag_id, route, view, recipient=reader,
                                       at=(existing.channel, existing.ts))
            self._update(existing.channel, existing.ts, text, blocks)
            return existing
        flag, findings, item, _ = self._read(session, flag_id, view)
        mine = self.entitlement_for(FlagFacts.from_records(flag, findings, item), reader, route)
        under = (self._fold_under(session, flag, findings, item, channel, mine, route)
                 if fold else None)
        if existing is not None:  # recorded under another flag's message so far
            earlier = str(existing.thread_ts)
            if under is None:  # it brings something new now (an edit): an alert of its own
                existing.ts = self._post(session, flag_id, route, channel, view, reader,
                                         look=True)
                existing.thread_ts = None
            self._count_changed(session, channel, earlier, defer_anchor)
            return existing
        if under is not None:
            record = m.FlagMessage(flag_id=flag_id, sink=SINK, channel=channel, ts=under,
                                   route=route.value, thread_ts=under, created_at=self.clock(),
                                   recipient=recipient)
            session.add(record)
            session.flush()
            self._count_changed(session, channel, under, defer_anchor)
            return record
        ts = self._post(session, flag_id, route, channel, view, recipient,
                        look=not first_attempt)
        record = m.FlagMessage(flag_id=flag_id, sink=SINK, channel=channel, ts=ts,
                               route=route.value, thread_ts=None, created_at=self.clock(),
                               recipient=recipient)
        session.add(record)
        session.flush()
        return record

    def _post(self, session: Session, flag_id: int, route: Route, channel: str,
              view: FlagView | None, recipient: str | None, *, look: bool,
              thread_ts: str | None = None) -> str:
        """Post the flag's message in ``channel`` (in ``thread_ts``'s thread), or, when ``look``
        and a post of it is already there (a crash lost its record), update that one. Its ts."""
        text, blocks = self.render(session, flag_id, route, view, recipient=recipient)
        ts = self._find_posted(channel, flag_id, thread_ts) if look else None
        if ts is None:
            metadata = {"event_type": METADATA_EVENT,
                        "event_payload": {"flag_id": flag_id, "route": route.value}}
            resp = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks,
                                                metadata=metadata, thread_ts=thread_ts,
                                                unfurl_links=False, unfurl_media=False)
            return str(resp["ts"])
        log.info("slack: flag #%d was already posted in %s (found by metadata); recording it",
                 flag_id, channel)
        self._update(channel, ts, text, blocks)
        return ts

    def _count_changed(self, session: Session, channel: str, at_ts: str, defer: bool) -> None:
        """The flags recorded under the message at ``at_ts`` changed: mark it for the end of
        the batch (``defer``), or refresh it now."""
        if defer:
            session.execute(_MARK_DUE, {"in_channel": channel, "at_ts": at_ts})
            self._marked_here.marked = True
        else:
            self._refresh_anchor(session, channel, at_ts)

    @staticmethod
    def _concern(finding: FindingFacts) -> tuple[str, str]:
        """What a finding is about, for "already alerted": its rule and whom or what it names
        (a learner, a member of staff and a learner, a conversation)."""
        return finding.rule_id, finding.subject or finding.register_entry or ""

    def _fold_under(self, session: Session, flag: m.Flag, findings: list[m.Finding],
                    item: Item, channel: str, mine: Entitlement, route: Route) -> str | None:
        """The message of an earlier open flag of the same thread, already in ``channel``,
        under which ``flag`` is recorded instead of being sent; None: it is an alert of its own.

        It is recorded, not sent, only when it adds nothing new for the readers (``mine``: what
        they receive of it): it was never escalated; none of the flag's findings, whoever they
        go to, is safeguarding (a disclosure, a concern about a child, a possibly explicit
        image: every one alerts the DSL team, and the managers are told to take that post
        down) or critical; the readers' note about parts sent to others is one they already
        had; and each finding they receive repeats a concern (the same rule about the same
        learner, member of staff or conversation) they were already alerted to on this thread
        in this conversation, at the same or a higher severity. Then it is recorded under the
        latest such alert."""
        if not flag.thread_key or not mine.findings:
            return None
        if flag.status == FlagStatus.escalated.value or flag.escalation_level:
            return None
        whole = FlagFacts.from_records(flag, findings, item)
        if any(f.category == Category.safeguarding or f.explicit_image
               or f.severity >= Severity.critical for f in whole.findings):
            return None
        alerted = session.execute(_ALERTED, {"thread_key": flag.thread_key, "flag_id": flag.id,
                                             "channel": channel}).all()
        if not alerted:
            return None
        seen: dict[tuple[str, str], int] = {}
        notes: set[str | None] = {None}
        for earlier_id, _, reader in alerted:
            loaded = load_flag(session, earlier_id)
            if loaded is None:
                continue
            facts = FlagFacts.from_records(loaded[0], loaded[1], loaded[2])
            theirs = self.entitlement_for(facts, reader, route)
            notes.add(theirs.note)
            for g in theirs.findings:
                seen[self._concern(g)] = max(seen.get(self._concern(g), 0), int(g.severity))
        if mine.note not in notes:
            return None
        if all(seen.get(self._concern(f), 0) >= int(f.severity) for f in mine.findings):
            return str(alerted[-1][1])
        return None

    def show_grouped(self, channel: str, anchor_ts: str, slack_user_id: str) -> int:
        """Post the open flags recorded under the message at ``anchor_ts`` into its thread, each
        as a reply with its own buttons, for a reader of that message who asked ("Show them in
        the thread"). Only flags the asker may see; each once. Returns how many were posted."""
        nt = self.need_to_know()
        asker = self.staff_by_slack_id(slack_user_id)
        if asker is None:
            return 0
        posted = 0
        with self.db.session() as session:
            grouped = [r for r in session.execute(_GROUPED, {"channel": channel,
                                                             "anchor_ts": anchor_ts}).all()
                       if r.ts == anchor_ts and r.status in _LIVE]
            for flag_id, *_ in grouped:
                row = session.execute(_SHOWN_IN, {"flag_id": flag_id, "channel": channel}
                                      ).scalar_one_or_none()
                if row is None or not self.recorded_under(row):
                    continue
                flag, findings, item, _ = self.load(session, flag_id)
                if not nt.entitlement(asker, FlagFacts.from_records(flag, findings, item)
                                      ).receives:
                    continue  # not theirs to see (e.g. a concern about them)
                row.ts = self._post(session, flag_id, Route(row.route or "dsl"), channel, None,
                                    row.recipient, look=True, thread_ts=anchor_ts)
                session.flush()
                posted += 1
            if posted:
                self._refresh_anchor(session, channel, anchor_ts)
        return posted

    def _refresh_anchor(self, session: Session, channel: str, thread_ts: str) -> None:
        anchor = session.execute(_MESSAGE_AT, {"channel": channel, "ts": thread_ts}
                                 ).scalar_one_or_none()
        if anchor is not None:
            text, blocks = self._render_row(session, anchor)
            self._update(channel, thread_ts, text, blocks)

    def refresh_anchors(self) -> int:
        """Bring every message marked ``refresh_due`` up to date (its count of grouped flags),
        each in a transaction of its own. Returns how many were updated.

        The row is locked while it is rendered and updated (``SKIP LOCKED``: a replica already at
        it is left to it, and a reply being recorded under it waits for the moment it takes),
        and the mark is cleared only if nothing marked it again meanwhile; if something did (a
        reply, or on SQLite, which has no row locks, another process's refresh that may have
        landed before this one), it stays marked and the next drain renders it again. One
        refresh at a time in this process. Slack errors leave the mark for the next drain; a
        message Slack no longer has is given up.

        It reads the marks only when some may be waiting: this thread marked one (the sender
        calls this after committing its batch, in the thread that delivered it), an earlier
        refresh left some, it is the process's first, or ``SWEEP_SECONDS`` have passed (marks
        another replica made and died before refreshing). A drain without replies costs no
        query here."""
        with self._refresh_lock:
            now = self.monotonic()
            mine = getattr(self._marked_here, "marked", False)
            self._marked_here.marked = False
            if not (mine or self._look_again or now - self._swept_at >= SWEEP_SECONDS):
                return 0
            self._look_again, self._swept_at = False, now
            try:
                return self._refresh_anchors(now)
            except BaseException:
                self._look_again = True  # whatever is still marked: at the next drain
                raise

    def _refresh_anchors(self, now: float) -> int:
        with self.db.session() as session:
            due = sorted(session.execute(_DUE).scalars())
        done = 0
        if self.anchor_refresh_seconds:
            self._refreshed_at = {k: t for k, t in self._refreshed_at.items()
                                  if now - t < self.anchor_refresh_seconds}
            later = [d for d in due if d in self._refreshed_at]  # stay marked for now
            due = [d for d in due if d not in self._refreshed_at]
            self._look_again = bool(later)
        for row_id in due:
            with self.db.session() as session:
                anchor = session.execute(_LOCK_DUE, {"row_id": row_id}).scalar_one_or_none()
                if anchor is None:
                    continue  # refreshed meanwhile, or a replica is at it now
                seen = anchor.refresh_due
                text, blocks = self._render_row(session, anchor)
                try:
                    self._update(anchor.channel, anchor.ts, text, blocks)
                except SlackApiError as exc:
                    status = exc.response.status_code if exc.response is not None else 0
                    if status == 429 or status >= 500:
                        raise  # Slack is struggling: the rest waits for the next drain
                    log.warning("slack: could not update the message of flag #%d in %s (%s); "
                                "its count of grouped flags stays as it was", anchor.flag_id,
                                anchor.channel, exc.response.get("error"))
                cleared = cast("CursorResult[Any]", session.execute(
                    _CLEAR_DUE, {"row_id": row_id, "seen": seen}))
                if cleared.rowcount != 1:  # marked again meanwhile: render it again next time
                    session.execute(_MARK_AGAIN, {"row_id": row_id})
                    self._look_again = True
                if self.anchor_refresh_seconds:
                    self._refreshed_at[row_id] = now
                done += 1
        return done

    def _find_posted(self, channel: str, flag_id: int, thread_ts: str | None) -> str | None:
        """A message about ``flag_id`` already in ``channel`` (posted before a crash lost its
        record), found by its metadata."""
        try:
            if thread_ts is None:
                resp = self.client.conversations_history(channel=channel, limit=100,
                                                         include_all_metadata=True)
            else:
                resp = self.client.conversations_replies(channel=channel, ts=thread_ts,
                                                         include_all_metadata=True)
        except SlackApiError as exc:
            log.debug("slack: history of %s not readable: %s", channel, exc.response.get("error"))
            return None
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT and payload.get("flag_id") == flag_id:
                return str(message["ts"])
        return None

    def _update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def refresh(self, flag_id: int) -> int:
        """Update every message about the flag to show its current state. Returns the count."""
        with self.db.session() as session:
            rows = list(session.execute(_SHOWN, {"flag_id": flag_id}).scalars())
            return self._update_rows(session, rows)

    def note_direct_post(self, flag_id: int) -> None:
        """Before showing a flag outside the outbox (an escalation): count it as a claim of the
        flag's undelivered outbox messages, committed now, so that the outbox, delivering one of
        them later, looks for this post in case it was made but never recorded (a crash, a
        lost answer). Call it before the caller's own transaction writes anything (SQLite has
        one writer at a time)."""
        with self.db.session() as session:
            session.execute(update(m.OutboxMessage).where(
                m.OutboxMessage.flag_id == flag_id, m.OutboxMessage.delivered_at.is_(None))
                .values(claims=m.OutboxMessage.claims + 1))

    def notify_route(self, session: Session, flag_id: int, route: Route) -> list[m.FlagMessage]:
        """Show a flag to a route's people now (e.g. a manager escalated it to the DSL)."""
        loaded = self.load(session, flag_id)
        facts = FlagFacts.from_records(loaded[0], loaded[1], loaded[2])
        people = [e for e in self.need_to_know().audience(facts).values() if route in e.routes]
        self.note_direct_post(flag_id)
        if self.settings.delivery == "channel":
            return [self.show(session, flag_id, route,
                              self.destination(route, [e.staff for e in people]))]
        reachable = [e for e in people if e.staff.slack_user_id]
        if not reachable:
            raise DeliveryError("nobody to send to has a slack_user_id in the staff register")
        return [self.show(session, flag_id, route,
                          self.open_conversation([e.staff for e in reachable]),
                          recipient=_members(reachable))]

    def show_escalation(self, flag_id: int) -> None:
        """After a manager escalated a flag: tell the DSL team now (the escalation's outbox row
        is the safety net, settled here when this works)."""
        with self.db.session() as session:
            try:
                self.notify_route(session, flag_id, Route.dsl)
                session.execute(
                    update(m.OutboxMessage)
                    .where(m.OutboxMessage.flag_id == flag_id,
                           m.OutboxMessage.kind == "flag_escalated",
                           m.OutboxMessage.delivered_at.is_(None))
                    .values(delivered_at=self.clock()))
            except Exception:
                log.warning("slack: escalation of flag #%d will be delivered by the outbox",
                            flag_id)


def _members(people: Sequence[Entitlement]) -> str:
    """A group DM's members, as its message row records them (``flag_messages.recipient``, 128
    characters): every one, so that each is asked what they may see whenever it is shown again;
    the first alone if they do not fit (rendered for them, as before)."""
    ids = ",".join(e.staff_id for e in people)
    return ids if len(ids) <= 128 else people[0].staff_id
