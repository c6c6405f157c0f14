"""Decisions in Slack, sent as signed requests into the service's /slack/events endpoint.

Findings come from the test-only detectors in tests/slack/helpers.py.
"""

from __future__ import annotations

import json
import time

from sqlalchemy import select

from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, FB_MANAGER_2, TUTOR
from tests.slack.helpers import block_action, post, view_submission


def _manager_flag(world) -> int:  # type: ignore[no-untyped-def]
    world.ingest(post("r1", "Jayden Price and Kacper Zielinski were brilliant today"))
    return world.flag_id("r1")


def _safeguarding_flag(world, text: str = "nobody would miss me") -> int:  # type: ignore[no-untyped-def]
    world.ingest(post("s1", text, kind="comment"))
    return world.flag_id("s1")


def test_a_request_with_a_bad_signature_gets_401(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _manager_flag(world)
    resp = world.send(block_action(FB_MANAGER_1, "gb_remove", flag_id), secret="not-the-secret")
    assert resp.status_code == 401
    assert world.fake.calls("views.open") == []


def test_a_replayed_request_with_an_old_timestamp_gets_401(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _manager_flag(world)
    resp = world.send(block_action(FB_MANAGER_1, "gb_remove", flag_id),
                      timestamp=int(time.time()) - 60 * 10)
    assert resp.status_code == 401


def test_a_non_manager_clicking_remove_is_refused_and_the_attempt_audited(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _manager_flag(world)
    resp = world.send(block_action(TUTOR, "gb_remove", flag_id))
    assert resp.status_code == 200
    [refusal] = world.fake.wait_for("chat.postEphemeral")
    assert refusal.params["user"] == TUTOR
    assert f"There is no flag #{flag_id} that you may act on." in refusal.params["text"]
    time.sleep(0.2)
    assert world.fake.calls("views.open") == []  # no modal, nothing else happened
    [event] = world.audit("slack.refused")
    assert event.data["slack_user_id"] == TUTOR and event.data["action"] == "gb_remove"
    assert event.subject == f"flag:{flag_id}"
    assert world.flag(flag_id).status == "open"


def test_a_manager_cannot_act_on_a_safeguarding_flag(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _safeguarding_flag(world)
    world.send(block_action(FB_MANAGER_1, "gb_ack", flag_id))
    world.fake.wait_for("chat.postEphemeral")
    assert "that you may act on" in world.fake.calls("chat.postEphemeral")[0].params["text"]
    assert world.flag(flag_id).acknowledged_at is None
    assert len(world.audit("slack.refused")) == 1


def test_remove_asks_for_an_explanation_and_names_the_people_to_inform_by_role_only(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _manager_flag(world)
    assert world.send(block_action(FB_MANAGER_1, "gb_remove", flag_id)).status_code == 200
    [opened] = world.fake.wait_for("views.open")
    view = opened.params["view"]
    assert view["callback_id"] == "gb_remove_submit"
    labels = json.dumps(view["blocks"], ensure_ascii=False)
    assert "Explanation (the policy requires one)" in labels
    # the learners named, their parent/carer and the apprentice's employer, by role only: the
    # form never shows more than the (masked) message did
    assert "Learner 1 of 2 named (from the register)" in labels
    assert "Learner 1 of 2's parent/carer (from the register)" in labels
    assert "Learner 2 of 2's employer (from the register)" in labels
    for secret in ("Jayden", "Price", "karen.price", "Kacper", "Northgate", "@"):
        assert secret not in labels
    # only what the account's connector can do, plus doing it by hand
    moderation = next(b for b in view["blocks"] if b["block_id"] == "moderation")
    assert [o["value"] for o in moderation["element"]["options"]] == ["delete", "hide", "manual"]
    # submitting without an explanation is refused by Slack's form validation
    resp = world.send(view_submission(FB_MANAGER_1, "gb_remove_submit", flag_id, {
        "moderation": {"type": "static_select", "selected_option": {"value": "hide"}},
        "reason": {"type": "plain_text_input", "value": "  "}}))
    assert resp.json()["response_action"] == "errors"
    assert world.moderation.moderated == []


def test_remove_calls_the_platform_records_everything_and_updates_every_message(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _manager_flag(world)
    world.fake.reset()
    resp = world.send(view_submission(FB_MANAGER_2, "gb_remove_submit", flag_id, {
        "moderation": {"type": "static_select", "selected_option": {"value": "hide"}},
        "reason": {"type": "plain_text_input",
                   "value": "Learners were named without consent."},
        "informed": {"type": "checkboxes", "selected_options": [
            {"value": "learner:1"}, {"value": "guardian:1"}, {"value": "employer:2"}]},
        "method": {"type": "static_select", "selected_option": {"value": "email"}}}))
    assert resp.status_code == 200
    world.wait(lambda: world.flag(flag_id).status == "actioned")
    assert world.moderation.moderated[0][0] == "facebook:brookfield-facebook:r1"
    assert world.moderation.moderated[0][1].value == "hide"
    with world.rt.db.session() as s:
        [decision] = s.execute(select(m.FlagDecision)).scalars().all()
        informed = s.execute(select(m.InformedPerson)).scalars().all()
        assert decision.staff_id == "S005" and decision.reason.startswith("Learners were named")
        assert decision.data["platform_ok"] is True
        assert [(i.relation, i.register_id, i.method) for i in informed] == [
            ("learner", "L001", "email"), ("guardian", "L001", "email"),
            ("employer", "L005", "email")]
        assert auditlog.verify(s).ok
    [event] = world.audit("flag.remove")
    assert event.actor == "staff:S005"
    assert len(world.audit("flag.informed")) == 1
    [update] = world.fake.wait_for("chat.update")
    shown = json.dumps(update.params["blocks"], ensure_ascii=False)
    assert "Removed (hide) by Grace Lindqvist" in shown
    assert '"type": "actions"' not in shown  # no buttons left: nobody acts twice


def test_keep_records_the_reason_and_escalate_sends_the_flag_to_the_dsl(world) -> None:  # type: ignore[no-untyped-def]
    world.ingest(post("k1", "Jayden Price at the match"), post("k2", "Ruby Fletcher's art"))
    keep_id, esc_id = world.flag_id("k1"), world.flag_id("k2")
    world.send(view_submission(FB_MANAGER_1, "gb_keep_submit", keep_id, {
        "reason": {"type": "plain_text_input", "value": "Photo consent is on file."}}))
    world.wait(lambda: world.flag(keep_id).status == "dismissed")
    world.send(block_action(FB_MANAGER_1, "gb_escalate", esc_id))
    world.wait(lambda: world.flag(esc_id).status == "escalated")
    world.wait(lambda: any(c.params["channel"] == world.fake.conversation_for(
        DSL, DEPUTY_1, DEPUTY_2) for c in world.fake.calls("chat.postMessage")))
    dsl_dm = world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)
    # the escalation's outbox row (the safety net) is settled without a second post
    world.wait(lambda: world.service.sender.drain() is not None
               and world.service.sender.pending() == 0)
    assert len([c for c in world.fake.calls("chat.postMessage")
                if c.params["channel"] == dsl_dm]) == 1
    assert [e.data["reason"] for e in world.audit("flag.keep")] == ["Photo consent is on file."]


def test_the_dsl_acknowledges_and_every_message_shows_it(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _safeguarding_flag(world)
    world.send(block_action(DEPUTY_2, "gb_ack", flag_id))
    world.wait(lambda: world.flag(flag_id).acknowledged_at is not None)
    flag = world.flag(flag_id)
    assert flag.acknowledged_by == "S003" and flag.status == "acknowledged"
    [update] = world.fake.wait_for("chat.update")
    assert "Acknowledged by Priya Natarajan" in json.dumps(update.params["blocks"])
    # a second click is refused, not recorded twice
    world.send(block_action(DSL, "gb_ack", flag_id))
    world.fake.wait_for("chat.postEphemeral")
    assert len(world.audit("flag.acknowledge")) == 1


def test_the_dsl_records_an_outcome_and_assigns_a_deputy(world) -> None:  # type: ignore[no-untyped-def]
    flag_id = _safeguarding_flag(world)
    world.send(view_submission(DSL, "gb_assign_submit", flag_id, {
        "assignee": {"type": "static_select", "selected_option": {"value": "S002"}}}))
    world.wait(lambda: world.flag(flag_id).assigned_to == "S002")
    world.send(view_submission(DSL, "gb_outcome_submit", flag_id, {
        "outcome": {"type": "static_select", "selected_option": {"value": "social_care"}},
        "note": {"type": "plain_text_input", "value": "MASH referral made 10:40"}}))
    world.wait(lambda: world.flag(flag_id).status == "closed")
    [event] = world.audit("flag.outcome")
    assert event.data["outcome"] == "social_care"

    def latest_update_shows_both() -> bool:
        # the assignment's and the outcome's updates may be sent in either order of arrival:
        # wait for the message to show both, however many updates it takes
        updates = world.fake.calls("chat.update")
        shown = json.dumps(updates[-1].params["blocks"]) if updates else ""
        return "referred to children's social care" in shown and "Assigned to Marcus Reid" in shown

    world.wait(latest_update_shows_both)  # raises if it never does


def test_a_removal_through_the_jsonl_connector_is_recorded_locally(world, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The whole removal flow without a platform: the jsonl connector records removals."""
    from connectors.jsonl import JsonlConnector, JsonlSettings

    removals = tmp_path / "removals.jsonl"
    connector = JsonlConnector(JsonlSettings(name="fb-file", type="jsonl",
                                             account="brookfield-facebook",
                                             path=tmp_path / "items.jsonl",
                                             removals_path=removals))
    world.bot.connectors = [connector]
    flag_id = _manager_flag(world)
    world.send(block_action(FB_MANAGER_1, "gb_remove", flag_id))
    [opened] = world.fake.wait_for("views.open")
    moderation = next(b for b in opened.params["view"]["blocks"]
                      if b["block_id"] == "moderation")
    assert [o["value"] for o in moderation["element"]["options"]] == ["delete", "hide", "manual"]
    world.send(view_submission(FB_MANAGER_1, "gb_remove_submit", flag_id, {
        "moderation": {"type": "static_select", "selected_option": {"value": "delete"}},
        "reason": {"type": "plain_text_input", "value": "Names a learner."}}))
    world.wait(lambda: world.flag(flag_id).status == "actioned")
    [line] = removals.read_text().splitlines()
    assert json.loads(line)["item"] == "facebook:brookfield-facebook:r1"
    assert json.loads(line)["action"] == "delete"


def test_slack_is_acknowledged_at_once_while_a_slow_platform_removal_runs_lazily(world) -> None:  # type: ignore[no-untyped-def]
    import threading

    release = threading.Event()
    original = world.moderation.moderate

    def slow_platform(item, action):  # type: ignore[no-untyped-def]
        release.wait(10)  # the platform takes its time (longer than Slack's 3 seconds)
        return original(item, action)

    world.moderation.moderate = slow_platform
    flag_id = _manager_flag(world)
    started = time.perf_counter()
    resp = world.send(view_submission(FB_MANAGER_1, "gb_remove_submit", flag_id, {
        "moderation": {"type": "static_select", "selected_option": {"value": "hide"}},
        "reason": {"type": "plain_text_input", "value": "Names a learner."}}))
    assert resp.status_code == 200
    assert time.perf_counter() - started < 1.0  # acknowledged well within 3 s
    assert world.flag(flag_id).status == "open"  # the work has not finished yet
    release.set()
    world.wait(lambda: world.flag(flag_id).status == "actioned")
    assert world.moderation.moderated
