"""Mastodon: every status in the recorded Mastodon.py cassettes becomes an item true to it (ids,
authors, replies, UTC times, HTML to text, media, visibility); fetch follows Link paging; rate
limits are honoured; deleting sends DELETE /api/v1/statuses/:id."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors.base import ModerationAction
from connectors.mastodon import MastodonConnector, MastodonSettings, status_item
from governance_bot.items import ItemKind, Visibility
from tests.shared import require_shared, shared_dir
from tests.social.conftest import Sleeps
from tests.social.replay import Interaction, load_cassette, mount_cassette

BASE = "http://localhost:3000"
TOKEN = "mastodon-secret-token-123"
pytestmark = pytest.mark.shared


def cassette(name: str) -> list[Interaction]:
    return load_cassette(require_shared("fixtures", "mastodon", "cassettes", name))


def connector(client: httpx.Client, sleeps: Sleeps, clock: float | None = None,
              **extra: Any) -> MastodonConnector:
    settings = MastodonSettings.model_validate({
        "name": "masto", "type": "mastodon", "account": "brookfield-mastodon",
        "base_url": BASE, "access_token": TOKEN, "backfill_days": 3650, **extra,
    })
    kwargs: dict[str, Any] = {"client": client, "sleep": sleeps}
    if clock is not None:
        kwargs["clock"] = lambda: clock
    return MastodonConnector(settings, **kwargs)


def _is_status(x: Any) -> bool:
    return isinstance(x, dict) and "content" in x and "account" in x and "visibility" in x


def statuses_in(body: Any) -> list[dict[str, Any]]:
    """Every status a response carries: a status, a list, notifications, conversations, a
    context."""
    if _is_status(body):
        return [body]
    if isinstance(body, dict) and "descendants" in body:
        return [*body.get("ancestors", []), *body["descendants"]]
    if isinstance(body, list):
        out = []
        for x in body:
            if _is_status(x):
                out.append(x)
            elif isinstance(x, dict) and _is_status(x.get("status")):
                out.append(x["status"])
            elif isinstance(x, dict) and _is_status(x.get("last_status")):
                out.append(x["last_status"])
        return out
    return []


def _cassettes_with_statuses() -> list[str]:
    base = shared_dir()
    if base is None:
        return ["(../shared absent)"]
    names = []
    for path in sorted((base / "fixtures" / "mastodon" / "cassettes").glob("*.yaml")):
        for it in load_cassette(path):
            try:
                if it.status < 400 and statuses_in(it.json()):
                    names.append(path.name)
                    break
            except ValueError:
                continue
    return names


EXPECTED_VISIBILITY = {"public": Visibility.public, "unlisted": Visibility.public,
                       "private": Visibility.followers, "direct": Visibility.direct}


@pytest.mark.parametrize("name", _cassettes_with_statuses())
def test_every_recorded_status_becomes_an_item_true_to_the_payload(
    name: str, router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    interactions = cassette(name)
    mount_cassette(router, interactions)
    masto = connector(client, sleeps)
    checked = 0
    for it in interactions:
        try:
            if it.status >= 400 or not statuses_in(it.json()):
                continue
        except ValueError:
            continue
        url = httpx.URL(it.uri)
        body = masto.request(it.method, str(url)).json()  # replayed through respx
        for raw in statuses_in(body):
            item = status_item(raw, "brookfield-mastodon")
            if raw.get("reblog"):
                assert item is None  # a boost is someone else's status
                continue
            assert item is not None
            checked += 1
            assert item.id == raw["id"]
            assert item.author.id == raw["account"]["id"]
            assert item.author.handle == raw["account"]["acct"]
            assert item.created_at.tzinfo == UTC
            assert item.created_at == datetime.fromisoformat(
                raw["created_at"].replace("Z", "+00:00"))
            assert item.visibility == EXPECTED_VISIBILITY[raw["visibility"]]
            assert item.parent_id == raw["in_reply_to_id"]
            assert "<p>" not in item.text and "</" not in item.text
            # everything a reader sees is in the text, each part where it came from
            shown = {p.source: item.text[p.start:p.end] for p in item.parts}
            if raw["spoiler_text"]:
                assert shown["content warning"] == raw["spoiler_text"]
            for option in (raw.get("poll") or {}).get("options", []):
                assert option["title"] in shown["poll options"]
            quoted = (raw.get("quote") or {}).get("quoted_status")
            if quoted:
                assert item.quoted_id == quoted["id"]  # type: ignore[attr-defined]
                assert [p.ref for p in item.parts if p.source == "quoted post"] == [quoted["id"]]
            if (raw.get("card") or {}).get("title"):
                assert raw["card"]["title"] in shown["link card"]
            for attachment in raw["media_attachments"]:
                if attachment.get("description"):
                    assert attachment["description"] in item.text
            assert item.sensitive is raw["sensitive"]  # type: ignore[attr-defined]
            assert item.language == raw.get("language")  # type: ignore[attr-defined]
            # the attachments in order, then each video's or GIF's still as a thumbnail
            assert [m.url for m in item.media if not m.thumbnail] == [
                a["url"] for a in raw["media_attachments"]]
            assert [m.url for m in item.media if m.thumbnail] == [
                a["preview_url"] for a in raw["media_attachments"]
                if a["type"] in ("video", "gifv") and a.get("preview_url")]
            if raw["visibility"] == "direct":
                assert item.kind == ItemKind.direct_message
            elif raw["in_reply_to_id"]:
                assert item.kind == ItemKind.reply
            else:
                assert item.kind == ItemKind.post
            assert item.url == raw["url"]
    assert checked > 0


def test_html_is_read_as_the_text_a_person_sees():
    raw = next(s for it in cassette("test_status_reply.yaml") if it.status == 200
               for s in statuses_in(it.json()) if s["in_reply_to_id"])
    item = status_item(raw, "acct")
    assert item is not None
    assert raw["content"].startswith('<p><span class="h-card"')
    assert item.text == "@mastodonpy_test_2 same!"


@pytest.mark.parametrize(("html", "text"), [
    ("<p>Well done Year 9!</p><p>Photos to follow</p>", "Well done Year 9!\n\nPhotos to follow"),
    ("<p>line one<br>line two<br />line three</p>", "line one\nline two\nline three"),
    ("<p>Fish &amp; chips &lt;3</p>", "Fish & chips <3"),
    ('<p><a href="https://example.org/x" rel="nofollow">example.org/x</a></p>', "example.org/x"),
    ("", ""),
    # text outside <p> is what a reader sees too: lists, preformatted text, top-level quotes
    ("<p>Our plan:</p><ul><li>meet at 9</li><li>bring kit</li></ul><p>Thanks!</p>",
     "Our plan:\n\n- meet at 9\n- bring kit\n\nThanks!"),
    ("<ol><li>Ruby</li><li>Tom</li></ol>", "1. Ruby\n2. Tom"),
    ("<pre>code  block</pre><blockquote>quoted <b>reply</b></blockquote>",
     "code  block\n\nquoted reply"),
])
def test_status_html_becomes_plain_text(html: str, text: str):
    from connectors.base import html_to_text

    assert html_to_text(html) == text


def test_a_direct_message_is_a_direct_item_with_its_recipients():
    raw = next(s for it in cassette("test_status_post[None-direct].yaml") if it.status == 200
               for s in statuses_in(it.json()) if s["visibility"] == "direct")
    item = status_item(raw, "acct")
    assert item is not None
    assert item.kind == ItemKind.direct_message and item.visibility == Visibility.direct


def test_media_attachments_keep_url_type_and_description():
    raws = [s for name in ("test_media_post[False].yaml", "test_status_update_with_media_edit.yaml")
            for it in cassette(name) if it.status == 200
            for s in statuses_in(it.json()) if s["media_attachments"]]
    assert raws, "the media cassettes hold statuses with attachments"
    for raw in raws:
        item = status_item(raw, "acct")
        assert item is not None
        attached = [m for m in item.media if not m.thumbnail]
        for media, att in zip(attached, raw["media_attachments"], strict=True):
            assert media.url == att["url"]
            assert media.alt_text == att["description"]
            expected = {".jpg": "image/jpeg", ".png": "image/png", ".mp4": "video/mp4"}[
                Path(httpx.URL(att["url"]).path).suffix]
            assert media.mime_type == expected
        # a video's still is a picture to read, marked as a thumbnail
        stills = [m for m in item.media if m.thumbnail]
        videos = [a for a in raw["media_attachments"] if a["type"] in ("video", "gifv")]
        assert [m.url for m in stills] == [a["preview_url"] for a in videos]
        assert all(m.mime_type == "image/jpeg" for m in stills)


def test_an_edited_status_carries_its_edit_time():
    raws = [s for it in cassette("test_status_edit.yaml") if it.status == 200
            for s in statuses_in(it.json()) if s.get("edited_at")]
    assert raws
    item = status_item(raws[-1], "acct")
    assert item is not None and item.edited_at is not None and item.edited_at.tzinfo == UTC


def test_fetch_follows_link_paging_of_the_accounts_statuses_to_the_end(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    recorded = cassette("test_fetch_next_previous.yaml")
    me = next(i for i in recorded if i.uri.endswith("verify_credentials"))
    own = me.json()["id"]
    pages = [i for i in recorded if i.method == "GET" and "/statuses?limit=5" in i.uri
             and "min_id" not in i.uri]
    assert len(pages) == 2
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    route = router.get(url__startswith=f"{BASE}/api/v1/accounts/{own}/statuses").mock(
        side_effect=[pages[0].response(), pages[1].response(), httpx.Response(200, json=[])])
    router.get(url__regex=rf"{BASE}/api/v1/statuses/\d+/context").mock(
        return_value=httpx.Response(200, json={"ancestors": [], "descendants": []}))
    router.get(url__startswith=f"{BASE}/api/v1/notifications").mock(
        return_value=httpx.Response(200, json=[]))
    router.get(url__startswith=f"{BASE}/api/v1/conversations").mock(
        return_value=httpx.Response(200, json=[]))
    result = connector(client, sleeps, clock=datetime(2026, 8, 2, tzinfo=UTC).timestamp()
                       ).fetch(None)
    assert route.call_count == 3
    assert route.calls[1].request.url.params["max_id"] == "117020580489281910"
    ids = {s["id"] for p in pages for s in p.json()}
    assert {i.id for i in result.items} == ids and len(ids) == 10
    assert all(i.parent_id == own for i in result.items)  # the account's own top-level posts
    assert any(w.parent_id == own for w in result.windows)
    assert sum(1 for w in result.windows if w.parent_id in ids) == 10


def test_fetch_reads_replies_mentions_and_conversations(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    convs = next(i for i in cassette("test_conversations.yaml")
                 if i.uri.endswith("/conversations/"))
    notes = next(i for i in cassette("test_notifications.yaml")
                 if i.uri.endswith("/api/v1/notifications"))
    me = next(i for i in cassette("test_conversations.yaml")
              if i.uri.endswith("verify_credentials"))
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    router.get(url__startswith=f"{BASE}/api/v1/accounts/").mock(
        return_value=httpx.Response(200, json=[]))
    notes_route = router.get(url__startswith=f"{BASE}/api/v1/notifications").mock(
        return_value=notes.response())
    router.get(url__startswith=f"{BASE}/api/v1/conversations").mock(
        return_value=convs.response())
    dm = convs.json()[0]["last_status"]
    earlier = dict(dm, id="117020593700000001", created_at="2026-08-01T13:50:00.000Z",
                   content="<p>@admin can we talk about Friday?</p>")
    chain = router.get(f"{BASE}/api/v1/statuses/{dm['id']}/context").mock(
        return_value=httpx.Response(200, json={"ancestors": [earlier], "descendants": []}))
    router.get(url__regex=rf"{BASE}/api/v1/statuses/\d+/context").mock(
        return_value=httpx.Response(200, json={"ancestors": [], "descendants": []}))
    result = connector(client, sleeps, clock=datetime(2026, 8, 2, tzinfo=UTC).timestamp()
                       ).fetch(None)
    assert notes_route.calls[0].request.url.params["types[]"] == "mention"
    assert chain.called  # the whole exchange, not only the conversation's last message
    assert result.items and {i.id: i for i in result.items}[earlier["id"]].kind == \
        ItemKind.direct_message
    mention = notes.json()[0]["status"]
    got = {i.id: i for i in result.items}
    assert got[dm["id"]].kind == ItemKind.direct_message
    assert got[mention["id"]].author.id == mention["account"]["id"]
    assert not result.problems


def test_near_the_rate_limit_the_connector_waits_for_the_reset(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    me = next(i for i in cassette("test_conversations.yaml")
              if i.uri.endswith("verify_credentials"))
    reset = "2026-08-01T14:00:00.000Z"
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=httpx.Response(
        200, json=me.json(), headers={"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "1",
                                      "X-RateLimit-Reset": reset}))
    now = datetime(2026, 8, 1, 13, 59, 15, tzinfo=UTC).timestamp()
    connector(client, sleeps, clock=now).me()
    assert sleeps == [45.0]


def test_plenty_of_requests_left_means_no_wait(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    me = next(i for i in cassette("test_conversations.yaml")
              if i.uri.endswith("verify_credentials"))
    assert me.headers["x-ratelimit-remaining"] == "299"
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    connector(client, sleeps).me()
    assert sleeps == []


def test_deleting_an_own_status_sends_delete_and_a_stranger_s_is_refused(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    recorded = cassette("test_fetch_next_previous.yaml")  # the poster is the token's account
    mount_cassette(router, recorded)
    posted = next(i for i in recorded if i.method == "POST" and i.uri.endswith("/statuses"))
    item = status_item(posted.json(), "acct")
    assert item is not None
    masto = connector(client, sleeps)
    result = masto.moderate(item, ModerationAction.delete)
    assert result.ok
    deletes = [c for c in router.calls if c.request.method == "DELETE"]
    assert [str(c.request.url) for c in deletes] == [f"{BASE}/api/v1/statuses/{item.id}"]
    stranger = item.model_copy(update={"author": item.author.model_copy(update={"id": "999"})})
    refused = masto.moderate(stranger, ModerationAction.delete)
    assert not refused.ok and "own" in refused.detail
    assert masto.moderation_actions() == {ModerationAction.delete}


def test_deleting_a_status_already_gone_is_reported_done(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    recorded = cassette("test_status_delete_media.yaml")
    gone = next(i for i in recorded if i.method == "DELETE" and i.status == 404)
    me = next(i for i in cassette("test_conversations.yaml")
              if i.uri.endswith("verify_credentials"))
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    router.delete(gone.uri).mock(return_value=gone.response())
    posted = next(i for i in recorded if i.method == "POST" and i.uri.endswith("/statuses")
                  and i.status == 200)
    raw = dict(posted.json(), id=gone.uri.rsplit("/", 1)[1], account=me.json())
    item = status_item(raw, "acct")
    assert item is not None
    assert connector(client, sleeps).moderate(item, ModerationAction.delete).detail == \
        "already gone"


def test_account_facts_report_privacy_settings_and_following(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    privacy = cassette("test_account_update_credentials_source_and_privacy.yaml")
    me = next(i for i in privacy if i.method == "PATCH" and i.status == 200)
    following = next(i for i in cassette("test_account_follow_unfollow.yaml")
                     if i.method == "POST" and "/follow" in i.uri)
    target = following.uri.split("/accounts/")[1].split("/")[0]
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    router.get(url__startswith=f"{BASE}/api/v1/accounts/{me.json()['id']}/following").mock(
        return_value=httpx.Response(200, json=[{"id": target, "acct": "jaydenprice10"}]))
    facts = connector(client, sleeps).account_facts()
    body = me.json()
    assert facts.privacy["locked"] == body["locked"]
    assert facts.privacy["indexable"] == body["indexable"]
    assert facts.privacy.get("default_visibility") == body["source"]["privacy"]
    assert facts.follows == ["jaydenprice10"]


def test_account_facts_report_noindex_group_and_who_may_quote(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    """Recorded from a real server: an account that set its quote policy to followers."""
    recorded = cassette("test_account_update_credentials_quote_policy.yaml")
    me = next(i for i in recorded if i.method == "PATCH" and i.status == 200
              and i.json()["source"].get("quote_policy") == "followers")
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    router.get(url__startswith=f"{BASE}/api/v1/accounts/{me.json()['id']}/following").mock(
        return_value=httpx.Response(200, json=[]))
    facts = connector(client, sleeps).account_facts()
    assert facts.privacy["noindex"] is False and facts.privacy["group"] is False
    assert facts.privacy["quote_policy"] == "followers"
    # the instance answered discoverable: null, so it is not a fact: the audit reports it unknown
    assert me.json()["discoverable"] is None and "discoverable" not in facts.privacy


def test_the_token_never_reaches_logs_or_repr(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps, caplog: pytest.LogCaptureFixture,
):
    me = next(i for i in cassette("test_conversations.yaml")
              if i.uri.endswith("verify_credentials"))
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), me.response()])
    masto = connector(client, sleeps)
    with caplog.at_level(logging.DEBUG):
        masto.me()
    assert sleeps == [2.0]
    assert TOKEN not in caplog.text and TOKEN not in repr(masto)
    assert json.dumps(masto.settings.masked()).count("**********") == 1




def test_a_status_deleted_between_listing_and_reading_its_replies_does_not_stop_the_poll(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    recorded = cassette("test_fetch_next_previous.yaml")
    me = next(i for i in recorded if i.uri.endswith("verify_credentials"))
    page = next(i for i in recorded if i.uri.endswith("/statuses?limit=5")).json()
    gone = next(i for i in cassette("test_status_delete_media.yaml")
                if i.method == "DELETE" and i.status == 404)  # the recorded "Record not found"
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    router.get(url__startswith=f"{BASE}/api/v1/accounts/").mock(
        return_value=httpx.Response(200, json=page))
    contexts = router.get(url__regex=rf"{BASE}/api/v1/statuses/\d+/context").mock(side_effect=[
        gone.response(), *[httpx.Response(200, json={"ancestors": [], "descendants": []})] * 4])
    router.get(url__startswith=f"{BASE}/api/v1/notifications").mock(
        return_value=httpx.Response(200, json=[]))
    router.get(url__startswith=f"{BASE}/api/v1/conversations").mock(
        return_value=httpx.Response(200, json=[]))
    result = connector(client, sleeps, clock=datetime(2026, 8, 2, tzinfo=UTC).timestamp()
                       ).fetch(None)
    assert contexts.call_count == 5
    assert len(result.items) == 5
    # no complete listing of the vanished status's replies is claimed
    assert page[0]["id"] not in {w.parent_id for w in result.windows}


def test_a_skipped_record_is_reported_by_position_never_by_its_text(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps, caplog: pytest.LogCaptureFixture,
):
    recorded = cassette("test_fetch_next_previous.yaml")
    me = next(i for i in recorded if i.uri.endswith("verify_credentials"))
    page = next(i for i in recorded if i.uri.endswith("/statuses?limit=5")).json()
    page[1]["content"] = "<p>Maisie O'Connell lives at 4 Elm Road, call 07700 900123</p>"
    page[1]["created_at"] = None
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(return_value=me.response())
    router.get(url__startswith=f"{BASE}/api/v1/accounts/").mock(
        return_value=httpx.Response(200, json=page))
    router.get(url__regex=rf"{BASE}/api/v1/statuses/\d+/context").mock(
        return_value=httpx.Response(200, json={"ancestors": [], "descendants": []}))
    for path in ("notifications", "conversations"):
        router.get(url__startswith=f"{BASE}/api/v1/{path}").mock(
            return_value=httpx.Response(200, json=[]))
    with caplog.at_level(logging.DEBUG):
        result = connector(client, sleeps, clock=datetime(2026, 8, 2, tzinfo=UTC).timestamp()
                           ).fetch(None)
    assert len(result.problems) == 1 and "statuses, record 1" in result.problems[0]
    told = caplog.text + " ".join(result.problems)
    for detail in ("Maisie", "Elm Road", "07700"):
        assert detail not in told


def _status(sid: str, created: str, parent: str | None, account: dict[str, Any],
            text: str) -> dict[str, Any]:
    return {"id": sid, "created_at": created, "in_reply_to_id": parent, "visibility": "public",
            "spoiler_text": "", "content": f"<p>{text}</p>", "account": account,
            "media_attachments": [], "mentions": [], "url": f"{BASE}/@x/{sid}", "edited_at": None}


def test_a_conversation_has_one_root_whichever_listing_its_statuses_came_from(
    router: respx.Router, client: httpx.Client, sleeps: Sleeps,
):
    """Threads: the history rules must see one conversation. A reply under a reply gets the
    conversation's root (not its parent); a status listed both under the account's post and
    among its mentions keeps that root; the account's own reply to an older conversation gets
    the root too."""
    me = next(i for i in cassette("test_conversations.yaml")
              if i.uri.endswith("verify_credentials")).json()
    own = {"id": str(me["id"]), "acct": me["acct"]}
    parent_acct = {"id": "77", "acct": "parent"}
    root = _status("1000", "2026-08-01T09:00:00.000Z", None, own, "Sports day today")
    reply = _status("1001", "2026-08-01T09:05:00.000Z", "1000", parent_acct, "Great day")
    deeper = _status("1002", "2026-08-01T09:10:00.000Z", "1001", parent_acct,
                     "@brookfield thanks Jayden")
    older = _status("900", "2026-06-01T09:00:00.000Z", None, parent_acct, "Old question")
    own_reply = _status("1003", "2026-08-01T09:20:00.000Z", "900", own, "Answered at last")
    router.get(f"{BASE}/api/v1/accounts/verify_credentials").mock(
        return_value=httpx.Response(200, json=me))
    router.get(url__startswith=f"{BASE}/api/v1/accounts/{own['id']}/statuses").mock(
        return_value=httpx.Response(200, json=[own_reply, root]))
    router.get(f"{BASE}/api/v1/statuses/1000/context").mock(return_value=httpx.Response(
        200, json={"ancestors": [], "descendants": [reply, deeper]}))
    router.get(f"{BASE}/api/v1/statuses/1003/context").mock(return_value=httpx.Response(
        200, json={"ancestors": [older], "descendants": []}))
    router.get(url__startswith=f"{BASE}/api/v1/notifications").mock(return_value=httpx.Response(
        200, json=[{"id": "n1", "type": "mention", "created_at": deeper["created_at"],
                    "status": deeper},
                   {"id": "n2", "type": "mention", "created_at": deeper["created_at"],
                    "status": None}]))
    router.get(url__startswith=f"{BASE}/api/v1/conversations").mock(return_value=httpx.Response(
        200, json=[{"id": "c1", "unread": False, "accounts": [], "last_status": None}]))
    result = connector(client, sleeps, clock=datetime(2026, 8, 2, tzinfo=UTC).timestamp(),
                       replies_lookback_days=14, backfill_days=3650).fetch(None)
    got = {i.id: i for i in result.items}
    assert {got[i].thread_id for i in ("1000", "1001", "1002")} == {"1000"}
    assert got["1003"].thread_id == "900"
    # a mention whose status is gone, a conversation without its last message: reported, not
    # dropped silently
    mention, conversation = result.problems
    assert "1 mention notification(s) without a status" in mention
    assert "1 conversation(s) without a last status" in conversation


@pytest.mark.parametrize(("attachment", "mime"), [
    # an uncached remote file: Mastodon serves it from /media_proxy/<id>/original, kind unknown
    ({"type": "unknown", "url": f"{BASE}/media_proxy/11/original",
      "remote_url": "https://remote.example/files/cup.png"}, "image/png"),
    ({"type": "unknown", "url": f"{BASE}/media_proxy/12/original", "remote_url": None}, None),
    ({"type": "image", "url": f"{BASE}/media_proxy/13/original"}, "image/*"),
    ({"type": "video", "url": f"{BASE}/system/cache/a.mp4"}, "video/mp4"),
])
def test_a_media_type_is_never_guessed_from_the_wrong_family(attachment: dict[str, Any],
                                                             mime: str | None):
    from connectors.mastodon import _media

    assert _media(attachment).mime_type == mime
