"""The policy scenario end to end with the REAL learner_pii rule (merged from the pii branch):
archive -> learner_pii detection -> flag -> outbox -> Slack sink -> the fake Slack Web API."""

from __future__ import annotations

import json

from rules.engine import DetectionEngine, build_detector
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, FB_MANAGER_2, SlackWorld
from tests.slack.helpers import post


def test_a_learners_full_name_in_a_public_post_reaches_the_two_managers_masked(
        world: SlackWorld) -> None:
    world.rt.pipeline.engine = DetectionEngine(
        [build_detector("learner_pii", world.rt.config)])
    world.ingest(post("lp1", "Well done to Jayden Price for winning the county chess final!"))
    opened = [set(c.params["users"].split(",")) for c in world.fake.calls("conversations.open")]
    assert opened == [{FB_MANAGER_1, FB_MANAGER_2}]  # both managers, and only them
    assert not {DSL, DEPUTY_1, DEPUTY_2} & set().union(*opened)
    [message] = world.fake.calls("chat.postMessage")
    shown = json.dumps(message.params["blocks"], ensure_ascii=False)
    assert "Jayden" not in shown and "Price" not in shown
    assert "county chess final" in shown and "█████" in shown
    assert "learner personal details" in shown
