"""Detection without a database (``governance-bot classify``): dry runs, backfills, evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field

from governance_bot.config import Config
from governance_bot.findings import Finding
from governance_bot.history import MemoryHistory
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, Registers, read_toml
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.engine import DetectionEngine

__all__ = ["Classifier", "registers_from_config"]


def registers_from_config(config: Config) -> RegisterIndex:
    """The registers named in the config's files (TOML and/or CSV), without a database."""
    from governance_bot.registers import read_csv

    r = config.registers
    regs = read_toml(config.resolve_path(r.file)) if r.file else Registers()
    for kind, path in (("learners", r.learners), ("staff", r.staff), ("accounts", r.accounts)):
        if path:
            rows, _problems = read_csv(config.resolve_path(path), kind)
            getattr(regs, kind).extend(rows)
    return RegisterIndex(regs)


@dataclass
class Classifier:
    engine: DetectionEngine
    registers: RegisterIndex
    history: MemoryHistory
    router: Router = field(default_factory=Router)

    @classmethod
    def from_config(cls, config: Config, registers: RegisterIndex | None = None) -> Classifier:
        return cls(DetectionEngine.from_config(config),
                   registers or registers_from_config(config), MemoryHistory(),
                   Router(config.routing.overrides))

    def classify(self, item: Item) -> list[Finding]:
        """The item's findings, each routed (docs/routing.md)."""
        item = self.registers.resolve(item)
        findings = self.engine.detect(item, DetectionContext(self.registers, self.history))
        self.history.record(item, findings)
        return self.router.apply(findings, item)
