"""The DSL team's and the case manager's actions: Acknowledge, Record outcome (a form), Assign
to deputy (a form). Policy: disclosures are handled by the DSL and deputies, acknowledged
promptly, and their outcome recorded."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from governance_bot.decisions import OUTCOMES
from governance_bot.findings import Route
from governance_bot.slack.deps import Deps, form_version, user_id
from governance_bot.slack.listeners.forms import modal, option, select, selected, text_input, typed
from governance_bot.storage import models as m

__all__ = ["register"]


def _ack(ack: Ack) -> None:
    ack()


def register(app: App, deps: Deps) -> None:

    def version(flag_id: int) -> int:
        with deps.bot.db.session() as session:
            flag = session.get(m.Flag, flag_id)
            return int(flag.version) if flag is not None else 0

    @deps.guarded
    def do_ack(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        deps.decisions.acknowledge(int(context["flag_id"]), context["staff"],
                              slack_user_id=user_id(body))

    app.action("gb_ack")(ack=_ack, lazy=[do_ack])

    @deps.guarded
    def open_outcome(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        client.views_open(trigger_id=body["trigger_id"], view=modal(
            "gb_outcome_submit", f"Outcome of #{flag_id}", flag_id, version(flag_id), [
                select("outcome", "Outcome", [option(k, v) for k, v in OUTCOMES.items()]),
                text_input("note", "Note", optional=True)], "Record"))

    @deps.guarded
    def do_outcome(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        view = body["view"]
        deps.decisions.record_outcome(int(context["flag_id"]), context["staff"],
                                 selected(view, "outcome"), typed(view, "note"),
                                 expected_version=form_version(body),
                                 slack_user_id=user_id(body))

    app.action("gb_outcome")(ack=_ack, lazy=[open_outcome])
    app.view("gb_outcome_submit")(ack=_ack, lazy=[do_outcome])

    @deps.guarded
    def open_assign(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        flag_id = int(context["flag_id"])
        facts = deps.decisions.facts(flag_id)
        people = deps.need_to_know().recipients(Route.dsl, facts)
        client.views_open(trigger_id=body["trigger_id"], view=modal(
            "gb_assign_submit", f"Assign flag #{flag_id}", flag_id, version(flag_id),
            [select("assignee", "Assign to", [option(s.staff_id, s.name) for s in people])],
            "Assign"))

    @deps.guarded
    def do_assign(body: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        deps.decisions.assign(int(context["flag_id"]), context["staff"],
                         selected(body["view"], "assignee"), expected_version=form_version(body),
                         slack_user_id=user_id(body))

    app.action("gb_assign")(ack=_ack, lazy=[open_assign])
    app.view("gb_assign_submit")(ack=_ack, lazy=[do_assign])
