"""Need to know in the console, in a real browser signed in through a real OpenID Connect flow:
each person finds exactly the cases their role entitles them to, sees them at the level of
detail the policy allows, and a guessed URL, a search or an export finds nothing more."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.console.conftest import (
    ADMIN,
    DEPUTY,
    DSL,
    LEAVER,
    MANAGER,
    SECOND_MANAGER,
    TUTOR,
    UNKNOWN,
    World,
    sign_in,
)

pytestmark = pytest.mark.slow


def queue_cases(page: Any) -> set[int]:
    links = page.locator("#queue-rows a").all_inner_texts()
    return {int(re.sub(r"\D", "", t)) for t in links}


def status_of(page: Any, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return int(response.status)


def test_an_unknown_email_is_refused_with_a_clear_page(browser: Any, world: World):
    page = sign_in(browser, world, UNKNOWN)
    assert "You cannot use this console" in page.content()
    assert UNKNOWN in page.inner_text("main")
    assert "not an active member of staff in the register" in page.inner_text("main")
    # nothing signed in: the queue sends them back to the sign-in page
    page.goto(world.url + "/")
    assert page.url.startswith(world.url + "/signin")
    refused = world.audit("console.signin_refused")
    assert any(e.actor == f"console:{UNKNOWN}" for e in refused)
    page.context.close()


def test_the_dsl_finds_every_safeguarding_and_staff_conduct_case(browser: Any, world: World):
    page = sign_in(browser, world, DSL)
    assert page.url == world.url + "/"
    assert "Helen Okafor" in page.inner_text("header")
    f = world.flags
    # safeguarding and the concerns about staff (she is the case manager); the accounts'
    # content flags are their managers'
    assert queue_cases(page) == {f["c-disclosure"], f["c2-disclosure"], f["chat-tutor"],
                                 f["chat-deputy"], f["c-explicit"]}
    # the disclosure's case page names the child and shows the thread around it
    assert status_of(page, f"{world.url}/flags/{f['c-disclosure']}") == 200
    main = page.inner_text("main")
    assert "Maisie O'Connell" in main and "he hurts me at home" in main
    assert "What a day, loved the relay" in main and "Great photos!" in main
    assert world.audit("console.view", f"flag:{f['c-disclosure']}")
    page.context.close()


def test_a_manager_finds_only_their_accounts_flags_with_learners_masked(browser: Any,
                                                                         world: World):
    page = sign_in(browser, world, MANAGER)
    f = world.flags
    assert queue_cases(page) == {f["post-2"], f["post-photo"]}
    assert status_of(page, f"{world.url}/flags/{f['post-2']}") == 200
    main = page.inner_text("main")
    assert "Jayden" not in main and "Price" not in main and "█████" in main
    assert "Congratulations to" in main
    # the thread shows the neighbours they may see, never the disclosure under the post
    assert "Brilliant, well done!" in main and "hurts" not in main and "chess club" not in main
    # safeguarding, staff conduct and another account's flags do not exist for them
    for native in ("c-disclosure", "c2-disclosure", "chat-tutor", "chat-deputy", "ig-1",
                   "c-explicit"):
        assert status_of(page, f"{world.url}/flags/{f[native]}") == 404
        assert status_of(page, f"{world.url}/flags/{f[native]}/export.pdf") == 404
    page.goto(f"{world.url}/search?q=hurts")
    assert "0 results" in page.inner_text("main")
    page.goto(f"{world.url}/search?q=Jayden")  # names are masked for managers: no hit on them
    assert "0 results" in page.inner_text("main")
    for admin_page in ("/audit", "/system"):
        assert status_of(page, world.url + admin_page) == 403
    # exports for a referral are the DSL team's
    assert status_of(page, f"{world.url}/flags/{f['post-2']}/export.pdf") == 403
    page.context.close()


def test_each_manager_finds_the_flags_of_the_accounts_they_manage(browser: Any, world: World):
    page = sign_in(browser, world, SECOND_MANAGER)  # Facebook, Instagram and X
    assert queue_cases(page) == {world.flags["ig-1"], world.flags["post-2"],
                                 world.flags["post-photo"]}
    page.context.close()


def test_a_leaver_still_listed_as_a_manager_cannot_sign_in(browser: Any, world: World):
    page = sign_in(browser, world, LEAVER)
    assert "You cannot use this console" in page.inner_text("main")
    page.goto(f"{world.url}/flags/{world.flags['ig-1']}")
    assert page.url.startswith(world.url + "/signin")
    page.context.close()


def test_the_tutor_who_is_the_subject_of_a_concern_cannot_find_it(browser: Any, world: World):
    page = sign_in(browser, world, TUTOR)
    assert "Nothing to act on" in page.inner_text("main")
    case = world.flags["chat-tutor"]
    for path in (f"/flags/{case}", f"/flags/{case}/export.pdf", f"/flags/{case}/export.csv",
                 f"/flags/{case}/export.json"):
        assert status_of(page, world.url + path) == 404
        assert "see you tomorrow" not in page.content()
    assert status_of(page, f"{world.url}/search?q=see+you+tomorrow") == 403
    assert "see you tomorrow" not in page.content()
    page.context.close()


def test_a_deputy_never_finds_the_concern_about_themselves(browser: Any, world: World):
    page = sign_in(browser, world, DEPUTY)
    f = world.flags
    cases = queue_cases(page)
    # the disclosures, yes; the concern about them, never (nor the one about the tutor: the
    # case manager's, who is the DSL)
    assert cases == {f["c-disclosure"], f["c2-disclosure"], f["c-explicit"]}
    for path in (f"/flags/{f['chat-deputy']}", f"/flags/{f['chat-deputy']}/export.json"):
        assert status_of(page, world.url + path) == 404
    page.goto(f"{world.url}/search?q=thanks+for+today")
    assert "0 results" in page.inner_text("main")
    page.goto(f"{world.url}/search?staff=Marcus")
    assert "0 results" in page.inner_text("main")
    page.goto(f"{world.url}/search?q=hurts+me")  # the disclosures are theirs to find
    assert "2 results" in page.inner_text("main")
    page.context.close()


def test_guessed_urls_answer_404_or_send_to_sign_in(browser: Any, world: World):
    context = browser.new_context()
    page = context.new_page()
    for path in ("/", f"/flags/{world.flags['c-disclosure']}", "/search?q=hurts", "/audit",
                 f"/flags/{world.flags['c-disclosure']}/export.pdf"):
        page.goto(world.url + path)
        assert page.url.startswith(world.url + "/signin"), path
    context.close()
    page = sign_in(browser, world, DSL)
    for path in ("/flags/999999", "/flags/abc", "/flags/1/export.exe", "/flags/-1",
                 "/reports/access-audit/4242"):
        assert status_of(page, world.url + path) == 404, path
    page.context.close()


def test_a_kept_photo_is_shown_as_a_thumbnail_and_an_explicit_image_never(browser: Any,
                                                                          world: World):
    page = sign_in(browser, world, MANAGER)
    assert status_of(page, f"{world.url}/flags/{world.flags['post-photo']}") == 200
    thumb = page.locator("img.thumb")
    assert thumb.count() == 1
    assert page.evaluate("document.querySelector('img.thumb').naturalWidth") == 64
    page.context.close()
    page = sign_in(browser, world, DSL)
    explicit = world.flags["c-explicit"]
    assert status_of(page, f"{world.url}/flags/{explicit}") == 200
    assert page.locator("img").count() == 0
    assert "never displayed" in page.inner_text("main")
    assert status_of(page, f"{world.url}/flags/{explicit}/media/0") == 404
    page.context.close()


def test_an_administrator_sees_system_health_and_the_audit_never_case_content(browser: Any,
                                                                              world: World):
    page = sign_in(browser, world, ADMIN)
    assert page.url == world.url + "/system"  # no queue: straight to system health
    main = page.inner_text("main")
    assert "Audit log" in main and "intact" in main and "Connectors" in main
    assert status_of(page, world.url + "/audit") == 200
    assert "console.signin" in page.inner_text("main")  # the log, by action and record
    for native in ("c-disclosure", "post-2", "chat-tutor"):
        assert status_of(page, f"{world.url}/flags/{world.flags[native]}") == 404
        assert status_of(page, f"{world.url}/flags/{world.flags[native]}/export.json") == 404
    assert status_of(page, f"{world.url}/search?q=hurts") == 403
    assert "hurts" not in page.content()
    page.context.close()
