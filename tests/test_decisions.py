"""Decisions on flags, race-free and idempotent, on SQLite and PostgreSQL (docs/routing.md,
"Decisions"): a decision is a compare-and-set on the flag's state in one transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors.base import (
    Capability,
    Connector,
    ConnectorSettings,
    FetchResult,
    ModerationAction,
    ModerationResult,
)
from governance_bot.authz import NeedToKnow, Refused
from governance_bot.decisions import AlreadyRecorded, Decisions
from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item
from governance_bot.pipeline import Pipeline
from governance_bot.registers import RegisterIndex, read_toml
from governance_bot.routing import Router
from governance_bot.runtime import import_register_files
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from rules.base import DetectionContext
from rules.engine import DetectionEngine

REGISTERS = Path(__file__).resolve().parents[1] / "examples" / "registers.toml"
ACCOUNT = "brookfield-facebook"
MANAGER_1, MANAGER_2 = "S004", "S005"
DSL, DEPUTY = "S001", "S002"


class SlowPlatform(Connector):
    """Records moderation calls; each takes a moment, as a platform's API does."""

    type = "slow-platform"
    capabilities = frozenset({Capability.read, Capability.hide, Capability.delete})

    def __init__(self, settings: Any, **kw: Any):
        super().__init__(settings, **kw)
        self.calls: list[tuple[str, ModerationAction]] = []

    def fetch(self, cursor: dict[str, Any] | None) -> FetchResult:
        return FetchResult(items=[], cursor=cursor)

    def moderate(self, item: Item, action: ModerationAction) -> ModerationResult:
        time.sleep(0.2)
        self.calls.append((item.key, action))
        return ModerationResult(ok=True, action=action, detail=f"{action.value} done")


class ByText:
    """Test detector: "NAME" is a learner's name (content), "HURT" a disclosure."""

    rule_id = "by_text"

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        if "NAME" in item.text:
            yield Finding("by_text", Category.learner_pii, Severity.medium, 1.0,
                          "a learner's name", Evidence(register_entry="learner:L001"))
        if "HURT" in item.text:
            yield Finding("by_text_sg", Category.safeguarding, Severity.high, 1.0,
                          "a disclosure")


@dataclass
class World:
    db: Database
    decisions: Decisions
    platform: SlowPlatform
    pipeline: Pipeline

    def flag(self, text: str, n: int = 1) -> int:
        item = Item.model_validate({
            "id": f"p{n}", "platform": "facebook", "account": ACCOUNT, "kind": "comment",
            "author": {"id": "someone", "name": "A member of the public"},
            "created_at": datetime(2026, 11, 20, 10, 0, tzinfo=UTC).isoformat(), "text": text})
        change = self.pipeline.process(item)
        assert change is not None
        return int(change.flag.id)

    def count(self, model: Any, **where: Any) -> int:
        with self.db.session() as s:
            q = select(func.count()).select_from(model)
            for k, v in where.items():
                q = q.where(getattr(model, k) == v)
            return int(s.execute(q).scalar_one())


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    db = Database(database_url)
    db.ensure_schema()
    import_register_files(db, toml=REGISTERS)
    registers = RegisterIndex(read_toml(REGISTERS))
    platform = SlowPlatform(ConnectorSettings(name="fb", type="slow-platform", account=ACCOUNT))
    decisions = Decisions(db, lambda: NeedToKnow(registers), connectors=[platform])
    pipeline = Pipeline(db, DetectionEngine([ByText()]), registers,  # type: ignore[list-item]
                        router=Router())
    yield World(db, decisions, platform, pipeline)
    pipeline.close()
    db.dispose()


def _together(*calls: Any) -> list[Any]:
    """Run the calls at the same moment on threads; each result or the exception raised."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int, call: Any) -> None:
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_two_managers_pressing_remove_together_make_one_platform_call_and_one_decision(
        world: World) -> None:
    flag_id = world.flag("NAME in a comment")
    results = _together(
        lambda: world.decisions.remove(flag_id, MANAGER_1, reason="Names a learner.",
                                       moderation="hide"),
        lambda: world.decisions.remove(flag_id, MANAGER_2, reason="Names a learner too.",
                                       moderation="delete"))
    assert len(world.platform.calls) == 1
    assert world.count(m.FlagDecision, action="remove") == 1
    assert sorted(type(r).__name__ for r in results) == ["AlreadyRecorded", "DecisionResult"]
    with world.db.session() as s:
        flag = s.get(m.Flag, flag_id)
        assert flag is not None and flag.status == "actioned" and flag.removal == "removed"
        assert auditlog.verify(s).ok


def test_the_same_outcome_submitted_three_times_is_recorded_once(world: World) -> None:
    flag_id = world.flag("HURT", n=2)
    with world.db.session() as s:
        version = s.get(m.Flag, flag_id).version  # type: ignore[union-attr]
    first = world.decisions.record_outcome(flag_id, DSL, "monitoring", "watching",
                                           expected_version=version)
    for _ in range(2):  # the same signed form again: the flag has moved on
        with pytest.raises(AlreadyRecorded):
            world.decisions.record_outcome(flag_id, DSL, "monitoring", "watching",
                                           expected_version=version)
    assert first.status == "acknowledged"
    assert world.count(m.FlagDecision, action="outcome") == 1


def test_an_escalated_flag_cannot_be_closed_by_a_manager_only_by_the_dsl_side(
        world: World) -> None:
    flag_id = world.flag("NAME again", n=3)
    world.decisions.escalate(flag_id, MANAGER_1)
    with pytest.raises(Refused, match="escalated to the DSL"):
        world.decisions.keep(flag_id, MANAGER_2, "It is fine.")
    with pytest.raises(Refused, match="escalated to the DSL"):
        world.decisions.remove(flag_id, MANAGER_2, reason="Names a learner.")
    assert world.count(m.FlagDecision, action="keep") == 0
    result = world.decisions.keep(flag_id, DEPUTY, "Consent is on file.")
    assert result.status == "dismissed"
    assert world.platform.calls == []


def test_a_manager_may_take_down_a_post_holding_a_disclosure_but_not_close_the_dsls_part(
        world: World) -> None:
    flag_id = world.flag("NAME and HURT", n=4)
    done = world.decisions.remove(flag_id, MANAGER_1, reason="Names a learner.",
                                  moderation="hide")
    assert done.status == "open"  # the disclosure is still the DSL's to handle
    with pytest.raises(Refused, match="only the DSL and deputies"):
        world.decisions.record_outcome(flag_id, MANAGER_1, "no_further_action")
    closed = world.decisions.record_outcome(flag_id, DSL, "social_care", "MASH referral")
    assert closed.status == "closed"


def test_a_removal_records_the_contacts_only_when_carried_out_and_encrypted(
        world: World) -> None:
    from governance_bot.storage import crypto

    crypto.configure([crypto.generate_key()])
    try:
        _remove_and_inform(world)
    finally:
        crypto.configure(None)


def _remove_and_inform(world: World) -> None:
    flag_id = world.flag("NAME", n=5)
    roles = world.decisions.inform_roles(flag_id)
    assert [r.key for r in roles] == ["learner:1", "guardian:1"]
    assert all("Karen" not in r.label and "@" not in r.label for r in roles)
    world.decisions.remove(flag_id, MANAGER_2, reason="Named.", inform=[r.key for r in roles],
                           method="email")
    with world.db.session() as s:
        informed = list(s.execute(select(m.InformedPerson)).scalars())
        assert {(i.relation, i.contact) for i in informed} == {
            ("learner", "jayden.price@students.brookfield.example.org"),
            ("guardian", "Karen Price <karen.price@mail.example.com>")}
        raw = list(s.connection().exec_driver_sql("SELECT contact FROM flag_informed").scalars())
        assert raw and all("karen" not in str(v).lower() for v in raw)  # encrypted at rest
