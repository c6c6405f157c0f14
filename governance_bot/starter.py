"""``governance-bot init``: a commented starter config and a registers template.

The config is ``config.example.toml`` with a commented example for every connector; each example
names an account of the starter registers (``school-<platform>``), so a block uncommented in both
files is a working pair.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["STARTER_ACCOUNTS", "write_starter"]

# account_id, platform, handle: one per connector example in the config
STARTER_ACCOUNTS = [
    ("school-instagram", "instagram", "ourschool"),
    ("school-x", "x", "OurSchool"),
    ("school-youtube", "youtube", "OurSchool"),
    ("school-mastodon", "mastodon", "ourschool@mastodon.social"),
    ("school-bluesky", "bluesky", "ourschool.bsky.social"),
    ("school-tiktok", "tiktok", "ourschool"),
    ("school-email", "email", "journal@school.example.org"),
    ("school-teams", "teams", "school.example.org"),
    ("school-whatsapp", "whatsapp", "+447700900000"),
    ("school-zoom", "zoom", "school.example.org"),
    ("school-website", "website", "www.school.example.org"),
    ("school-slack", "slack_workspace", "learners.slack.com"),
]

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

# One account per connector example in config.toml (each names one of these): remove the leading
# '# ' of the ones you connect. Every account listed here is checked by the weekly audit.
""" + "".join(f"""
# [[accounts]]
# account_id = "{account}"
# platform = "{platform}"
# handle = "{handle}"
# managers = ["S002", "S003"]
""" for account, platform, handle in STARTER_ACCOUNTS)


def starter_config() -> str:
    """The commented config ``init`` writes: the example config with the starter registers
    switched on and each connector example naming its starter account."""
    template = files("governance_bot").joinpath("templates/config.example.toml").read_text()
    config = template.replace('# file = "registers.toml"', 'file = "registers.toml"', 1)
    return config.replace('account = "brookfield-', 'account = "school-')


def write_starter(folder: Path, force: bool = False) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    targets = {folder / "config.toml": starter_config(),
               folder / "registers.toml": REGISTERS_TEMPLATE}
    for path in targets:
        if path.exists() and not force:
            raise FileExistsError(str(path))
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
    return list(targets)
