"""Need to know in Slack, through signed requests into the service's /slack/events and the real
slack_sdk against the fake Slack: what the DSL's alert shows and what the managers' message and
Remove form do not; decisions that race or repeat; escalated flags; malformed payloads."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from governance_bot.storage import models as m
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, FB_MANAGER_2, SlackWorld
from tests.slack.helpers import block_action, form, post, sign, view_submission

RUBY = {"id": "fb:9001", "handle": "@rubyfletch", "name": "Ruby F"}  # learner L006, Year 9


def _shown(call: object) -> str:
    params = call.params  # type: ignore[attr-defined]
    return json.dumps(params.get("blocks"), ensure_ascii=False) + str(params.get("text"))


def _decisions(world: SlackWorld, action: str) -> int:
    with world.rt.db.session() as s:
        return int(s.execute(select(func.count()).select_from(m.FlagDecision).where(
            m.FlagDecision.action == action)).scalar_one())


def test_the_dsls_alert_names_the_child_and_shows_the_thread_while_the_managers_see_neither(
        world: SlackWorld) -> None:
    world.ingest(
        post("t0", "Does anyone know when the art club starts again?", kind="comment",
             thread="th1", author=RUBY, at=datetime(2026, 11, 20, 9, 50, tzinfo=UTC)),
        post("t1", "Ruby Fletcher here. he hurts me at home and I dont want to go back",
             kind="reply", thread="th1", author=RUBY))
    flag_id = world.flag_id("t1")
    dsl_dm = world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)
    managers_dm = world.fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2)
    [to_dsl] = [c for c in world.fake.calls("chat.postMessage") if c.params["channel"] == dsl_dm]
    [to_managers] = [c for c in world.fake.calls("chat.postMessage")
                     if c.params["channel"] == managers_dm]
    dsl = _shown(to_dsl)
    # the child, as the register knows them: name, id, year group, tutor
    assert "Ruby Fletcher (L006), Year 9, tutor Aisha Rahman" in dsl
    # the thread's earlier message, and where it happened
    assert "Earlier in the thread" in dsl and "when the art club starts again" in dsl
    assert "https://facebook.example/posts/t1" in dsl
    assert "do not investigate or promise secrecy" in dsl  # what to do now, in policy words
    # the managers: their part only (the learner's name in a public reply), nothing of the
    # disclosure, no name, told only to take the post down
    managers = _shown(to_managers)
    assert "Hide/remove this post; the DSL has been informed." in managers
    for secret in ("Ruby", "Fletcher", "L006", "hurts", "Year 9", "art club", "safeguarding"):
        assert secret not in managers, secret
    # and the Remove form shows no more than their message did
    world.send(block_action(FB_MANAGER_1, "gb_remove", flag_id, channel=managers_dm))
    [opened] = world.fake.wait_for("views.open")
    form_shown = json.dumps(opened.params["view"], ensure_ascii=False)
    for secret in ("Ruby", "Fletcher", "L006", "hurts", "mail.example", "@"):
        assert secret not in form_shown, secret


def test_two_managers_removing_at_once_make_one_platform_call_and_one_decision(
        world: SlackWorld) -> None:
    world.ingest(post("c1", "Jayden Price scored twice"))
    flag_id = world.flag_id("c1")
    values = {"moderation": {"type": "static_select", "selected_option": {"value": "hide"}},
              "reason": {"type": "plain_text_input", "value": "Names a learner."}}
    start = threading.Barrier(2)
    answers: list[int] = []

    def press(user: str) -> None:
        start.wait()
        answers.append(world.send(view_submission(user, "gb_remove_submit", flag_id,
                                                  values)).status_code)

    threads = [threading.Thread(target=press, args=(u,)) for u in (FB_MANAGER_1, FB_MANAGER_2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == [200, 200]
    world.wait(lambda: world.flag(flag_id).status == "actioned")
    world.wait(lambda: any("Already recorded" in str(c.params.get("text"))
                           for c in world.fake.calls("chat.postMessage")))
    assert len(world.moderation.moderated) == 1
    assert _decisions(world, "remove") == 1


def test_the_same_signed_outcome_submitted_three_times_is_recorded_once(
        world: SlackWorld) -> None:
    world.ingest(post("s1", "nobody would miss me", kind="comment"))
    flag_id = world.flag_id("s1")
    world.send(block_action(DSL, "gb_outcome", flag_id))
    [opened] = world.fake.wait_for("views.open")
    meta = opened.params["view"]["private_metadata"]  # the form remembers the flag's version
    payload = view_submission(DSL, "gb_outcome_submit", flag_id, {
        "outcome": {"type": "static_select", "selected_option": {"value": "monitoring"}},
        "note": {"type": "plain_text_input", "value": "Spoke to her tutor."}})
    payload["view"]["private_metadata"] = meta
    for _ in range(3):
        assert world.send(payload).status_code == 200
    world.wait(lambda: len([c for c in world.fake.calls("chat.postMessage")
                            if "Already recorded" in str(c.params.get("text"))]) == 2)
    assert _decisions(world, "outcome") == 1
    assert len(world.audit("flag.outcome")) == 1


def test_after_one_manager_escalates_the_other_cannot_close_the_flag(world: SlackWorld) -> None:
    world.ingest(post("e1", "Ruby Fletcher's art on the wall"))
    flag_id = world.flag_id("e1")
    world.send(block_action(FB_MANAGER_1, "gb_escalate", flag_id))
    world.wait(lambda: world.flag(flag_id).status == "escalated")
    world.send(block_action(FB_MANAGER_2, "gb_keep", flag_id))
    world.send(view_submission(FB_MANAGER_2, "gb_keep_submit", flag_id, {
        "reason": {"type": "plain_text_input", "value": "It is fine."}}))
    world.wait(lambda: len(world.audit("slack.refused")) == 2)
    assert all("escalated to the DSL" in e.data["why"] for e in world.audit("slack.refused"))
    assert world.flag(flag_id).status == "escalated" and _decisions(world, "keep") == 0
    # the DSL side closes it
    world.send(view_submission(DEPUTY_1, "gb_keep_submit", flag_id, {
        "reason": {"type": "plain_text_input", "value": "Consent is on file."}}))
    world.wait(lambda: world.flag(flag_id).status == "dismissed")


@pytest.mark.parametrize("body", [
    # a flag button whose value is not a flag id
    form({**block_action(FB_MANAGER_1, "gb_remove", 1), "actions": [
        {"type": "button", "action_id": "gb_remove", "block_id": "b", "value": "abc"}]}),
    # a form whose private metadata is not JSON
    form({**view_submission(FB_MANAGER_1, "gb_keep_submit", 1, {}),
          "view": {"callback_id": "gb_keep_submit", "private_metadata": "{not json"}}),
    # a form about a flag that does not exist, and without a user
    form({"type": "view_submission", "view": {"callback_id": "gb_outcome_submit",
                                               "private_metadata": "{\"flag_id\": 99999}"}}),
    # a payload that is not JSON at all
    "payload=%7Bnot-json",
    # a JSON body that is a list
    form([1, 2, 3]),  # type: ignore[arg-type]
])
def test_a_malformed_signed_payload_gets_200_and_no_traceback(
        world: SlackWorld, body: str, caplog: pytest.LogCaptureFixture) -> None:
    world.ingest(post("x1", "Jayden Price at the fair"))
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    resp = world.http.post("/slack/events", content=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", **sign(body)})
    assert resp.status_code == 200
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records
                                                           if r.exc_info]
    assert world.moderation.moderated == [] and _decisions(world, "keep") == 0


class PhotoTestDetector:
    """Test stand-in for the image rule: a photo tagging Maisie (no consent) and Jayden
    (consent), in the finding shape rules/images.py gives (sha256, learners with and without
    consent)."""

    rule_id = "images"
    SHA = "5" * 64

    def detect(self, item, ctx):  # type: ignore[no-untyped-def]
        from governance_bot.findings import Category, Evidence, Finding, Severity

        if item.media:
            yield Finding("images", Category.unapproved_photo, Severity.medium, 1.0,
                          "Image 1 shows 2 person(s) and names or tags learner(s) without photo "
                          "consent in the register: L002 (tagged).",
                          Evidence(register_entry="learner:L002", detail={
                              "sha256": self.SHA, "check": "people_without_consent",
                              "learners_without_consent": ["L002"],
                              "learners_with_consent": ["L001"]}))


def test_managers_see_each_tagged_learners_photo_consent_and_can_pre_approve_the_photo(
        world: SlackWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    from governance_bot import pipeline as pipeline_module
    from rules.engine import DetectionEngine

    world.rt.pipeline.engine = DetectionEngine([PhotoTestDetector()])  # type: ignore[list-item]
    world.ingest(post("ph1", "Sports day!", media=[{"url": "https://cdn.example/p.jpg",
                                                    "mime_type": "image/jpeg"}]))
    flag_id = world.flag_id("ph1")
    [message] = world.fake.calls("chat.postMessage")
    shown = _shown(message)
    assert "Learner 1 (L002): *no photo consent*" in shown
    assert "Learner 2 (L001): photo consent on file" in shown
    assert "Maisie" not in shown and "Jayden" not in shown
    [button] = [e for b in message.params["blocks"] if b["type"] == "actions"
                for e in b["elements"] if e["action_id"] == "gb_photo"]
    assert button["value"] == f"{flag_id}:{PhotoTestDetector.SHA}"
    click = block_action(FB_MANAGER_2, "gb_photo", flag_id)
    click["actions"][0]["value"] = button["value"]
    assert world.send(click).status_code == 200
    world.wait(lambda: len(world.audit("flag.preapprove_photo")) == 1)
    with world.rt.db.session() as s:
        [approved] = s.execute(select(m.ApprovedMedia)).scalars().all()
        assert (approved.sha256, approved.approved_by) == (PhotoTestDetector.SHA, "S005")
    # the consent check sees it from the next batch on
    monkeypatch.setattr(pipeline_module, "APPROVED_MEDIA_SECONDS", 0.0)
    options = world.rt.pipeline.context().options
    assert PhotoTestDetector.SHA in options["approved_media_hashes"]
    # a tutor cannot pre-approve
    world.send({**click, "user": {"id": "U0DMENSAH"}})
    world.wait(lambda: len(world.audit("slack.refused")) == 1)


def test_app_home_names_a_flag_by_what_the_viewer_may_see_of_it(world: SlackWorld) -> None:
    from tests.slack.helpers import event

    world.ingest(post("ah1", "Jayden Price says nobody would miss me", kind="comment"))
    flag_id = world.flag_id("ah1")
    for user in (FB_MANAGER_1, DEPUTY_1):
        world.send_raw(event({"type": "app_home_opened", "user": user, "tab": "home"}),
                       "application/json")
    world.fake.wait_for("views.publish", 2)
    homes = {c.params["user_id"]: json.dumps(c.params["view"], ensure_ascii=False)
             for c in world.fake.calls("views.publish")}
    assert f"#{flag_id}* learner personal details · severity 3" in homes[FB_MANAGER_1]
    assert "safeguarding" not in homes[FB_MANAGER_1]
    assert f"#{flag_id}* safeguarding concern · severity 5" in homes[DEPUTY_1]
