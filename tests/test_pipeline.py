"""The pipeline: archive first, nothing lost or duplicated; a flag and its outbox together."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connectors.base import FetchResult, ListingWindow
from connectors.jsonl import JsonlConnector, JsonlSettings
from governance_bot.config import Config
from governance_bot.findings import Route
from governance_bot.items import Item
from governance_bot.runtime import Runtime
from governance_bot.storage import auditlog
from governance_bot.storage import models as m

T0 = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday in term, 10:00 GMT


def post(native_id: str, text: str, *, minutes: int = 0, **extra: object) -> Item:
    data = {
        "id": native_id, "platform": "facebook", "account": "brookfield-facebook",
        "kind": "post", "author": {"id": "104000000001", "handle": "BrookfieldAcademy"},
        "created_at": (T0 + timedelta(minutes=minutes)).isoformat(), "visibility": "public",
        "text": text,
    }
    data.update(extra)
    return Item.model_validate(data)


def count(rt: Runtime, table: type) -> int:
    with rt.db.session() as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_learners_full_name_in_a_public_post_is_flagged_to_the_account_managers(
    backend_config: Callable[..., Config],
):
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    change = rt.pipeline.process(post("p1", "Well done to Maisie O'Connell for her county win!"))
    assert change is not None and change.created
    assert change.new_routes == [Route.account_managers]
    with rt.db.session() as s:
        finding = s.execute(select(m.Finding)).scalars().one()
        assert finding.category == "learner_pii"
        assert finding.evidence["register_entry"] == "learner:L002"
        outbox = s.execute(select(m.OutboxMessage)).scalars().one()
        assert (outbox.route, outbox.kind, outbox.flag_id) == ("account_managers",
                                                               "flag_created", change.flag.id)


def test_re_scanning_the_same_items_creates_no_duplicate_flags(
    backend_config: Callable[..., Config],
):
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    items = [post("p1", "Congratulations Jayden Price!"), post("p2", "Sports day is on Friday",
                                                                  minutes=5)]
    first = rt.pipeline.process_many(items)
    second = rt.pipeline.process_many(items)
    assert (first.new, first.flags_created) == (2, 1)
    assert (second.unchanged, second.flags_created, second.flags_updated) == (2, 0, 0)
    assert count(rt, m.Flag) == 1 and count(rt, m.OutboxMessage) == 1
    assert count(rt, m.ItemVersion) == 2


def test_an_edit_makes_a_new_version_and_only_new_findings_update_the_flag(
    backend_config: Callable[..., Config],
):
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    rt.pipeline.process(post("p1", "Great match today"))
    report = rt.pipeline.process_many([post("p1", "Great match today, well played Ethan Nwosu")])
    assert report.edited == 1 and report.flags_created == 1
    with rt.db.session() as s:
        versions = s.execute(select(m.ItemVersion.version).order_by(m.ItemVersion.version)
                             ).scalars().all()
        assert versions == [1, 2]
        record = s.execute(select(m.ItemRecord)).scalars().one()
        assert record.current_version == 2


def test_an_item_missing_from_a_complete_listing_is_marked_deleted_and_its_copy_kept(
    backend_config: Callable[..., Config], tmp_path: Path,
):
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    connector = JsonlConnector(JsonlSettings(name="fb", type="jsonl",
                                             account="brookfield-facebook", path=tmp_path))
    window = ListingWindow(start=T0 - timedelta(days=1), end=T0 + timedelta(days=1))
    a, b = post("a", "Open evening on Thursday"), post("b", "Our choir sang beautifully", minutes=9)
    rt.pipeline.apply_fetch(connector, FetchResult(items=[a, b], cursor={}, windows=[window]))
    report = rt.pipeline.apply_fetch(connector, FetchResult(items=[a], cursor={},
                                                            windows=[window]))
    assert report.deleted == 1
    with rt.db.session() as s:
        record = s.execute(select(m.ItemRecord).where(m.ItemRecord.native_id == "b")).scalar_one()
        assert record.deleted_at is not None
        kept = s.execute(select(m.ItemVersion).where(m.ItemVersion.item_id == record.id)
                         ).scalar_one()
        assert kept.data["text"] == "Our choir sang beautifully"
        # the organisation's own post vanished: recorded as a deletion flag for the managers
        flag = s.execute(select(m.Flag).where(m.Flag.item_id == record.id)).scalar_one()
        assert (flag.category, flag.route) == ("deletion", "account_managers")
        assert s.execute(select(m.AuditEvent).where(m.AuditEvent.action == "item.deleted")
                         ).scalars().one().subject == record.key
        assert auditlog.verify(s).ok


def test_the_flag_and_its_outbox_row_are_written_in_one_transaction(
    backend_config: Callable[..., Config],
):
    """If writing the outbox fails, the flag is not left behind without its notification."""
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    from governance_bot import flags as flags_module

    def exploding_outbox_row(**_: object) -> None:
        raise RuntimeError("disk full")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(flags_module.m, "OutboxMessage", exploding_outbox_row)
        report = rt.pipeline.process_many([post("p1", "Well done Jayden Price")])
    assert report.problems and "disk full" in report.problems[0]
    assert count(rt, m.Flag) == 0 and count(rt, m.OutboxMessage) == 0
    assert count(rt, m.ItemRecord) == 1  # archived before detection: nothing lost
    # the next run finishes the job
    again = rt.pipeline.process_many([post("p1", "Well done Jayden Price")])
    assert again.flags_created == 1 and count(rt, m.OutboxMessage) == 1


def test_the_outbox_delivers_each_notification_once_and_retries_failures(
    backend_config: Callable[..., Config], tmp_path: Path,
):
    from governance_bot.outbox import FlagView
    from governance_bot.sinks.console import JsonSink

    rt = Runtime.from_config(backend_config(), with_connectors=False)
    rt.pipeline.process_many([post("p1", "Happy birthday Ruby Fletcher!"),
                              post("p2", "Call Zara on 07700 900123", minutes=1)])
    out = tmp_path / "flags.jsonl"

    class Flaky(JsonSink):
        calls = 0

        def deliver(self, view: FlagView) -> None:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise ConnectionError("sink down")
            super().deliver(view)

    sender = rt.sender(Flaky(out))
    # the first delivery fails and is kept for a retry with backoff; the other goes on
    assert sender.drain() == (1, 1)
    assert sender.drain() == (0, 0)  # not due yet
    later = datetime.now(UTC) + timedelta(hours=1)
    assert sender.drain(now=later) == (1, 0)
    assert sender.drain(now=later + timedelta(hours=1)) == (0, 0)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["flag_id"] for x in lines) == [1, 2]
    assert all(x["route"] == "account_managers" for x in lines)
    assert {tuple(x["recipients"]) for x in lines} == {("S004", "S005")}


def test_a_message_the_platform_reports_deleted_keeps_its_last_copy_and_is_flagged(
    backend_config: Callable[..., Config],
):
    """Teams, Slack and WhatsApp say when a message is deleted (``deleted_at``): staff do not
    delete messages sent to or from organisation accounts, and evidence is kept."""
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    message = Item.model_validate({
        "id": "m1", "platform": "teams", "account": "brookfield-teams", "kind": "chat_message",
        "author": {"email": "d.mensah@brookfield.example.org"},
        "recipients": [{"email": "maisie.oconnell@students.brookfield.example.org"}],
        "created_at": T0.isoformat(), "visibility": "direct", "text": "See you at 4",
    })
    rt.pipeline.process(message)
    gone = message.model_copy(update={"text": "", "deleted_at": T0 + timedelta(minutes=3)})
    report = rt.pipeline.process_many([gone, gone])  # re-delivered: recorded once
    assert report.deleted == 1
    with rt.db.session() as s:
        record = s.execute(select(m.ItemRecord)).scalars().one()
        assert record.deleted_at == T0 + timedelta(minutes=3)
        assert s.execute(select(m.ItemVersion.data)).scalars().one()["text"] == "See you at 4"
        flag = s.execute(select(m.Flag)).scalars().one()
        assert (flag.category, flag.severity) == ("deletion", 3)


# --- batches ---------------------------------------------------------------------------------

def _tutor_message(native_id: str, when: str) -> Item:
    """A Teams chat from the tutor Daniel Mensah (S006) to the learner Maisie (L002)."""
    return Item.model_validate({
        "id": native_id, "platform": "teams", "account": "brookfield-teams",
        "kind": "chat_message", "author": {"id": "teams:aad-0006", "name": "Daniel Mensah"},
        "recipients": [{"email": "maisie.oconnell@students.brookfield.example.org"}],
        "created_at": when, "visibility": "direct", "text": "Have you finished the essay?",
    })


def _findings_by_item(rt: Runtime) -> dict[str, list[tuple[str, int]]]:
    with rt.db.session() as s:
        rows = s.execute(select(m.ItemRecord.native_id, m.Finding.rule_id, m.Finding.severity)
                         .join(m.Finding, m.Finding.item_id == m.ItemRecord.id)).all()
    out: dict[str, list[tuple[str, int]]] = {}
    for native_id, rule_id, severity in rows:
        out.setdefault(native_id, []).append((rule_id, severity))
    return {k: sorted(v) for k, v in out.items()}


def test_a_third_out_of_hours_message_in_the_same_batch_goes_to_the_case_manager_as_alone(
    make_config: Callable[..., Config], tmp_path: Path,
):
    """Findings of a batch are recorded together, after the whole batch is checked: the repeat
    count must still see the batch's earlier messages, exactly as when items come one by one."""
    messages = [_tutor_message("c1", "2026-03-02T21:00:00+00:00"),
                _tutor_message("c2", "2026-03-08T11:00:00+00:00"),
                _tutor_message("c3", "2026-03-15T22:45:00+00:00")]
    one_by_one = Runtime.from_config(make_config(), with_connectors=False)
    for item in messages:
        one_by_one.pipeline.process(item)
    expected = _findings_by_item(one_by_one)
    assert [max(s for _, s in expected[k]) for k in ("c1", "c2", "c3")] == [2, 2, 4]

    (tmp_path / "batch").mkdir()
    batch_config = make_config().model_copy(deep=True)
    batch_config.database.url = f"sqlite:///{tmp_path / 'batch' / 'db.sqlite'}"
    batched = Runtime.from_config(batch_config, with_connectors=False)
    report = batched.pipeline.process_many(messages)
    assert report.detected == 3 and not report.failed_items
    assert _findings_by_item(batched) == expected
    with batched.db.session() as s:
        routes = set(s.execute(select(m.Flag.route)).scalars())
    # repeated contact: at once, to the case manager (a concern about staff, docs/routing.md)
    assert "case_manager" in routes


def test_one_item_that_breaks_a_detector_does_not_stop_the_rest_of_its_batch(
    backend_config: Callable[..., Config], monkeypatch: pytest.MonkeyPatch,
):
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    engine = rt.pipeline.engine
    real_detect = engine.detect

    def detect(item: Item, ctx: object, precomputed: object = None) -> object:
        if item.id == "p2":
            raise ValueError("a detector bug")
        return real_detect(item, ctx, precomputed)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "detect", detect)
    report = rt.pipeline.process_many([post("p1", "Well done Jayden Price"),
                                       post("p2", "Well done Ruby Fletcher"),
                                       post("p3", "Happy birthday Ruby Fletcher!")])
    assert report.failed_items == [post("p2", "x").key]
    assert report.detected == 2 and report.flags_created == 2
    assert count(rt, m.ItemRecord) == 3  # all archived, the broken one too
    with rt.db.session() as s:
        undetected = s.execute(select(m.ItemRecord.native_id).join(
            m.ItemVersion, m.ItemVersion.item_id == m.ItemRecord.id).where(
            m.ItemVersion.detected_at.is_(None))).scalars().all()
    assert undetected == ["p2"]  # checked again at the next run


def test_after_start_up_the_services_small_matrix_products_run_on_one_blas_thread(
    make_config, tmp_path, monkeypatch
):
    """OpenBLAS's idle threads spin after every product; with a thread per core they took a
    third of the CPU at 50 items/s. Even when numpy was loaded with more threads before the
    service (as a host program might), the runtime brings every loaded BLAS back to one."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    from governance_bot.runtime import Runtime

    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("numpy here uses no BLAS library that threadpoolctl can see")
    with threadpool_limits(limits=2, user_api="blas") as before:
        assert any(i["num_threads"] == 2 for i in threadpool_info() if i["user_api"] == "blas")
        rt = Runtime.from_config(make_config(), with_connectors=False)
        try:
            after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
            assert after and set(after) == {1}
            np.ones((8, 384)) @ np.ones((384, 40))  # still computes
        finally:
            rt.close()
            before.restore_original_limits()


def test_a_batch_is_archived_exactly_as_its_items_would_be_one_at_a_time(
    backend_config: Callable[..., Config],
):
    """New, unchanged, edited and repeated items in one batch: the same versions, the same
    report, the same flags as archiving them one by one (the batch is written in a few
    statements)."""
    rt = Runtime.from_config(backend_config(), with_connectors=False)
    rt.pipeline.process_many([post("p1", "Sports day is on Friday"),
                              post("p2", "Great match today")])
    batch = [
        post("p1", "Sports day is on Friday"),                         # unchanged
        post("p2", "Great match today, well played Ethan Nwosu"),      # edited: now flagged
        post("p3", "Congratulations Jayden Price!", minutes=3),        # new and flagged
        post("p4", "The library is open until five", minutes=4),      # new
        post("p5", "Bake sale on Thursday", minutes=5),                # new, then edited below
        post("p5", "Bake sale on Thursday, thanks Maisie O'Connell", minutes=5),
    ]
    report = rt.pipeline.process_many(batch, batch_size=len(batch))
    assert (report.items, report.new, report.edited, report.unchanged) == (6, 3, 2, 1)
    assert report.flags_created == 3
    with rt.db.session() as s:
        versions = s.execute(select(m.ItemRecord.native_id, m.ItemVersion.version,
                                    m.ItemVersion.detected_at.is_not(None))
                             .join(m.ItemVersion, m.ItemVersion.item_id == m.ItemRecord.id)
                             .order_by(m.ItemRecord.native_id, m.ItemVersion.version)).all()
    assert [tuple(v) for v in versions] == [
        ("p1", 1, True), ("p2", 1, True), ("p2", 2, True), ("p3", 1, True), ("p4", 1, True),
        ("p5", 1, True), ("p5", 2, True)]
    again = rt.pipeline.process_many(batch[:5], batch_size=5)
    # p5's first, older body comes again: it never rolls the archive back (issue 17 row 2)
    assert (again.new, again.edited, again.unchanged, again.flags_created) == (0, 0, 5, 0)
    with rt.db.session() as s:
        assert s.execute(select(m.ItemRecord.current_version).where(
            m.ItemRecord.native_id == "p5")).scalar_one() == 2


def test_a_long_running_service_sets_its_start_up_objects_aside_from_the_garbage_collector(
    make_config,
):
    """A full collection walks every tracked object while holding the interpreter lock; with the
    models loaded that is ~600,000 objects and hundreds of milliseconds, which showed as the
    slowest items' latency. ``governance-bot run`` sets them aside before it serves; garbage
    made before that is still collected."""
    import gc
    import weakref

    from governance_bot.runtime import Runtime, freeze_startup_objects

    class Node:
        other: object = None

    rt = Runtime.from_config(make_config(), with_connectors=False)
    garbage = Node()
    garbage.other = garbage  # a reference cycle nobody holds once the name is dropped
    probe = weakref.ref(garbage)
    del garbage
    try:
        frozen = freeze_startup_objects()
        assert frozen > 0
        assert not any(o is rt.engine for o in gc.get_objects())  # set aside: no longer walked
        assert probe() is None  # and the cycle was collected, not kept forever
    finally:
        gc.unfreeze()
        rt.close()
