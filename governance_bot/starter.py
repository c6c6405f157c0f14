"""``governance-bot init``: a commented starter config and a registers template."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["write_starter"]

REGISTERS_TEMPLATE = """\
# Registers: who is who. Import with `governance-bot registers import --config config.toml`.
# Formats: docs/registers.md. Replace these made-up entries with your own.

[[staff]]
staff_id = "S001"
name = "Designated Safeguarding Lead"
email = "dsl@school.example.org"
slack_user_id = ""
role = "dsl"

[[staff]]
staff_id = "S002"
name = "Social media lead"
email = "social@school.example.org"
role = "account_manager"

[[staff]]
staff_id = "S003"
name = "Second account manager"
email = "office@school.example.org"
role = "account_manager"

[[accounts]]
account_id = "school-facebook"
platform = "facebook"
handle = "OurSchool"
managers = ["S002", "S003"]
"""


def write_starter(folder: Path, force: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    template = files("governance_bot").joinpath("templates/config.example.toml").read_text()
    config = template.replace('# file = "registers.toml"', 'file = "registers.toml"', 1)
    targets = {folder / "config.toml": config, folder / "registers.toml": REGISTERS_TEMPLATE}
    for path in targets:
        if path.exists() and not force:
            raise FileExistsError(str(path))
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
    return list(targets)
