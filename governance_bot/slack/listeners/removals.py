"""The account managers' decisions: Remove (a form), Keep (a form), Escalate to DSL, Pre-approve
a photo. Policy: designated managers decide removals on their own accounts, explain each one and
inform those affected; a flag escalated to the DSL is the DSL team's to close."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from governance_bot.decisions import INFORM_METHODS
from governance_bot.slack.deps import Deps, form_version, user_id
from governance_bot.slack.listeners.forms import (
    checkboxes,
    modal,
    note,
    option,
    select,
    selected,
    selected_all,
    text_input,
    typed,
)
from governance_bot.storage import models as m

__all__ = ["register"]

_HOW = {"hide": "Hide it", "delete": "Delete it", "manual": "I will remove it by hand on the "
        "platform"}


def _ack(ack: Ack) -> None:
    ack()


def register(app: App, deps: Deps) -> None:

    @deps.guarded
    def open_remove(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """The Remove form shows no more than the managers' message: how, why, and the people
        to inform named by role only (their contacts are looked up when it is carried out)."""
        flag_id = int(context["flag_id"])
        facts = deps.decisions.facts(flag_id)
        version = _version(deps, flag_id)
        ways = deps.decisions.moderation_options(facts.account)
        roles = deps.need_to_know().inform_roles(facts)
        blocks: list[Any] = [
            select("moderation", "How to remove it",
                   [option(w, _HOW.get(w, w.replace("_", " ").capitalize())) for w in ways], 0),
            text_input("reason", "Explanation (the policy requires one)"),
        ]
        if roles:
            blocks.append(checkboxes("informed", "People to inform",
                                     [option(r.key, r.label) for r in roles]))
            blocks.append(select("method", "How they are informed",
                                 [option(k, v) for k, v in INFORM_METHODS.items()]))
            blocks.append(note("Their contacts come from the register when the removal is "
                               "carried out; they are recorded, encrypted, with the decision."))
        else:
            blocks.append(note("No registered learner is named in this item, so nobody is "
                               "listed to inform."))
        client.views_open(trigger_id=body["trigger_id"],
                          view=modal("gb_remove_submit", f"Remove flag #{flag_id}", flag_id,
                                     version, blocks, "Remove"))

    @deps.guarded
    def do_remove(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        view = body["view"]
        deps.decisions.remove(int(context["flag_id"]), context["staff"],
                         reason=typed(view, "reason"),
                         moderation=selected(view, "moderation", "manual"),
                         inform=selected_all(view, "informed"),
                         method=selected(view, "method", "not_yet") or "not_yet",
                         expected_version=form_version(body), via="slack",
                         slack_user_id=user_id(body))

    def ack_remove_submit(ack: Ack, body: dict[str, Any]) -> None:
        if not typed(body.get("view") or {}, "reason").strip():
            ack(response_action="errors",
                errors={"reason": "The policy requires an explanation for every removal."})
            return
        ack()

    app.action("gb_remove")(ack=_ack, lazy=[open_remove])
    app.view("gb_remove_submit")(ack=ack_remove_submit, lazy=[do_remove])

    @deps.guarded
    def open_keep(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        client.views_open(trigger_id=body["trigger_id"], view=modal(
            "gb_keep_submit", f"Keep flag #{flag_id}", flag_id, _version(deps, flag_id),
            [text_input("reason", "Why is it kept?")], "Keep"))

    @deps.guarded
    def do_keep(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        deps.decisions.keep(int(context["flag_id"]), context["staff"],
                       typed(body["view"], "reason"), expected_version=form_version(body),
                       slack_user_id=user_id(body))

    app.action("gb_keep")(ack=_ack, lazy=[open_keep])
    app.view("gb_keep_submit")(ack=_ack, lazy=[do_keep])

    @deps.guarded
    def do_escalate(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        deps.decisions.escalate(flag_id, context["staff"], slack_user_id=user_id(body))
        deps.bot.show_escalation(flag_id)

    app.action("gb_escalate")(ack=_ack, lazy=[do_escalate])

    @deps.guarded
    def do_preapprove(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        value = str((body.get("actions") or [{}])[0].get("value") or "")
        sha256 = value.split(":", 1)[1] if ":" in value else ""
        deps.decisions.preapprove_photo(int(context["flag_id"]), context["staff"], sha256,
                                   slack_user_id=user_id(body))
        deps.tell(client, body, ":white_check_mark: The photo is pre-approved: it will not be "
                  "flagged again for consent.")

    app.action("gb_photo")(ack=_ack, lazy=[do_preapprove])


def _version(deps: Deps, flag_id: int) -> int:
    with deps.bot.db.session() as session:
        flag = session.get(m.Flag, flag_id)
        return int(flag.version) if flag is not None else 0
