"""Delivery of flags to Slack: the right people, nobody else, nothing they must not see.

Findings come from the small test-only detectors in tests/slack/helpers.py (registered only in
these tests; the real learner_pii and safeguarding rules are other issues); everything after
detection is the real pipeline, outbox, Slack sink, slack_sdk client and a fake Slack Web API.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.slack.conftest import (
    DEPUTY_1,
    DEPUTY_2,
    DSL,
    FB_MANAGER_1,
    FB_MANAGER_2,
    SlackWorld,
)
from tests.slack.helpers import post


def _opened(world: SlackWorld) -> list[set[str]]:
    return [set(c.params["users"].split(",")) for c in world.fake.calls("conversations.open")]


def _text_of(call_params: dict[str, object]) -> str:
    blocks = json.dumps(call_params.get("blocks"), ensure_ascii=False)
    return blocks + str(call_params.get("text"))


def test_a_learners_full_name_in_a_public_post_goes_to_the_accounts_two_managers_only(
        world: SlackWorld) -> None:
    world.ingest(post("p1", "Well done to Jayden Price for winning the county chess final!"))
    assert _opened(world) == [{FB_MANAGER_1, FB_MANAGER_2}]
    posts = world.fake.calls("chat.postMessage")
    assert len(posts) == 1
    channel = world.fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2)
    assert posts[0].params["channel"] == channel
    meta = posts[0].params["metadata"]
    assert meta["event_type"] == "governance_flag"
    assert meta["event_payload"]["flag_id"] == world.flag_id("p1")


def test_learner_names_are_masked_in_managers_messages(world: SlackWorld) -> None:
    world.ingest(post("p2", "Congratulations Maisie O'Connell (@maisieoc) on your results, "
                            "see you Monday Maisie!"))
    shown = _text_of(world.fake.calls("chat.postMessage")[0].params)
    for detail in ("Maisie", "O'Connell", "maisieoc"):
        assert detail not in shown
    assert "█████" in shown  # the evidence span is blacked out, the context stays
    assert "Congratulations" in shown
    assert "facebook" in shown and "brookfield-facebook" in shown


def test_a_safeguarding_flag_goes_to_the_dsl_and_deputies_privately_and_no_manager(
        world: SlackWorld) -> None:
    world.ingest(post("p3", "honestly nobody would miss me if I left", kind="comment",
                      author={"id": "fb:9001", "handle": "@rubyfletch"}))
    assert _opened(world) == [{DSL, DEPUTY_1, DEPUTY_2}]
    [call] = world.fake.calls("chat.postMessage")
    assert call.params["channel"].startswith("G")  # a private group DM, not a channel
    assert FB_MANAGER_1 not in json.dumps(call.params)
    assert "Acknowledge" in _text_of(call.params)
    assert "Remove" not in [e["text"]["text"] for b in call.params["blocks"]
                            if b["type"] == "actions" for e in b["elements"]]


@pytest.mark.parametrize(("dsl_content", "shows_text", "shows_note"), [
    ("full", True, False), ("excerpt", True, False), ("none", False, True)])
def test_the_dsls_content_setting_decides_how_much_text_is_sent(
        world: SlackWorld, dsl_content: str, shows_text: bool, shows_note: bool) -> None:
    world.bot.settings = world.bot.settings.model_copy(update={"dsl_content": dsl_content})
    world.ingest(post("p4", "he hurts me at home and I am scared to go back tonight",
                      kind="comment"))
    shown = _text_of(world.fake.calls("chat.postMessage")[0].params)
    assert ("he hurts me at home" in shown) is shows_text
    assert ("dsl_content = none" in shown) is shows_note


def test_explicit_images_are_never_sent_to_slack(world: SlackWorld) -> None:
    media = [{"url": "https://cdn.facebook.example/img/secret-photo-123.jpg",
              "alt_text": "TEST-EXPLICIT", "sha256": "ab" * 32}]
    world.ingest(post("p5", "look at this", kind="comment", media=media))
    [call] = world.fake.calls("chat.postMessage")
    everything = json.dumps([c.params for c in world.fake.all_calls()])
    assert "secret-photo-123" not in everything
    assert "cdn.facebook.example" not in everything
    assert "look at this" not in everything
    assert "facebook.example/posts/p5" not in everything  # not even the link to the post
    assert not any(b["type"] == "image" for b in call.params["blocks"])
    assert "possibly explicit image" in _text_of(call.params)
    assert set(call.params["channel"]) and world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)


def test_repeated_findings_on_one_thread_are_grouped_under_one_message(
        world: SlackWorld) -> None:
    world.ingest(post("c1", "Jayden Price is in my class", kind="comment", thread="t-77"))
    world.ingest(post("c2", "yes Jayden Price sits next to me", kind="comment", thread="t-77"))
    world.ingest(post("c3", "Jayden Price again", kind="comment", thread="t-77"))
    posts = world.fake.calls("chat.postMessage")
    assert len(posts) == 1  # one alert; the same concern again is not sent again ...
    assert "thread_ts" not in posts[0].params
    # ... the alert counts it: the service refreshes the count at most every few seconds: by
    # the next drain after that, it shows every grouped flag
    later = time.monotonic() + 60
    world.bot.monotonic = lambda: later
    world.service.sender.drain()
    anchor_updates = world.fake.calls("chat.update")
    assert "2 further flag(s) on this thread" in json.dumps(anchor_updates[-1].params["blocks"])


def test_low_severity_flags_wait_for_the_daily_digest(world: SlackWorld) -> None:
    world.ingest(post("d1", "Whatever. Read the newsletter.", kind="reply"),
                 post("d2", "whatever. we said no.", kind="reply"))
    assert world.fake.calls("chat.postMessage") == []
    sent = world.service.slack.digest.run()
    assert sent == 2
    [digest] = world.fake.calls("chat.postMessage")
    assert digest.params["channel"] == world.fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2)
    assert "#1" in digest.params["text"] and "#2" in digest.params["text"]
    assert world.service.slack.digest.run() == 0  # each flag once
    assert len(world.fake.calls("chat.postMessage")) == 1


def test_private_channels_per_route_instead_of_dms(world: SlackWorld) -> None:
    world.bot.settings = world.bot.settings.model_copy(update={
        "delivery": "channel", "channels": {"account_managers": "C0MANAGERS", "dsl": "C0DSL"}})
    world.ingest(post("p6", "Jayden Price won"),
                 post("p7", "nobody would miss me", kind="comment"))
    assert world.fake.calls("conversations.open") == []
    assert [c.params["channel"] for c in world.fake.calls("chat.postMessage")] == [
        "C0MANAGERS", "C0DSL"]


def test_an_edit_that_adds_a_safeguarding_finding_reaches_the_dsl_and_tells_the_managers_only_that(
        world: SlackWorld) -> None:
    world.ingest(post("u1", "Jayden Price was at the park"))
    edited = post("u1", "Jayden Price was at the park. nobody would miss me")
    world.ingest(edited.model_copy(update={"edited_at": edited.created_at}))
    posts = world.fake.calls("chat.postMessage")
    assert [p.params["channel"] for p in posts] == [
        world.fake.conversation_for(FB_MANAGER_1, FB_MANAGER_2),
        world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)]  # one new alert, to the DSL
    [update] = world.fake.calls("chat.update")
    assert update.params["channel"] == posts[0].params["channel"]
    shown = json.dumps(update.params["blocks"], ensure_ascii=False)
    # the managers are told to take the post down and that the DSL knows, nothing more
    assert "Hide/remove this post; the DSL has been informed." in shown
    assert "nobody would miss me" not in shown and "safeguarding" not in shown
    assert '"gb_remove"' in shown  # the post is still theirs to remove
    dsl_shown = json.dumps(posts[1].params["blocks"], ensure_ascii=False)
    assert "a possible safeguarding disclosure" in dsl_shown
    assert "a registered learner's full name" not in dsl_shown  # the managers' part
