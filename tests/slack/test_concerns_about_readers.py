"""Nobody receives a concern about themselves, also when they are only named in the text: a
learner's disclosure that names a deputy DSL, or the whole DSL team, through the real pipeline,
the outbox and the real slack_sdk against the fake Slack."""

from __future__ import annotations

import json

from rules.engine import DetectionEngine
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, FB_MANAGER_1, TUTOR, SlackWorld
from tests.slack.helpers import (
    TEST_DETECTORS,
    LateContactTestDetector,
    block_action,
    post,
    slash_command,
)

RUBY = {"id": "fb:9001", "handle": "@rubyfletch", "name": "Ruby F"}  # learner L006, Year 9
HEAD, CHAIR = "U0NOSEI", "U0RHALE"


def _people_told(world: SlackWorld) -> set[str]:
    """Everyone a message about a flag went to (the members of each conversation posted to)."""
    opened = {tuple(sorted(c.params["users"].split(",")))
              for c in world.fake.calls("conversations.open")}
    members = {world.fake.conversation_for(*users): set(users) for users in opened}
    return set().union(*(members.get(c.params["channel"], {c.params["channel"]})
                         for c in world.fake.calls("chat.postMessage")))


def _text_to(world: SlackWorld, *users: str) -> str:
    dm = world.fake.conversation_for(*users)
    return "".join(json.dumps(c.params.get("blocks"), ensure_ascii=False) + str(c.params["text"])
                   for c in world.fake.calls("chat.postMessage") if c.params["channel"] == dm)


def test_a_disclosure_that_names_a_deputy_dsl_never_reaches_that_deputy(
        world: SlackWorld) -> None:
    world.ingest(post("n1", "mr reid keeps messaging me at night and he hurts me at home",
                      kind="comment", author=RUBY))
    told = _people_told(world)
    assert DEPUTY_1 not in told  # Marcus Reid, named in it
    assert {DSL, DEPUTY_2} <= told  # the rest of the DSL team has it, with the child
    assert "Ruby Fletcher (L006)" in _text_to(world, DSL, DEPUTY_2)


def test_a_disclosure_that_names_the_whole_dsl_team_goes_to_the_chair_of_governors(
        world: SlackWorld) -> None:
    world.ingest(post("n2", "Helen Okafor, Marcus Reid and Mrs Natarajan all know he hurts me "
                      "at home", kind="comment", author=RUBY))
    told = _people_told(world)
    assert not told & {DSL, DEPUTY_1, DEPUTY_2}
    assert CHAIR in told  # who takes a concern about the DSL (KCSIE part 4)
    assert "Ruby Fletcher (L006)" in _text_to(world, CHAIR)


def _governance(world: SlackWorld, user: str, text: str) -> str:
    resp = world.send_raw(slash_command(user, text), "application/x-www-form-urlencoded")
    assert resp.status_code == 200 and resp.json()["response_type"] == "ephemeral"
    return str(resp.json()["text"])


def test_slash_governance_status_counts_only_the_askers_own_flags(world: SlackWorld) -> None:
    # two disclosures: the DSL team's, nobody else's business, not even how many there are
    world.ingest(post("s1", "nobody would miss me", kind="comment", author=RUBY),
                 post("s2", "he hurts me at home", kind="comment", author=RUBY))
    assert "2 open" in _governance(world, DSL, "status")  # the DSL oversees everything
    tutor = _governance(world, TUTOR, "status")
    assert "2 open" not in tutor and "Notifications waiting" not in tutor
    assert "Your open flags: 0" in tutor
    manager = _governance(world, FB_MANAGER_1, "status")
    assert "2 open" not in manager and "Your open flags: 0" in manager


def test_only_those_who_oversee_the_service_read_the_audit_log_in_slack(
        world: SlackWorld) -> None:
    world.ingest(post("a1", "nobody would miss me", kind="comment", author=RUBY))
    assert "flag.created" in _governance(world, DSL, "audit")
    for user in (FB_MANAGER_1, TUTOR):  # as in the console: the administrators and the DSL
        answer = _governance(world, user, "audit")
        assert "flag." not in answer and "audit log is for" in answer, user


def test_an_unacknowledged_disclosure_naming_a_deputy_never_escalates_to_that_deputy(
        world: SlackWorld) -> None:
    world.ingest(post("e1", "mr reid says nobody would miss me", kind="comment", author=RUBY))
    flag_id = world.flag_id("e1")
    world.clock.advance(minutes=16)
    assert world.service.slack.escalation.run() == [(flag_id, 1)]
    # the other deputy gets it directly; Marcus Reid, named in it, gets nothing, not even a
    # message saying that there is a flag he may not see
    assert DEPUTY_2 in _people_told(world)
    assert DEPUTY_1 not in _people_told(world)
    assert {DEPUTY_1} not in [set(c.params["users"].split(","))
                              for c in world.fake.calls("conversations.open")]


def test_a_forged_click_tells_a_member_of_staff_nothing_of_a_flag_that_is_not_theirs(
        world: SlackWorld) -> None:
    world.rt.engine = DetectionEngine([*TEST_DETECTORS, LateContactTestDetector()])
    world.rt.pipeline.engine = world.rt.engine
    world.ingest(post("f1", "late message: are you awake?"),  # a concern about Daniel Mensah
                 post("f2", "nobody would miss me", kind="comment", author=RUBY))
    about_him, disclosure = world.flag_id("f1"), world.flag_id("f2")
    # Daniel Mensah (the tutor) and an account manager guess flag ids and send signed clicks
    for user, flag_id in ((TUTOR, about_him), (TUTOR, disclosure), (FB_MANAGER_1, about_him),
                          (FB_MANAGER_1, disclosure), (TUTOR, 999)):
        before = len(world.fake.calls("chat.postEphemeral"))
        world.send(block_action(user, "gb_ack", flag_id))
        world.fake.wait_for("chat.postEphemeral", before + 1)
        said = world.fake.calls("chat.postEphemeral")[-1].params["text"]
        # the same words as for a flag that does not exist: nothing of its kind or state
        assert f"There is no flag #{flag_id} that you may act on." in said, said
        for hint in ("safeguarding", "concern", "member of staff", "case manager", "DSL",
                     "decided", "escalated"):
            assert hint not in said, (hint, said)
    assert world.flag(about_him).acknowledged_at is None
    assert world.flag(disclosure).acknowledged_at is None
