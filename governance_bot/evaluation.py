"""Evaluation against labelled examples: precision, recall, F1 and false-alarm rate per category
and per safeguarding family, the confusion between labelled and predicted names, and ROC AUC where
a classifier gives scores.

Input (``governance-bot eval --input LABELLED.jsonl``): one JSON object per line, either
``{"text": "...", "labels": ["toxicity"]}`` or a normalised item (docs/item.schema.json) with an
extra ``"labels"`` field. Labels are category names (``governance_bot.findings.Category``),
safeguarding family names (``self_harm``, ``grooming``... from the safeguarding pack; a
``"family": "self_harm"`` key is the same as one label, ``"family": null`` as none), or the
family names of the shared development sets (``suicide_selfharm``, ``cyberbullying``,
``threats_extremism``: see :data:`DATASET_LABELS` for what counts as finding them); an empty
list means "nothing should be flagged". Other keys of the shared datasets' rows (``id``,
``source``, ``orig_label``...) are ignored. A bad line is reported with its number and
skipped; the rest is evaluated.

What a record is predicted to be: the categories of its findings and, for safeguarding findings,
their family. The false-alarm rate of a name is the share of records not labelled with it that
were predicted to be it; ``(any finding)`` is the share of records labelled with nothing that got
any finding at all.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from governance_bot.findings import Category
from governance_bot.items import Item, ItemKind, Person, Role
from rules.base import DetectionContext

if TYPE_CHECKING:
    from governance_bot.config import Config
    from rules.engine import DetectionEngine

__all__ = [
    "CategoryScorer",
    "CategoryScores",
    "EvaluationReport",
    "LabelledRecord",
    "evaluate",
    "label_names",
    "predicted_names",
    "read_labelled",
    "run_eval",
]

NONE = "(none)"
ANY = "(any finding)"
# the families of the shared development sets (../shared/datasets/safeguarding-dev/SOURCE.md) and
# which predicted names count as finding them: abuse typed at someone (ConvAbuse) is found as
# bullying, a threat, sexual harassment, hate or a toxic comment; hate speech (Stormfront) as hate,
# extremism or an identity attack
DATASET_LABELS: dict[str, frozenset[str]] = {
    "suicide_selfharm": frozenset({"self_harm"}),
    "cyberbullying": frozenset({"bullying", "threats", "sexual", "hate", "toxicity"}),
    "threats_extremism": frozenset({"hate", "extremism", "threats"}),
}
# keys of the shared datasets' rows that say where a row came from, not what it is
_DATASET_KEYS = {"id", "source", "orig_label", "context_prev_agent", "family"}
# texts -> one {category: score in 0..1} per text (a score-based classifier, for AUC)
CategoryScorer = Callable[[Sequence[str]], Sequence[dict[str, float]]]
_CATEGORIES = {c.value for c in Category}


@dataclass(frozen=True, slots=True)
class LabelledRecord:
    text: str
    labels: frozenset[str]
    item: Item | None = None
    where: str = ""


def _problem(where: str, message: str) -> str:
    return f"{where}: {message}"


def label_names(families: Iterable[str] = ()) -> frozenset[str]:
    """The labels a record may carry: categories, the given safeguarding families and the shared
    datasets' family names."""
    return frozenset(_CATEGORIES | set(families) | set(DATASET_LABELS))


def _shipped_families() -> frozenset[str]:
    from rules.packs import load_pack

    try:
        return frozenset(load_pack("safeguarding").get("families", {}))
    except (FileNotFoundError, ValueError):
        return frozenset()


def parse_record(data: Any, where: str,
                 vocabulary: frozenset[str] | None = None) -> LabelledRecord:
    """One labelled record from a decoded JSON object; ``ValueError`` names what is wrong.
    ``vocabulary``: the labels allowed (default: categories, the shipped safeguarding families
    and the shared datasets' names)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if "labels" not in data and "family" in data:
        # the project's own sets: {"text", "family": "self_harm"}, or null for "nothing"
        family = data["family"]
        if family is not None and not isinstance(family, str):
            raise ValueError('"family" must be a family name or null')
        data = {**data, "labels": [family] if family else []}
    labels = data.get("labels")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError('"labels" must be a list of category or family names (may be empty)')
    allowed = vocabulary if vocabulary is not None else label_names(_shipped_families())
    unknown = sorted(set(labels) - allowed)
    if unknown:
        raise ValueError(f"unknown label(s) {', '.join(unknown)}; use category or family "
                         f"names: {', '.join(sorted(allowed))}")
    rest = {k: v for k, v in data.items() if k != "labels"}
    if set(rest) <= {"text"} | _DATASET_KEYS:
        text = rest.get("text")
        if not isinstance(text, str):
            raise ValueError('"text" must be a string')
        return LabelledRecord(text, frozenset(labels), None, where)
    try:
        item = Item.model_validate(rest)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"not a valid item: {loc}: {first['msg']}") from None
    return LabelledRecord(item.text, frozenset(labels), item, where)


def read_labelled(path: Path, vocabulary: frozenset[str] | None = None
                  ) -> tuple[list[LabelledRecord], list[str]]:
    """(records, problems): every line that parses, and one message per line that does not."""
    records: list[LabelledRecord] = []
    problems: list[str] = []
    if vocabulary is None:
        vocabulary = label_names(_shipped_families())
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                records.append(parse_record(json.loads(line), where, vocabulary))
            except json.JSONDecodeError as exc:
                problems.append(_problem(where, f"not valid JSON ({exc.msg})"))
            except ValueError as exc:
                problems.append(_problem(where, str(exc)))
    return records, problems


@dataclass(slots=True)
class CategoryScores:
    category: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    auc: float | None = None

    @property
    def support(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def false_alarm_rate(self) -> float:
        """Of the records not labelled with this name, the share predicted to be it."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"category": self.category, "tp": self.tp, "fp": self.fp, "fn": self.fn,
                "tn": self.tn, "precision": self.precision, "recall": self.recall,
                "f1": self.f1, "false_alarm_rate": self.false_alarm_rate,
                "support": self.support, "auc": self.auc}


@dataclass(slots=True)
class EvaluationReport:
    records: int
    categories: list[CategoryScores]
    # (labelled, predicted) -> records; NONE where a record had no label / no prediction
    confusion: dict[tuple[str, str], int]
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def category(self, name: str) -> CategoryScores:
        for c in self.categories:
            if c.category == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "categories": [c.to_dict() for c in self.categories],
            "confusion": [{"labelled": a, "predicted": b, "records": n}
                          for (a, b), n in sorted(self.confusion.items())],
            "problems": self.problems,
            "notes": self.notes,
        }

    def render(self, width: int = 110) -> str:
        """The report as plain text tables (rich)."""
        from rich.console import Console
        from rich.table import Table

        buffer = io.StringIO()
        console = Console(file=buffer, width=width, force_terminal=False, color_system=None)
        table = Table(title=f"Detection quality on {self.records} labelled records")
        for col in ("category / family", "support", "TP", "FP", "FN", "precision", "recall",
                    "F1", "false alarms", "AUC"):
            table.add_column(col, justify="left" if col == "category / family" else "right")
        for c in self.categories:
            table.add_row(c.category, str(c.support), str(c.tp), str(c.fp), str(c.fn),
                          f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}",
                          f"{c.false_alarm_rate:.3f}",
                          "-" if c.auc is None else f"{c.auc:.3f}")
        console.print(table)
        predicted = sorted({b for _, b in self.confusion}, key=lambda x: (x == NONE, x))
        labelled = sorted({a for a, _ in self.confusion}, key=lambda x: (x == NONE, x))
        confusion = Table(title="Confusion (rows: labelled, columns: predicted)")
        confusion.add_column("labelled \\ predicted")
        for p in predicted:
            confusion.add_column(p, justify="right")
        for a in labelled:
            confusion.add_row(a, *[str(self.confusion.get((a, p), 0)) for p in predicted])
        console.print(confusion)
        for note in self.notes:
            console.print(f"note: {note}")
        if self.problems:
            console.print(f"{len(self.problems)} record(s) skipped:")
            for problem in self.problems[:20]:
                console.print(f"  - {problem}")
        return buffer.getvalue()


def _auc(labels: Sequence[int], scores: Sequence[float]) -> float | None:
    if len(set(labels)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def _item_for(record: LabelledRecord, index: int) -> Item:
    if record.item is not None:
        return record.item
    return Item(
        id=f"eval-{index}", platform="eval", account="eval", kind=ItemKind.comment,
        author=Person(handle=f"eval-author-{index}", role=Role.public),
        created_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC), text=record.text,
    )


class _NoHistory:
    """Labelled records are judged one by one, without thread history."""

    def thread(self, item: Item, limit: int = 200) -> Sequence[Item]:
        return []

    def prior_findings(self, rule_id: str, subject: str, since: datetime, until: datetime,
                       exclude_item_key: str | None = None) -> Sequence[datetime]:
        return []


def _chunks(seq: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


def evaluate(
    records: Sequence[LabelledRecord],
    engine: DetectionEngine | None = None,
    *,
    scorer: CategoryScorer | None = None,
    thresholds: dict[str, float] | None = None,
    ctx: DetectionContext | None = None,
    categories: Iterable[str] | None = None,
    batch_size: int = 256,
) -> EvaluationReport:
    """Score ``records``.

    Predictions come from ``engine`` (the categories of its findings on each record) or, without
    an engine, from ``scorer`` with ``thresholds`` (category -> score at or above which it counts;
    0.5 where not given). With a ``scorer``, each category it scores also gets a ROC AUC.
    """
    if engine is None and scorer is None:
        raise ValueError("evaluate needs an engine or a scorer")
    thresholds = thresholds or {}
    predicted: list[set[str]] = []
    failed: list[str] = []
    if engine is not None:
        if ctx is None:
            from governance_bot.registers import RegisterIndex

            ctx = DetectionContext(registers=RegisterIndex.empty(), history=_NoHistory())
        items = [_item_for(r, i) for i, r in enumerate(records)]
        # the batched path of `classify` and the pipeline: the model-backed detectors see a
        # batch at once, and a record whose detection fails is named and left out of the scores
        # while the others are still evaluated
        kept: list[LabelledRecord] = []
        stream = engine.detect_stream(items, ctx, batch_size=batch_size)
        for index, (_item, found) in enumerate(stream):
            record = records[index]
            if isinstance(found, Exception):
                failed.append(_problem(record.where or f"record {index + 1}",
                                       f"not evaluated: detection failed "
                                       f"({type(found).__name__}: {found})"))
                continue
            kept.append(record)
            predicted.append(predicted_names(found))
        records = kept
    scores: list[dict[str, float]] = []
    if scorer is not None:
        texts = [r.text for r in records]
        for chunk in _chunks(texts, batch_size):
            scores.extend(scorer(chunk))
        if engine is None:
            predicted = [{c for c, s in row.items() if s >= thresholds.get(c, 0.5)}
                         for row in scores]
    names = set(categories or ())
    for r, p in zip(records, predicted, strict=True):
        names |= r.labels | p
    if categories is None and scores:
        names |= {c for row in scores for c in row}
    results: list[CategoryScores] = []
    for name in sorted(names):
        cs = CategoryScores(name)
        counts_as = DATASET_LABELS.get(name, frozenset({name}))
        for r, p in zip(records, predicted, strict=True):
            actual, guess = name in r.labels, bool(counts_as & p)
            cs.tp += actual and guess
            cs.fp += (not actual) and guess
            cs.fn += actual and not guess
            cs.tn += (not actual) and not guess
        if scores and any(name in row for row in scores):
            auc = _auc([int(name in r.labels) for r in records],
                       [row.get(name, 0.0) for row in scores])
            cs.auc = None if auc is None or math.isnan(auc) else auc
        results.append(cs)
    if any(not r.labels for r in records) and engine is not None:
        anything = CategoryScores(ANY)
        for r, p in zip(records, predicted, strict=True):
            if not r.labels:
                anything.fp += bool(p)
                anything.tn += not p
            else:
                anything.tp += bool(p)
                anything.fn += not p
        results.append(anything)
    confusion: Counter[tuple[str, str]] = Counter()
    for r, p in zip(records, predicted, strict=True):
        for a in sorted(r.labels) or [NONE]:
            for b in sorted(p) or [NONE]:
                confusion[(a, b)] += 1
    return EvaluationReport(len(records), results, dict(confusion), problems=failed)


def run_eval(config: Config, input_path: Path | str, *, rules: Sequence[str] | None = None,
             as_json: bool = False) -> str:
    """What ``governance-bot eval --input FILE`` prints: the report as text tables (or JSON).

    Runs every enabled detector of ``config`` (or only ``rules``) on the records; where the
    toxicity classifier is loaded, its scores also give a ROC AUC for the categories it scores.
    """
    from rules.engine import DetectionEngine
    from rules.packs import load_pack

    path = Path(input_path)
    packs_dir = config.detection.packs_dir and config.resolve_path(config.detection.packs_dir)
    try:
        families = frozenset(load_pack("safeguarding", packs_dir).get("families", {}))
    except (FileNotFoundError, ValueError):
        families = frozenset()
    records, problems = read_labelled(path, label_names(families))
    if not records:
        lines = [f"{path}: no usable labelled records", *problems]
        return "\n".join(lines) + "\n"
    engine = DetectionEngine.from_config(config, only=list(rules) if rules else None)
    ctx = DetectionContext(registers=_registers(config), history=_NoHistory())
    scorer: CategoryScorer | None = None
    notes: list[str] = []
    for detector in engine.detectors:
        make = getattr(detector, "category_scorer", None)
        if make is not None:
            scorer = make()
            notes.append(f"AUC from the {detector.rule_id} classifier's scores "
                         f"({getattr(getattr(detector, 'backend', None), 'name', '?')})")
    report = evaluate(records, engine, scorer=scorer, ctx=ctx)
    report.problems.extend(problems)
    report.notes.extend(notes)
    if as_json:
        return json.dumps({"input": str(path), "rules": engine.rule_ids, **report.to_dict()},
                          indent=1) + "\n"
    return report.render()


def predicted_names(findings: Iterable[Any]) -> set[str]:
    """What a record was predicted to be: its findings' categories and safeguarding families."""
    names: set[str] = set()
    for f in findings:
        names.add(f.category.value)
        family = f.evidence.detail.get("family") if f.rule_id == "safeguarding" else None
        if family:
            names.add(str(family))
    return names


def _registers(config: Config) -> Any:
    """The service's registers (the database's, with the config's files over them), as
    ``classify`` uses."""
    from governance_bot.classify import service_registers

    return service_registers(config)
