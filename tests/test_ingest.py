"""Webhook deliveries are checked in batches on one worker (governance_bot/ingest.py).

Policy link: a busy thread on an official account (or a burst of Teams messages) must not delay
the alert on the one comment that names a learner; and a platform must only be told "received"
once what it sent is stored, so nothing is acknowledged and then lost.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from governance_bot.config import Config
from governance_bot.ingest import IngestWorker
from governance_bot.items import Item
from governance_bot.pipeline import ScanReport
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from tests.test_webhook_replay import APP_SECRET, PAGE, comment_event, deliver


@pytest.fixture
def service(backend_config: Callable[..., Config]) -> Iterator[Service]:
    config = backend_config(f"""
[delivery]
sink = "json"
json_path = "delivered.jsonl"
[[connectors]]
name = "facebook-page"
type = "facebook"
account = "brookfield-facebook"
page_id = "{PAGE}"
access_token = "${{FB_TOKEN}}"
app_secret = "${{FB_APP_SECRET}}"
verify_token = "${{FB_VERIFY}}"
base_url = "http://127.0.0.1:9"
""", env={"FB_TOKEN": "t", "FB_APP_SECRET": APP_SECRET, "FB_VERIFY": "v"})
    rt = Runtime.from_config(config)
    svc = Service(rt)
    # a delivery is stored before anything else; here the answer waits until it is checked
    svc.answer_seconds = 60
    yield svc
    svc.close()
    rt.close()


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_deliveries_arriving_while_a_batch_is_checked_are_checked_together_then_answered(
    service: Service, tmp_path: Path
) -> None:
    batch_sizes: list[int] = []
    start = service.ingest._start

    def recording(items: list[Item]) -> Callable[[], ScanReport]:
        batch_sizes.append(len(items))
        return start(items)

    service.ingest._start = recording
    bodies = [comment_event(f"900001_80000{n}", f"Lovely concert, well done all {n}")
              for n in range(5)]
    bodies[3] = comment_event("900001_800003", "Maisie O'Connell in 8B was brilliant!")
    client = TestClient(service.http_app())
    with ThreadPoolExecutor(5) as pool:
        service._lock.acquire()  # the pipeline is busy (a poll, say): deliveries queue up
        try:
            first = pool.submit(deliver, client, bodies[0])
            wait_until(lambda: len(batch_sizes) == 1)
            rest = [pool.submit(deliver, client, body) for body in bodies[1:]]
            wait_until(lambda: service.ingest._queue.qsize() == 4)
            assert not any(f.done() for f in [first, *rest])  # nobody is told "received" yet
        finally:
            service._lock.release()
        answers = [f.result(timeout=60) for f in [first, *rest]]
    assert [(a.status_code, a.text) for a in answers] == [(200, "EVENT_RECEIVED")] * 5
    assert batch_sizes == [1, 4]  # the four that waited went through the pipeline together
    with service.rt.db.session() as s:
        assert s.execute(select(func.count()).select_from(m.ItemRecord)).scalar_one() == 5
    # the learner's name was flagged to the account managers and delivered before the answer
    delivered = (tmp_path / "delivered.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(delivered) == 1 and json.loads(delivered[0])["category"] == "learner_pii"


def _item(n: int) -> Item:
    return Item.model_validate({
        "id": f"c{n}", "platform": "facebook", "account": "brookfield-facebook",
        "kind": "comment", "author": {"id": "61000001", "name": "A Parent"},
        "created_at": "2026-11-20T10:00:00+00:00", "text": f"comment {n}"})


def test_an_item_that_could_not_be_stored_fails_only_its_own_delivery() -> None:
    release = threading.Event()
    seen: list[list[str]] = []

    def process(items: list[Item]) -> ScanReport:
        release.wait(10)
        seen.append([i.id for i in items])
        report = ScanReport(items=len(items))
        for item in items:
            if item.id == "c2":
                report.failed_items.append(item.key)
                report.problems.append(f"item {item.key}: OperationalError: disk I/O error")
        return report

    worker = IngestWorker(process)
    try:
        futures = [worker.submit([_item(0)])]
        futures += [worker.submit([_item(1)]), worker.submit([_item(2), _item(3)])]
        release.set()
        reports = [f.result(timeout=10) for f in futures]
    finally:
        worker.close()
    assert [r.problems for r in reports[:2]] == [[], []]
    assert reports[2].failed_items == [_item(2).key]
    assert reports[2].problems == [f"item {_item(2).key}: OperationalError: disk I/O error"]
    assert sorted(i for batch in seen for i in batch) == ["c0", "c1", "c2", "c3"]


def test_a_batch_never_splits_a_delivery_and_stays_near_its_limit() -> None:
    release = threading.Event()
    sizes: list[int] = []

    def process(items: list[Item]) -> ScanReport:
        release.wait(10)
        sizes.append(len(items))
        return ScanReport(items=len(items))

    worker = IngestWorker(process, max_batch=4)
    try:
        blocker = worker.submit([_item(99)])
        wait_until(lambda: worker._queue.qsize() == 0)
        futures = [worker.submit([_item(3 * n), _item(3 * n + 1), _item(3 * n + 2)])
                   for n in range(3)]
        release.set()
        for f in [blocker, *futures]:
            f.result(timeout=10)
    finally:
        worker.close()
    # 3 + 3 would pass the limit of 4, so each three-item delivery is a batch of its own
    assert sizes == [1, 3, 3, 3]


def test_after_close_a_submission_is_refused_rather_than_left_waiting() -> None:
    worker = IngestWorker(lambda items: ScanReport(items=len(items)))
    assert worker.submit([_item(1)]).result(timeout=10).items == 1
    worker.close()
    with pytest.raises(RuntimeError, match="stopped"):
        worker.submit([_item(2)]).result(timeout=1)


def test_while_deliveries_keep_coming_the_next_batch_starts_before_the_last_is_finished() -> None:
    """Under a burst the worker archives the next batch and starts its models before it records
    the current one (the two overlap on two cores); when nothing waits, it finishes at once."""
    events: list[tuple[str, list[str]]] = []
    slow_first = threading.Event()

    def start(items: list[Item]) -> Callable[[], ScanReport]:
        ids = [i.id for i in items]
        events.append(("begin", ids))
        if ids == ["c0"]:
            slow_first.wait(10)  # the others arrive meanwhile

        def finish() -> ScanReport:
            events.append(("finish", ids))
            return ScanReport(items=len(items))

        return finish

    worker = IngestWorker(start=start, max_batch=2)
    try:
        futures = [worker.submit([_item(0)])]
        wait_until(lambda: events == [("begin", ["c0"])])
        futures += [worker.submit([_item(1)]), worker.submit([_item(2)])]
        slow_first.set()
        assert [f.result(timeout=10).items for f in futures] == [1, 1, 1]
        assert events == [("begin", ["c0"]), ("begin", ["c1", "c2"]),
                          ("finish", ["c0"]), ("finish", ["c1", "c2"])]
        # an idle worker does not wait for more work before finishing what it has
        assert worker.submit([_item(3)]).result(timeout=10).items == 1
        assert events[-2:] == [("begin", ["c3"]), ("finish", ["c3"])]
    finally:
        worker.close()
