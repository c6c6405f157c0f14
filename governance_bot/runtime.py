"""Assembling the parts from a config: database, registers, detection, pipeline, sinks."""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.base import Connector
from connectors.registry import load as load_connector
from governance_bot.authz import NeedToKnow
from governance_bot.changes import record_config_changes
from governance_bot.config import Config, connector_settings
from governance_bot.image_text import ImageTextReader, OcrUnavailable
from governance_bot.media import MediaFetcher, MediaOptions, store_from_config
from governance_bot.outbox import OutboxSender, Sink
from governance_bot.pipeline import Pipeline
from governance_bot.register_store import ImportSummary, import_registers, load_registers
from governance_bot.registers import RegisterError, RegisterIndex, read_csv, read_toml
from governance_bot.routing import Router
from governance_bot.storage import crypto
from governance_bot.storage.db import Database
from rules.engine import DetectionEngine
from rules.packs import load_pack

__all__ = ["Runtime", "import_register_files", "make_sink", "media_fetcher"]

log = logging.getLogger(__name__)


def make_sink(config: Config, registers: RegisterIndex | None = None) -> Sink:
    from governance_bot.sinks.console import ConsoleSink, JsonSink

    mask = config.delivery.mask_learner_details
    if config.delivery.sink == "json":
        path = config.delivery.json_path or Path("flags.jsonl")
        return JsonSink(config.resolve_path(path), registers=registers,
                        mask_learner_details=mask)
    if config.delivery.sink == "slack":
        try:
            from governance_bot.slack.sink import SlackSink
        except ImportError as exc:  # pragma: no cover - until the Slack app is installed
            raise RuntimeError("the Slack sink is not available in this installation") from exc
        sink: Sink = SlackSink.from_config(config)
        return sink
    return ConsoleSink(registers=registers, mask_learner_details=mask)


def import_register_files(db: Database, *, toml: Path | None = None, learners: Path | None = None,
                          staff: Path | None = None, accounts: Path | None = None,
                          actor: str = "governance-bot") -> ImportSummary:
    """Import register files into the database (idempotent). Raises RegisterError listing every
    bad row of every file; nothing is written then."""
    kinds: dict[str, list[Any]] = {}
    problems: list[str] = []
    sources = []
    if toml is not None:
        try:
            regs = read_toml(toml)
        except RegisterError as exc:
            problems.extend(exc.problems)
        else:
            kinds["staff"], kinds["learners"], kinds["accounts"] = (
                list(regs.staff), list(regs.learners), list(regs.accounts))
        sources.append(str(toml))
    for kind, path in (("learners", learners), ("staff", staff), ("accounts", accounts)):
        if path is None:
            continue
        if not path.is_file():
            problems.append(f"{path}: no such file")
            continue
        rows, bad = read_csv(path, kind)
        problems.extend(bad)
        kinds.setdefault(kind, []).extend(rows)
        sources.append(str(path))
    problems.extend(_duplicates_across_files(toml, kinds))
    if problems:
        raise RegisterError(problems)
    with db.session() as session:
        return import_registers(session, kinds, actor=actor, source=", ".join(sources))


def _duplicates_across_files(toml: Path | None, kinds: dict[str, list[Any]]) -> list[str]:
    """A person in both the TOML and a CSV register (each file is checked alone when read):
    the second would silently replace the first."""
    from governance_bot.registers import ID_FIELDS

    problems = []
    for kind, records in kinds.items():
        seen: set[str] = set()
        for record in records:
            ident = getattr(record, ID_FIELDS[kind])
            if ident in seen:
                problems.append(f"{kind}: {ID_FIELDS[kind]} {ident!r} is in {toml} and in the "
                                f"{kind} CSV; nothing imported. Fix: keep each person in one "
                                "file.")
            seen.add(ident)
    return problems


def limit_blas_threads() -> None:
    """One thread for the BLAS libraries already loaded (numpy's and scipy's OpenBLAS), unless
    ``OPENBLAS_NUM_THREADS`` says otherwise (see ``governance_bot/__init__.py``: their idle
    threads spin after every small matrix product)."""
    from threadpoolctl import threadpool_limits

    try:
        wanted = max(1, int(os.environ.get("OPENBLAS_NUM_THREADS", "1")))
    except ValueError:
        wanted = 1
    threadpool_limits(limits=wanted, user_api="blas")


def freeze_startup_objects() -> int:
    """Set the objects made while starting (models, rule packs, registers: about 600,000 with
    every rule on) aside from the garbage collector, for a long-running process. Otherwise each
    full collection walks them all while holding the interpreter lock, about 350 ms on a
    two-core machine, which showed as the slowest items' latency under load
    (bench/RESULTS-load.md). Garbage is collected first, so nothing unreachable is kept.
    Returns how many objects are set aside."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


@dataclass
class Runtime:
    config: Config
    db: Database
    registers: RegisterIndex
    engine: DetectionEngine
    pipeline: Pipeline
    connectors: list[Connector] = field(default_factory=list)

    @classmethod
    def from_config(cls, config: Config, *, create_schema: bool = True,
                    import_registers_from_config: bool = True,
                    with_connectors: bool = True) -> Runtime:
        crypto.configure(config.security.keys())
        db = Database(config.database_url, echo=config.database.echo)
        db.ensure_schema(create_if_empty=create_schema)
        if import_registers_from_config:
            summary = cls._import_configured_registers(config, db)
            if summary is not None and summary.changed:
                log.info("registers updated from the config's files: %s", summary.line())
        changed = record_config_changes(db, config)
        if changed:
            log.info("configuration or rules changed since the last start (recorded in the audit "
                     "log): %s", ", ".join(changed))
        with db.session() as session:
            registers = RegisterIndex(load_registers(session))
        engine = DetectionEngine.from_config(config)
        connectors: list[Connector] = []
        if with_connectors:
            for settings in connector_settings(config):
                if settings.enabled:
                    connectors.append(load_connector(settings.type)(settings))
        pipeline = Pipeline(db, engine, registers, image_text=image_text_reader(config),
                            router=Router(config.routing.overrides),
                            media=media_fetcher(config, db, connectors))
        limit_blas_threads()
        return cls(config, db, registers, engine, pipeline, connectors)

    @staticmethod
    def _import_configured_registers(config: Config, db: Database) -> ImportSummary | None:
        r = config.registers
        paths = {k: (config.resolve_path(v) if v else None) for k, v in
                 (("toml", r.file), ("learners", r.learners), ("staff", r.staff),
                  ("accounts", r.accounts))}
        if not any(paths.values()):
            return None
        return import_register_files(db, actor="config", **paths)

    def reload_registers(self) -> None:
        with self.db.session() as session:
            self.registers = RegisterIndex(load_registers(session))
        self.pipeline.registers = self.registers

    def sender(self, sink: Sink | None = None) -> OutboxSender:
        return OutboxSender(self.db, sink or make_sink(self.config, self.registers),
                            self.registers,
                            lease_seconds=self.config.service.lease_seconds,
                            need_to_know=self.need_to_know())

    def need_to_know(self) -> NeedToKnow:
        """Who may see and do what, over the current registers (docs/routing.md)."""
        return NeedToKnow.from_config(self.config, self.registers)

    def close(self) -> None:
        from governance_bot.audit_anchor import anchor

        for c in self.connectors:
            c.close()
        self.pipeline.close()
        anchor(self.config, self.db)  # what this run wrote to the audit log, anchored outside
        self.db.dispose()


def image_text_reader(config: Config) -> ImageTextReader | None:
    """The OCR step of the pipeline, set by the images rule pack (``[image_text]``, ``[limits]``);
    None when it is switched off or no engine is installed (said once, at WARNING)."""
    packs = config.detection.packs_dir
    try:
        pack = load_pack("images", config.resolve_path(packs) if packs else None)
        return ImageTextReader.from_pack(pack)
    except OcrUnavailable as exc:
        log.warning("text in images is not read: %s. Fix: install the Debian package "
                    "tesseract-ocr (and pytesseract), or set [image_text] enabled = false in "
                    "the images rule pack", exc)
        return None


def media_fetcher(config: Config, db: Database, connectors: list[Connector]
                  ) -> MediaFetcher | None:
    """The media step of the pipeline (``[media]``): None when it is off or no connector is
    configured (items from files carry their own local copies)."""
    if not config.media.enabled or not connectors:
        return None
    store = store_from_config(config)
    assert store is not None
    s = config.media
    return MediaFetcher(db, store, connectors, MediaOptions(
        timeout_seconds=s.timeout_seconds, batch_timeout_seconds=s.batch_timeout_seconds,
        max_per_item=s.max_per_item, workers=s.workers,
        refetch_after_hours=s.refetch_after_hours, max_attempts=s.max_attempts,
        allow_private_networks=s.allow_private_networks))
