"""Through the real pipeline and archive: a status seen before and missing from a later complete
listing is marked deleted (its last copy kept, a deletion flag raised), a reply removed from a
thread likewise, an edit becomes a new version, and a direct message outside any complete
listing is never marked deleted. Policy: "staff do not delete messages sent to or from
organisation accounts"; "evidence of offences is not deleted"."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from sqlalchemy import select

from connectors.mastodon import MastodonConnector, MastodonSettings
from governance_bot.config import Config
from governance_bot.runtime import Runtime
from governance_bot.storage import models as m
from tests.shared import require_shared
from tests.social.replay import load_cassette

BASE = "http://localhost:3000"
pytestmark = pytest.mark.shared


def recorded() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The token's account, a page of its statuses, and a recorded reply by another account."""
    interactions = load_cassette(require_shared("fixtures", "mastodon", "cassettes",
                                                "test_fetch_next_previous.yaml"))
    me = next(i for i in interactions if i.uri.endswith("verify_credentials")).json()
    page = next(i for i in interactions if i.uri.endswith("/statuses?limit=5")).json()
    reply = next(s for i in load_cassette(require_shared(
        "fixtures", "mastodon", "cassettes", "test_status_reply.yaml"))
        if i.status == 200 and i.method == "POST"
        for s in [i.json()] if s.get("in_reply_to_id"))
    return me, page, reply


class Replay:
    """What the instance answers now; each poll may change it."""

    def __init__(self, router: respx.Router, me: dict[str, Any]):
        self.statuses: list[dict[str, Any]] = []
        self.replies: dict[str, list[dict[str, Any]]] = {}
        self.conversations: list[dict[str, Any]] = []
        router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(
            return_value=httpx.Response(200, json=me))
        router.get(url__startswith=f"{BASE}/api/v1/accounts/{me['id']}/statuses").mock(
            side_effect=lambda r: httpx.Response(200, json=self.statuses))
        router.get(url__regex=rf"{BASE}/api/v1/statuses/\d+/context").mock(
            side_effect=lambda r: httpx.Response(200, json={
                "ancestors": [], "descendants": self.replies.get(r.url.path.split("/")[-2], [])}))
        router.get(url__startswith=f"{BASE}/api/v1/notifications").mock(
            return_value=httpx.Response(200, json=[]))
        router.get(url__startswith=f"{BASE}/api/v1/conversations").mock(
            side_effect=lambda r: httpx.Response(200, json=self.conversations))


def test_deleted_statuses_and_replies_are_recorded_and_edits_versioned(
    make_config: Callable[..., Config], router: respx.Router, client: httpx.Client,
):
    me, page, reply = recorded()
    rt = Runtime.from_config(make_config(), with_connectors=False)
    now = datetime(2026, 8, 2, tzinfo=UTC)
    masto = MastodonConnector(MastodonSettings.model_validate({
        "name": "masto", "type": "mastodon", "account": "brookfield-mastodon", "base_url": BASE,
        "access_token": "t", "backfill_days": 3650}), client=client, sleep=lambda s: None,
        clock=now.timestamp)
    replay = Replay(router, me)
    target, edited, parent = page[1], copy.deepcopy(page[2]), page[0]
    reply = dict(reply, in_reply_to_id=parent["id"], created_at=parent["created_at"])
    dm = dict(copy.deepcopy(page[4]), id="117020580999999999", visibility="direct")
    replay.statuses = page
    replay.replies = {parent["id"]: [reply]}
    replay.conversations = [{"id": "7", "unread": False, "accounts": [], "last_status": dm}]

    first = rt.pipeline.scan(masto)
    assert first.deleted == 0 and not first.problems

    edited["content"] = "<p>Corrected: the trip leaves at 8:30</p>"
    edited["edited_at"] = "2026-08-01T15:00:00.000Z"
    replay.statuses = [page[0], edited, *page[3:]]  # target deleted on the platform
    replay.replies = {parent["id"]: []}  # the reply was deleted by its author
    replay.conversations = []  # the DM fell out of the conversation list: not a deletion
    second = rt.pipeline.scan(masto)
    assert second.deleted == 2

    with rt.db.session() as s:
        gone = {r.native_id for r in s.execute(
            select(m.ItemRecord).where(m.ItemRecord.deleted_at.is_not(None))).scalars()}
        assert gone == {target["id"], reply["id"]}
        record = s.execute(select(m.ItemRecord).where(
            m.ItemRecord.native_id == target["id"])).scalar_one()
        kept = s.execute(select(m.ItemVersion).where(m.ItemVersion.item_id == record.id)
                         ).scalar_one()
        assert kept.data["id"] == target["id"]  # the last copy is preserved
        flag = s.execute(select(m.Flag).where(m.Flag.item_id == record.id)).scalar_one()
        assert flag.category == "deletion"
        versions = s.execute(select(m.ItemVersion.version).join(m.ItemRecord).where(
            m.ItemRecord.native_id == edited["id"])).scalars().all()
        assert sorted(versions) == [1, 2]
