"""``governance-bot init``: the starter config shows how to connect every channel the policy
covers, official accounts and the channels where staff talk to learners alike, and each example
names an account of the starter registers, so uncommenting a pair is all it takes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from connectors.registry import BUILTINS
from governance_bot.config import connector_settings, load_config
from governance_bot.starter import REGISTERS_TEMPLATE, starter_config, write_starter

ENV = re.compile(r"\$\{([A-Z0-9_]+)\}")


def _examples(config: str) -> dict[str, str]:
    """Each commented ``[[connectors]]`` example, uncommented, by connector type."""
    out: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", config):
        lines = [line for line in block.splitlines() if line.startswith("# ")]
        starts = [n for n, line in enumerate(lines) if line.strip() == "# [[connectors]]"]
        if not starts:
            continue
        lines = lines[starts[0]:]
        body = "\n".join(line[2:] for line in lines if not line.startswith("# #"))
        kind = re.search(r'^type = "([a-z_]+)"', body, re.MULTILINE)
        assert kind, body
        out[kind.group(1)] = body
    return out


def _starter_accounts() -> set[str]:
    # the commented account blocks, uncommented (prose comments are not "# [[" or "# key =")
    uncommented = "\n".join(
        line[2:] if re.match(r"# (\[\[|[a-z_]+ = )", line) else line
        for line in REGISTERS_TEMPLATE.splitlines())
    return {a["account_id"] for a in tomllib.loads(uncommented)["accounts"]}


def test_the_starter_config_has_an_example_for_every_connector() -> None:
    examples = _examples(starter_config())
    assert set(BUILTINS) <= set(examples), sorted(set(BUILTINS) - set(examples))
    for kind in ("imap", "teams", "slack_workspace", "whatsapp", "zoom"):
        assert kind in examples  # the channels the staff-conduct rules read


def test_every_example_names_an_account_of_the_starter_registers() -> None:
    accounts = _starter_accounts()
    for kind, body in _examples(starter_config()).items():
        (account,) = re.findall(r'^account = "([^"]+)"', body, re.MULTILINE)
        assert account in accounts, f"{kind}: {account} is not in the starter registers"


@pytest.mark.parametrize("kind", sorted(BUILTINS))
def test_each_example_uncommented_is_a_valid_connector(kind: str, tmp_path: Path) -> None:
    write_starter(tmp_path)
    config = tmp_path / "config.toml"
    example = _examples(config.read_text())[kind]
    if kind == "jsonl":
        (tmp_path / "items").mkdir()
    config.write_text(config.read_text() + "\n" + example + "\n")
    env = {name: f"value-of-{name.lower()}" for name in ENV.findall(example)}
    (settings,) = connector_settings(load_config(config, env=env))
    assert settings.type == kind and settings.account.startswith("school-")
