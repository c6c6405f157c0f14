"""Zoom meetings hosted by staff, and the video-session rule on them.

Policy: "video sessions password-protected; an additional staff member present".
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import respx

from connectors.registry import load
from connectors.zoom import ZoomConnector, ZoomSettings, uuid_path
from governance_bot.findings import Category, Severity
from governance_bot.items import ItemKind, Role
from rules.base import DetectionContext
from rules.packs import load_pack
from rules.video_session import VideoSessionDetector
from tests.helpers import MemoryHistory, example_index
from tests.zoom_fixtures import SECRET, TOKEN, install, zoom_settings

BASE = "https://zoom.test/v2"
NOW = 1_773_158_400.0  # 2026-03-10T16:00:00Z


def connector() -> ZoomConnector:
    data = {**zoom_settings(BASE), "name": "zoom", "account": "brookfield-zoom",
            "client_secret": SECRET}
    return ZoomConnector(ZoomSettings.model_validate(data), sleep=lambda s: None,
                         clock=lambda: NOW)


@pytest.fixture
def zoom() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True) as router:
        install(router, BASE)
        yield router


def test_past_meetings_are_read_with_settings_and_participants(zoom: respx.MockRouter) -> None:
    result = connector().fetch(None)
    catch_up, revision, planning = result.items
    assert {i.kind for i in result.items} == {ItemKind.meeting}
    assert catch_up.author.email == "d.mensah@brookfield.example.org"
    # a learner who re-joined is one participant; the host is the author, not a recipient
    assert [p.email for p in catch_up.recipients] == [
        "jayden.price@students.brookfield.example.org"]
    assert catch_up.model_extra["video_session"]["passcode"] is False
    assert catch_up.model_extra["video_session"]["waiting_room"] is False
    # participants over two pages; a passcode set
    assert len(revision.recipients) == 3
    assert revision.model_extra["video_session"]["passcode"] is True
    # a meeting deleted since: its settings are unknown, not assumed
    assert planning.model_extra["video_session"]["passcode"] is None
    assert result.problems == []
    token_call = zoom.calls[0].request
    expected = base64.b64encode(f"zoom-app-01:{SECRET}".encode()).decode()
    assert token_call.headers["authorization"] == f"Basic {expected}"
    assert zoom.calls[-1].request.headers["authorization"] == f"Bearer {TOKEN}"


def test_the_next_poll_lists_again_from_the_day_before(zoom: respx.MockRouter) -> None:
    conn = connector()
    first = conn.fetch(None)
    assert first.cursor == {"listed_until": {"d.mensah@brookfield.example.org": "2026-03-10"}}
    conn.fetch(first.cursor)
    report_calls = [c for c in zoom.calls if "/report/" in str(c.request.url)]
    assert report_calls[0].request.url.params["from"] == "2026-03-03"
    assert report_calls[-1].request.url.params["from"] == "2026-03-09"


@pytest.mark.parametrize("uuid, path", [
    ("aDYlohsHRtCd4ii1uC2+hA==", "aDYlohsHRtCd4ii1uC2%2BhA%3D%3D"),
    ("/abc==", "%252Fabc%253D%253D"),
    ("ab//c", "ab%252F%252Fc"),
])
def test_meeting_uuids_are_encoded_as_zoom_asks(uuid: str, path: str) -> None:
    assert uuid_path(uuid) == path


def test_a_zoom_session_with_a_learner_and_one_staff_member_is_flagged(
    zoom: respx.MockRouter,
) -> None:
    registers = example_index()
    detector = VideoSessionDetector.from_pack(load_pack("video_session"))
    findings = {}
    for item in connector().fetch(None).items:
        item = registers.resolve(item)
        ctx = DetectionContext(registers, MemoryHistory())
        findings[item.text] = list(detector.detect(item, ctx))
    (catch_up,) = findings["Coursework catch-up"]
    assert catch_up.category == Category.video_session
    assert catch_up.severity == Severity.medium
    assert catch_up.evidence.detail["learners"] == ["L001"]
    assert catch_up.evidence.detail["staff"] == ["S006"]
    assert "no passcode" in catch_up.explanation
    assert "only 1 member of staff" in catch_up.explanation
    assert "waiting room was off" in catch_up.explanation
    assert findings["Year 11 revision"] == []  # two staff, passcode, waiting room
    assert findings["Department planning"] == []  # no learners


def test_the_host_is_resolved_as_staff_and_participants_as_learners(
    zoom: respx.MockRouter,
) -> None:
    registers = example_index()
    item = registers.resolve(connector().fetch(None).items[0])
    assert item.author.role == Role.staff
    assert [p.role for p in item.recipients] == [Role.learner]


def test_the_connector_is_registered_as_zoom() -> None:
    assert load("zoom") is ZoomConnector
