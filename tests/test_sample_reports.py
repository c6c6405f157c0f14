"""The sample reports linked from the README are generated from the example organisation by
``examples/make_sample_reports.py``, through the real code: the script runs here into a temporary
folder and must produce the three files, with the scenario it describes and working charts."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.test_reports import rendered_charts

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "make_sample_reports.py"
COMMITTED = ROOT / "docs" / "sample-reports"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_sample_reports", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_sample_reports_are_generated_from_the_example_organisation(tmp_path: Path):
    outputs = load_script().make_sample_reports(tmp_path / "out")
    names = sorted(p.name for p in outputs)
    assert names == ["access-audit.csv", "access-audit.html", "governors-report.html"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in outputs)
    out = tmp_path / "out"

    # the last weekly audit: Grace Lindqvist forgot, Tom Ashworth reported 2FA off (then fixed
    # it), and the leaver still listed on Instagram
    rows = list(csv.DictReader((out / "access-audit.csv").open(encoding="utf-8")))
    found = {(r["account"], r["check"]): r for r in rows}
    assert {a for a, c in found if c == "no_attestation"} == {
        "brookfield-facebook", "brookfield-instagram", "brookfield-x"}
    two_fa = found[("brookfield-x", "two_factor_off")]
    assert (two_fa["status"], two_fa["resolved_by"]) == ("resolved", "S004")
    assert ("brookfield-instagram", "leaver_as_manager") in found
    assert all(r["remedy"] for r in rows)
    assert "Dual-access audit" in (out / "access-audit.html").read_text(encoding="utf-8")

    governors = out / "governors-report.html"
    text = governors.read_text(encoding="utf-8")
    assert "reposted without the name" in text  # the removal, with its explanation
    # changes are listed, summarised, with the learners' ids never listed one by one
    assert "staff register: 11 records added" in text and "learner register: 30 records added" \
        in text and "configuration or rules changed" in text
    assert "L001" not in text and "staff:S00" not in text and "flag:" not in text
    assert "/work/" not in text and str(ROOT) not in text  # nothing of this machine
    for learner in ("Kacper", "Zielinski", "jaydenp@", "2008-01-09"):
        assert learner not in text  # no learner details in reports
    assert rendered_charts(governors, tmp_path) == (3, 3)  # by month, to acknowledge, audit


def test_the_committed_sample_reports_exist_and_are_linked_files():
    for name in ("governors-report.html", "access-audit.html", "access-audit.csv"):
        assert (COMMITTED / name).is_file(), f"run {SCRIPT.relative_to(ROOT)} and commit"
