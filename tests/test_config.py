"""Configuration: every problem reported at once, secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance_bot.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_config_with_several_mistakes_yields_one_message_listing_all_of_them(tmp_path: Path):
    path = write(tmp_path, """
[organisation]
timezone = "Europe/Londn"
nation = "FRA"
[working_hours]
monday = "18:00-08:00"
[database]
ulr = "sqlite:///x.db"
[slack]
bot_token = "${SLACK_BOT_TOKEN}"
signing_secret = "${SLACK_SIGNING_SECRET}"
""")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    problems = info.value.problems
    text = str(info.value)
    assert f"{len(problems)} problems in the configuration" in text
    joined = "\n".join(problems)
    assert "organisation.timezone" in joined and "Europe/Londn" in joined
    assert "organisation.nation" in joined
    assert "working_hours.monday" in joined
    assert "database.ulr" in joined and "check the spelling" in joined
    # a missing ${ENV} is named, with the fix
    assert "SLACK_BOT_TOKEN is not set" in joined
    assert "SLACK_SIGNING_SECRET is not set" in joined
    assert all(str(path) in p for p in problems)


def test_a_missing_environment_variable_is_named(tmp_path: Path):
    path = write(tmp_path, '[slack]\nbot_token = "${MY_SLACK_TOKEN}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert any("MY_SLACK_TOKEN" in p and "export MY_SLACK_TOKEN" in p for p in info.value.problems)


def test_secrets_come_from_the_environment_and_are_masked(tmp_path: Path):
    path = write(tmp_path, '[slack]\nbot_token = "${MY_SLACK_TOKEN}"\n')
    config = load_config(path, env={"MY_SLACK_TOKEN": "xoxb-very-secret"})
    assert config.slack.bot_token is not None
    assert config.slack.bot_token.get_secret_value() == "xoxb-very-secret"
    assert "xoxb-very-secret" not in repr(config)
    assert "xoxb-very-secret" not in str(config.model_dump())


def test_a_secret_written_in_the_file_is_refused(tmp_path: Path):
    path = write(tmp_path, '[slack]\nbot_token = "xoxb-pasted-in"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert any("slack.bot_token" in p and "must not be written in the file" in p
               for p in info.value.problems)
    assert "xoxb-pasted-in" not in str(info.value)


def test_every_value_can_be_overridden_by_the_environment(tmp_path: Path):
    path = write(tmp_path, '[database]\nurl = "sqlite:///file.db"\n[logging]\nlevel = "INFO"\n')
    config = load_config(path, env={"GOVERNANCE_BOT_DATABASE__URL": "sqlite:///other.db",
                                    "GOVERNANCE_BOT_LOGGING__LEVEL": "DEBUG"})
    assert config.database.url == "sqlite:///other.db"
    assert config.logging.level == "DEBUG"


def test_relative_sqlite_paths_are_relative_to_the_config_file(tmp_path: Path):
    (tmp_path / "data").mkdir()  # a folder that is not there is an error (tests/faults)
    config = load_config(write(tmp_path, '[database]\nurl = "sqlite:///data/gb.db"\n'), env={})
    assert config.database_url == f"sqlite:///{tmp_path / 'data' / 'gb.db'}"


def test_connector_settings_are_checked_by_the_connector(tmp_path: Path):
    path = write(tmp_path, """
[[connectors]]
name = "a"
type = "jsonl"
account = "acc"
[[connectors]]
name = "b"
type = "no-such-platform"
account = "acc"
[[connectors]]
name = "a"
type = "jsonl"
account = "acc"
path = "x.jsonl"
poll_interval_seconds = 1
""")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    joined = "\n".join(info.value.problems)
    assert "connectors[0] (a).path: Field required" in joined
    assert "unknown connector 'no-such-platform'" in joined and "jsonl" in joined
    assert "name 'a' is used twice" in joined
    assert "poll_interval_seconds" in joined


def test_not_toml_and_no_file_are_clear_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[database\n"), env={})


def test_the_example_config_loads(tmp_path: Path):
    repo = Path(__file__).resolve().parent.parent
    config = load_config(repo / "config.example.toml", env={})
    assert config.organisation.timezone == "Europe/London"
    assert config.working_hours.span(0) is not None and config.working_hours.span(6) is None


def test_config_example_documents_every_option():
    """Every setting of every section appears in config.example.toml (set or commented)."""
    import re

    from pydantic import BaseModel

    from governance_bot.config import Config

    repo = Path(__file__).resolve().parent.parent
    text = (repo / "config.example.toml").read_text()
    sections: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        header = re.match(r"#?\s*\[\[?([a-z_.]+)\]\]?\s*$", line.strip())
        if header:
            current = header.group(1)
            continue
        sections[current] = sections.get(current, "") + line + "\n"
    missing = []
    for name, field in Config.model_fields.items():
        if name in ("source", "connectors"):
            continue
        model = field.annotation
        for key, sub in model.model_fields.items():  # type: ignore[union-attr]
            nested = sub.annotation
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                for inner in nested.model_fields:  # e.g. [classifiers.toxicity]
                    body = sections.get(f"{name}.{key}", "")
                    if not re.search(rf"^#?\s*{inner}\s*=", body, re.MULTILINE):
                        missing.append(f"[{name}.{key}] {inner}")
                continue
            body = sections.get(name, "")
            if not re.search(rf"^#?\s*{key}\s*=", body, re.MULTILINE):
                missing.append(f"[{name}] {key}")
    assert not missing, f"not documented in config.example.toml: {missing}"
