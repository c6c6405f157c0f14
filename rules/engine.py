"""The detection engine: builds the enabled detectors from their packs and runs them on items.

Each detector module provides a class with ``rule_id`` and a classmethod
``from_pack(pack: dict, config: Config) -> Detector``; ``DETECTORS`` maps rule ids to them.
Cheap rules run first; model-backed ones after.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from typing import TYPE_CHECKING, Any

from governance_bot.findings import Finding
from governance_bot.items import where_said
from rules.base import DetectionContext, Detector, DetectorUnavailable, batches_alone
from rules.packs import load_pack

if TYPE_CHECKING:
    from governance_bot.config import Config
    from governance_bot.items import Item

__all__ = ["DETECTORS", "DetectionEngine", "build_detector"]

log = logging.getLogger(__name__)

# rule id -> "module:Class"; order is run order (cheap first).
DETECTORS: dict[str, str] = {
    "learner_pii": "rules.learner_pii:LearnerPiiDetector",
    "out_of_hours": "rules.out_of_hours:OutOfHoursDetector",
    "tone": "rules.tone:ToneDetector",
    "personal_account_contact": "rules.personal_account_contact:PersonalAccountContactDetector",
    "accountability": "rules.accountability:AccountabilityDetector",
    "conversation_drift": "rules.conversation_drift:ConversationDriftDetector",
    "video_session": "rules.video_session:VideoSessionDetector",
    "safeguarding": "rules.safeguarding:SafeguardingDetector",
    "images": "rules.images:ImageDetector",
    "toxicity": "rules.toxicity:ToxicityDetector",  # model-backed: after the cheap rules
}


def build_detector(rule_id: str, config: Config) -> Detector:
    module, _, attr = DETECTORS[rule_id].partition(":")
    cls: Any = getattr(importlib.import_module(module), attr)
    pack = load_pack(rule_id, config.detection.packs_dir and config.resolve_path(
        config.detection.packs_dir))
    detector: Detector = cls.from_pack(pack, config)
    return detector


class DetectionEngine:
    def __init__(self, detectors: list[Detector], unavailable: dict[str, str] | None = None):
        self.detectors = detectors
        # rule id -> why it could not start (e.g. model weights missing): reported, not fatal
        self._unavailable = unavailable or {}

    @property
    def unavailable(self) -> dict[str, str]:
        """Rule id -> why it is off: those that could not be built, and those whose model
        (loaded on first use) could not load."""
        out = dict(self._unavailable)
        for detector in self.detectors:
            why = getattr(detector, "unavailable", None)
            if isinstance(why, str) and why:
                out[detector.rule_id] = why
        return out

    def preflight(self) -> dict[str, str]:
        """Rule id -> what its model's files say about it, checked without loading anything
        (models load when the first item needs them): for the start-up log and ``doctor``."""
        out: dict[str, str] = {}
        for detector in self.detectors:
            check = getattr(detector, "preflight", None)
            message = check() if callable(check) else None
            if message:
                out[detector.rule_id] = str(message)
        return out

    @classmethod
    def from_config(cls, config: Config, only: list[str] | None = None) -> DetectionEngine:
        """Build every enabled detector. One whose model cannot be loaded is left out with an
        error in the log (and in ``unavailable``, which ``scan`` and ``doctor`` report): a missing
        toxicity model must not switch off every other safeguard."""
        disabled = set(config.detection.disabled_rules)
        detectors = []
        unavailable: dict[str, str] = {}
        for rule_id in DETECTORS:
            if rule_id in disabled or (only is not None and rule_id not in only):
                continue
            try:
                detectors.append(build_detector(rule_id, config))
            except DetectorUnavailable as exc:
                unavailable[rule_id] = str(exc)
                log.error("detection rule %s is OFF: %s", rule_id, exc)
        engine = cls(detectors, unavailable)
        for rule_id, message in engine.preflight().items():
            log.warning("%s: %s", rule_id, message)
        return engine

    @property
    def rule_ids(self) -> list[str]:
        return [d.rule_id for d in self.detectors]

    @property
    def batches(self) -> bool:
        """Whether any detector takes whole batches (see :meth:`precompute`)."""
        return any(batches_alone(d) for d in self.detectors)

    def precompute(self, items: Sequence[Item], ctx: DetectionContext
                   ) -> list[dict[int, list[Finding]]]:
        """Run the detectors that can take a whole batch (``detect_batch(items, ctx)``: the
        model-backed ones, which look at each item alone) over ``items`` at once. The result,
        per item, is passed to :meth:`detect` as ``precomputed``; the rules that read history
        still run one item at a time, in order."""
        out: list[dict[int, list[Finding]]] = [{} for _ in items]
        for index, detector in enumerate(self.detectors):
            if not batches_alone(detector) or not items:
                continue
            for i, found in enumerate(detector.detect_batch(items, ctx)):  # type: ignore[attr-defined]
                out[i][index] = list(found)
        return out

    def detect(self, item: Item, ctx: DetectionContext,
               precomputed: dict[int, list[Finding]] | None = None) -> list[Finding]:
        """Every finding on ``item``, each with its item key set. Findings are not routed here:
        who receives them is the service's business (the pipeline applies the router)."""
        findings: list[Finding] = []
        key = item.key
        for index, detector in enumerate(self.detectors):
            found = (precomputed[index] if precomputed is not None and index in precomputed
                     else detector.detect(item, ctx))
            for finding in found:
                findings.append(replace(_located(item, finding), item_key=key))
        return findings

    def detect_stream(self, items: Iterable[Item], ctx: DetectionContext, *,
                      batch_size: int = 64, prepare: Callable[[Item], Item] | None = None,
                      record: Callable[[Item, list[Finding]], None] | None = None,
                      ) -> Iterator[tuple[Item, list[Finding] | Exception]]:
        """Each of ``items`` with its findings, in order, a batch at a time, as the pipeline
        detects: the model-backed detectors see the whole batch at once (:meth:`precompute`),
        then every item is checked in order and ``record(item, findings)`` adds it to the
        history before the next item is checked. ``prepare`` (e.g. resolving against the
        registers) runs on each item first. An item that fails yields its exception instead of
        findings, and the rest go on; a batch whose model pass fails is detected item by item.
        The findings are the same as calling :meth:`detect` on each item in turn."""
        iterator = iter(items)
        while chunk := list(islice(iterator, batch_size)):
            failed: dict[int, Exception] = {}
            for i, item in enumerate(chunk):
                if prepare is not None:
                    try:
                        chunk[i] = prepare(item)
                    except Exception as exc:
                        failed[i] = exc
            ready = [i for i in range(len(chunk)) if i not in failed]
            try:
                pre = dict(zip(ready, self.precompute([chunk[i] for i in ready], ctx),
                               strict=True))
            except Exception:
                log.exception("batch detection failed; detecting item by item")
                pre = {i: {} for i in ready}
            for i, item in enumerate(chunk):
                if i in failed:
                    yield item, failed[i]
                    continue
                try:
                    findings = self.detect(item, ctx, pre[i])
                except Exception as exc:
                    log.exception("detecting item %s failed", item.key)
                    yield item, exc
                    continue
                if record is not None:
                    record(item, findings)
                yield item, findings

    def detect_many(self, items: Sequence[Item], ctx: DetectionContext) -> list[list[Finding]]:
        """Findings for each of ``items``, in order, batching the model-backed detectors.
        ``ctx.history`` is not updated between items here (``classify`` records as it goes)."""
        pre = self.precompute(items, ctx)
        return [self.detect(item, ctx, p) for item, p in zip(items, pre, strict=True)]


def _located(item: Item, finding: Finding) -> Finding:
    """Say where in the item the evidence is when it is not the body (``text in the image``,
    ``in the poll options``): the detectors read the whole visible text and need not know its
    parts (docs/items.md)."""
    if not item.parts or not finding.evidence.spans:
        return finding
    where = where_said(item, finding.evidence.spans)
    if not where:
        return finding
    evidence = replace(finding.evidence, detail={**finding.evidence.detail, "where": where})
    return replace(finding, evidence=evidence, explanation=f"{finding.explanation} ({where})")
