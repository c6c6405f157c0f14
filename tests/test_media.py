"""Pictures attached to platform items are fetched, kept safely and read.

Policy links: no identifying details of learners on official accounts, whatever form they take
(a learner's name and phone number printed on a photographed certificate is flagged like the same
words in a caption); photos of a child only with consent (the image checks need the picture);
suspected indecent images are preserved as evidence and never shown; personal data is kept no
longer than the item it came with (retention, erasure).

Platforms are answered by respx: the recorded Facebook feed from ../shared/fixtures, Graph, Slack
and WhatsApp media endpoints in their documented shapes; the pictures are drawn with Pillow here
(invented learners of examples/registers.toml).
"""

from __future__ import annotations

import copy
import io
import json
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from PIL import Image
from sqlalchemy import select

from connectors.base import MediaFetchError, MediaRequest, download
from connectors.facebook import FacebookPageConnector, FacebookSettings, parse_post
from connectors.slack_workspace import SlackWorkspaceConnector, SlackWorkspaceSettings
from connectors.teams import TeamsConnector, TeamsSettings
from connectors.whatsapp import WhatsAppConnector, WhatsAppSettings, parse_webhook
from governance_bot.config import Config
from governance_bot.data_protection import apply_retention, erase_learner, place_hold
from governance_bot.items import IMAGE_TEXT, Item, Media
from governance_bot.media import (
    MediaFetcher,
    MediaOptions,
    forget_media,
    prune_media,
    store_from_config,
)
from governance_bot.media_store import MediaRejected, MediaStore
from governance_bot.pipeline import ScanReport
from governance_bot.runtime import Runtime
from governance_bot.storage import crypto
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from governance_bot.storage.media_models import MediaSource
from tests.shared import require_shared
from tests.test_image_text import _engine, certificate

GRAPH = "https://graph.test"
API = "v21.0"
PAGE = "104000000001"  # brookfield-facebook in examples/registers.toml
JAYDEN = "learner:L001"  # Jayden Price
T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)


# --- helpers ----------------------------------------------------------------------------------

def png(size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def certificate_png(tmp_path: Path, lines: list[str]) -> bytes:
    return certificate(tmp_path / "certificate.png", lines).read_bytes()


def recorded_photo_post() -> dict[str, Any]:
    """The first post of the recorded Page feed (a photo), as the official Page's own post."""
    path = require_shared("fixtures", "meta", "facebook", "apidata", "posts",
                          "feeds_default_fields_p1.json")
    post = copy.deepcopy(json.loads(path.read_text("utf-8"))["data"][0])
    assert post["attachments"]["data"][0]["type"] == "photo"
    post["id"] = f"{PAGE}_{post['id'].split('_', 1)[1]}"
    post["created_time"] = "2026-11-18T09:30:00+0000"
    return post


def photo_url(post: dict[str, Any]) -> str:
    return str(post["attachments"]["data"][0]["media"]["image"]["src"])


def facebook(client: httpx.Client | None = None) -> FacebookPageConnector:
    settings = FacebookSettings(name="facebook-page", type="facebook",
                                account="brookfield-facebook", page_id=PAGE, access_token="t",
                                base_url=GRAPH, read_messages=False)
    return FacebookPageConnector(settings, client=client or httpx.Client())


FACEBOOK_CONNECTOR = f"""
[[connectors]]
name = "facebook-page"
type = "facebook"
account = "brookfield-facebook"
page_id = "{PAGE}"
access_token = "${{FB_TOKEN}}"
base_url = "{GRAPH}"
read_messages = false
"""


def answer_feed(router: respx.MockRouter, post: dict[str, Any]) -> None:
    router.get(f"{GRAPH}/{API}/{PAGE}/feed").respond(json={"data": [post]})
    router.get(f"{GRAPH}/{API}/{post['id']}/comments").respond(json={"data": []})


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gb.db'}")
    database.ensure_schema()
    yield database
    database.dispose()


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media", max_bytes=200_000, max_pixels=4_000_000)


@pytest.fixture
def no_keys() -> Iterator[None]:
    crypto.configure(None)
    yield
    crypto.configure(None)


def fetcher(db: Database, store: MediaStore, connectors: list[Any], clock: Clock | None = None,
            **options: Any) -> MediaFetcher:
    return MediaFetcher(db, store, connectors, MediaOptions(**options),
                        clock=clock or Clock(), client=httpx.Client())


def official_post(post_id: str, url: str, **media: Any) -> Item:
    return Item.model_validate({
        "id": post_id, "platform": "facebook", "account": "brookfield-facebook",
        "kind": "post", "author": {"id": PAGE}, "created_at": T0.isoformat(),
        "text": "Well done!", "media": [{"url": url, "mime_type": "image/jpeg", **media}]})


def rows(db: Database) -> list[MediaSource]:
    with db.session() as session:
        return list(session.execute(select(MediaSource)).scalars())


# --- the acceptance case ------------------------------------------------------------------------

@pytest.mark.shared
def test_a_learners_name_and_phone_printed_on_a_facebook_photo_are_flagged_as_text_in_the_image(
    backend_config: Callable[..., Config], tmp_path: Path, no_keys: None,
) -> None:
    """Through the real Facebook connector: the Page's recorded photo post, its picture (a
    certificate naming Jayden Price with a phone number) fetched from the CDN, read by OCR, and a
    learner-details flag whose evidence says "text in the image"."""
    _engine()
    post = recorded_photo_post()
    picture = certificate_png(tmp_path, ["Certificate of achievement", "Jayden Price",
                                         "Call 07700 900123"])
    config = backend_config(FACEBOOK_CONNECTOR, env={"FB_TOKEN": "page-token"})
    with respx.mock(assert_all_mocked=True) as router:
        answer_feed(router, post)
        cdn = router.get(photo_url(post)).respond(
            content=picture, headers={"content-type": "image/png"})
        rt = Runtime.from_config(config)
        try:
            assert rt.pipeline.media is not None, "the media step is on by default"
            report = rt.pipeline.scan(rt.connectors[0])
        finally:
            rt.close()
    assert report.problems == []
    assert cdn.call_count == 1
    # the picture went to the CDN without the Page token
    assert "authorization" not in cdn.calls.last.request.headers
    with rt.db.session() as s:
        findings = s.execute(select(m.Finding)).scalars().all()
        version = s.execute(select(m.ItemVersion)).scalars().one()
    pii = [f for f in findings if f.category == "learner_pii"]
    assert pii, [f.category for f in findings]
    assert {f.evidence["register_entry"] for f in pii} >= {JAYDEN}
    assert all(f.evidence["detail"]["where"] == "text in the image" for f in pii)
    assert all("text in the image" in f.explanation for f in pii)
    # the archive names the picture by its hash and the store's copy
    (media,) = version.data["media"]
    store = store_from_config(config)
    assert store is not None
    assert media["sha256"] and store.has(media["sha256"])
    assert media["local_path"] == str(store.path_for(media["sha256"]))
    assert media["mime_type"] == "image/png"
    assert any(p["source"] == IMAGE_TEXT for p in version.data["parts"])


# --- the media store --------------------------------------------------------------------------

def test_the_store_keeps_each_picture_once_by_its_hash_readable_by_the_service_only(
        store: MediaStore, no_keys: None) -> None:
    data = png()
    first, again = store.put(data), store.put(data)
    assert first.sha256 == again.sha256 and first.path == again.path
    assert first.mime_type == "image/png" and (first.width, first.height) == (64, 48)
    assert first.path.read_bytes() == data
    assert [p for p in first.path.parent.iterdir()] == [first.path]
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(first.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("data", "why"), [
    (b"<html><body>Sign in</body></html>", "not a picture"),
    (b"%PDF-1.7\n" + b"0" * 100, "not a picture"),
    (png()[:40], "not a picture"),  # cut inside its header
])
def test_the_store_refuses_what_is_not_a_picture_from_its_own_bytes(
        store: MediaStore, data: bytes, why: str) -> None:
    with pytest.raises(MediaRejected, match=why):
        store.put(data)
    assert list(store.shas()) == []


def test_the_store_refuses_a_picture_over_the_pixel_cap_before_decoding_it(
        tmp_path: Path) -> None:
    small = MediaStore(tmp_path / "m", max_bytes=10_000_000, max_pixels=10_000)
    with pytest.raises(MediaRejected, match="pixel"):
        small.put(png((200, 200)))


def test_with_encryption_keys_stored_pictures_are_encrypted_and_read_through_working_copies(
        store: MediaStore) -> None:
    first = crypto.generate_key()
    crypto.configure([first])
    try:
        data = png()
        stored = store.put(data)
        on_disk = stored.path.read_bytes()
        assert on_disk.startswith(b"gbenc1:") and b"PNG" not in on_disk[:64]
        assert store.read(stored.sha256) == data
        path, is_copy = store.readable(stored.sha256)
        assert is_copy and path.read_bytes() == data and path != stored.path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        store.release([path])
        assert not path.exists() and stored.path.exists()
        # a new key first: `keys rotate` re-encrypts the files with it
        # keys off for a while: a file stored plain, read as it is
        crypto.configure(None)
        plain = store.put(png(colour=(1, 2, 3)))
        assert plain.path.read_bytes() == png(colour=(1, 2, 3))
        # a new key first: `keys rotate` encrypts every file with it, the plain one too
        newest = crypto.generate_key()
        crypto.configure([newest, first])
        assert store.rotate() == 2
        crypto.configure([newest])  # the old key can go now
        assert store.read(stored.sha256) == data
        assert plain.path.read_bytes().startswith(b"gbenc1:")
    finally:
        crypto.configure(None)


# --- downloading --------------------------------------------------------------------------------

@respx.mock(assert_all_mocked=True)
def test_a_download_over_the_size_cap_is_stopped_while_streaming(
        respx_mock: respx.MockRouter) -> None:
    def endless() -> Iterator[bytes]:
        for _ in range(100):
            yield b"\xff" * 10_000

    respx_mock.get("https://cdn.example/big.jpg").mock(side_effect=lambda request: httpx.Response(
        200, content=endless(), headers={"content-type": "image/jpeg"}))
    with httpx.Client() as client, pytest.raises(MediaFetchError, match="larger than") as err:
        download(client, MediaRequest("https://cdn.example/big.jpg"), max_bytes=50_000,
                 timeout=5)
    assert err.value.retriable is False


@respx.mock(assert_all_mocked=True)
def test_a_declared_size_over_the_cap_is_refused_before_reading(
        respx_mock: respx.MockRouter) -> None:
    respx_mock.get("https://cdn.example/huge.jpg").respond(
        content=b"x" * 10, headers={"content-type": "image/jpeg", "content-length": "90000000"})
    with httpx.Client() as client, pytest.raises(MediaFetchError, match="over the"):
        download(client, MediaRequest("https://cdn.example/huge.jpg"), max_bytes=50_000,
                 timeout=5)


@pytest.mark.parametrize(("status", "content_type", "why", "retriable"), [
    (404, "text/html", "HTTP 404: the file is gone", False),
    (410, "text/html", "HTTP 410", False),
    (403, "text/html", "refused the request", True),
    (503, "text/html", "HTTP 503", True),
    (200, "text/html; charset=utf-8", "sent text/html, not a picture", False),
    (200, "application/json", "not a picture", False),
])
@respx.mock(assert_all_mocked=True)
def test_an_answer_that_is_not_a_picture_says_why(
        respx_mock: respx.MockRouter, status: int, content_type: str, why: str,
        retriable: bool) -> None:
    respx_mock.get("https://cdn.example/p.jpg").respond(
        status, content=b"<html>no</html>", headers={"content-type": content_type})
    with httpx.Client() as client, pytest.raises(MediaFetchError, match=why) as err:
        download(client, MediaRequest("https://cdn.example/p.jpg"), max_bytes=50_000, timeout=5)
    assert err.value.retriable is retriable
    assert "p.jpg" not in str(err.value)  # the host, never the path or query


@respx.mock(assert_all_mocked=True)
def test_a_download_is_bounded_in_time(respx_mock: respx.MockRouter) -> None:
    respx_mock.get("https://cdn.example/slow.jpg").mock(side_effect=httpx.ReadTimeout("slow"))
    with httpx.Client() as client, pytest.raises(MediaFetchError, match="longer than 3 s"):
        download(client, MediaRequest("https://cdn.example/slow.jpg"), max_bytes=50_000,
                 timeout=3)

    # a server that trickles: each chunk in time, the whole past the limit
    ticks = iter(range(0, 1000, 2))
    respx_mock.get("https://cdn.example/trickle.jpg").mock(
        side_effect=lambda request: httpx.Response(200, content=iter([b"\xff" * 70_000] * 10),
                                                   headers={"content-type": "image/jpeg"}))
    with httpx.Client() as client, pytest.raises(MediaFetchError, match="longer than 5 s"):
        download(client, MediaRequest("https://cdn.example/trickle.jpg"), max_bytes=5_000_000,
                 timeout=5, clock=lambda: float(next(ticks)))


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/admin.png",
    "http://10.1.2.3/p.jpg", "http://[::1]/p.jpg", "file:///etc/passwd", "ftp://x.example/p",
])
def test_private_and_local_addresses_are_never_fetched(url: str) -> None:
    with httpx.Client() as client, pytest.raises(MediaFetchError) as err:
        download(client, MediaRequest(url), max_bytes=50_000, timeout=5)
    assert err.value.retriable is False


@respx.mock(assert_all_mocked=True)
def test_a_redirect_to_another_host_does_not_carry_the_token(
        respx_mock: respx.MockRouter) -> None:
    respx_mock.get("https://files.slack.com/files-pri/T1-F1/a.png").respond(
        302, headers={"location": "https://elsewhere.example/a.png"})
    landed = respx_mock.get("https://elsewhere.example/a.png").respond(
        content=png(), headers={"content-type": "image/png"})
    request = MediaRequest("https://files.slack.com/files-pri/T1-F1/a.png",
                           headers={"Authorization": "Bearer xoxb-secret"})
    with httpx.Client() as client:
        got = download(client, request, max_bytes=50_000, timeout=5)
    assert got.content == png() and got.host == "elsewhere.example"
    assert "authorization" not in landed.calls.last.request.headers


# --- each platform's way to its files -----------------------------------------------------------

@respx.mock(assert_all_mocked=True)
def test_teams_pictures_pasted_in_a_message_are_read_with_the_graph_token(
        respx_mock: respx.MockRouter, db: Database, store: MediaStore, no_keys: None) -> None:
    respx_mock.post("https://login.test/tenant-1/oauth2/v2.0/token").respond(
        json={"access_token": "graph-token", "expires_in": 3600})
    hosted = (f"{GRAPH}/v1.0/chats/19:abc@thread.v2/messages/1700000000000/hostedContents/"
              "aWQ9eF8wLXd1cy1kMTAtMjM=/$value")
    route = respx_mock.get(hosted).respond(content=png(), headers={"content-type": "image/png"})
    teams = TeamsConnector(TeamsSettings(
        name="teams", type="teams", account="brookfield-teams", tenant_id="tenant-1",
        client_id="app-1", client_secret="s", base_url=f"{GRAPH}/v1.0",
        login_base_url="https://login.test", users=["u1"]), client=httpx.Client())
    item = Item.model_validate({
        "id": "1700000000000", "platform": "teams", "account": "brookfield-teams",
        "kind": "chat_message", "created_at": T0.isoformat(), "text": "",
        "media": [{"url": hosted, "alt_text": "image"}]})
    problems: list[str] = []
    (got,) = fetcher(db, store, [teams]).fetch([item], problems, [])
    assert problems == []
    assert route.calls.last.request.headers["authorization"] == "Bearer graph-token"
    assert got.media[0].sha256 and got.media[0].local_path


def test_a_teams_file_shared_from_onedrive_is_reported_not_fetched(
        db: Database, store: MediaStore, no_keys: None) -> None:
    teams = TeamsConnector(TeamsSettings(
        name="teams", type="teams", account="brookfield-teams", tenant_id="tenant-1",
        client_id="app-1", client_secret="s", users=["u1"]), client=httpx.Client())
    item = Item.model_validate({
        "id": "1700000000001", "platform": "teams", "account": "brookfield-teams",
        "kind": "chat_message", "created_at": T0.isoformat(), "text": "see attached",
        "media": [{"url": "https://brookfield.sharepoint.com/sites/x/photo.jpg",
                   "filename": "photo.jpg", "attachment_type": "reference"}]})
    problems: list[str] = []
    (got,) = fetcher(db, store, [teams]).fetch([item], problems, [])
    assert got.media[0].local_path is None
    (problem,) = problems
    assert "teams:brookfield-teams:1700000000001" in problem and "media 0" in problem
    assert "OneDrive or SharePoint" in problem and "not tried again" in problem


@respx.mock(assert_all_mocked=True)
def test_slack_files_are_read_with_the_bot_token_and_only_on_slacks_host(
        respx_mock: respx.MockRouter, db: Database, store: MediaStore, no_keys: None) -> None:
    private = respx_mock.get("https://files.slack.com/files-pri/T1-F2/photo.png").respond(
        content=png(), headers={"content-type": "image/png"})
    public = respx_mock.get("https://images.example/meme.png").respond(
        content=png(colour=(9, 9, 9)), headers={"content-type": "image/png"})
    slack = SlackWorkspaceConnector(SlackWorkspaceSettings(
        name="learner-slack", type="slack_workspace", account="brookfield-learner-slack",
        token="xoxb-learner-bot"))
    item = Item.model_validate({
        "id": "1700000000.000100", "platform": "slack_workspace",
        "account": "brookfield-learner-slack", "kind": "chat_message",
        "created_at": T0.isoformat(), "text": "",
        "media": [{"url": "https://files.slack.com/files-pri/T1-F2/photo.png",
                   "mime_type": "image/png"},
                  {"url": "https://images.example/meme.png", "mime_type": "image/png"}]})
    problems: list[str] = []
    (got,) = fetcher(db, store, [slack]).fetch([item], problems, [])
    assert problems == [] and all(md.sha256 for md in got.media)
    assert private.calls.last.request.headers["authorization"] == "Bearer xoxb-learner-bot"
    assert "authorization" not in public.calls.last.request.headers


@pytest.mark.shared
@respx.mock(assert_all_mocked=True)
def test_a_picture_sent_to_the_whatsapp_number_is_resolved_by_id_then_fetched_with_the_token(
        respx_mock: respx.MockRouter, db: Database, store: MediaStore, no_keys: None) -> None:
    recorded = json.loads(require_shared("fixtures", "whatsapp", "updates", "message.json")
                          .read_text("utf-8"))["image"]
    items, problems = parse_webhook(recorded, account="brookfield-whatsapp")
    assert problems == [] and items[0].media[0].media_id == "65463453"  # type: ignore[attr-defined]
    picture = png()
    lookaside = "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=65463453&ext=1"
    lookup = respx_mock.get(f"https://graph.facebook.com/{API}/65463453").respond(json={
        "messaging_product": "whatsapp", "url": lookaside, "mime_type": "image/jpeg",
        "sha256": __import__("hashlib").sha256(picture).hexdigest(), "file_size": len(picture),
        "id": "65463453"})
    file = respx_mock.get(lookaside).respond(content=picture,
                                             headers={"content-type": "image/jpeg"})
    whatsapp = WhatsAppConnector(WhatsAppSettings(
        name="whatsapp", type="whatsapp", account="brookfield-whatsapp", app_secret="a",
        verify_token="v", access_token="wa-token"), client=httpx.Client())
    (got,) = fetcher(db, store, [whatsapp]).fetch(items, problems, [])
    assert problems == []
    assert lookup.calls.last.request.headers["authorization"] == "Bearer wa-token"
    assert file.calls.last.request.headers["authorization"] == "Bearer wa-token"
    assert got.media[0].sha256 == __import__("hashlib").sha256(picture).hexdigest()
    assert got.media[0].mime_type == "image/png"  # what the bytes are, not what was said


@pytest.mark.shared
def test_whatsapp_without_an_access_token_says_how_to_read_pictures(
        db: Database, store: MediaStore, no_keys: None) -> None:
    recorded = json.loads(require_shared("fixtures", "whatsapp", "updates", "message.json")
                          .read_text("utf-8"))["image"]
    items, _ = parse_webhook(recorded, account="brookfield-whatsapp")
    whatsapp = WhatsAppConnector(WhatsAppSettings(
        name="whatsapp", type="whatsapp", account="brookfield-whatsapp", app_secret="a",
        verify_token="v"))
    problems: list[str] = []
    fetcher(db, store, [whatsapp]).fetch(items, problems, [])
    (problem,) = problems
    assert "set access_token" in problem and "media 0 (whatsapp)" in problem


# --- the pipeline step --------------------------------------------------------------------------

@pytest.mark.shared
@respx.mock(assert_all_mocked=True)
def test_an_item_is_archived_even_when_its_picture_cannot_be_fetched_and_the_problem_says_why(
        respx_mock: respx.MockRouter, make_config: Callable[..., Config], no_keys: None) -> None:
    post = recorded_photo_post()
    answer_feed(respx_mock, post)
    respx_mock.get(photo_url(post)).respond(404, headers={"content-type": "text/html"})
    rt = Runtime.from_config(make_config(FACEBOOK_CONNECTOR, env={"FB_TOKEN": "t"}))
    try:
        report = rt.pipeline.scan(rt.connectors[0])
    finally:
        rt.close()
    assert report.new == 1 and report.failed == 0
    (problem,) = report.problems
    assert f"item facebook:brookfield-facebook:{post['id']}: media 0" in problem
    assert "scontent-ssn1-1.xx.fbcdn.net" in problem and "HTTP 404" in problem
    assert "not tried again" in problem
    assert "oh=" not in problem  # the signed query of the link never shows
    with rt.db.session() as s:
        version = s.execute(select(m.ItemVersion)).scalars().one()
    assert version.data["media"][0]["local_path"] is None


@pytest.mark.shared
def test_a_picture_that_failed_is_tried_again_when_due_and_its_text_is_then_checked(
        backend_config: Callable[..., Config], tmp_path: Path, no_keys: None) -> None:
    """A polled item: listed again at each poll, its picture tried again once due; the new
    version (the picture's hash in place of its link) is checked and flagged."""
    _engine()
    post = recorded_photo_post()
    picture = certificate_png(tmp_path, ["Jayden Price", "07700 900123"])
    clock = Clock()
    rt = Runtime.from_config(backend_config(FACEBOOK_CONNECTOR, env={"FB_TOKEN": "t"}))
    assert rt.pipeline.media is not None
    rt.pipeline.clock = rt.pipeline.media.clock = clock
    try:
        with respx.mock(assert_all_mocked=True) as router:
            answer_feed(router, post)
            cdn = router.get(photo_url(post)).respond(503)
            first = rt.pipeline.scan(rt.connectors[0])
            assert first.new == 1 and first.flags_created == 0
            (problem,) = first.problems
            assert "HTTP 503" in problem and "tried again after 2026-11-18 10:05 UTC" in problem
            (row,) = rows(rt.db)
            assert row.attempts == 1 and row.next_attempt_at == T0 + timedelta(minutes=5)
            # listed again within five minutes: not tried, nothing reported again
            clock.now = T0 + timedelta(minutes=2)
            second = rt.pipeline.scan(rt.connectors[0])
            assert cdn.call_count == 1 and second.problems == [] and second.unchanged == 1
            # due: fetched, read, flagged
            cdn.respond(content=picture, headers={"content-type": "image/png"})
            clock.now = T0 + timedelta(minutes=6)
            third = rt.pipeline.scan(rt.connectors[0])
    finally:
        rt.close()
    assert cdn.call_count == 2
    assert third.problems == [] and third.edited == 1 and third.flags_created == 1
    (row,) = rows(rt.db)
    assert row.sha256 and row.attempts == 0 and row.next_attempt_at is None
    with rt.db.session() as s:
        data = [v.data for v in s.execute(select(m.ItemVersion)
                                          .order_by(m.ItemVersion.version)).scalars()]
        findings = s.execute(select(m.Finding)).scalars().all()
    assert [d["media"][0]["sha256"] for d in data] == [None, row.sha256]
    assert any(f.category == "learner_pii" and f.evidence["detail"]["where"] ==
               "text in the image" for f in findings)


@pytest.mark.shared
def test_a_webhook_items_picture_is_tried_again_from_the_archive_after_the_next_poll(
        make_config: Callable[..., Config], no_keys: None) -> None:
    """A pushed item is not listed again: after the connector's next poll, the items with a
    picture due are read back from the archive and passed through the pipeline again."""
    from connectors.facebook import feed_webhook_items

    clock = Clock()
    rt = Runtime.from_config(make_config(FACEBOOK_CONNECTOR, env={"FB_TOKEN": "t"}))
    assert rt.pipeline.media is not None
    rt.pipeline.clock = rt.pipeline.media.clock = clock
    photo = "https://scontent.example/v/t39/123_n.jpg?oh=sig&oe=exp"
    payload = {"object": "page", "entry": [{"id": PAGE, "time": 1763460000, "changes": [{
        "field": "feed", "value": {"item": "photo", "verb": "add", "post_id": f"{PAGE}_77",
                                   "from": {"id": PAGE, "name": "Brookfield Academy"},
                                   "message": "Sports day", "photo": photo,
                                   "created_time": 1763460000}}]}]}
    (item,) = feed_webhook_items(payload, "brookfield-facebook", PAGE, [], "facebook-page")
    try:
        with respx.mock(assert_all_mocked=True) as router:
            router.get(f"{GRAPH}/{API}/{PAGE}/feed").respond(json={"data": []})
            cdn = router.get(url__startswith="https://scontent.example/").mock(
                side_effect=[httpx.ConnectError("refused"),
                             httpx.Response(200, content=png(),
                                            headers={"content-type": "image/png"})])
            first = rt.pipeline.process_many([item])
            assert "network error (ConnectError)" in first.problems[0]
            clock.now = T0 + timedelta(minutes=4)
            early = rt.pipeline.scan(rt.connectors[0])
            assert cdn.call_count == 1 and early.problems == []
            clock.now = T0 + timedelta(minutes=5)
            due = rt.pipeline.scan(rt.connectors[0])
    finally:
        rt.close()
    assert cdn.call_count == 2 and due.problems == [] and due.edited == 1
    with rt.db.session() as s:
        versions = s.execute(select(m.ItemVersion).order_by(m.ItemVersion.version)).scalars()
        assert [bool(v.data["media"][0]["sha256"]) for v in versions] == [False, True]


@pytest.mark.shared
@respx.mock(assert_all_mocked=True)
def test_a_picture_fetched_once_is_not_downloaded_again_at_the_next_poll(
        respx_mock: respx.MockRouter, make_config: Callable[..., Config], no_keys: None) -> None:
    post = recorded_photo_post()
    answer_feed(respx_mock, post)
    cdn = respx_mock.get(photo_url(post)).respond(content=png(),
                                                  headers={"content-type": "image/png"})
    rt = Runtime.from_config(make_config(FACEBOOK_CONNECTOR, env={"FB_TOKEN": "t"}))
    try:
        first = rt.pipeline.scan(rt.connectors[0])
        second = rt.pipeline.scan(rt.connectors[0])
    finally:
        rt.close()
    assert (first.new, second.unchanged, second.edited) == (1, 1, 0)
    assert cdn.call_count == 1


def test_the_same_picture_on_two_posts_is_stored_once(
        db: Database, store: MediaStore, no_keys: None) -> None:
    with respx.mock(assert_all_mocked=True) as router:
        router.get(url__regex=r"https://cdn\.example/.*").respond(
            content=png(), headers={"content-type": "image/png"})
        items = [official_post("p1", "https://cdn.example/a.jpg"),
                 official_post("p2", "https://cdn.example/b.jpg")]
        problems: list[str] = []
        got = fetcher(db, store, [facebook()]).fetch(items, problems, [])
    assert problems == []
    assert got[0].media[0].sha256 == got[1].media[0].sha256
    assert len(list(store.shas())) == 1


def test_videos_are_not_downloaded_but_their_stills_are(
        db: Database, store: MediaStore, no_keys: None) -> None:
    with respx.mock(assert_all_mocked=True) as router:
        still = router.get("https://cdn.example/still.jpg").respond(
            content=png(), headers={"content-type": "image/jpeg"})
        item = Item.model_validate({
            "id": "v1", "platform": "facebook", "account": "brookfield-facebook",
            "kind": "post", "created_at": T0.isoformat(), "text": "",
            "media": [{"url": "https://cdn.example/clip.mp4", "mime_type": "video/mp4"},
                      {"url": "https://cdn.example/still.jpg", "mime_type": "image/jpeg",
                       "thumbnail": True}]})
        problems: list[str] = []
        (got,) = fetcher(db, store, [facebook()]).fetch([item], problems, [])
    assert problems == [] and still.call_count == 1
    assert got.media[0].local_path is None and got.media[1].local_path


def test_a_batch_waits_for_its_pictures_only_so_long(
        db: Database, store: MediaStore, no_keys: None) -> None:
    import threading

    release = threading.Event()

    def stall(request: httpx.Request) -> httpx.Response:
        release.wait(5)
        return httpx.Response(200, content=png(), headers={"content-type": "image/png"})

    with respx.mock(assert_all_mocked=True) as router:
        router.get("https://cdn.example/stuck.jpg").mock(side_effect=stall)
        media = fetcher(db, store, [facebook()], batch_timeout_seconds=0.3)
        problems: list[str] = []
        (got,) = media.fetch([official_post("p9", "https://cdn.example/stuck.jpg")], problems,
                             [])
        release.set()
        media.close()
    assert got.media[0].local_path is None
    assert "0.3 s for fetching pictures ran out" in problems[0]
    assert "tried again after" in problems[0]


def test_items_without_a_configured_connector_are_left_as_they_are(
        db: Database, store: MediaStore, no_keys: None) -> None:
    item = official_post("p1", "https://cdn.example/a.jpg").model_copy(
        update={"account": "another-account"})
    problems: list[str] = []
    assert fetcher(db, store, [facebook()]).fetch([item], problems, []) == [item]
    assert problems == []


@pytest.mark.shared
def test_with_encryption_keys_the_pictures_text_is_read_and_no_plain_copy_is_left(
        backend_config: Callable[..., Config], tmp_path: Path) -> None:
    _engine()
    post = recorded_photo_post()
    picture = certificate_png(tmp_path, ["Jayden Price", "07700 900123"])
    key = crypto.generate_key()
    config = backend_config(FACEBOOK_CONNECTOR + '\n[security]\nencryption_keys = "${KEYS}"\n',
                            env={"FB_TOKEN": "t", "KEYS": key})
    try:
        with respx.mock(assert_all_mocked=True) as router:
            answer_feed(router, post)
            router.get(photo_url(post)).respond(content=picture,
                                                headers={"content-type": "image/png"})
            rt = Runtime.from_config(config)
            try:
                report = rt.pipeline.scan(rt.connectors[0])
                store = rt.pipeline.media.store  # type: ignore[union-attr]
                work = list((store.folder / ".work").rglob("*"))
            finally:
                rt.close()
        assert report.flags_created == 1 and report.problems == []
        assert [p for p in work if p.is_file()] == []  # working copies removed after the check
        with rt.db.session() as s:
            version = s.execute(select(m.ItemVersion)).scalars().one()
        media = version.data["media"][0]
        stored = Path(media["local_path"])
        assert stored == store.path_for(media["sha256"])
        assert stored.read_bytes().startswith(b"gbenc1:")
    finally:
        crypto.configure(None)


# --- keeping no longer than the item ------------------------------------------------------------

def _archive_with_picture(rt: Runtime, post_id: str, data: bytes, url: str) -> str:
    """Process one official post whose picture is ``data``; its stored sha256."""
    with respx.mock(assert_all_mocked=True) as router:
        router.get(url).respond(content=data, headers={"content-type": "image/png"})
        report = ScanReport()
        rt.pipeline.process(official_post(post_id, url).model_copy(
            update={"text": "Well done Jayden Price!"}), report)
    assert report.problems == []
    (row,) = [r for r in rows(rt.db) if r.item_key.endswith(post_id)]
    assert row.sha256
    return row.sha256


@pytest.mark.shared
def test_erasing_a_learner_deletes_the_pictures_of_their_items_but_not_of_held_ones(
        make_config: Callable[..., Config], no_keys: None) -> None:
    config = make_config(FACEBOOK_CONNECTOR, env={"FB_TOKEN": "t"})
    rt = Runtime.from_config(config)
    try:
        assert rt.pipeline.media is not None
        store = rt.pipeline.media.store
        erased = _archive_with_picture(rt, "p1", png(colour=(1, 1, 1)), "https://cdn.example/1")
        held = _archive_with_picture(rt, "p2", png(colour=(2, 2, 2)), "https://cdn.example/2")
        with rt.db.session() as s:
            flag = s.execute(select(m.Flag).join(m.ItemRecord, m.ItemRecord.id == m.Flag.item_id)
                             .where(m.ItemRecord.native_id == "p2")).scalar_one()
            place_hold(s, flag.id, "police referral", "dsl@brookfield.example")
        report = erase_learner(rt.db, config, "L001", "dsl@brookfield.example")
    finally:
        rt.close()
    assert [k.rsplit(":", 1)[1] for k in report.items_redacted] == ["p1"]
    assert not store.has(erased) and store.has(held)
    assert {r.item_key.rsplit(":", 1)[1] for r in rows(rt.db)} == {"p2"}


@pytest.mark.shared
def test_retention_deletes_the_pictures_of_expired_items_and_prunes_files_no_item_names(
        make_config: Callable[..., Config], no_keys: None) -> None:
    config = make_config(FACEBOOK_CONNECTOR + "\n[retention]\nunflagged_days = 30\n"
                         "flagged_days = 30\ncategories = {}\n", env={"FB_TOKEN": "t"})
    rt = Runtime.from_config(config)
    try:
        assert rt.pipeline.media is not None
        store = rt.pipeline.media.store
        sha = _archive_with_picture(rt, "p1", png(colour=(3, 3, 3)), "https://cdn.example/3")
        orphan = store.put(png(colour=(4, 4, 4)))
        old = (datetime.now(UTC) - timedelta(days=3)).timestamp()
        os.utime(orphan.path, (old, old))
        report = apply_retention(rt.db, config.retention, "it@brookfield.example",
                                 now=datetime.now(UTC) + timedelta(days=400), media=store)
    finally:
        rt.close()
    assert report.items and report.media_removed == 2
    assert not store.has(sha) and not store.has(orphan.sha256)
    assert rows(rt.db) == []


def test_forget_keeps_a_picture_another_item_still_shows(
        db: Database, store: MediaStore, no_keys: None) -> None:
    shared = store.put(png())
    with db.session() as s:
        for key in ("facebook:a:1", "facebook:a:2"):
            s.add(MediaSource(item_key=key, media_index=0, source="s", connector="c",
                              sha256=shared.sha256, attempts=0))
    assert forget_media(db, store, ["facebook:a:1"]) == 0 and store.has(shared.sha256)
    assert forget_media(db, store, ["facebook:a:2"]) == 1 and not store.has(shared.sha256)
    fresh = store.put(png(colour=(5, 5, 5)))
    assert prune_media(db, store) == 0 and store.has(fresh.sha256)  # too new to be an orphan


def test_a_recorded_video_posts_picture_is_its_still_marked_as_a_thumbnail() -> None:
    path = require_shared("fixtures", "meta", "facebook", "apidata", "posts",
                          "feeds_default_fields_p1.json")
    posts = json.loads(path.read_text("utf-8"))["data"]
    video = next(p for p in posts if p["attachments"]["data"][0]["type"] == "video_autoplay")
    item = parse_post(video, "brookfield-facebook")
    # a video post's picture is the video's still: read like a photo, marked as a thumbnail
    (still,) = item.media
    assert still.thumbnail and still.mime_type == "image/jpeg"
    assert still.url == video["attachments"]["data"][0]["media"]["image"]["src"]
    assert isinstance(still, Media)
    assert not any(md.thumbnail for p in posts if p is not video
                   for md in parse_post(p, "brookfield-facebook").media)


def test_pictures_past_max_per_item_are_reported_once_not_at_every_poll(
        db: Database, store: MediaStore, no_keys: None) -> None:
    with respx.mock(assert_all_mocked=True) as router:
        route = router.get(url__regex=r"https://cdn\.example/\d\.jpg").mock(
            side_effect=lambda request: httpx.Response(
                200, content=png(colour=(int(request.url.path[1]), 0, 0)),
                headers={"content-type": "image/jpeg"}))
        album = Item.model_validate({
            "id": "album", "platform": "facebook", "account": "brookfield-facebook",
            "kind": "post", "created_at": T0.isoformat(), "text": "",
            "media": [{"url": f"https://cdn.example/{n}.jpg", "mime_type": "image/jpeg"}
                      for n in range(4)]})
        media = fetcher(db, store, [facebook()], max_per_item=2)
        first: list[str] = []
        (got,) = media.fetch([album], first, [])
        again: list[str] = []
        media.fetch([album], again, [])
    assert [bool(md.local_path) for md in got.media] == [True, True, False, False]
    assert [p.split(": ", 2)[1] for p in first] == ["media 2 (cdn.example)",
                                                    "media 3 (cdn.example)"]
    assert all("over [media] max_per_item = 2" in p for p in first)
    assert again == [] and route.call_count == 2


def test_an_archived_item_read_again_gets_working_copies_and_its_pictures_text_read_again(
        db: Database, store: MediaStore) -> None:
    """A retry reads the item back from the archive: its encrypted pictures get working copies
    for the detectors, and the text read from them before is dropped so all are read again."""
    from governance_bot.items import with_parts, without_image_text

    crypto.configure([crypto.generate_key()])
    try:
        stored = store.put(png())
        archived = official_post("p1", "https://cdn.example/a.jpg").model_copy(update={
            "media": [Media(url="https://cdn.example/a.jpg", mime_type="image/png",
                            sha256=stored.sha256, local_path=str(stored.path))]})
        archived = with_parts(archived, [(IMAGE_TEXT, "Jayden Price", "0")])
        scratch: list[Path] = []
        problems: list[str] = []
        (got,) = fetcher(db, store, [facebook()]).fetch([archived], problems, scratch)
        assert problems == [] and scratch == [Path(got.media[0].local_path or "")]
        assert Path(got.media[0].local_path or "").read_bytes() == png()
        fresh = without_image_text(archived)
        assert fresh.text == "Well done!" and fresh.parts == []
    finally:
        crypto.configure(None)


def test_a_picture_replaced_behind_the_same_link_stays_kept_with_the_earlier_version(
        db: Database, store: MediaStore, no_keys: None) -> None:
    clock = Clock()
    media = fetcher(db, store, [facebook()], clock=clock, refetch_after_hours=1)
    item = official_post("p1", "https://cdn.example/thumb.jpg")
    with respx.mock(assert_all_mocked=True) as router:
        route = router.get("https://cdn.example/thumb.jpg").respond(
            content=png(colour=(1, 1, 1)), headers={"content-type": "image/png"})
        (before,) = media.fetch([item], [], [])
        route.respond(content=png(colour=(2, 2, 2)), headers={"content-type": "image/png"})
        clock.now = T0 + timedelta(hours=2)
        (after,) = media.fetch([item], [], [])
    old, new = before.media[0].sha256, after.media[0].sha256
    assert old and new and old != new
    assert prune_media(db, store, now=datetime.now(UTC) + timedelta(days=30)) == 0
    assert store.has(old) and store.has(new)
    assert forget_media(db, store, [item.key]) == 2
