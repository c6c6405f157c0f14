"""The weekly dual-access audit in Slack: questions by DM, one reminder, a summary with
*Mark resolved*, and the buttons and modals behind them.

``SlackAccessAuditNotifier`` is the audit's ``Notifier`` when Slack is configured:

* **ask**: a DM to each current designated manager per account (platform, handle, deadline) with
  *I can log in* / *I can't log in*; either opens a modal asking whether two-factor
  authentication is on and when the password was last changed. **No password is ever asked
  for**: there is no text field in it, and the messages say so.
* **chase**: one reminder, as a reply in the question's DM thread (broadcast to the DM).
* **summary**: to the account managers and the DSL/deputies (one group DM, or the configured
  private channels): every finding with its remedy and a *Mark resolved* button that asks for a
  note. The message is updated in place (``chat.update``) to show who resolved what and when.
  Where each summary message went is recorded in the audit log (``access_audit.summary_sent``),
  so any replica can update it later.

``register_access_audit`` adds the listeners to the bolt app: each acknowledges at once and works
in a lazy listener; the ``access_audit_role_check`` middleware lets only the manager who was
asked answer, and only the account's managers or the DSL/deputies resolve. A refusal is an
ephemeral message and an audit event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import select

from governance_bot.access_audit.cycle import AccessAudit
from governance_bot.outbox import DeliveryError
from governance_bot.registers import Account, StaffMember
from governance_bot.slack.bot import SlackBot
from governance_bot.slack.deps import refuse, tell
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.audit_models import AccessAttestation, AccessFinding

__all__ = ["ATTEST_ACTIONS", "RESOLVE_ACTION", "SlackAccessAuditNotifier",
           "access_audit_role_check", "register_access_audit"]

log = logging.getLogger(__name__)

ATTEST_ACTIONS = {"gb_access_can": True, "gb_access_cannot": False}
RESOLVE_ACTION = "gb_access_resolve"
ATTEST_SUBMIT = "gb_access_attest_submit"
RESOLVE_SUBMIT = "gb_access_resolve_submit"
METADATA_EVENT = "governance_access_audit"
SUMMARY_SENT = "access_audit.summary_sent"
NO_PASSWORDS = ("We never ask for passwords: there is no password field here, and nobody from "
                "the school will ask you for one. Never send a password in Slack.")
MAX_GROUP_DM = 8  # Slack's limit on the people in one group DM (conversations.open)
FINDINGS_PER_MESSAGE = 45  # Block Kit allows 50 blocks per message
PLATFORM_NAMES = {"facebook": "Facebook", "instagram": "Instagram", "x": "X",
                  "youtube": "YouTube", "tiktok": "TikTok", "mastodon": "Mastodon",
                  "bluesky": "Bluesky", "teams": "Microsoft Teams", "email": "Email",
                  "whatsapp": "WhatsApp", "zoom": "Zoom", "linkedin": "LinkedIn",
                  "website": "Website", "slack": "Slack", "snapchat": "Snapchat"}
SEVERITY_MARKS = {5: ":red_circle:", 4: ":red_circle:", 3: ":large_orange_circle:",
                  2: ":large_yellow_circle:", 1: ":white_circle:"}


def account_label(account: Account | None, account_id: str) -> str:
    if account is None:
        return account_id
    platform = PLATFORM_NAMES.get(account.platform.lower(), account.platform.capitalize())
    return f"{platform} {account.handle}"


def _text(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "text": text}


def _section(text: str, block_id: str | None = None, accessory: dict[str, Any] | None = None
             ) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": _text("mrkdwn", text[:3000])}
    if block_id:
        block["block_id"] = block_id
    if accessory:
        block["accessory"] = accessory
    return block


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_text("mrkdwn", text)]}


def _button(action_id: str, text: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id,
                              "text": _text("plain_text", text), "value": value}
    if style:
        button["style"] = style
    return button


def _value(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return dict(((view.get("state") or {}).get("values") or {}).get(block_id, {}).get("value")
                or {})


def _meta(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class SlackAccessAuditNotifier:
    """The access audit's questions, reminder and summary, in Slack."""

    def __init__(self, bot: SlackBot):
        self.bot = bot

    # --- formatting ---------------------------------------------------------------------------
    def when(self, at: datetime) -> str:
        return at.astimezone(self.bot.tz).strftime("%A %d %B, %H:%M")

    def short(self, at: datetime) -> str:
        return at.astimezone(self.bot.tz).strftime("%d %b %H:%M")

    def ask_blocks(self, attestation_id: int, account: Account, deadline: datetime,
                   reminder: bool = False) -> tuple[str, list[dict[str, Any]]]:
        label = account_label(account, account.account_id)
        text = (f"{'Reminder: ' if reminder else ''}weekly access check for {label}: please "
                f"answer by {self.when(deadline)}")
        blocks = [
            {"type": "header", "text": _text("plain_text", "Weekly access check"
                                             + (" (reminder)" if reminder else ""))},
            _section(f"You are a designated manager of *{label}* (`{account.account_id}`). "
                     "Please log in to it yourself today, then tell us how it went, by "
                     f"*{self.when(deadline)}*."),
            _context(f":lock: {NO_PASSWORDS}"),
            {"type": "actions", "block_id": f"gb_access_{attestation_id}", "elements": [
                _button("gb_access_can", "I can log in", str(attestation_id), "primary"),
                _button("gb_access_cannot", "I can't log in", str(attestation_id), "danger")]},
        ]
        return text, blocks

    def answered_blocks(self, att: AccessAttestation) -> tuple[str, list[dict[str, Any]]]:
        account = self.bot.registers.accounts.get(att.account_id)
        label = account_label(account, att.account_id)
        parts = ["you can log in" if att.can_log_in else "you cannot log in",
                 "two-factor authentication is on" if att.two_factor
                 else "two-factor authentication is off"]
        if att.password_changed_on:
            parts.append(f"password last changed {att.password_changed_on:%d %B %Y}")
        when = self.short(att.answered_at) if att.answered_at else ""
        follow = ("" if att.can_log_in and att.two_factor else
                  " The account managers and the DSL will see this in the weekly summary.")
        text = f"Weekly access check for {label}: answered, thank you"
        return text, [
            {"type": "header", "text": _text("plain_text", "Weekly access check")},
            _section(f":white_check_mark: *{label}*: answered {when}: {', '.join(parts)}. "
                     f"Thank you.{follow}"),
            _context(f":lock: {NO_PASSWORDS}"),
        ]

    def finding_block(self, f: AccessFinding) -> dict[str, Any]:
        label = account_label(self.bot.registers.accounts.get(f.account_id), f.account_id)
        mark = SEVERITY_MARKS.get(f.severity, ":white_circle:")
        text = (f"{mark} *{label}* · severity {f.severity} · {f.message}\n"
                f"*Remedy:* {f.remedy}")
        if f.status == "resolved":
            when = self.short(f.resolved_at) if f.resolved_at else ""
            note = (f.resolution_note or "")[:1000]
            text += (f"\n:white_check_mark: *Resolved by {self.bot.staff_name(f.resolved_by)}, "
                     f"{when}*: {note}")
            return _section(text, f"gb_access_finding_{f.id}")
        return _section(text, f"gb_access_finding_{f.id}",
                        _button(RESOLVE_ACTION, "Mark resolved", str(f.id)))

    def summary_blocks(self, run_id: int, findings: list[AccessFinding], part: int = 0,
                       parts: int = 1) -> tuple[str, list[dict[str, Any]]]:
        open_count = sum(1 for f in findings if f.status != "resolved")
        suffix = f" (part {part + 1} of {parts})" if parts > 1 else ""
        if not findings:
            text = f"Weekly access check #{run_id}: no findings"
            return text, [
                {"type": "header", "text": _text("plain_text", "Weekly access check: all clear")},
                _section("Every account has at least two current designated managers who "
                         "confirmed access, with two-factor authentication on and a fresh "
                         "password, and the platforms report nothing out of place.")]
        text = (f"Weekly access check #{run_id}: {len(findings)} finding(s), "
                f"{open_count} open{suffix}")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": _text("plain_text",
                                             f"Weekly access check: {len(findings)} "
                                             f"finding(s){suffix}"[:150])},
            _section(f"Audit #{run_id}. {open_count} still open. Each finding says what to do; "
                     "when it is done, press *Mark resolved* and say what was done."),
        ]
        blocks.extend(self.finding_block(f) for f in findings)
        return text, blocks

    # --- the Notifier protocol ----------------------------------------------------------------
    def ask(self, attestation_id: int, account: Account, manager: StaffMember,
            deadline: datetime) -> dict[str, Any] | None:
        try:
            channel = self.bot.open_conversation([manager])
            text, blocks = self.ask_blocks(attestation_id, account, deadline)
            resp = self.bot.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False,
                metadata={"event_type": METADATA_EVENT,
                          "event_payload": {"attestation_id": attestation_id}})
        except (DeliveryError, SlackApiError, SlackClientError, OSError) as exc:
            # the others are still asked; at the deadline a missing answer becomes a finding
            log.warning("access check %d: could not ask %s in Slack: %s", attestation_id,
                        manager.staff_id, _why(exc))
            return None
        return {"channel": channel, "ts": str(resp["ts"])}

    def chase(self, attestation_id: int, account: Account, manager: StaffMember,
              deadline: datetime) -> None:
        with self.bot.db.session() as session:
            att = session.get(AccessAttestation, attestation_id)
            ref = dict(att.message_ref or {}) if att is not None else {}
        try:
            if ref.get("channel") and ref.get("ts"):
                self.bot.client.chat_postMessage(
                    channel=ref["channel"], thread_ts=ref["ts"], reply_broadcast=True,
                    text=(f"Reminder: please answer the access check for "
                          f"{account_label(account, account.account_id)} by "
                          f"{self.when(deadline)} (the buttons are in the message above). "
                          "We never ask for passwords."))
                return
            # the question never arrived: ask again, in full
            channel = self.bot.open_conversation([manager])
            text, blocks = self.ask_blocks(attestation_id, account, deadline, reminder=True)
            resp = self.bot.client.chat_postMessage(channel=channel, text=text, blocks=blocks,
                                                    unfurl_links=False)
        except (DeliveryError, SlackApiError, SlackClientError, OSError) as exc:
            log.warning("access check %d: could not remind %s in Slack: %s", attestation_id,
                        manager.staff_id, _why(exc))
            return
        with self.bot.db.session() as session:
            att = session.get(AccessAttestation, attestation_id)
            if att is not None:
                att.message_ref = {"channel": channel, "ts": str(resp["ts"])}

    def summary(self, run_id: int, findings: list[AccessFinding],
                recipients: list[StaffMember]) -> None:
        ids = sorted(f.id for f in findings)
        with self.bot.db.session() as session:
            rows = self._findings(session, ids)
        chunks = [rows[i:i + FINDINGS_PER_MESSAGE]
                  for i in range(0, len(rows), FINDINGS_PER_MESSAGE)] or [[]]
        for channel in self.destinations(recipients):
            for part, chunk in enumerate(chunks):
                text, blocks = self.summary_blocks(run_id, chunk, part, len(chunks))
                try:
                    resp = self.bot.client.chat_postMessage(
                        channel=channel, text=text, blocks=blocks, unfurl_links=False,
                        metadata={"event_type": METADATA_EVENT,
                                  "event_payload": {"run_id": run_id, "part": part}})
                except (SlackApiError, SlackClientError, OSError) as exc:
                    log.warning("access audit %d: could not post the summary to %s: %s",
                                run_id, channel, _why(exc))
                    continue
                with self.bot.db.session() as session:
                    auditlog.append(session, "governance-bot", SUMMARY_SENT, f"run:{run_id}",
                                    {"channel": channel, "ts": str(resp["ts"]), "part": part,
                                     "parts": len(chunks),
                                     "findings": [f.id for f in chunk]}, at=self.bot.clock())

    # --- destinations and updates -------------------------------------------------------------
    def destinations(self, recipients: Iterable[StaffMember]) -> list[str]:
        """The configured private channels (delivery = channel), else one group DM with every
        recipient (or a DM each where there are more than Slack allows in one group)."""
        settings = self.bot.settings
        if settings.delivery == "channel":
            chosen = [settings.channels.get("account_managers"), settings.channels.get("dsl")]
            channels = list(dict.fromkeys(c for c in chosen if c))
            if channels:
                return channels
            log.warning("access audit: [slack] channels has no account_managers or dsl channel;"
                        " sending the summary by direct message")
        people = [s for s in recipients if s.slack_user_id]
        missing = [s.staff_id for s in recipients if not s.slack_user_id]
        if missing:
            log.warning("access audit: no slack_user_id for %s: they will not see the summary",
                        ", ".join(missing))
        groups = [people] if len(people) <= MAX_GROUP_DM else [[s] for s in people]
        out = []
        for group in groups:
            try:
                out.append(self.bot.open_conversation(group))
            except (DeliveryError, SlackApiError, SlackClientError, OSError) as exc:
                log.warning("access audit: could not open a conversation for the summary: %s",
                            _why(exc))
        return out

    @staticmethod
    def _findings(session: Any, ids: list[int]) -> list[AccessFinding]:
        if not ids:
            return []
        rows = list(session.execute(select(AccessFinding).where(AccessFinding.id.in_(ids)))
                    .scalars())
        rows.sort(key=lambda f: (-f.severity, f.account_id, f.id))
        for row in rows:
            session.expunge(row)
        return rows

    def refresh_summary(self, run_id: int) -> int:
        """Update every summary message of the run in place; return how many."""
        with self.bot.db.session() as session:
            sent = list(session.execute(select(m.AuditEvent).where(
                m.AuditEvent.action == SUMMARY_SENT,
                m.AuditEvent.subject == f"run:{run_id}").order_by(m.AuditEvent.seq)).scalars())
            refs = [dict(e.data) for e in sent]
            findings = {ref["ts"]: self._findings(session, list(ref.get("findings") or []))
                        for ref in refs}
        count = 0
        for ref in refs:
            text, blocks = self.summary_blocks(run_id, findings[ref["ts"]],
                                               int(ref.get("part", 0)), int(ref.get("parts", 1)))
            try:
                self.bot.client.chat_update(channel=ref["channel"], ts=ref["ts"], text=text,
                                            blocks=blocks)
                count += 1
            except (SlackApiError, SlackClientError, OSError) as exc:
                log.warning("access audit %d: could not update the summary in %s: %s", run_id,
                            ref["channel"], _why(exc))
        return count

    def show_answered(self, attestation_id: int) -> None:
        """Replace the question's buttons with the answer (so nobody answers twice)."""
        with self.bot.db.session() as session:
            att = session.get(AccessAttestation, attestation_id)
            if att is None or not att.message_ref or att.answered_at is None:
                return
            ref = dict(att.message_ref)
            text, blocks = self.answered_blocks(att)
        try:
            self.bot.client.chat_update(channel=ref["channel"], ts=ref["ts"], text=text,
                                        blocks=blocks)
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("access check %d: could not update the question: %s", attestation_id,
                        _why(exc))


def _why(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error"))
    return str(exc) if isinstance(exc, DeliveryError) else type(exc).__name__


# --- the bolt side ------------------------------------------------------------------------------
class Refused(Exception):
    """A click by someone the policy does not allow; the message says why."""


def _target(body: dict[str, Any]) -> tuple[str, int] | None:
    """(kind, id) of an access-audit click or modal submission: ``attest`` + attestation id or
    ``resolve`` + finding id; None for anything else."""
    try:
        if body.get("type") == "block_actions":
            for a in body.get("actions") or []:
                if a.get("action_id") in ATTEST_ACTIONS:
                    return "attest", int(a["value"])
                if a.get("action_id") == RESOLVE_ACTION:
                    return "resolve", int(a["value"])
        if body.get("type") == "view_submission":
            view = body.get("view") or {}
            meta = _meta(view)
            if view.get("callback_id") == ATTEST_SUBMIT:
                return "attest", int(meta["attestation_id"])
            if view.get("callback_id") == RESOLVE_SUBMIT:
                return "resolve", int(meta["finding_id"])
    except (KeyError, TypeError, ValueError):
        return "malformed", 0
    return None


def _authorise(bot: SlackBot, audit: AccessAudit, kind: str, target: int, user: str
               ) -> StaffMember:
    staff = bot.staff_by_slack_id(user)
    if kind == "malformed":
        raise Refused("That request was not understood.")
    with bot.db.session() as session:
        if kind == "attest":
            att = session.get(AccessAttestation, target)
            if att is None:
                raise Refused(f"There is no access check {target}.")
            if staff is None or staff.staff_id != att.staff_id:
                raise Refused("Only the manager who was asked can answer this access check.")
            return staff
        finding = session.get(AccessFinding, target)
        if finding is None:
            raise Refused(f"There is no audit finding {target}.")
        if staff is None or not audit.may_resolve(finding.account_id, staff.staff_id):
            raise Refused("Only this account's designated managers or the DSL can mark this "
                          "finding resolved.")
        return staff


def access_audit_role_check(bot: SlackBot, audit: AccessAudit
                            ) -> Callable[..., BoltResponse | None]:
    """Middleware: only the manager asked may answer; only the account's managers or the DSL
    and deputies may resolve. A refusal is audited and explained in an ephemeral message."""

    def middleware(body: dict[str, Any], context: BoltContext, next: Callable[[], None],
                   ack: Ack, client: WebClient) -> BoltResponse | None:
        found = _target(body)
        if found is None:
            next()
            return None
        kind, target = found
        user = str((body.get("user") or {}).get("id", ""))
        try:
            staff = _authorise(bot, audit, kind, target, user)
        except Refused as exc:
            why = str(exc)
        else:
            context["staff"], context["audit_target"] = staff, target
            next()
            return None
        who = bot.staff_by_slack_id(user)

        def audit_it() -> None:
            with bot.db.session() as session:
                action = ("access_audit.attest_refused" if kind == "attest"
                          else "access_audit.resolve_refused")
                subject = (f"attestation:{target}" if kind == "attest"
                           else f"access_finding:{target}")
                auditlog.append(session, who.staff_id if who else f"slack:{user}", action,
                                subject, {"slack_user": user, "why": why}, at=audit.clock())

        refuse(client, _with_channel(body), why, audit_it)
        log.info("slack: refused %s on %s by %s", kind, target, user)
        ack()
        return BoltResponse(status=200, body="")

    return middleware


def _with_channel(body: dict[str, Any]) -> dict[str, Any]:
    """A form about a question answers in the question's channel (from its metadata)."""
    channel = _meta(body.get("view") or {}).get("channel")
    if channel and not body.get("channel"):
        return {**body, "channel": {"id": channel}}
    return body


def _tell(client: WebClient, body: dict[str, Any], text: str) -> None:
    """Where the click happened, else a DM."""
    tell(client, _with_channel(body), text)


def _ack(ack: Ack) -> None:
    ack()


def register_access_audit(app: App, bot: SlackBot, audit: AccessAudit,
                          notifier: SlackAccessAuditNotifier | None = None) -> None:
    """Add the access audit's middleware, buttons and modals to the bolt ``app``."""
    notifier = notifier or SlackAccessAuditNotifier(bot)
    app.middleware(access_audit_role_check(bot, audit))

    def open_attest(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        att_id = int(context["audit_target"])
        action = next(a for a in body["actions"] if a.get("action_id") in ATTEST_ACTIONS)
        can = ATTEST_ACTIONS[action["action_id"]]
        with bot.db.session() as session:
            att = session.get(AccessAttestation, att_id)
            assert att is not None  # checked by the middleware
            account_id = att.account_id
        label = account_label(bot.registers.accounts.get(account_id), account_id)
        said = "can log in" if can else "cannot log in"
        date_input: dict[str, Any] = {
            "type": "input", "block_id": "password_changed", "optional": not can,
            "label": _text("plain_text", "When was the password last changed?"),
            "hint": _text("plain_text", "The date only. Leave it empty if you do not know."
                          if not can else "The date only."),
            "element": {"type": "datepicker", "action_id": "value",
                        "placeholder": _text("plain_text", "Pick a date")}}
        view = {
            "type": "modal", "callback_id": ATTEST_SUBMIT,
            "private_metadata": json.dumps({
                "attestation_id": att_id, "can_log_in": can,
                "channel": (body.get("channel") or {}).get("id"),
                "ts": (body.get("container") or {}).get("message_ts")}),
            "title": _text("plain_text", "Access check"),
            "submit": _text("plain_text", "Send"),
            "close": _text("plain_text", "Cancel"),
            "blocks": [
                _section(f"*{label}*: you {said} today."),
                _context(f":lock: {NO_PASSWORDS}"),
                {"type": "input", "block_id": "two_factor",
                 "label": _text("plain_text", "Is two-factor authentication on?"),
                 "element": {"type": "radio_buttons", "action_id": "value", "options": [
                     {"text": _text("plain_text", "Yes"), "value": "yes"},
                     {"text": _text("plain_text", "No"), "value": "no"}]}},
                date_input,
            ],
        }
        client.views_open(trigger_id=body["trigger_id"], view=view)

    def attest_errors(view: dict[str, Any]) -> dict[str, str]:
        picked = _value(view, "password_changed").get("selected_date")
        errors: dict[str, str] = {}
        if not (_value(view, "two_factor").get("selected_option") or {}).get("value"):
            errors["two_factor"] = "Please say whether two-factor authentication is on."
        if picked:
            try:
                if date.fromisoformat(picked) > audit.clock().astimezone(bot.tz).date():
                    errors["password_changed"] = "That date is in the future."
            except ValueError:
                errors["password_changed"] = "That is not a date."
        elif _meta(view).get("can_log_in"):
            errors["password_changed"] = ("Please pick the date (only the date, never the "
                                          "password).")
        return errors

    def ack_attest(ack: Ack, body: dict[str, Any]) -> None:
        errors = attest_errors(body["view"])
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()

    def do_attest(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        view = body["view"]
        meta = _meta(view)
        att_id = int(context["audit_target"])
        two_factor = (_value(view, "two_factor").get("selected_option") or {}).get("value")
        picked = _value(view, "password_changed").get("selected_date")
        staff: StaffMember = context["staff"]
        if attest_errors(view):  # the modal showed the errors; bolt runs lazy listeners anyway
            return
        try:
            audit.attest(att_id, staff.staff_id, bool(meta.get("can_log_in")),
                         two_factor == "yes", date.fromisoformat(picked) if picked else None)
        except PermissionError as exc:
            _tell(client, body, f":no_entry: {exc}")
            return
        notifier.show_answered(att_id)

    app.action("gb_access_can")(ack=_ack, lazy=[open_attest])
    app.action("gb_access_cannot")(ack=_ack, lazy=[open_attest])
    app.view(ATTEST_SUBMIT)(ack=ack_attest, lazy=[do_attest])

    def open_resolve(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        finding_id = int(context["audit_target"])
        with bot.db.session() as session:
            finding = session.get(AccessFinding, finding_id)
            assert finding is not None  # checked by the middleware
            label = account_label(bot.registers.accounts.get(finding.account_id),
                                  finding.account_id)
            summary = f"*{label}* · {finding.message}\n*Remedy:* {finding.remedy}"
        client.views_open(trigger_id=body["trigger_id"], view={
            "type": "modal", "callback_id": RESOLVE_SUBMIT,
            "private_metadata": json.dumps({"finding_id": finding_id,
                                            "channel": (body.get("channel") or {}).get("id")}),
            "title": _text("plain_text", "Mark resolved"),
            "submit": _text("plain_text", "Resolved"),
            "close": _text("plain_text", "Cancel"),
            "blocks": [
                _section(summary),
                {"type": "input", "block_id": "note",
                 "label": _text("plain_text", "What was done? (required)"),
                 "element": {"type": "plain_text_input", "action_id": "value",
                             "multiline": True, "max_length": 1000}},
                _context(f":lock: {NO_PASSWORDS}"),
            ]})

    def ack_resolve(ack: Ack, body: dict[str, Any]) -> None:
        note = str(_value(body["view"], "note").get("value") or "").strip()
        if not note:
            ack(response_action="errors",
                errors={"note": "Please say what was done: the policy requires a record."})
            return
        ack()

    def do_resolve(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        finding_id = int(context["audit_target"])
        note = str(_value(body["view"], "note").get("value") or "")
        staff: StaffMember = context["staff"]
        if not note.strip():  # the modal asked for one; bolt runs lazy listeners anyway
            return
        try:
            audit.resolve(finding_id, staff.staff_id, note)
        except PermissionError as exc:
            _tell(client, body, f":no_entry: {exc}")
            return
        except ValueError as exc:
            _tell(client, body, str(exc))
            return
        with bot.db.session() as session:
            finding = session.get(AccessFinding, finding_id)
            run_id = finding.run_id if finding is not None else None
        if run_id is not None:
            notifier.refresh_summary(run_id)

    app.action(RESOLVE_ACTION)(ack=_ack, lazy=[open_resolve])
    app.view(RESOLVE_SUBMIT)(ack=ack_resolve, lazy=[do_resolve])
