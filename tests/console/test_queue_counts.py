"""The queue counts exactly what need to know lets the viewer see (docs/routing.md): a flag that
exists for someone only because they wrote the item, or because a concern is about them, is
neither listed nor counted for them; and a flag is counted, filtered and shown as they see it
(a manager counts the post that also holds a disclosure as the learner named in it, never as
"safeguarding").

The console (``build_console``) over plain HTTP, signed in through the local OpenID Connect
provider; the flags are made by the real pipeline from test-only detectors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from governance_bot.config import Config
from governance_bot.console import build_console
from governance_bot.routing import Router
from governance_bot.runtime import Runtime
from governance_bot.storage import models as m
from rules.engine import DETECTORS, DetectionEngine
from tests.console.conftest import (
    DSL,
    MANAGER,
    REGISTERS,
    SECOND_MANAGER,
    TUTOR,
    StaffConductTestDetector,
    comment,
)
from tests.console.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider
from tests.console.test_signin import oidc_sign_in
from tests.slack.helpers import TEST_DETECTORS

PAGE = {"id": "104000000001", "name": "Brookfield Academy"}
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with OidcProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def queue(tmp_path_factory: pytest.TempPathFactory, idp: OidcProvider
          ) -> Iterator[tuple[Any, dict[str, int]]]:
    tmp = tmp_path_factory.mktemp("queue")
    config = Config(database={"url": f"sqlite:///{tmp / 'gb.db'}"}, registers={"file": REGISTERS},
                    detection={"disabled_rules": list(DETECTORS)}, delivery={"sink": "json"},
                    service={"host": "127.0.0.1"},
                    console={"session_secret": "s3cret", "oidc": {
                        "issuer": idp.url, "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET}})
    rt = Runtime.from_config(config, with_connectors=False)
    rt.pipeline.engine = DetectionEngine(  # type: ignore[assignment]
        [*TEST_DETECTORS, StaffConductTestDetector()], Router())  # type: ignore[list-item]
    items = {
        # Tom Ashworth, a manager of the page, names a learner in his own post: the other
        # manager's to decide, never his
        "tom-post": comment("tom-post", "Well done Jayden Price, brilliant result!",
                            {"email": MANAGER}, kind="post", thread="tom-post", at=T0),
        # a parent names a learner and discloses abuse: the managers' part (the name) and the
        # DSL's (the disclosure)
        "mixed": comment("mixed", "Maisie O'Connell said he hurts me at home",
                         {"handle": "@aparent"}, thread="mixed",
                         at=T0 + timedelta(minutes=10)),
        # the page names a learner: both managers'
        "plain": comment("plain", "Congratulations to Jayden Price on the chess title!", PAGE,
                         kind="post", thread="plain", at=T0 + timedelta(minutes=20)),
        # a tutor signs off a chat to a learner with kisses: the DSL's (the case manager)
        "chat": comment("chat", "see you tomorrow xx", {"email": TUTOR},
                        account="brookfield-teams", platform="teams", kind="chat_message",
                        thread="chat-1", recipients=[{"email": "oliver.smithhughes@students."
                                                               "brookfield.example.org"}],
                        at=T0 + timedelta(minutes=30)),
    }
    rt.pipeline.process_many(list(items.values()))
    flags: dict[str, int] = {}
    with rt.db.session() as s:
        for native in items:
            flags[native] = int(s.execute(select(m.Flag.id).join(
                m.ItemRecord, m.ItemRecord.id == m.Flag.item_id).where(
                m.ItemRecord.native_id == native)).scalar_one())
    app = build_console(config, rt.db, lambda: rt.registers)
    yield app, flags
    rt.close()


def _page(app: Any, idp: OidcProvider, email: str, query: str = "") -> str:
    with TestClient(app) as client:
        assert oidc_sign_in(client, idp, email).status_code == 303
        resp = client.get(f"/{query}")
        assert resp.status_code == 200
        return resp.text


def _rows(html: str) -> dict[int, tuple[int, str]]:
    """{case: (severity shown, concern shown)} of the queue's rows."""
    body = html.split('id="queue-rows"', 1)[1].split("</tbody>", 1)[0]
    out = {}
    for row in re.findall(r"<tr.*?</tr>", body, re.S):
        case = int(re.search(r"Case (\d+)", row).group(1))  # type: ignore[union-attr]
        sev = int(re.search(r'class="sev-n">(\d)', row).group(1))  # type: ignore[union-attr]
        concern = re.search(r'data-label="Concern">([^<]*)<', row).group(1)  # type: ignore[union-attr]
        out[case] = (sev, concern)
    return out


def _total(html: str) -> int:
    return int(re.search(r'<h1>Flags[^<]*<span class="count">\((\d+)\)', html).group(1))  # type: ignore[union-attr]


def _tab(html: str, label: str) -> int:
    return int(re.search(rf'{label} <span class="count">(\d+)</span>', html).group(1))  # type: ignore[union-attr]


def _chips(html: str) -> dict[int, int]:
    summary = html.split('<p class="summary">', 1)[1].split("</p>", 1)[0] \
        if '<p class="summary">' in html else ""
    return {int(n): int(c) for n, c in re.findall(
        r'class="sev-n">(\d)</span>[^<]*</span>: (\d+)', summary)}


def test_a_manager_never_counts_the_post_they_wrote(queue: tuple[Any, dict[str, int]],
                                                    idp: OidcProvider) -> None:
    app, f = queue
    html = _page(app, idp, MANAGER)
    assert set(_rows(html)) == {f["mixed"], f["plain"]}  # not his own post, not the chat
    assert _total(html) == 2
    assert _tab(html, "Needing action") == 2 and _tab(html, "All") == 2
    assert _chips(html) == {3: 2}


def test_the_other_manager_counts_it(queue: tuple[Any, dict[str, int]],
                                     idp: OidcProvider) -> None:
    app, f = queue
    html = _page(app, idp, SECOND_MANAGER)
    assert set(_rows(html)) == {f["tom-post"], f["mixed"], f["plain"]}
    assert _total(html) == 3 and _tab(html, "All") == 3


def test_a_manager_counts_a_post_with_a_disclosure_as_what_they_see_of_it(
        queue: tuple[Any, dict[str, int]], idp: OidcProvider) -> None:
    app, f = queue
    rows = _rows(_page(app, idp, MANAGER))
    assert rows[f["mixed"]] == (3, "learner personal details")  # not "safeguarding", not 4
    # filtering on what only the DSL sees finds nothing for him, and counts nothing
    html = _page(app, idp, MANAGER, "?category=safeguarding")
    assert _rows(html) == {} and _total(html) == 0 and _tab(html, "All") == 0
    html = _page(app, idp, MANAGER, "?severity=4")
    assert _rows(html) == {} and _total(html) == 0
    html = _page(app, idp, MANAGER, "?route=dsl")
    assert _rows(html) == {} and _total(html) == 0


def test_the_dsl_counts_the_disclosure_and_the_concern_about_the_tutor(
        queue: tuple[Any, dict[str, int]], idp: OidcProvider) -> None:
    app, f = queue
    html = _page(app, idp, DSL)
    rows = _rows(html)
    assert set(rows) == {f["mixed"], f["chat"]}
    assert rows[f["mixed"]] == (4, "safeguarding concern")
    assert _total(html) == 2 and _chips(html) == {4: 2}


def test_the_tutor_a_concern_is_about_counts_nothing(queue: tuple[Any, dict[str, int]],
                                                     idp: OidcProvider) -> None:
    app, _ = queue
    with TestClient(app) as client:
        assert oidc_sign_in(client, idp, TUTOR).status_code == 303
        html = client.get("/").text
    assert 'id="queue-rows"' not in html or _rows(html) == {}
    assert "see you tomorrow" not in html


def test_the_case_page_of_a_post_with_a_disclosure_is_headed_with_the_managers_part(
        queue: tuple[Any, dict[str, int]], idp: OidcProvider) -> None:
    app, f = queue
    with TestClient(app) as client:
        assert oidc_sign_in(client, idp, MANAGER).status_code == 303
        html = client.get(f"/flags/{f['mixed']}").text
    head = html.split("<h1>", 1)[1].split("</p>", 1)[0]
    assert "learner personal details" in head and "account managers" in head
    assert "safeguarding" not in html.lower() and "hurts" not in html
    assert "DSL and deputies" not in head


def test_a_manager_never_reads_the_dsl_sides_work_on_a_post_with_a_disclosure(
        queue: tuple[Any, dict[str, int]], idp: OidcProvider) -> None:
    """The account managers of a post that also holds a disclosure read their own part's
    history, never the case side's: who acknowledged the disclosure, which deputy has it, who
    read it in the console (as in Slack, where those lines are the case view's only)."""
    app, f = queue
    case = f["mixed"]
    with TestClient(app) as client:
        assert oidc_sign_in(client, idp, DSL).status_code == 303
        html = client.get(f"/flags/{case}").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        for action, fields in (("acknowledge", {}), ("assign", {"assignee": "S002"})):
            resp = client.post(f"/flags/{case}/actions/{action}",
                               data={"csrf_token": token, **fields}, follow_redirects=False)
            assert resp.status_code == 303 and "problem" not in resp.headers["location"]
        dsl_view = client.get(f"/flags/{case}").text
    # the DSL's own page shows the work (the test would prove nothing otherwise)
    assert "assigned to Marcus Reid" in dsl_view and "Helen Okafor" in dsl_view
    with TestClient(app) as client:
        assert oidc_sign_in(client, idp, MANAGER).status_code == 303
        manager_view = client.get(f"/flags/{case}").text
    # (the flag's state, "acknowledged", is the post's too, as in Slack)
    for told in ("Helen Okafor", "Marcus Reid", "assigned", "viewed in the console"):
        assert told not in manager_view, told
