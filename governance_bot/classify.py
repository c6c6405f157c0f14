"""Detection without the pipeline (``governance-bot classify``): dry runs, backfills, evaluation.

Items are detected in batches through the same engine path as ``ingest`` (the model-backed
detectors see a whole batch at once; the other rules then check it item by item, in order,
against the history so far), keeping the input order and isolating a failing item. The
registers are the service's: those in the database (``registers import`` and every start put
them there), with the files named in the config laid over them as the next start would import
them; without a database, the files alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from governance_bot.config import Config
from governance_bot.findings import Finding
from governance_bot.history import MemoryHistory
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, Registers, read_toml
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.engine import DetectionEngine

__all__ = ["Classifier", "registers_from_config", "service_registers"]

log = logging.getLogger(__name__)


def _file_registers(config: Config) -> Registers:
    from governance_bot.registers import read_csv

    r = config.registers
    regs = read_toml(config.resolve_path(r.file)) if r.file else Registers()
    for kind, path in (("learners", r.learners), ("staff", r.staff), ("accounts", r.accounts)):
        if path:
            rows, _problems = read_csv(config.resolve_path(path), kind)
            getattr(regs, kind).extend(rows)
    return regs


def registers_from_config(config: Config) -> RegisterIndex:
    """The registers named in the config's files (TOML and/or CSV), without a database."""
    return RegisterIndex(_file_registers(config))


def _database_registers(config: Config) -> Registers | None:
    """The registers stored in the configured database, read only; None when there is no
    database yet (nothing is created) or it cannot be read (said in the log)."""
    from sqlalchemy.engine import make_url

    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:" or not config.resolve_path(Path(path)).exists():
            return None
    from governance_bot.register_store import load_registers
    from governance_bot.storage.db import Database

    db = Database(config.database_url)
    try:
        if db.current_revision() is None:
            return None
        with db.session() as session:
            return load_registers(session)
    except Exception as exc:  # an unreachable server, an outdated schema: the files still work
        log.warning("the registers in the database could not be read (%s: %s); using the "
                    "files named in the config", type(exc).__name__, exc)
        return None
    finally:
        db.dispose()


def _overlay(base: Registers, files: Registers) -> Registers:
    """``base`` with the files' records added or replacing those with the same id, as the
    service's start-up import does (it never removes a record)."""
    def merged(kind: str, key: str) -> list[object]:
        rows = {getattr(r, key): r for r in getattr(base, kind)}
        rows.update({getattr(r, key): r for r in getattr(files, kind)})
        return list(rows.values())

    return Registers(staff=merged("staff", "staff_id"),  # type: ignore[arg-type]
                     learners=merged("learners", "learner_id"),  # type: ignore[arg-type]
                     accounts=merged("accounts", "account_id"))  # type: ignore[arg-type]


def service_registers(config: Config) -> RegisterIndex:
    """The registers the service would detect with: the database's, updated by the config's
    files; the files alone when there is no database yet."""
    files = _file_registers(config)
    stored = _database_registers(config)
    return RegisterIndex(files if stored is None else _overlay(stored, files))


@dataclass
class Classifier:
    engine: DetectionEngine
    registers: RegisterIndex
    history: MemoryHistory
    router: Router = field(default_factory=Router)

    @classmethod
    def from_config(cls, config: Config, registers: RegisterIndex | None = None) -> Classifier:
        return cls(DetectionEngine.from_config(config),
                   registers or service_registers(config), MemoryHistory(),
                   Router(config.routing.overrides))

    def classify(self, item: Item) -> list[Finding]:
        """One item's findings, each routed (docs/routing.md), detected alone: the reference
        the batched path is compared with."""
        item = self.registers.resolve(item)
        findings = self.engine.detect(item, DetectionContext(self.registers, self.history))
        self.history.record(item, findings)
        return self.router.apply(findings, item)

    def classify_many(self, items: Iterable[Item], batch_size: int = 64
                      ) -> Iterator[tuple[Item, list[Finding] | Exception]]:
        """Each item with its routed findings (or the error that stopped its detection), in
        input order, detected a batch at a time (``DetectionEngine.detect_stream``)."""
        ctx = DetectionContext(self.registers, self.history)
        for item, found in self.engine.detect_stream(items, ctx, batch_size=batch_size,
                                                     prepare=self.registers.resolve,
                                                     record=self.history.record):
            if isinstance(found, Exception):
                yield item, found
                continue
            try:
                yield item, self.router.apply(found, item)
            except Exception as exc:  # routing one item's findings failed: that item alone
                log.exception("routing the findings of item %s failed", item.key)
                yield item, exc
