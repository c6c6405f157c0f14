"""The example organisation (examples/): it loads, it is up to date, and the learner-detail,
out-of-hours and tone rules find in it exactly what each invented item was written to show."""

from __future__ import annotations

import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from connectors.jsonl import LineProblem, read_items
from governance_bot.config import load_config
from governance_bot.findings import Finding, Severity
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex, read_csv, read_toml
from rules.base import DetectionContext
from rules.engine import DETECTORS, build_detector
from tests.helpers import MemoryHistory

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ITEMS = EXAMPLES / "items"
# The cheap, register- and lexicon-based rules of the core, checked item by item against
# expected-findings.json (model-backed rules have their own quality benchmarks). A rule whose
# module is not installed in this checkout is left out.
CHECKED_RULES = ("learner_pii", "out_of_hours", "tone")


def _available(rule_id: str) -> bool:
    module = DETECTORS[rule_id].partition(":")[0]
    return importlib.util.find_spec(module) is not None


RULES = [r for r in CHECKED_RULES if r in DETECTORS and _available(r)]


def expected() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(
        (EXAMPLES / "expected-findings.json").read_text(encoding="utf-8"))
    return data


def good_items() -> list[Item]:
    out = []
    for path in sorted(ITEMS.glob("brookfield-*.jsonl")):
        for _file, _line, parsed in read_items(path):
            assert not isinstance(parsed, LineProblem), str(parsed)
            out.append(parsed)
    return out


def test_the_example_config_loads_without_any_secret() -> None:
    config = load_config(EXAMPLES / "config.toml", env={})
    assert config.organisation.name == "Brookfield Academy"
    assert config.registers.file is not None
    assert config.resolve_path(config.registers.file) == EXAMPLES / "registers.toml"
    assert config.database_url == f"sqlite:///{EXAMPLES / 'brookfield.db'}"
    accounts = {c.account for c in config.connectors}
    index = RegisterIndex(read_toml(EXAMPLES / "registers.toml"))
    assert accounts == set(index.accounts)
    for entry in config.connectors:
        extra = entry.model_extra or {}
        assert config.resolve_path(Path(extra["path"])).is_file()


def test_there_are_a_few_hundred_items_with_an_expectation_for_each() -> None:
    items = good_items()
    assert len(items) >= 300
    keys = {i.key for i in items}
    assert keys <= set(expected())


def test_every_detector_category_is_exercised() -> None:
    shown = {c for e in expected().values() for c in e["expect"]}
    assert {"learner_pii", "out_of_hours", "tone", "safeguarding", "toxicity", "commerce",
            "personal_account_contact", "unapproved_photo"} <= shown
    ordinary = [k for k, e in expected().items() if not e["expect"]]
    assert len(ordinary) > 250


def test_an_edited_item_appears_twice_with_the_same_id() -> None:
    versions = [i for i in good_items() if i.id == "104000000001_edit1"]
    assert len(versions) == 2
    assert versions[0].text != versions[1].text
    assert versions[1].edited_at is not None


def test_the_malformed_file_reports_two_lines_and_keeps_the_rest() -> None:
    results = list(read_items(ITEMS / "zz-malformed.jsonl"))
    problems = [p for _f, _l, p in results if isinstance(p, LineProblem)]
    assert [p.line for p in problems] == [2, 3]
    assert "not valid JSON" in str(problems[0])
    assert "kind" in str(problems[1]) and "created_at" in str(problems[1])
    assert len([p for _f, _l, p in results if isinstance(p, Item)]) == 2


@pytest.mark.parametrize("kind", ["learners", "staff", "accounts"])
def test_the_register_csvs_hold_the_same_people_as_the_toml(kind: str) -> None:
    rows, problems = read_csv(EXAMPLES / "registers-csv" / f"{kind}.csv", kind)
    assert problems == []
    toml = getattr(read_toml(EXAMPLES / "registers.toml"), kind)
    assert rows == toml


def test_the_committed_items_are_what_the_generator_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("generate_items",
                                                  EXAMPLES / "generate_items.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "items", tmp_path / "csv", tmp_path / "expected.json")
    for path in sorted((tmp_path / "items").iterdir()):
        assert path.read_bytes() == (ITEMS / path.name).read_bytes(), path.name
    for path in sorted((tmp_path / "csv").iterdir()):
        assert path.read_bytes() == (EXAMPLES / "registers-csv" / path.name).read_bytes()
    assert (tmp_path / "expected.json").read_bytes() == (
        EXAMPLES / "expected-findings.json").read_bytes()


@pytest.fixture(scope="module")
def conduct_findings() -> dict[str, list[Finding]]:
    """The checked rules over every example item, oldest first, as the pipeline runs them."""
    config = load_config(EXAMPLES / "config.toml", env={})
    index = RegisterIndex(read_toml(EXAMPLES / "registers.toml"))
    detectors = [build_detector(rule, config) for rule in RULES]
    history = MemoryHistory()
    found: dict[str, list[Finding]] = defaultdict(list)
    for raw in sorted(good_items(), key=lambda i: (i.created_at, i.edited_at or i.created_at)):
        item = index.resolve(raw)
        ctx = DetectionContext(registers=index, history=history)
        findings = [f for d in detectors for f in d.detect(item, ctx)]
        history.record(item, findings)
        found[item.key] = findings  # an edit replaces the earlier version's findings
    return found


def test_the_conduct_rules_are_among_those_checked() -> None:
    assert {"out_of_hours", "tone"} <= set(RULES)


def test_the_rules_find_exactly_what_each_item_was_written_to_show(
    conduct_findings: dict[str, list[Finding]],
) -> None:
    wrong = []
    for key, spec in expected().items():
        want = set(RULES) & set(spec["expect"])
        got = {f.category.value for f in conduct_findings.get(key, [])}
        if got != want:
            wrong.append((key, spec["scenario"], sorted(want), sorted(got)))
    assert wrong == []


def test_the_repeated_late_messages_to_one_learner_reach_the_dsl_from_the_third(
    conduct_findings: dict[str, list[Finding]],
) -> None:
    pattern = sorted(
        (k for k, e in expected().items() if e["scenario"] == "out_of_hours_repeated_same_learner"),
    )
    severities = []
    for key in pattern:
        [finding] = [f for f in conduct_findings[key] if f.rule_id == "out_of_hours"]
        severities.append(finding.severity)
    assert sorted(severities) == [Severity.low, Severity.low, Severity.high, Severity.high]


def test_the_bank_holiday_message_names_the_holiday(
    conduct_findings: dict[str, list[Finding]],
) -> None:
    [key] = [k for k, e in expected().items()
             if e["scenario"] == "out_of_hours_bank_holiday_easter_monday"]
    [finding] = conduct_findings[key]
    assert "Easter Monday (bank holiday)" in finding.explanation
