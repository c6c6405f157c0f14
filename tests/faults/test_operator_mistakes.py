"""Operator mistakes get one clear message naming the setting and the fix, and exit code 2; never a
Python traceback (issue 17, row 12; fail closed: rows 9 and 11).

The first tests are the mistakes an IT technician actually makes, run as they would run them (the
command in a subprocess). The generated test then feeds every setting of every section a value of
the wrong type, an empty value and (for the settings that name files) a file that is not there,
once in the config file and once as its ``GOVERNANCE_BOT_<SECTION>__<KEY>`` override.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
import typing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, SecretStr
from typer.testing import CliRunner

from governance_bot.cli import app
from governance_bot.config import ENV_PREFIX, Config

ROOT = Path(__file__).resolve().parents[2]
REGISTERS = ROOT / "examples" / "registers.toml"
BASE = (f'[registers]\nfile = "{REGISTERS}"\n'
        '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n')


def gb(*args: str, cwd: Path, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run([sys.executable, "-m", "governance_bot", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**clean, "COLUMNS": "200", "PYTHONPATH": str(ROOT), **(env or {})})


def assert_one_clear_message(result: subprocess.CompletedProcess[str], *names: str) -> str:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    for name in names:
        assert name in output, f"{name!r} not named in:\n{output}"
    assert "Fix" in output or "fix" in output, output
    return output


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text('[database]\nurl = "sqlite:///gb.db"\n' + BASE)
    return tmp_path


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes through permissions; /proc/sys refuses even root
        return Path("/proc/sys")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked


ROW_12_ENV = [
    ("an empty database URL", {"GOVERNANCE_BOT_DATABASE__URL": ""},
     ("GOVERNANCE_BOT_DATABASE__URL",)),
    ("a garbage database URL", {"GOVERNANCE_BOT_DATABASE__URL": "not a url at all"},
     ("GOVERNANCE_BOT_DATABASE__URL",)),
    ("a MySQL URL", {"GOVERNANCE_BOT_DATABASE__URL": "mysql://gb@db.example/gb"},
     ("GOVERNANCE_BOT_DATABASE__URL", "mysql")),
    ("a rule list that is not a list of rules", {"GOVERNANCE_BOT_DETECTION__DISABLED_RULES": "x"},
     ("GOVERNANCE_BOT_DETECTION__DISABLED_RULES", "learner_pii")),
    ("an empty registers file", {"GOVERNANCE_BOT_REGISTERS__FILE": ""},
     ("GOVERNANCE_BOT_REGISTERS__FILE", "empty")),
    ("a misspelt override", {"GOVERNANCE_BOT_DATABSE__URL": "sqlite:///other.db"},
     ("GOVERNANCE_BOT_DATABSE__URL", "GOVERNANCE_BOT_DATABASE__URL")),
    ("a misspelt override without the double underscore",
     {"GOVERNANCE_BOT_DATABASE_URL": "sqlite:///other.db"},
     ("GOVERNANCE_BOT_DATABASE_URL", "GOVERNANCE_BOT_DATABASE__URL")),
    ("an empty encryption key", {"GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS": ""},
     ("GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS", "keys generate")),
    ("an encryption key that is not a key", {"GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS": "hunter2"},
     ("GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS", "keys generate")),
]


@pytest.mark.parametrize("what,env,names", ROW_12_ENV, ids=[c[0] for c in ROW_12_ENV])
def test_a_mistake_in_an_environment_override_is_named_with_its_fix(
        folder: Path, what: str, env: dict[str, str], names: tuple[str, ...]) -> None:
    result = gb("scan", "--once", "-c", "config.toml", cwd=folder, env=env)
    assert_one_clear_message(result, *names)


def test_a_missing_sqlite_folder_is_named_with_its_fix(folder: Path) -> None:
    result = gb("scan", "--once", "-c", "config.toml", cwd=folder,
                env={"GOVERNANCE_BOT_DATABASE__URL": f"sqlite:///{folder}/no/such/folder/gb.db"})
    assert_one_clear_message(result, "GOVERNANCE_BOT_DATABASE__URL", "does not exist")


def test_an_unwritable_sqlite_folder_is_named_with_its_fix(folder: Path, tmp_path: Path) -> None:
    locked = _unwritable_folder(tmp_path)
    result = gb("scan", "--once", "-c", "config.toml", cwd=folder,
                env={"GOVERNANCE_BOT_DATABASE__URL": f"sqlite:///{locked}/gb.db"})
    assert_one_clear_message(result, "GOVERNANCE_BOT_DATABASE__URL", "cannot be written")


def test_a_config_option_naming_a_folder_is_named_with_its_fix(folder: Path) -> None:
    result = gb("scan", "--once", "-c", str(folder), cwd=folder)
    assert_one_clear_message(result, str(folder), "folder")


def test_a_config_not_in_utf8_is_named_with_the_line(folder: Path) -> None:
    (folder / "latin1.toml").write_bytes(
        '[organisation]\nname = "Ysgol Gynradd Llanfair Caereinion"\n'
        '[database]\nurl = "sqlite:///gb.db"\n# caf\xe9\n'.encode("latin-1"))
    result = gb("scan", "--once", "-c", "latin1.toml", cwd=folder)
    assert_one_clear_message(result, "latin1.toml", "UTF-8", "line 5")


def test_a_literal_password_in_the_database_url_is_refused(folder: Path) -> None:
    """Row 11: other literal secrets were refused; the database password was not."""
    (folder / "pg.toml").write_text(
        '[database]\nurl = "postgresql+psycopg://gb:Sup3rSecret@db.example/gb"\n' + BASE)
    result = gb("scan", "--once", "-c", "pg.toml", cwd=folder)
    output = assert_one_clear_message(result, "database.url", "${")
    assert "Sup3rSecret" not in output  # the message does not repeat the secret


def test_a_database_password_from_the_environment_is_accepted(tmp_path: Path) -> None:
    from governance_bot.config import load_config

    (tmp_path / "pg.toml").write_text(
        '[database]\nurl = "postgresql+psycopg://gb:${GB_DB_PASSWORD}@db.example/gb"\n' + BASE)
    config = load_config(tmp_path / "pg.toml", env={"GB_DB_PASSWORD": "Sup3rSecret"})
    assert config.database_url.endswith("gb:Sup3rSecret@db.example/gb")
    whole = load_config(tmp_path / "pg.toml", env={
        "GB_DB_PASSWORD": "x",
        "GOVERNANCE_BOT_DATABASE__URL": "postgresql+psycopg://gb:Other@db.example/gb"})
    assert "Other" in whole.database_url  # a whole URL from the environment is a secret there


def test_an_empty_key_variable_is_an_error_never_encryption_off(folder: Path) -> None:
    """Row 9: ``encryption_keys = "${GB_KEYS}"`` with GB_KEYS="" switched encryption off."""
    (folder / "enc.toml").write_text(
        '[database]\nurl = "sqlite:///gb.db"\n[security]\nencryption_keys = "${GB_KEYS}"\n' + BASE)
    result = gb("scan", "--once", "-c", "enc.toml", cwd=folder, env={"GB_KEYS": ""})
    assert_one_clear_message(result, "security.encryption_keys", "GB_KEYS", "keys generate")
    assert not (folder / "gb.db").exists(), "nothing was written in plain text"


def test_an_unknown_variable_with_nothing_close_is_left_alone(folder: Path) -> None:
    """Variables of other tools that share the prefix are not refused, unless they look like a
    misspelt setting; they are named in a warning (the project's own, GOVERNANCE_BOT_SHARED
    and the like, are not)."""
    result = gb("scan", "--once", "-c", "config.toml", cwd=folder,
                env={"GOVERNANCE_BOT_SHARED": "/elsewhere", "GOVERNANCE_BOT_WIDGET_COLOUR": "red"})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # ... but said, so that a mistake nothing like a setting is not silent either
    assert "GOVERNANCE_BOT_WIDGET_COLOUR" in output and "not a setting" in output, output
    assert "GOVERNANCE_BOT_SHARED" not in output and "Traceback" not in output


# --- generated: every setting, three kinds of wrong value, in the file and in the environment ---

# settings where an empty value is meaningful (and accepted)
EMPTY_IS_VALID = {f"working_hours.{day}" for day in
                  ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")}
INPUT_PATHS = {"registers.file", "registers.learners", "registers.staff", "registers.accounts",
               "detection.packs_dir"}
# a model that is not there switches that one rule off with a message naming the setting (and
# doctor fails), while every other safeguard keeps running: tests/test_toxicity.py
MODEL_PATHS = {"classifiers.toxicity.checkpoint", "classifiers.toxicity.huggingface_config_path"}
OUTPUT_PATHS = {"delivery.json_path", "classifiers.toxicity.onnx_path"}


@dataclass(frozen=True)
class Setting:
    path: str
    annotation: Any

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.path.replace(".", "__").upper()

    @property
    def base(self) -> Any:
        """The annotation without ``| None``."""
        args = [a for a in typing.get_args(self.annotation) if a is not type(None)]
        if typing.get_origin(self.annotation) in (typing.Union, types.UnionType) \
                and len(args) == 1:
            return args[0]
        return self.annotation


def settings(model: type[BaseModel] = Config, prefix: str = "") -> list[Setting]:
    out = []
    for name, field in model.model_fields.items():
        if name in ("source", "connectors"):
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(settings(annotation, f"{prefix}{name}."))
        else:
            out.append(Setting(f"{prefix}{name}", annotation))
    return out


ALL = settings()


def wrong_type(setting: Setting) -> Any:
    base = setting.base
    origin = typing.get_origin(base)
    if base is bool:
        return "maybe"
    if base is int or base is float:
        return "lots"
    if base is date:
        return "someday"
    if origin is Literal:
        return "nonsense"
    if origin is list:
        return 5
    if origin is dict:
        return 5
    if base in (str, SecretStr, Path):
        return 12
    return [1, 2]  # anything else: certainly not its type


def env_wrong_type(setting: Setting) -> str | None:
    base = setting.base
    if base in (str, SecretStr, Path):
        return None  # every text is text
    origin = typing.get_origin(base)
    if origin is list:
        return '{"not": "a list"}'
    if origin is dict:
        return '["not", "a table"]'
    value = wrong_type(setting)
    return str(value)


def toml_value(value: Any) -> str:
    import json

    return json.dumps(value)  # TOML reads JSON scalars and arrays of scalars the same


def compose(setting: Setting | None = None, value: str | None = None) -> str:
    """A valid config file, with ``setting`` set to ``value`` (a TOML literal) if given."""
    import json

    tables: dict[str, dict[str, str]] = {
        "database": {"url": '"sqlite:///gb.db"'},
        "registers": {"file": json.dumps(str(REGISTERS))},
        "detection": {"disabled_rules": '["safeguarding", "images", "toxicity"]'},
    }
    if setting is not None and value is not None:
        section, key = setting.path.rsplit(".", 1)
        tables.setdefault(section, {})[key] = value
    return "".join(f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())
                   for section, keys in tables.items())


def _run(tmp_path: Path, text: str, env: dict[str, str]) -> Any:
    (tmp_path / "config.toml").write_text(text)
    runner = CliRunner()
    return runner.invoke(app, ["flags", "list", "-c", str(tmp_path / "config.toml")], env=env)


def _check(result: Any, setting: Setting, where: str, accepted_ok: bool) -> None:
    output = result.output
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"{setting.path} via {where}: a traceback ({type(exc).__name__}: {exc})")
    if accepted_ok and result.exit_code in (0, 3):
        return
    assert result.exit_code == 2, f"{setting.path} via {where}: exit {result.exit_code}\n{output}"
    name = setting.env if where == "environment" else setting.path
    lines = [line for line in output.splitlines() if name in line]
    assert len(lines) == 1, f"{setting.path} via {where}: one message naming {name}:\n{output}"
    assert "Fix" in output, f"{setting.path} via {where}: no fix given:\n{output}"


@pytest.fixture
def blank_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    return {}


@pytest.mark.parametrize("setting", ALL, ids=[s.path for s in ALL])
def test_every_setting_with_a_wrong_value_gets_one_message_naming_it(
        setting: Setting, tmp_path: Path, blank_env: dict[str, str]) -> None:
    # a value of the wrong type, then an empty value, in the file
    _check(_run(tmp_path, compose(setting, toml_value(wrong_type(setting))), {}), setting,
           "file", accepted_ok=False)
    _check(_run(tmp_path, compose(setting, '""'), {}), setting, "file",
           accepted_ok=setting.path in EMPTY_IS_VALID)
    # the same through the environment, over a valid file
    value = env_wrong_type(setting)
    if value is not None:
        _check(_run(tmp_path, compose(), {setting.env: value}), setting, "environment",
               accepted_ok=False)
    _check(_run(tmp_path, compose(), {setting.env: ""}), setting, "environment",
           accepted_ok=setting.path in EMPTY_IS_VALID)
    # a file that is not there
    if setting.path in INPUT_PATHS | OUTPUT_PATHS:
        missing = str(tmp_path / "no-such-folder" / "missing.toml")
        _check(_run(tmp_path, compose(setting, toml_value(missing)), {}), setting, "file",
               accepted_ok=False)
        _check(_run(tmp_path, compose(), {setting.env: missing}), setting, "environment",
               accepted_ok=False)
    if setting.path in MODEL_PATHS:
        missing = str(tmp_path / "no-such-folder" / "missing.ckpt")
        result = _run(tmp_path, compose(setting, toml_value(missing)), {})
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_generated_test_covers_every_section() -> None:
    sections = {s.path.split(".")[0] for s in ALL}
    assert sections == set(Config.model_fields) - {"source", "connectors"}
    assert len(ALL) > 70


@pytest.mark.parametrize("command", [["scan", "--once"], ["flags", "list"], ["db", "upgrade"],
                                     ["audit-log", "verify"], ["legal-hold", "list"]])
def test_a_database_server_that_is_not_running_is_named_with_its_fix(
        folder: Path, command: list[str]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = gb(*command, "-c", "config.toml", cwd=folder, env={
        "GOVERNANCE_BOT_DATABASE__URL": f"postgresql+psycopg://gb@127.0.0.1:{port}/gb"})
    assert_one_clear_message(result, "cannot reach the database", str(port))
