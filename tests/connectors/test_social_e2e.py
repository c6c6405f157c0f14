"""End to end, per platform: a recorded platform answer -> items -> the detection engine with the
example organisation's registers -> a learner-details finding -> the moderation decision "hide"
-> the exact HTTP request the platform needs.

Policy duty (P1 "Managing our online presence"): no identifying details of learners on the
official accounts; a comment that names a learner is hidden by the account managers. The comment
texts are this project's own, written into copies of recorded payloads; the learners are the
invented ones of examples/registers.toml.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import ModerationAction
from connectors.facebook import FacebookPageConnector, FacebookSettings
from connectors.instagram import InstagramConnector, InstagramSettings
from connectors.x import XConnector, XSettings
from governance_bot.config import load_config
from governance_bot.history import MemoryHistory
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, read_toml
from tests.cassettes import load_cassette, route
from tests.shared import require_shared

pytest.importorskip("rules.learner_pii", reason="needs the learner_pii detector (issue 2)")

from governance_bot.findings import Category, Finding
from rules.base import DetectionContext
from rules.engine import DetectionEngine

pytestmark = pytest.mark.shared

REPO = Path(__file__).resolve().parents[2]
BASE = "https://platform.test"
API = "v21.0"


@pytest.fixture(scope="module")
def engine() -> DetectionEngine:
    return DetectionEngine.from_config(load_config(None, env={}), only=["learner_pii"])


@pytest.fixture(scope="module")
def context() -> DetectionContext:
    registers = RegisterIndex(read_toml(REPO / "examples" / "registers.toml"))
    return DetectionContext(registers=registers, history=MemoryHistory(),
                            now=datetime(2026, 9, 21, 12, tzinfo=UTC))


def learner_findings(engine: DetectionEngine, ctx: DetectionContext, item: Item
                     ) -> list[Finding]:
    return [f for f in engine.detect(ctx.registers.resolve(item), ctx)
            if f.category is Category.learner_pii]


def meta(rel: str) -> Any:
    return json.loads(require_shared("fixtures", "meta", *rel.split("/")).read_text("utf-8"))


# must-catch: (comment text, register entry); must-not-catch: comment text
MUST_CATCH = [
    ("Well done Maisie O'Connell, what a speech!", "learner:L002"),
    ("Jayden Price's mum here, call us on 07700 900123", "learner:L001"),
    ("so proud of @rubyfletch at sports day", "learner:L006"),
]
MUST_NOT_CATCH = [
    "What time does the open evening start?",
    "Thank you to all the staff for a brilliant concert",
]


# --- Facebook ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "entry"), MUST_CATCH)
@respx.mock(assert_all_mocked=True)
def test_facebook_a_comment_naming_a_learner_is_hidden(
        text: str, entry: str, engine: DetectionEngine, context: DetectionContext,
        respx_mock: respx.MockRouter) -> None:
    page = "104000000001"
    feed = copy.deepcopy(meta("facebook/apidata/posts/single_post_data_fields.json"))
    comment = copy.deepcopy(meta("facebook/models/comment.json"))
    comment["message"] = text
    respx_mock.get(f"{BASE}/{API}/{page}/feed").respond(json={"data": [feed]})
    respx_mock.get(f"{BASE}/{API}/{feed['id']}/comments").respond(json={"data": [comment]})
    hide = respx_mock.post(f"{BASE}/{API}/{comment['id']}").respond(json={"success": True})
    settings = FacebookSettings(name="fb", type="facebook", account="brookfield-facebook",
                                page_id=page, access_token="t", base_url=BASE,
                                read_messages=False)
    connector = FacebookPageConnector(settings, client=httpx.Client())

    items = {i.id: i for i in connector.fetch(None).items}
    flagged = [i for i in items.values() if learner_findings(engine, context, i)]
    assert [i.id for i in flagged] == [comment["id"]]
    (finding,) = learner_findings(engine, context, items[comment["id"]])[:1]
    assert finding.evidence.register_entry == entry

    result = connector.moderate(flagged[0], ModerationAction.hide)
    assert result.ok
    request = hide.calls.last.request
    assert request.method == "POST"
    assert request.url.path == f"/{API}/{comment['id']}"
    assert dict(httpx.QueryParams(request.content.decode())) == {"is_hidden": "true"}


@pytest.mark.parametrize("text", MUST_NOT_CATCH)
def test_facebook_a_comment_without_learner_details_is_left_alone(
        text: str, engine: DetectionEngine, context: DetectionContext) -> None:
    from connectors.facebook import parse_comment

    comment = dict(meta("facebook/models/comment.json"), message=text)
    item = parse_comment(comment, "brookfield-facebook", "2954961744718970")
    assert learner_findings(engine, context, item) == []


# --- Instagram ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "entry"), MUST_CATCH)
@respx.mock(assert_all_mocked=True)
def test_instagram_a_comment_naming_a_learner_is_hidden(
        text: str, entry: str, engine: DetectionEngine, context: DetectionContext,
        respx_mock: respx.MockRouter) -> None:
    user = "178400000001"
    media = meta("instagram/apidata/medias/media_default.json")
    comment = dict(meta("instagram/apidata/comments/comment_fields.json"), text=text)
    respx_mock.get(f"{BASE}/{API}/{user}/media").respond(json={"data": [media]})
    respx_mock.get(f"{BASE}/{API}/{media['id']}/comments").respond(json={"data": [comment]})
    hide = respx_mock.post(f"{BASE}/{API}/{comment['id']}").respond(json={"success": True})
    settings = InstagramSettings(name="ig", type="instagram", account="brookfield-instagram",
                                 ig_user_id=user, access_token="t", base_url=BASE,
                                 read_tags=False)
    connector = InstagramConnector(settings, client=httpx.Client())

    items = {i.id: i for i in connector.fetch(None).items}
    flagged = [i for i in items.values() if learner_findings(engine, context, i)]
    assert [i.id for i in flagged] == [comment["id"]]
    assert learner_findings(engine, context, flagged[0])[0].evidence.register_entry == entry

    assert connector.moderate(flagged[0], ModerationAction.hide).ok
    request = hide.calls.last.request
    assert (request.method, request.url.path) == ("POST", f"/{API}/{comment['id']}")
    assert dict(httpx.QueryParams(request.content.decode())) == {"hide": "true"}


# --- X -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "entry"), MUST_CATCH)
@respx.mock(assert_all_mocked=True)
def test_x_a_reply_naming_a_learner_is_hidden(
        text: str, entry: str, engine: DetectionEngine, context: DetectionContext,
        respx_mock: respx.MockRouter) -> None:
    (tweets,) = load_cassette("test_client_get_users_tweets.yaml")
    (search,) = load_cassette("test_client_search_recent_tweets.yaml")
    own = copy.deepcopy(tweets.json())
    own["meta"].pop("next_token")
    conversation = own["data"][0]["id"]
    replies = copy.deepcopy(search.json())
    replies["meta"].pop("next_token", None)
    reply = replies["data"][0]
    reply.update(text=text, author_id="2244994945", conversation_id=conversation,
                 referenced_tweets=[{"type": "replied_to", "id": conversation}])
    replies["data"] = [reply]
    replies["includes"] = {"users": [{"id": "2244994945", "username": "a_local_parent",
                                      "name": "A Local Parent"}]}
    route(respx_mock, tweets, BASE, body=own)
    route(respx_mock, search, BASE, body=replies)
    hide = respx_mock.put(f"{BASE}/2/tweets/{reply['id']}/hidden").respond(
        json={"data": {"hidden": True}})
    settings = XSettings(name="x", type="x", account="brookfield-x", user_id="783214",
                         access_token="t", base_url=BASE, read_mentions=False,
                         read_direct_messages=False)
    newest = (int(conversation) >> 22) + 1288834974657
    connector = XConnector(settings, client=httpx.Client(),
                           clock=lambda: newest / 1000 + 86400)

    items = {i.id: i for i in connector.fetch(None).items}
    flagged = [i for i in items.values() if learner_findings(engine, context, i)]
    assert [i.id for i in flagged] == [reply["id"]]
    assert learner_findings(engine, context, flagged[0])[0].evidence.register_entry == entry

    assert connector.moderate(flagged[0], ModerationAction.hide).ok
    request = hide.calls.last.request
    assert (request.method, request.url.path) == ("PUT", f"/2/tweets/{reply['id']}/hidden")
    assert json.loads(request.content) == {"hidden": True}
