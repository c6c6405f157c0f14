"""Children's data and secrets stay out of logs and reprs; bad Slack settings are named clearly."""

from __future__ import annotations

import logging

import pytest

from governance_bot.config import ConfigError, SlackSettings, load_config
from governance_bot.slack.bot import slack_tokens
from tests.slack.conftest import SlackWorld
from tests.slack.helpers import post

TOKEN = "xoxb-test-token"


def test_no_message_text_learner_detail_or_token_is_logged_above_debug(
        world: SlackWorld, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    world.fake.fail_next(20, 500)  # failures are logged too
    world.ingest(post("q1", "Jayden Price lives on Elm Road"))
    world.fake.fail_next(0)
    world.service.sender.drain()
    assert any(r.levelno >= logging.WARNING for r in caplog.records)  # the outage was reported
    for record in caplog.records:
        message = record.getMessage()
        assert TOKEN not in message, record.name  # at any level
        if record.levelno >= logging.INFO:
            assert "Jayden" not in message and "Elm Road" not in message, record.name


def test_slack_secrets_are_masked_in_reprs(world: SlackWorld) -> None:
    settings = SlackSettings.model_validate({"bot_token": "xoxb-secret-123",
                                             "signing_secret": "sig-secret-456"})
    assert "xoxb-secret-123" not in repr(settings) + str(settings.model_dump())
    assert "sig-secret-456" not in repr(settings)
    for shown in (world.service.slack.sink, world.bot, world.bot.client):
        assert TOKEN not in repr(shown) and TOKEN not in str(shown)


def test_tokens_come_from_the_slack_environment_variables(world: SlackWorld) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-e", "SLACK_SIGNING_SECRET": "sig", "SLACK_APP_TOKEN": "xapp"}
    assert slack_tokens(world.rt.config, env) == ("xoxb-e", "sig", "xapp")


@pytest.mark.parametrize(("toml", "expected"), [
    ('[slack]\nbot_token = "xoxb-in-the-file"\n', "secrets must not be written in the file"),
    ('[slack]\ndsl_content = "everything"\n', "slack.dsl_content"),
    ('[slack]\nescalation_minutes = { "9" = 15 }\n', "slack.escalation_minutes"),
    ('[slack]\ndigest_time = "8am"\n', "slack.digest_time"),
    ('[[slack.rota]]\nhours = "18:00-09:00"\nstaff = ["S002"]\n', "slack.rota[0].hours"),
    ('[slack.channels]\nmanagers = "C1"\n', "slack.channels"),
])
def test_bad_slack_settings_are_reported_with_where_and_what(tmp_path, toml: str,  # type: ignore[no-untyped-def]
                                                             expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert expected in str(err.value)
    assert "xoxb-in-the-file" not in str(err.value)


def test_the_api_url_can_be_set_from_the_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "config.toml"
    path.write_text("[slack]\nmode = \"http\"\n")
    config = load_config(path, env={"GOVERNANCE_BOT_SLACK__API_URL": "http://127.0.0.1:9/api/"})
    assert config.slack.web_api_url == "http://127.0.0.1:9/api/"
