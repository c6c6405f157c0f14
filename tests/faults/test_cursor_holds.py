"""An item that fails mid-scan keeps the account's cursor where it was, so the next poll reads it
again: evidence is never skipped because something broke half-way (policy: every item archived).

The failure is injected into the detection step for one item (as a database error that outlasts
the pipeline's retries would surface); everything else is the real pipeline on each backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

import governance_bot.pipeline as pipeline_module
from connectors.jsonl import JsonlConnector, JsonlSettings
from governance_bot.config import Config
from governance_bot.runtime import Runtime
from governance_bot.storage import models as m
from rules.engine import DETECTORS
from tests.faults.world import REGISTERS, Counts, flagged, write_items


def test_a_failed_item_is_read_again_at_the_next_poll_and_flagged_once(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config.model_validate(dict(
        database={"url": database_url}, registers={"file": REGISTERS},
        detection={"disabled_rules": [r for r in DETECTORS if r != "learner_pii"]}))
    rt = Runtime.from_config(config)
    rt.pipeline.db_retry_seconds = 0.5
    export = tmp_path / "export.jsonl"
    write_items(export, 9)
    connector = JsonlConnector(JsonlSettings(name="fb", type="jsonl",
                                             account="brookfield-facebook", path=export))
    real = pipeline_module.record_findings
    broken = {"facebook:brookfield-facebook:p3"}

    def failing(session: Any, record: m.ItemRecord, findings: Any, **kw: Any) -> Any:
        if record.key in broken:
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real(session, record, findings, **kw)

    monkeypatch.setattr(pipeline_module, "record_findings", failing)
    report = rt.pipeline.scan(connector)
    assert report.failed == 1 and report.items == 9 and report.detected == 8  # p3 archived
    assert any("p3" in p for p in report.problems)
    assert rt.pipeline.load_cursor("fb") is None  # not moved past p3
    with rt.db.session() as s:
        state = s.get(m.ConnectorState, "fb")
        assert state is not None and "read again" in (state.last_error or "")

    broken.clear()  # the database is healthy again
    report = rt.pipeline.scan(connector)
    # p3 was archived before its detection failed: now only its detection is done
    assert report.failed == 0 and report.unchanged == 9 and report.detected == 1
    assert report.flags_created == 1
    assert rt.pipeline.load_cursor("fb") == {"lines": {str(export): 9}}
    counts = Counts.read(rt.db)
    counts.report("one item failing, then the next poll")
    assert counts.items == 9 and counts.flags == flagged(9)
    rt.close()
