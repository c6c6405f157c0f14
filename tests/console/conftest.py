"""The console's test world: the real service (``Service.http_app``, console mounted) served by
uvicorn on a loopback port, the example organisation's registers, a fake Slack, a local OpenID
Connect provider, encryption at rest on, and a handful of flags made by the real pipeline.

One world and one browser per test module (both take seconds to start); each test opens its own
browser context, so cookies never leak between people.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from connectors.base import ConnectorSettings
from governance_bot.config import Config
from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, Role
from governance_bot.routing import Router
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import crypto
from governance_bot.storage import models as m
from rules.base import DetectionContext
from rules.engine import DETECTORS, DetectionEngine
from tests.console.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider
from tests.slack.fake_slack import FakeSlack
from tests.slack.helpers import SIGNING_SECRET, TEST_DETECTORS, RecordingModerationConnector

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = ROOT / "examples" / "registers.toml"
KEY = "pRj2WvVq0m7i3Fv2jQm0d9b0kHq1b8tQx6c5z4y3w2E="  # a Fernet key made for these tests

# people of the example organisation (examples/registers.toml)
DSL = "h.okafor@brookfield.example.org"  # Helen Okafor, the DSL
DEPUTY = "m.reid@brookfield.example.org"  # Marcus Reid, deputy DSL
MANAGER = "t.ashworth@brookfield.example.org"  # Tom Ashworth, manages Facebook, X, Teams, email
SECOND_MANAGER = "g.lindqvist@brookfield.example.org"  # Grace Lindqvist: Facebook, Instagram, X
LEAVER = "l.fairbairn@brookfield.example.org"  # Leon Fairbairn left in July (inactive)
TUTOR = "d.mensah@brookfield.example.org"  # Daniel Mensah, tutor (subject of a concern)
ADMIN = "a.rahman@brookfield.example.org"  # Aisha Rahman, made an IT administrator here
UNKNOWN = "visitor@elsewhere.example.com"


class StaffConductTestDetector:
    """Test stand-in for the staff-conduct rules: a kiss ("xx") from a member of staff to a
    learner is a high-severity tone finding about that member of staff."""

    rule_id = "test_staff_tone"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        learners = [p.register_id for p in item.recipients if p.role == Role.learner]
        if item.author.role == Role.staff and learners and " xx" in f" {item.text.lower()}":
            yield Finding(self.rule_id, Category.tone, Severity.high, 0.9,
                          "a member of staff signed off a message to a learner with kisses",
                          Evidence(), subject=f"staff:{item.author.register_id}>learner:"
                                              f"{learners[0]}")


@dataclass
class World:
    url: str
    rt: Runtime
    service: Service
    fake: FakeSlack
    idp: OidcProvider
    moderation: RecordingModerationConnector
    flags: dict[str, int] = field(default_factory=dict)

    def ingest(self, *items: Item) -> None:
        self.rt.pipeline.process_many(list(items))
        self.service.sender.drain()

    def flag_id(self, native_id: str) -> int:
        with self.rt.db.session() as s:
            return int(s.execute(select(m.Flag.id).join(
                m.ItemRecord, m.ItemRecord.id == m.Flag.item_id).where(
                m.ItemRecord.native_id == native_id)).scalar_one())

    def wait(self, predicate: Any, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    def audit(self, action: str, subject: str | None = None) -> list[m.AuditEvent]:
        with self.rt.db.session() as s:
            query = select(m.AuditEvent).where(m.AuditEvent.action == action)
            if subject is not None:
                query = query.where(m.AuditEvent.subject == subject)
            return list(s.execute(query.order_by(m.AuditEvent.seq)).scalars())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def comment(item_id: str, text: str, author: dict[str, Any], *, account: str =
            "brookfield-facebook", platform: str = "facebook", kind: str = "comment",
            thread: str | None = "post-1", recipients: list[dict[str, Any]] | None = None,
            at: datetime | None = None) -> Item:
    return Item.model_validate({
        "id": item_id, "platform": platform, "account": account, "kind": kind,
        "author": author, "recipients": recipients or [], "thread_id": thread,
        "created_at": (at or datetime(2026, 11, 20, 10, 0, tzinfo=UTC)).isoformat(),
        "text": text, "url": f"https://{platform}.example/{item_id}",
        "visibility": "direct" if recipients else "public",
    })


def _png(path: Path, colour: tuple[int, int, int]) -> str:
    from PIL import Image

    Image.new("RGB", (64, 48), colour).save(path)
    return str(path)


def seed_items(tmp: Path) -> list[Item]:
    t = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    page = {"id": "104000000001", "name": "Brookfield Academy"}
    return [
        # the post a thread hangs off, then a learner's disclosure under it (DSL only)
        comment("post-1", "Well done to everyone at sports day!", page, kind="post",
                thread="post-1", at=t),
        comment("c-before", "What a day, loved the relay", {"handle": "@someparent"},
                at=t + timedelta(minutes=5)),
        comment("c-disclosure", "nobody cares, he hurts me at home", {"handle": "@maisie.fb"},
                at=t + timedelta(minutes=10)),
        comment("c-after", "Great photos!", {"handle": "@anotherparent"},
                at=t + timedelta(minutes=20)),
        # a learner named on the page: the Facebook account managers' (masked), and the DSL's
        comment("post-2", "Congratulations to Jayden Price on the county chess title!", page,
                kind="post", thread="post-2", at=t + timedelta(hours=1)),
        comment("c2-reply", "Brilliant, well done!", {"handle": "@someparent"},
                thread="post-2", at=t + timedelta(hours=1, minutes=5)),
        comment("c2-disclosure", "wish I could go to chess club but he hurts me at home",
                {"handle": "@olly_sh"}, thread="post-2", at=t + timedelta(hours=1, minutes=9)),
        # a concern about the tutor Daniel Mensah: the DSL's, never his
        comment("chat-tutor", "see you tomorrow xx", {"email": TUTOR},
                account="brookfield-teams", platform="teams", kind="chat_message",
                thread="chat-1", recipients=[{"email": "oliver.smithhughes@students."
                                                       "brookfield.example.org"}],
                at=t + timedelta(hours=2)),
        # a concern about a deputy DSL: the DSL's, never that deputy's
        comment("chat-deputy", "thanks for today xx", {"email": DEPUTY},
                account="brookfield-teams", platform="teams", kind="chat_message",
                thread="chat-2", recipients=[{"email": "amira.haddad@students."
                                                       "brookfield.example.org"}],
                at=t + timedelta(hours=3)),
        # a photo the archive keeps a copy of, naming a learner (the managers see a thumbnail)
        Item.model_validate({
            "id": "post-photo", "platform": "facebook", "account": "brookfield-facebook",
            "kind": "post", "author": page, "thread_id": "post-photo",
            "created_at": (t + timedelta(hours=5)).isoformat(),
            "text": "Jayden Price lifting the cup!", "media": [{
                "url": "https://facebook.example/p.png", "mime_type": "image/png",
                "local_path": _png(tmp / "cup.png", (20, 120, 40)), "alt_text": "the cup"}]}),
        # a possibly explicit image (the DSL's, never displayed, even from its local copy)
        Item.model_validate({
            "id": "c-explicit", "platform": "facebook", "account": "brookfield-facebook",
            "kind": "comment", "author": {"handle": "@unknown_sender"}, "thread_id": "post-1",
            "created_at": (t + timedelta(hours=6)).isoformat(), "text": "", "media": [{
                "url": "https://facebook.example/x.png", "mime_type": "image/png",
                "local_path": _png(tmp / "x.png", (200, 30, 30)),
                "alt_text": "TEST-EXPLICIT"}]}),
        # a learner named on Instagram: managed by Grace Lindqvist (and Leon Fairbairn, a leaver)
        comment("ig-1", "Well played Jayden Price!", {"id": "178400000001"},
                account="brookfield-instagram", platform="instagram", kind="post",
                thread="ig-1", at=t + timedelta(hours=4)),
    ]


def make_config(tmp: Path, fake: FakeSlack, idp: OidcProvider, port: int, **console: Any
                ) -> Config:
    return Config(
        organisation={"name": "Brookfield Academy"},
        database={"url": f"sqlite:///{tmp / 'gb.db'}"},
        registers={"file": REGISTERS},
        delivery={"sink": "slack"},
        detection={"disabled_rules": list(DETECTORS)},
        slack={"enabled": True, "api_url": fake.base_url},
        service={"host": "127.0.0.1", "port": port},
        security={"encryption_keys": KEY},
        console={"oidc": {"provider": "issuer", "issuer": idp.url, "client_id": CLIENT_ID,
                          "client_secret": CLIENT_SECRET},
                 "session_secret": "test-session-secret", "administrators": ["S009"],
                 **console},
    )


@contextmanager
def running_world(tmp: Path, **console: Any) -> Iterator[World]:
    """The service with the console, serving on a loopback port, and its seeded flags."""
    saved = {k: os.environ.get(k) for k in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")}
    os.environ["SLACK_BOT_TOKEN"] = "xoxb-test-token"
    os.environ["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
    port = _free_port()
    with FakeSlack() as fake, OidcProvider() as idp:
        config = make_config(tmp, fake, idp, port, **console)
        rt = Runtime.from_config(config)
        rt.engine = DetectionEngine([*TEST_DETECTORS, StaffConductTestDetector()],  # type: ignore[list-item]
                                    Router())
        rt.pipeline.engine = rt.engine
        moderation = RecordingModerationConnector(ConnectorSettings(
            name="facebook-main", type="recording", account="brookfield-facebook"))
        rt.connectors.append(moderation)
        service = Service(rt)
        server = uvicorn.Server(uvicorn.Config(service.http_app(), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start")
            time.sleep(0.05)
        world = World(f"http://127.0.0.1:{port}", rt, service, fake, idp, moderation)
        world.ingest(*seed_items(tmp))
        for native in ("c-disclosure", "post-2", "c2-disclosure", "chat-tutor", "chat-deputy",
                       "ig-1", "post-photo", "c-explicit"):
            world.flags[native] = world.flag_id(native)
        try:
            yield world
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            rt.close()
            crypto.configure(None)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("console")) as w:
        yield w


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from tests.browser import launch

    with launch() as b:
        yield b


def sign_in(browser: Any, world: World, email: str, *, width: int = 1280, height: int = 900,
            bypass_csp: bool = False) -> Any:
    """A new browser context signed in as ``email`` through the local identity provider (the
    real redirects: console -> provider's form -> console's callback -> the queue).
    ``bypass_csp``: let a test inject axe-core (the console's policy forbids inline scripts)."""
    context = browser.new_context(viewport={"width": width, "height": height},
                                  bypass_csp=bypass_csp)
    page = context.new_page()
    page.goto(f"{world.url}/signin")
    page.get_by_role("link", name="Sign in with your organisation account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state()
    return page
