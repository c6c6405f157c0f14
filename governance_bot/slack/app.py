"""The bolt app: buttons, modals, App Home and ``/governance``.

Every listener acknowledges Slack at once and does the work in a lazy listener (bolt runs it
after the 3-second acknowledgement), so platform moderation may take its time. Who may click
what is checked once, in the ``role_check`` middleware, before any listener runs: a refused
click gets an ephemeral explanation and an audit event, and nothing else happens.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_sdk import WebClient
from sqlalchemy import func, select, update

from governance_bot.findings import Route
from governance_bot.flags import FlagStatus
from governance_bot.slack.bot import OUTCOME_NAMES, SlackBot, moderation_actions
from governance_bot.slack.decisions import (
    INFORM_METHODS,
    Decisions,
    InformCandidate,
    Refused,
    authorise,
    inform_candidates,
    learners_named,
)
from governance_bot.slack.render import CATEGORY_NAMES, DSL_ACTIONS, MANAGER_ACTIONS
from governance_bot.storage import auditlog
from governance_bot.storage import models as m

__all__ = ["build_app", "open_flags_for", "role_check"]

log = logging.getLogger(__name__)

# modal callback id -> the button action it completes (for the role check)
SUBMISSIONS = {"gb_remove_submit": "gb_remove", "gb_keep_submit": "gb_keep",
               "gb_outcome_submit": "gb_outcome", "gb_assign_submit": "gb_assign"}
ACTIONS = set(MANAGER_ACTIONS) | set(DSL_ACTIONS)


def _flag_action(body: dict[str, Any]) -> tuple[str, int] | None:
    """(action id, flag id) of a flag button click or modal submission, else None."""
    if body.get("type") == "block_actions":
        for a in body.get("actions") or []:
            if a.get("action_id") in ACTIONS:
                return str(a["action_id"]), int(a["value"])
    if body.get("type") == "view_submission":
        view = body.get("view") or {}
        action = SUBMISSIONS.get(view.get("callback_id", ""))
        if action:
            meta = json.loads(view.get("private_metadata") or "{}")
            return action, int(meta["flag_id"])
    return None


def role_check(bot: SlackBot, decisions: Decisions) -> Callable[..., BoltResponse | None]:
    """Global middleware: only those the policy names may act on a flag."""

    def middleware(body: dict[str, Any], context: BoltContext, next: Callable[[], None],
                   ack: Ack, client: WebClient) -> BoltResponse | None:
        found = _flag_action(body)
        if found is None:
            next()
            return None
        action, flag_id = found
        user = str((body.get("user") or {}).get("id", ""))
        with bot.db.session() as session:
            flag = session.get(m.Flag, flag_id)
            try:
                if flag is None:
                    raise Refused(f"There is no flag #{flag_id}.")
                staff = authorise(bot.registers, flag, action, user)
            except Refused as exc:
                why = str(exc)
            else:
                context["staff"], context["flag_id"] = staff, flag_id
                next()
                return None
        decisions.refused(flag_id, action, user, why)
        log.info("slack: refused %s on flag #%s by %s", action, flag_id, user)
        channel = (body.get("channel") or {}).get("id")
        try:
            if channel:
                client.chat_postEphemeral(channel=channel, user=user, text=f":no_entry: {why}")
            else:
                dm = client.conversations_open(users=user)["channel"]["id"]
                client.chat_postMessage(channel=dm, text=f":no_entry: {why}")
        except Exception:  # the refusal is audited whether or not Slack shows it
            log.warning("slack: could not tell %s about a refusal", user)
        ack()
        return BoltResponse(status=200, body="")

    return middleware


def _ack(ack: Ack) -> None:
    ack()


def _modal(callback_id: str, title: str, flag_id: int, blocks: list[dict[str, Any]],
           submit: str) -> dict[str, Any]:
    return {"type": "modal", "callback_id": callback_id,
            "private_metadata": json.dumps({"flag_id": flag_id}),
            "title": {"type": "plain_text", "text": title[:24]},
            "submit": {"type": "plain_text", "text": submit},
            "close": {"type": "plain_text", "text": "Cancel"}, "blocks": blocks}


def _text_input(block_id: str, label: str, optional: bool = False, multiline: bool = True
                ) -> dict[str, Any]:
    return {"type": "input", "block_id": block_id, "optional": optional,
            "label": {"type": "plain_text", "text": label},
            "element": {"type": "plain_text_input", "action_id": "value",
                        "multiline": multiline}}


def _option(value: str, text: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": value}


def _state(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return dict(((view.get("state") or {}).get("values") or {}).get(block_id, {}).get("value")
                or {})


def open_flags_for(bot: SlackBot, staff_id: str, limit: int = 30) -> list[m.Flag]:
    """The flags waiting for this person: their accounts' removals, and safeguarding flags if
    they are the DSL or a deputy."""
    regs = bot.registers
    accounts = [a.account_id for a in regs.accounts.values() if staff_id in a.managers]
    is_dsl = staff_id in {s.staff_id for s in regs.safeguarding_contacts()}
    live = [FlagStatus.open.value, FlagStatus.acknowledged.value, FlagStatus.escalated.value]
    with bot.db.session() as session:
        q = select(m.Flag).where(m.Flag.status.in_(live), m.Flag.route != Route.record_only.value)
        rows = list(session.execute(q.order_by(m.Flag.severity.desc(), m.Flag.id)).scalars())
    out = []
    for f in rows:
        mine = (f.route in (Route.account_managers.value, Route.digest.value)
                and f.account in accounts and f.status != FlagStatus.escalated.value)
        dsl = is_dsl and (f.route == Route.dsl.value or f.status == FlagStatus.escalated.value)
        if mine or dsl:
            out.append(f)
    return out[:limit]


def build_app(bot: SlackBot, signing_secret: str, *, decisions: Decisions | None = None,
              process_before_response: bool = False) -> App:
    """The bolt app. ``process_before_response`` is for FaaS hosts; the service leaves it off so
    lazy listeners run after the acknowledgement."""
    decisions = decisions or Decisions(bot)
    app = App(client=bot.client, signing_secret=signing_secret, token_verification_enabled=False,
              process_before_response=process_before_response, name="governance-bot")
    app.middleware(role_check(bot, decisions))

    def tell(client: WebClient, body: dict[str, Any], text: str) -> None:
        user = str(body["user"]["id"])
        channel = (body.get("channel") or {}).get("id")
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            dm = client.conversations_open(users=user)["channel"]["id"]
            client.chat_postMessage(channel=dm, text=text)

    def guarded(work: Callable[..., None]) -> Callable[..., None]:
        def run(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
            try:
                work(body, context, client)
            except Refused as exc:
                decisions.refused(context.get("flag_id"), str(work.__name__),
                                  str(body["user"]["id"]), str(exc))
                tell(client, body, f":no_entry: {exc}")
        run.__name__ = work.__name__
        return run

    # --- managers -----------------------------------------------------------------------------
    @guarded
    def open_remove(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        with bot.db.session() as session:
            flag, findings, item, _ = bot.load(session, flag_id)
            people = [(item.author.role, item.author.register_id),
                      *((p.role, p.register_id) for p in item.recipients)]
            learner_ids = learners_named(findings, people)
        connector = bot.connector_for(flag.account)
        actions = sorted(a.value for a in moderation_actions(connector)) if connector else []
        options = [_option(a, {"hide": "Hide it", "delete": "Delete it"}.get(
            a, a.replace("_", " ").capitalize())) for a in actions]
        options.append(_option("manual", "I will remove it by hand on the platform"))
        cands = inform_candidates(bot.registers, learner_ids)
        blocks: list[dict[str, Any]] = [
            {"type": "input", "block_id": "moderation",
             "label": {"type": "plain_text", "text": "How to remove it"},
             "element": {"type": "static_select", "action_id": "value", "options": options,
                         "initial_option": options[0]}},
            _text_input("reason", "Explanation (the policy requires one)"),
        ]
        if cands:
            blocks.append({"type": "input", "block_id": "informed", "optional": True,
                           "label": {"type": "plain_text", "text": "People to inform"},
                           "element": {"type": "checkboxes", "action_id": "value", "options": [
                               {"text": {"type": "plain_text", "text": c.label[:75]},
                                "description": {"type": "plain_text", "text": c.contact[:75]},
                                "value": f"i{i}"} for i, c in enumerate(cands)]}})
            blocks.append({"type": "input", "block_id": "method",
                           "label": {"type": "plain_text", "text": "How they are informed"},
                           "element": {"type": "static_select", "action_id": "value",
                                       "options": [_option(k, v)
                                                   for k, v in INFORM_METHODS.items()]}})
        else:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
                "No registered learner is named in this item, so nobody is listed to inform.")}]})
        client.views_open(trigger_id=body["trigger_id"],
                          view=_modal("gb_remove_submit", f"Remove flag #{flag_id}", flag_id,
                                      blocks, "Remove"))

    @guarded
    def do_remove(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        view = body["view"]
        moderation = str(_state(view, "moderation").get("selected_option", {}).get("value",
                                                                                  "manual"))
        reason = str(_state(view, "reason").get("value") or "")
        chosen = [o["value"] for o in _state(view, "informed").get("selected_options") or []]
        method = str((_state(view, "method").get("selected_option") or {}).get("value",
                                                                               "not_yet"))
        with bot.db.session() as session:
            _flag, findings, item, _ = bot.load(session, flag_id)
            people = [(item.author.role, item.author.register_id),
                      *((p.role, p.register_id) for p in item.recipients)]
        cands = inform_candidates(bot.registers, learners_named(findings, people))
        informed: list[tuple[InformCandidate, str]] = [
            (cands[int(v[1:])], method) for v in chosen if v[1:].isdigit() and
            int(v[1:]) < len(cands)]
        decisions.remove(flag_id, context["staff"], body["user"]["id"], moderation=moderation,
                         reason=reason, informed=informed)

    def ack_remove_submit(ack: Ack, body: dict[str, Any]) -> None:
        reason = str(_state(body["view"], "reason").get("value") or "").strip()
        if not reason:
            ack(response_action="errors",
                errors={"reason": "The policy requires an explanation for every removal."})
            return
        ack()

    app.action("gb_remove")(ack=_ack, lazy=[open_remove])
    app.view("gb_remove_submit")(ack=ack_remove_submit, lazy=[do_remove])

    @guarded
    def open_keep(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        client.views_open(trigger_id=body["trigger_id"], view=_modal(
            "gb_keep_submit", f"Keep flag #{flag_id}", flag_id,
            [_text_input("reason", "Why is it kept?")], "Keep"))

    @guarded
    def do_keep(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        reason = str(_state(body["view"], "reason").get("value") or "")
        decisions.keep(int(context["flag_id"]), context["staff"], body["user"]["id"], reason)

    app.action("gb_keep")(ack=_ack, lazy=[open_keep])
    app.view("gb_keep_submit")(ack=_ack, lazy=[do_keep])

    @guarded
    def do_escalate(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        decisions.escalate(flag_id, context["staff"], body["user"]["id"])
        with bot.db.session() as session:  # tell the DSL now; the outbox row is the safety net
            try:
                bot.notify_route(session, flag_id, Route.dsl)
                session.execute(
                    update(m.OutboxMessage)
                    .where(m.OutboxMessage.flag_id == flag_id,
                           m.OutboxMessage.kind == "flag_escalated",
                           m.OutboxMessage.delivered_at.is_(None))
                    .values(delivered_at=bot.clock()))
            except Exception:
                log.warning("slack: escalation of flag #%d will be delivered by the outbox",
                            flag_id)

    app.action("gb_escalate")(ack=_ack, lazy=[do_escalate])

    # --- DSL and deputies ---------------------------------------------------------------------
    @guarded
    def do_ack(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        decisions.acknowledge(int(context["flag_id"]), context["staff"], body["user"]["id"])

    app.action("gb_ack")(ack=_ack, lazy=[do_ack])

    @guarded
    def open_outcome(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        client.views_open(trigger_id=body["trigger_id"], view=_modal(
            "gb_outcome_submit", f"Outcome of #{flag_id}", flag_id, [
                {"type": "input", "block_id": "outcome",
                 "label": {"type": "plain_text", "text": "Outcome"},
                 "element": {"type": "static_select", "action_id": "value",
                             "options": [_option(k, v) for k, v in OUTCOME_NAMES.items()]}},
                _text_input("note", "Note", optional=True)], "Record"))

    @guarded
    def do_outcome(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        view = body["view"]
        outcome = str((_state(view, "outcome").get("selected_option") or {}).get("value", ""))
        note = str(_state(view, "note").get("value") or "")
        decisions.record_outcome(int(context["flag_id"]), context["staff"], body["user"]["id"],
                                 outcome, note)

    app.action("gb_outcome")(ack=_ack, lazy=[open_outcome])
    app.view("gb_outcome_submit")(ack=_ack, lazy=[do_outcome])

    @guarded
    def open_assign(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        people = bot.registers.safeguarding_contacts()
        client.views_open(trigger_id=body["trigger_id"], view=_modal(
            "gb_assign_submit", f"Assign flag #{flag_id}", flag_id, [
                {"type": "input", "block_id": "assignee",
                 "label": {"type": "plain_text", "text": "Assign to"},
                 "element": {"type": "static_select", "action_id": "value",
                             "options": [_option(s.staff_id, s.name) for s in people]}}],
            "Assign"))

    @guarded
    def do_assign(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        assignee = str((_state(body["view"], "assignee").get("selected_option") or {})
                       .get("value", ""))
        decisions.assign(int(context["flag_id"]), context["staff"], body["user"]["id"], assignee)

    app.action("gb_assign")(ack=_ack, lazy=[open_assign])
    app.view("gb_assign_submit")(ack=_ack, lazy=[do_assign])

    # --- App Home -----------------------------------------------------------------------------
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        user = str(event["user"])
        staff = bot.staff_by_slack_id(user)
        blocks: list[dict[str, Any]] = [{"type": "header", "text": {
            "type": "plain_text", "text": "Your open flags"}}]
        if staff is None:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
                "You are not in the staff register, so no flags are shown.")}})
        else:
            flags = open_flags_for(bot, staff.staff_id)
            if not flags:
                blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                           "text": "Nothing waiting for you."}})
            for f in flags:
                blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
                    f"*#{f.id}* {CATEGORY_NAMES.get(f.category, f.category)} · severity "
                    f"{f.severity} · {f.account} · {f.status} · since "
                    f"{f.created_at.astimezone(bot.tz):%d %b %H:%M}")}})
        client.views_publish(user_id=user, view={"type": "home", "blocks": blocks[:100]})

    def ack_event(ack: Ack) -> None:
        ack()

    app.event("app_home_opened")(ack=ack_event, lazy=[publish_home])

    # --- /governance --------------------------------------------------------------------------
    def governance(ack: Ack, command: dict[str, Any]) -> None:
        user = str(command.get("user_id", ""))
        staff = bot.staff_by_slack_id(user)
        words = (command.get("text") or "").split()
        sub = words[0].lower() if words else "status"
        if staff is None:
            decisions.refused(None, f"/governance {sub}", user, "not in the staff register")
            ack(text=":no_entry: You are not in the staff register as an active member of "
                "staff.", response_type="ephemeral")
            return
        if sub == "status":
            with bot.db.session() as session:
                counts = dict(session.execute(select(m.Flag.status, func.count(m.Flag.id))
                                              .group_by(m.Flag.status)).all())
                pending = session.execute(select(func.count(m.OutboxMessage.id)).where(
                    m.OutboxMessage.delivered_at.is_(None))).scalar_one()
                chain = auditlog.verify(session)
            lines = [f"Flags: {counts.get('open', 0)} open, {counts.get('acknowledged', 0)} "
                     f"acknowledged, {counts.get('escalated', 0)} escalated, "
                     f"{counts.get('actioned', 0)} removed, {counts.get('dismissed', 0)} kept, "
                     f"{counts.get('closed', 0)} closed.",
                     f"Notifications waiting: {pending}.",
                     "Audit log: intact." if chain.ok else f"Audit log: BROKEN ({chain.problem})"]
            ack(text="\n".join(lines), response_type="ephemeral")
        elif sub == "flags":
            flags = open_flags_for(bot, staff.staff_id)
            lines = [f"#{f.id} {CATEGORY_NAMES.get(f.category, f.category)} · severity "
                     f"{f.severity} · {f.account} · {f.status}" for f in flags]
            ack(text="\n".join(lines) or "No open flags for you.", response_type="ephemeral")
        elif sub == "audit":
            is_dsl = staff.staff_id in {s.staff_id for s in bot.registers.safeguarding_contacts()}
            is_manager = any(staff.staff_id in a.managers for a in bot.registers.accounts.values())
            if not (is_dsl or is_manager):
                decisions.refused(None, "/governance audit", user, "not a manager or the DSL")
                ack(text=":no_entry: Only designated managers and the DSL can read the audit "
                    "log.", response_type="ephemeral")
                return
            with bot.db.session() as session:
                events = list(session.execute(select(m.AuditEvent)
                                              .order_by(m.AuditEvent.seq.desc()).limit(15))
                              .scalars())
            lines = [f"{e.seq} · {e.created_at.astimezone(bot.tz):%d %b %H:%M} · {e.actor} · "
                     f"{e.action} · {e.subject or ''}" for e in events]
            ack(text="Latest audit events:\n" + "\n".join(lines), response_type="ephemeral")
        else:
            ack(text="Usage: /governance status | flags | audit", response_type="ephemeral")

    app.command("/governance")(governance)
    return app
