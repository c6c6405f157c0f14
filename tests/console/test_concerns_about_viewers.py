"""Nobody finds a concern about themselves in the console, also when they are only named in
the text: a learner's disclosure that names a deputy DSL is the DSL's to read, and for that
deputy it does not exist (queue, case page, export, search), in a real browser."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.console.conftest import DEPUTY, DSL, World, comment, sign_in

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
