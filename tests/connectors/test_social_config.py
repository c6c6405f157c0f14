"""The social connectors as the IT technician configures them: the documented snippet loads, the
connectors are registered, and each declares only the moderation its platform allows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.base import ModerationAction
from connectors.registry import available, load
from governance_bot.config import ConfigError, connector_settings, load_config

REPO = Path(__file__).resolve().parents[2]
SNIPPET = REPO / "docs" / "config-snippets" / "social-a.toml"
ENV = {"FB_PAGE_TOKEN": "fb-token-value", "FB_APP_SECRET": "fb-app-secret",
       "FB_VERIFY_TOKEN": "verify-me", "X_TOKEN": "x-token-value"}


def uncommented(text: str) -> str:
    """The snippet with its example tables switched on: "# [[connectors]]" and "# key = value"
    lines lose their "# "; optional settings ("# # key = ...") and prose stay comments."""
    out = [line[2:] for line in text.splitlines() if re.match(r"# (\[\[|[a-z_]+ = )", line)]
    return "\n".join(out) + "\n"


def test_the_documented_snippet_loads(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(uncommented(SNIPPET.read_text(encoding="utf-8")), encoding="utf-8")
    config = load_config(config_file, env=ENV)
    settings = connector_settings(config)
    assert [s.type for s in settings] == ["facebook", "instagram", "x"]
    shown = "".join(repr(s) for s in settings)
    for secret in ENV.values():
        assert secret not in shown


def test_the_snippet_without_its_environment_names_each_missing_variable(tmp_path: Path) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(uncommented(SNIPPET.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(config_file, env={})
    for name in ENV:
        assert name in str(err.value)


@pytest.mark.parametrize(("name", "actions"), [
    ("facebook", {"hide", "unhide", "delete"}),
    ("instagram", {"hide", "unhide", "delete"}),
    ("x", {"hide", "hide_reply", "unhide", "delete"}),
])
def test_each_connector_is_registered_and_declares_its_moderation(
        name: str, actions: set[str]) -> None:
    assert available()[name] == "built-in"
    cls = load(name)
    assert cls.type == name
    settings = {"facebook": {"page_id": "1"}, "instagram": {"ig_user_id": "1"},
                "x": {"user_id": "1"}}[name]
    connector = cls(cls.Settings.model_validate(
        {"name": name, "type": name, "account": "a", "access_token": "t", **settings}))
    assert {a.value for a in connector.moderation_actions()} == actions
    assert ModerationAction.reject not in connector.moderation_actions()
    connector.close()
