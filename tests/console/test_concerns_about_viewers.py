"""Nobody finds a concern about themselves in the console, in a real browser: a learner's
disclosure that names a deputy DSL is the DSL's to read, and for that deputy it does not exist
(queue, case page, export, search); a learner's chronology on a case page and in its exports
lists only the cases the viewer may see (never a concern about the viewer or a colleague's
concern that is the case manager's)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.console.conftest import DEPUTY, DSL, MANAGER, World, comment, sign_in

pytestmark = pytest.mark.slow


def _queue(page: Any) -> set[int]:
    return {int(re.sub(r"\D", "", t)) for t in page.locator("#queue-rows a").all_inner_texts()}


def _status(page: Any, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return int(response.status)


def test_a_disclosure_naming_a_deputy_is_never_found_by_that_deputy(browser: Any,
                                                                    world: World) -> None:
    world.ingest(comment("c-names-reid", "mr reid keeps messaging me at night and he hurts me "
                         "at home", {"handle": "@olly_sh"},
                         at=datetime(2026, 11, 21, 21, 0, tzinfo=UTC)))
    named = world.flag_id("c-names-reid")
    dsl = sign_in(browser, world, DSL)
    assert named in _queue(dsl)  # the DSL's to act on
    dsl.context.close()
    deputy = sign_in(browser, world, DEPUTY)  # Marcus Reid
    assert world.flags["c-disclosure"] in _queue(deputy)  # the other disclosures are his
    assert named not in _queue(deputy)
    for path in (f"/flags/{named}", f"/flags/{named}/export.json",
                 f"/flags/{named}/export.csv"):
        assert _status(deputy, world.url + path) == 404, path
    deputy.goto(f"{world.url}/search?q=messaging+me+at+night")
    assert "0 results" in deputy.inner_text("main")
    deputy.context.close()


def test_a_learners_chronology_lists_only_the_cases_the_viewer_may_see(browser: Any,
                                                                       world: World) -> None:
    # Amira Haddad (L004) discloses; the archive already holds a concern about the deputy
    # Marcus Reid's messages to her (the DSL's case, never his)
    world.ingest(comment("c-amira", "he hurts me at home", {"handle": "@amira.h.art"},
                         at=datetime(2026, 11, 21, 20, 0, tzinfo=UTC)))
    amira, about_marcus = world.flag_id("c-amira"), world.flags["chat-deputy"]
    about_tutor, oliver = world.flags["chat-tutor"], world.flags["c2-disclosure"]
    dsl = sign_in(browser, world, DSL)
    dsl.goto(f"{world.url}/flags/{amira}")
    assert f"Case {about_marcus}" in dsl.inner_text("main")  # hers to see, in the chronology
    dsl.context.close()
    deputy = sign_in(browser, world, DEPUTY)
    deputy.goto(f"{world.url}/flags/{amira}")
    assert "Amira Haddad" in deputy.inner_text("main")  # the disclosure is his to act on
    assert f"Case {about_marcus}" not in deputy.inner_text("main")  # the concern about him
    deputy.goto(f"{world.url}/flags/{oliver}")
    assert f"Case {about_tutor}" not in deputy.inner_text("main")  # the case manager's
    deputy.goto(f"{world.url}/flags/{amira}")
    with deputy.expect_download() as download:
        deputy.get_by_role("link", name="JSON").click()
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    [learner] = data["learners"]
    assert learner["name"] == "Amira Haddad"
    assert about_marcus not in [c["flag_id"] for c in learner["chronology"]]
    with deputy.expect_download() as download:
        deputy.get_by_role("link", name="CSV").click()
    assert f"case {about_marcus}" not in Path(download.value.path()).read_text(
        encoding="utf-8").lower()
    deputy.context.close()


def test_only_those_who_handle_cases_read_the_report_to_governors(browser: Any,
                                                                  world: World) -> None:
    report = f"{world.url}/reports/governors?from=2026-09-01&to=2026-12-31"
    dsl = sign_in(browser, world, DSL)
    assert _status(dsl, report) == 200
    assert "Flags by category and month" in dsl.inner_text("main")
    dsl.context.close()
    # an account manager counts no cases (a month's concerns about staff may be about her):
    # her reports are the dual-access audits of the accounts
    manager = sign_in(browser, world, MANAGER)
    manager.goto(f"{world.url}/reports")
    assert "Weekly dual-access audits" in manager.inner_text("main")
    assert "Report to governors" not in manager.inner_text("main")
    assert _status(manager, report) == 403
    assert "Flags by category and month" not in manager.content()
    manager.context.close()
