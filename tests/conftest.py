"""Shared fixtures: a config and database in a temporary folder, the example registers."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from governance_bot.config import Config, load_config
from governance_bot.registers import RegisterIndex, read_toml

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture
def example_registers() -> RegisterIndex:
    return RegisterIndex(read_toml(EXAMPLES / "registers.toml"))


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a config.toml in tmp_path (with the example registers) and load it."""

    def make(extra: str = "", disabled: tuple[str, ...] = ()) -> Config:
        shutil.copy(EXAMPLES / "registers.toml", tmp_path / "registers.toml")
        disabled_list = ", ".join(f'"{d}"' for d in disabled)
        text = (
            '[database]\nurl = "sqlite:///gb.db"\n'
            '[registers]\nfile = "registers.toml"\n'
            f"[detection]\ndisabled_rules = [{disabled_list}]\n" + extra
        )
        (tmp_path / "config.toml").write_text(text)
        return load_config(tmp_path / "config.toml", env={})

    return make
