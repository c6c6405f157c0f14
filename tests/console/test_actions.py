"""Acting in the console, in a real browser: the same decisions as the Slack buttons (the service's
decisions module), so the flag's Slack messages are updated (the fake Slack receives the
chat.update), the audit log records each step and stays intact, and a removal calls the platform
exactly once however often the form is sent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from tests.console.conftest import DSL, MANAGER, SECOND_MANAGER, World, sign_in

pytestmark = pytest.mark.slow


def slack_updates(world: World, flag_id: int) -> list[dict[str, Any]]:
    """The chat.update calls the fake Slack received for the flag's messages."""
    with world.rt.db.session() as s:
        shown = {(fm.channel, fm.ts) for fm in s.execute(
            select(m.FlagMessage).where(m.FlagMessage.flag_id == flag_id)).scalars()}
    assert shown, "the flag was posted to Slack when it was raised"
    return [c.params for c in world.fake.calls("chat.update")
            if (c.params.get("channel"), c.params.get("ts")) in shown]


def text_of(params: dict[str, Any]) -> str:
    blocks = params.get("blocks")
    return (params.get("text") or "") + (blocks if isinstance(blocks, str)
                                         else json.dumps(blocks or []))


def test_the_dsl_acknowledges_and_records_an_outcome_and_slack_shows_it(browser: Any,
                                                                         world: World):
    case = world.flags["c-disclosure"]
    page = sign_in(browser, world, DSL)
    page.goto(f"{world.url}/flags/{case}")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    assert "Acknowledged." in page.inner_text("main")
    world.wait(lambda: any("Acknowledged by Helen Okafor" in text_of(u)
                           for u in slack_updates(world, case)))

    page.get_by_label("Outcome").select_option("social_care")
    page.get_by_label("Note (optional)").fill("Referred to children's social care, ref 4471")
    page.get_by_role("button", name="Record outcome").click()
    page.wait_for_load_state()
    assert "Outcome recorded." in page.inner_text("main")
    assert "referred to children's social care" in page.inner_text("main")
    world.wait(lambda: any("Outcome recorded by Helen Okafor" in text_of(u)
                           for u in slack_updates(world, case)))

    with world.rt.db.session() as s:
        flag = s.get(m.Flag, case)
        assert flag is not None and flag.status == "closed"
        assert flag.acknowledged_by == "S001"
        decisions = list(s.execute(select(m.FlagDecision).where(
            m.FlagDecision.flag_id == case)).scalars())
        assert [(d.action, d.staff_id, d.data.get("via")) for d in decisions] == [
            ("acknowledge", "S001", "console"), ("outcome", "S001", "console")]
        assert auditlog.verify(s).ok
    actions = [e.action for e in world.audit("flag.acknowledge", f"flag:{case}")
               + world.audit("flag.outcome", f"flag:{case}")]
    assert actions == ["flag.acknowledge", "flag.outcome"]
    # the audit trail on the case page says so too
    page.get_by_text("Audit trail").click()
    trail = page.inner_text("ul.audit")
    assert "Helen Okafor: acknowledged" in trail and "Helen Okafor: outcome recorded" in trail
    page.context.close()


def test_a_managers_removal_calls_the_platform_once(browser: Any, world: World):
    case = world.flags["post-2"]
    page = sign_in(browser, world, MANAGER)
    page.goto(f"{world.url}/flags/{case}")
    form = page.locator(f"form[action='/flags/{case}/actions/remove']")
    # named by role only: the form never shows a learner's name or a guardian's contact
    assert "Jayden" not in form.inner_text() and "karen.price" not in form.inner_text()
    form.get_by_label("Why it is removed").fill("Names a learner without consent")
    form.get_by_label("How", exact=True).select_option("hide")
    fields = {"csrf_token": form.locator("input[name=csrf_token]").get_attribute("value"),
              "version": form.locator("input[name=version]").get_attribute("value"),
              "reason": "Names a learner without consent", "moderation": "hide"}
    form.get_by_role("button", name="Remove").click()
    page.wait_for_load_state()
    assert "Removal recorded." in page.inner_text("main")
    # the same form sent again (a double click, a second tab): nothing new happens
    again = page.context.request.post(f"{world.url}/flags/{case}/actions/remove", form=fields,
                                      max_redirects=0)
    assert again.status == 303 and "already" in again.headers["location"]
    assert [key for key, _ in world.moderation.moderated] == [
        "facebook:brookfield-facebook:post-2"]
    world.wait(lambda: any("Removed" in text_of(u) for u in slack_updates(world, case)))
    with world.rt.db.session() as s:
        removals = list(s.execute(select(m.FlagDecision).where(
            m.FlagDecision.flag_id == case, m.FlagDecision.action == "remove")).scalars())
        assert len(removals) == 1 and removals[0].staff_id == "S004"
        assert auditlog.verify(s).ok
    page.context.close()


def test_an_action_the_role_does_not_allow_is_refused_and_audited(browser: Any, world: World):
    page = sign_in(browser, world, SECOND_MANAGER)  # Grace Lindqvist: Facebook, Instagram, X
    own = world.flags["ig-1"]
    page.goto(f"{world.url}/flags/{own}")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    # a safeguarding case does not exist for her: acting on it is "not found"
    hidden = page.context.request.post(
        f"{world.url}/flags/{world.flags['c-disclosure']}/actions/keep",
        form={"csrf_token": csrf, "reason": "fine"}, max_redirects=0)
    assert hidden.status == 404
    # on her own account's flag, acknowledging is the DSL team's: refused, said and audited
    refused = page.context.request.post(f"{world.url}/flags/{own}/actions/acknowledge",
                                        form={"csrf_token": csrf}, max_redirects=0)
    assert refused.status == 303 and "problem=" in refused.headers["location"]
    assert world.audit("console.refused", f"flag:{own}")
    with world.rt.db.session() as s:
        flag = s.get(m.Flag, own)
        assert flag is not None and flag.acknowledged_at is None
    page.context.close()
