"""The connector registry: built-ins, plus third-party connectors found through entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from connectors import registry
from connectors.base import Connector
from connectors.jsonl import JsonlConnector

PLUGIN = '''
from connectors.base import Connector, ConnectorSettings, FetchResult


class NoticeboardSettings(ConnectorSettings):
    board: str


class NoticeboardConnector(Connector):
    type = "noticeboard"
    description = "a school noticeboard (test plugin)"
    Settings = NoticeboardSettings

    def fetch(self, cursor):
        return FetchResult(items=[], cursor=cursor)
'''


@pytest.fixture
def plugin_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gb_noticeboard.py").write_text(PLUGIN)
    dist = tmp_path / "gb_noticeboard-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gb-noticeboard\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[governance_bot.connectors]\nnoticeboard = gb_noticeboard:NoticeboardConnector\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("gb_noticeboard", None)


def test_built_in_connectors_are_listed_and_loaded():
    assert registry.available()["jsonl"] == "built-in"
    assert registry.load("jsonl") is JsonlConnector


def test_an_unknown_connector_names_the_known_ones():
    with pytest.raises(KeyError, match="jsonl"):
        registry.load("myspace")


def test_a_third_party_connector_registers_through_the_entry_point_group(plugin_on_path: None,
                                                                        tmp_path: Path):
    assert registry.available()["noticeboard"].startswith("plugin")
    cls = registry.load("noticeboard")
    assert issubclass(cls, Connector) and cls.type == "noticeboard"
    from governance_bot.config import load_config

    (tmp_path / "config.toml").write_text(
        '[[connectors]]\nname = "nb"\ntype = "noticeboard"\naccount = "a"\nboard = "main"\n')
    config = load_config(tmp_path / "config.toml", env={})
    assert config.connectors[0].type == "noticeboard"
