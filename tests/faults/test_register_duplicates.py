"""A register file that names one person twice is refused whole, naming both rows (issue 17,
row 13).

Before: a learners CSV with a duplicate ``learner_id`` imported as "1 updated": the later row
replaced the first learner, who then lost the protection the register gives (their name, handles
and photo consent no longer matched).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "examples" / "registers-csv"


def gb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    return subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**env, "COLUMNS": "200", "PYTHONPATH": str(ROOT)})


def learners(folder: Path) -> dict[str, str]:
    with sqlite3.connect(folder / "gb.db") as conn:
        rows = conn.execute("SELECT learner_id, data FROM register_learners").fetchall()
    return dict(rows)


def test_a_duplicate_learner_id_in_a_csv_is_refused_naming_both_rows(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///gb.db"\n')
    for name in ("learners.csv", "staff.csv", "accounts.csv"):
        shutil.copy(CSV / name, tmp_path / name)
    first = gb("registers", "import", "-c", "config.toml", "--learners", "learners.csv",
               cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = learners(tmp_path)
    # a second "L001" (a different child, typed with the wrong id) at the end of the file
    lines = (tmp_path / "learners.csv").read_text().splitlines()
    lines.append("L001,Ellie,Marsh,,2011-01-09,ellie.marsh@students.brookfield.example.org,"
                 "no,no,,,")
    lines.append("L099,Noah,Berry,,2010-02-02,,no,no,,,")
    (tmp_path / "learners.csv").write_text("\n".join(lines) + "\n")
    result = gb("registers", "import", "-c", "config.toml", "--learners", "learners.csv",
                cwd=tmp_path)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    assert "learners.csv:2" in output and f"learners.csv:{len(lines) - 1}" in output, output
    assert "L001" in output and "nothing imported" in output, output
    assert learners(tmp_path) == before  # Jayden is still L001; L099 was not imported either


def test_a_duplicate_id_in_a_toml_register_is_refused_naming_both_entries(tmp_path: Path) -> None:
    registers = (ROOT / "examples" / "registers.toml").read_text()
    registers += ('\n[[staff]]\nstaff_id = "S001"\nname = "Another Person"\n'
                  'email = "another@brookfield.example.org"\n')
    (tmp_path / "registers.toml").write_text(registers)
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///gb.db"\n')
    result = gb("registers", "import", "-c", "config.toml", "--toml", "registers.toml",
                cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "S001" in output and "staff[0]" in output and "staff[" in output, output
    assert "Traceback" not in output
