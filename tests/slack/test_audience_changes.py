"""Need to know when the registers change after a flag was sent: a message already in someone's
Slack is shown again at every decision and every change of the flag, and each time it may show
only what its reader may see now, through signed requests and the real slack_sdk against the
fake Slack."""

from __future__ import annotations

import json

from governance_bot.registers import RegisterIndex, StaffRole
from rules.engine import DetectionEngine
from tests.slack.conftest import DEPUTY_1, DEPUTY_2, DSL, SlackWorld
from tests.slack.helpers import CONCERN, TEST_DETECTORS, LateContactTestDetector, block_action, post


def _shown(call: object) -> str:
    params = call.params  # type: ignore[attr-defined]
    return json.dumps(params.get("blocks"), ensure_ascii=False) + str(params.get("text"))


def _roles(world: SlackWorld, **roles: StaffRole) -> None:
    """The staff register as the organisation changed it: ``S001=StaffRole.tutor``..."""
    regs = world.bot.registers.registers.model_copy(deep=True)
    for s in regs.staff:
        if s.staff_id in roles:
            s.role = roles[s.staff_id]
    world.bot.registers = RegisterIndex(regs)


def _shown_after_acknowledging(world: SlackWorld, who: str, flag_id: int,
                               channel: str | None) -> str:
    """``who`` acknowledges the flag; what the last update of its message in ``channel`` then
    shows."""
    before = len(world.fake.calls("chat.update"))
    world.send(block_action(who, "gb_ack", flag_id, channel=None))
    world.wait(lambda: world.flag(flag_id).acknowledged_at is not None)
    world.wait(lambda: any(c.params["channel"] == channel
                           for c in world.fake.calls("chat.update")[before:]))
    [*_, update] = [c for c in world.fake.calls("chat.update")[before:]
                    if c.params["channel"] == channel]
    return _shown(update)


def test_a_dsl_who_stepped_down_sees_nothing_more_of_a_concern_they_were_sent(
        world: SlackWorld) -> None:
    world.rt.engine = DetectionEngine([*TEST_DETECTORS, LateContactTestDetector()])
    world.rt.pipeline.engine = world.rt.engine
    world.ingest(post("lc1", "late message: are you awake?"))
    flag_id = world.flag_id("lc1")
    # the case manager is the DSL, Helen Okafor: the concern comes to her alone
    dm = world.fake.conversation_for(DSL)
    [sent] = [c for c in world.fake.calls("chat.postMessage") if c.params["channel"] == dm]
    assert CONCERN in _shown(sent)
    # Helen steps down and Marcus Reid becomes the DSL (so the case manager): Marcus
    # acknowledges, which shows every message about the flag again
    _roles(world, S001=StaffRole.tutor, S002=StaffRole.dsl)
    shown = _shown_after_acknowledging(world, DEPUTY_1, flag_id, dm)
    # Helen's message no longer shows the concern, the learner, or what Marcus did about it
    for secret in (CONCERN, "L006", "Ruby", "Daniel Mensah", "Marcus Reid", "cknowledged"):
        assert secret not in shown, secret
    assert f"Flag #{flag_id} is no longer shown" in shown


def test_a_deputy_who_stepped_down_sees_nothing_more_in_the_dsl_teams_conversation(
        world: SlackWorld) -> None:
    world.ingest(post("gd1", "Ruby Fletcher here. he hurts me at home",
                      author={"id": "fb:9001", "handle": "@rubyfletch", "name": "Ruby F"}))
    flag_id = world.flag_id("gd1")
    group = world.fake.conversation_for(DSL, DEPUTY_1, DEPUTY_2)  # one message, all three
    [sent] = [c for c in world.fake.calls("chat.postMessage") if c.params["channel"] == group]
    assert "Ruby Fletcher (L006)" in _shown(sent)
    # Marcus Reid is no longer a deputy; he is still in that group conversation, so when the
    # DSL acknowledges, the message there may no longer show the case
    _roles(world, S002=StaffRole.tutor)
    shown = _shown_after_acknowledging(world, DSL, flag_id, group)
    for secret in ("Ruby", "L006", "hurts", "Year 9", "cknowledged"):
        assert secret not in shown, secret
    # the DSL and Priya Natarajan still have it: App Home lists it for them, not for Marcus
    assert [f.id for f, _ in world.bot.flags_for("S001")] == [flag_id]
    assert [f.id for f, _ in world.bot.flags_for("S003")] == [flag_id]
    assert world.bot.flags_for("S002") == []
