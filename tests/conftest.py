"""Shared fixtures: a config and database in a temporary folder, the example registers."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from governance_bot.config import Config, load_config
from governance_bot.registers import RegisterIndex, read_toml
from tests.imap_server import dovecot_server

__all__ = ["dovecot_server"]  # one Dovecot per session, for tests/test_imap.py and the contract

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
# The model-backed rules take seconds to load in every new process; tests switch them off unless
# they are what is being tested (pass disabled=() for every rule).
MODEL_RULES = ("safeguarding", "images", "toxicity")


@pytest.fixture(scope="session", autouse=True)
def prepared_models() -> None:
    """The sentence-embedding model's ONNX export made and checked once in the model store, as
    `governance-bot models fetch` (run by scripts/bootstrap) leaves it; a no-op when it is
    there. Nothing is downloaded: the weights ship in a package."""
    from rules import embeddings

    if embeddings.model_dir() is not None and not embeddings.embeddings_status()[0]:
        embeddings.prepare()


@pytest.fixture
def example_registers() -> RegisterIndex:
    return RegisterIndex(read_toml(EXAMPLES / "registers.toml"))


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """Write a config.toml in tmp_path (with the example registers) and load it."""

    return _config_maker(tmp_path, "sqlite:///gb.db")


def _config_maker(tmp_path: Path, url: str) -> Callable[..., Config]:
    def make(extra: str = "", disabled: tuple[str, ...] = MODEL_RULES,
             env: dict[str, str] | None = None) -> Config:
        shutil.copy(EXAMPLES / "registers.toml", tmp_path / "registers.toml")
        disabled_list = ", ".join(f'"{d}"' for d in disabled)
        text = (
            f'[database]\nurl = "{url}"\n'
            '[registers]\nfile = "registers.toml"\n'
            f"[detection]\ndisabled_rules = [{disabled_list}]\n" + extra
        )
        (tmp_path / "config.toml").write_text(text)
        return load_config(tmp_path / "config.toml", env=env or {})

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each backend in turn: a SQLite file, and a fresh PostgreSQL database when
    GOVERNANCE_BOT_TEST_PG_URL names a server (.ci/run starts one; required in CI)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gb.db'}"
        return
    base = os.environ.get("GOVERNANCE_BOT_TEST_PG_URL")
    if not base:
        reason = "GOVERNANCE_BOT_TEST_PG_URL is not set (no PostgreSQL server for this run)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"gb_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def backend_config(tmp_path: Path, database_url: str) -> Callable[..., Config]:
    """Like make_config, on each database backend."""
    return _config_maker(tmp_path, database_url)
