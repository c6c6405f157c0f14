"""Changes to monitoring (config, rules, thresholds) are logged with who and when."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from governance_bot.changes import record_config_changes
from governance_bot.config import Config
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from rules.packs import SHIPPED


def changes(db: Database) -> list[list[str]]:
    with db.session() as s:
        rows = s.execute(select(m.AuditEvent).where(m.AuditEvent.action == "config.changed")
                         .order_by(m.AuditEvent.seq)).scalars()
        return [list(e.data["fields"]) for e in rows]


def test_a_change_to_working_hours_or_a_rule_pack_is_recorded_once(
    make_config: Callable[..., Config], tmp_path: Path,
):
    config = make_config()
    db = Database(config.database_url)
    db.ensure_schema()
    assert record_config_changes(db, config, actor="technician") == []
    assert record_config_changes(db, config, actor="technician") == []  # unchanged: nothing
    assert changes(db) == [["(first start)"]]

    later = make_config('[working_hours]\nfriday = "08:00-16:00"\n')
    assert record_config_changes(db, later, actor="technician") == ["config:working_hours"]

    packs = tmp_path / "packs"
    packs.mkdir()
    tone = (SHIPPED / "tone.toml").read_text()
    (packs / "tone.toml").write_text(tone + "\n# the DSL added a phrase\n")
    tuned = later.model_copy(update={"detection": later.detection.model_copy(
        update={"packs_dir": packs})})
    assert record_config_changes(db, tuned, actor="dsl") == ["config:detection", "rules:tone"]
    with db.session() as s:
        last = s.execute(select(m.AuditEvent).order_by(m.AuditEvent.seq.desc())).scalars().first()
        assert last is not None and last.actor == "dsl"
