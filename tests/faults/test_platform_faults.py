"""A platform answering 500s, 429s and garbage: the other accounts go on, the failing account's
cursor never moves past what was not processed, and after recovery nothing is duplicated.

The X connector (connectors/x.py) runs against respx replaying the recorded real X API v2
answers (../shared/fixtures/x/cassettes), with two posts edited to name a learner; a jsonl export
of the Facebook page is polled by the same service next to it. Polls go through
``Service.poll`` (lease, ``Pipeline.scan``, error handling, outbox drain) into the JSON sink.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import SecretStr

from connectors.jsonl import JsonlConnector, JsonlSettings
from connectors.x import XConnector, XSettings
from governance_bot.config import Config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from rules.engine import DETECTORS, DetectionEngine
from tests.cassettes import load_cassette
from tests.faults.world import REGISTERS, Counts, flagged, write_items
from tests.slack.helpers import TEST_DETECTORS

pytestmark = pytest.mark.shared

BASE = "https://x.test"


def recorded(name: str, path_prefix: str) -> dict[str, Any]:
    found = [i for i in load_cassette(name) if i.method == "GET"
             and i.url.path.startswith(path_prefix)]
    body = copy.deepcopy(found[0].json())
    body.get("meta", {}).pop("next_token", None)
    return dict(body)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    config = Config.model_validate(dict(database={"url": f"sqlite:///{tmp_path / 'gb.db'}"},
        registers={"file": REGISTERS},
        delivery={"sink": "json", "json_path": tmp_path / "flags.jsonl"},
        detection={"disabled_rules": list(DETECTORS)}))
    rt = Runtime.from_config(config)
    rt.engine = DetectionEngine(list(TEST_DETECTORS))  # type: ignore[arg-type]
    rt.pipeline.engine = rt.engine
    yield Service(rt)
    rt.close()


def deliveries(path: Path) -> Counter[int]:
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["flag_id"] for line in path.read_text().splitlines())


@pytest.mark.slow
@respx.mock(assert_all_mocked=True)
def test_500s_429s_and_garbage_from_x_lose_and_double_nothing(
        service: Service, tmp_path: Path, respx_mock: respx.MockRouter) -> None:
    tweets = recorded("test_client_get_users_tweets.yaml", "/2/users/")
    mentions = recorded("test_client_get_users_mentions.yaml", "/2/users/")
    tweets["data"][0]["text"] = "Jayden Price scored twice on Saturday"
    tweets["data"][1]["text"] = "Congratulations to Jayden Price and the under-14s"
    good_records = len(tweets["data"]) + len(mentions["data"])
    tweets["data"].insert(2, "garbage")  # not a JSON object
    tweets["data"].insert(3, {"text": "a record with no id"})

    waits: list[float] = []
    x = XConnector(XSettings(name="x-main", type="x", account="brookfield-x", user_id="783214",
                             username="Twitter", access_token=SecretStr("x-token"), base_url=BASE,
                             read_replies=False, read_direct_messages=False, max_retries=2),
                   client=httpx.Client(), sleep=waits.append)
    export = tmp_path / "facebook.jsonl"
    write_items(export, 12)
    facebook = JsonlConnector(JsonlSettings(name="facebook-export", type="jsonl",
                                            account="brookfield-facebook", path=export))
    own = respx_mock.get(f"{BASE}/2/users/783214/tweets")
    ment = respx_mock.get(f"{BASE}/2/users/783214/mentions")

    def x_state() -> m.ConnectorState | None:
        with service.rt.db.session() as s:
            return s.get(m.ConnectorState, "x-main")

    # 1. X answers 500 to everything: the Facebook export is processed all the same
    own.mock(return_value=httpx.Response(500, json={"title": "Internal Error"}))
    for connector in (x, facebook):
        service.poll(connector)
    state = x_state()
    assert state is not None and not state.cursor and "HTTP 500" in (state.last_error or "")
    assert Counts.read(service.rt.db).items == 12
    assert len(waits) == 2  # the connector's own retries before giving up until the next poll

    # 2. rate limited, then the posts arrive, but the mentions come back as garbage: the whole
    #    poll is retried later, so the cursor stays where it was
    own.mock(side_effect=[httpx.Response(429, headers={"Retry-After": "7"}),
                          httpx.Response(200, json=tweets)])
    ment.mock(return_value=httpx.Response(200, text="<html>upstream gateway</html>"))
    service.poll(x)
    assert 7.0 in waits  # Retry-After honoured
    state = x_state()
    assert state is not None and not state.cursor and "not JSON" in (state.last_error or "")
    assert Counts.read(service.rt.db).items == 12

    # 3. X is healthy again: everything readable is processed, the two bad records are reported
    own.mock(return_value=httpx.Response(200, json=tweets))
    ment.mock(return_value=httpx.Response(200, json=mentions))
    service.poll(x)
    state = x_state()
    assert state is not None and state.last_error is None
    assert state.cursor is not None
    assert state.cursor["mentions_since_id"] == mentions["meta"]["newest_id"]
    after_recovery = Counts.read(service.rt.db)
    assert after_recovery.items == 12 + good_records

    # 4. the same answers again (a replayed page after a restart): nothing new, nothing twice
    service.poll(x)
    service.poll(facebook)
    counts = Counts.read(service.rt.db)
    sent = deliveries(tmp_path / "flags.jsonl")
    counts.report("X 500s, 429s and garbage, then recovery")
    print(f"JSON sink: {sum(sent.values())} notifications for {len(sent)} flags")
    assert counts.items == 12 + good_records
    assert counts.versions_per_item == {1: 12 + good_records}
    assert counts.flags == flagged(12) + 2
    assert counts.outbox_pending == 0
    assert len(sent) == counts.flags and set(sent.values()) == {1}
