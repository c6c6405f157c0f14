"""WCAG 2.2 AA: axe-core (from the npm registry) run in the same Chromium finds no serious or
critical violation on the queue, case, search and report pages, at desktop and phone widths; and
nothing is hidden sideways on a phone."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import axe_violations
from tests.console.conftest import DSL, MANAGER, World, sign_in

pytestmark = pytest.mark.slow

PAGES = [
    ("queue", "/"),
    ("queue, filtered", "/?status=all&severity=4&sort=severity"),
    ("case", "/flags/{c-disclosure}"),
    ("case with a thread", "/flags/{c2-disclosure}"),
    ("a concern about a member of staff", "/flags/{chat-tutor}"),
    ("search", "/search?q=hurts"),
    ("reports", "/reports"),
    ("governors' report", "/reports/governors?from=2026-09-01&to=2026-12-31"),
    ("governors' report, a year", "/reports/governors?from=2026-01-01&to=2026-12-31"),
    ("system", "/system"),
    ("audit log", "/audit"),
]


def _url(world: World, path: str) -> str:
    for name, flag_id in world.flags.items():
        path = path.replace("{" + name + "}", str(flag_id))
    return world.url + path


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)],
                         ids=["desktop", "phone"])
def test_no_serious_or_critical_accessibility_violations(browser: Any, world: World,
                                                        width: int, height: int):
    page = sign_in(browser, world, DSL, width=width, height=height, bypass_csp=True)
    found = {}
    for name, path in PAGES:
        response = page.goto(_url(world, path))
        assert response is not None and response.status == 200, name
        violations = axe_violations(page)
        if violations:
            found[name] = violations
        # a phone never has to scroll sideways to read a page (tables scroll in their box)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name}: {overflow}px wider than the screen"
    assert found == {}
    page.context.close()


def test_the_sign_in_and_refusal_pages_are_accessible(browser: Any, world: World):
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(world.url + "/signin")
    assert axe_violations(page) == []
    context.close()
    page = sign_in(browser, world, "nobody@elsewhere.example.com", bypass_csp=True)
    assert axe_violations(page) == []
    page.context.close()


def test_a_managers_masked_case_is_accessible(browser: Any, world: World):
    page = sign_in(browser, world, MANAGER, bypass_csp=True)
    page.goto(_url(world, "/flags/{post-2}"))
    assert axe_violations(page) == []
    page.context.close()
