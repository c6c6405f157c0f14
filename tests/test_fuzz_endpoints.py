"""Fuzzing every webhook endpoint and every command-line input with hypothesis (issue 17): no 500,
no traceback in the log, and nothing valid lost.

* Webhooks: Facebook, Instagram, WhatsApp, the learners' Slack and Teams, each through the real
  service (Starlette app, workers, pipeline, database). Every delivery is correctly signed (or
  carries the right ``clientState``), so the parsing is what is fuzzed: a valid message travels
  with fuzzed siblings in the same delivery (or, for Slack's one-event deliveries, right after a
  fuzzed one) and must be archived and checked whatever they hold.
* Commands: the config file, the ``GOVERNANCE_BOT_*`` overrides, JSONL items (``ingest``) and
  register CSVs (``registers import``), run through the real CLI: exit codes 0, 2, 3 or 4 only,
  never an exception, and the valid line around the fuzzed ones ingested.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from connectors.meta import sign
from governance_bot.cli import app
from governance_bot.config import load_config
from governance_bot.runtime import Runtime
from governance_bot.service import Service
from governance_bot.storage import models as m
from tests.fake_slack_workspace import FakeWorkspace
from tests.faults import deliveries as d
from tests.faults.platforms import FakeGraph

REPO = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=25)
IG_USER = "17841400000000001"

json_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(
    allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=20)


def _fields(keys: list[str]) -> Any:
    """An object whose fields are each either a plausible value or any JSON."""
    return st.fixed_dictionaries({}, optional={k: json_values for k in keys})


class World:
    def __init__(self, svc: Service, client: TestClient, graph: FakeGraph) -> None:
        self.svc, self.client, self.graph = svc, client, graph
        self.n = 0

    def next_id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n:06d}"

    def checked(self, key: str) -> bool:
        with self.svc.rt.db.session() as s:
            row = s.execute(select(m.ItemVersion.detected_at).join(
                m.ItemRecord, m.ItemRecord.id == m.ItemVersion.item_id).where(
                m.ItemRecord.key == key)).first()
        return row is not None and row[0] is not None


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    graph = FakeGraph()
    workspace = FakeWorkspace(users=d.SLACK_USERS, channels=d.SLACK_CHANNELS,
                              members={"D0DM": ["U0TUTOR", "U0LEARN"]})
    with tempfile.TemporaryDirectory() as tmp, graph, workspace:
        base = Path(tmp)
        (base / "registers.toml").write_text((REPO / "examples" / "registers.toml").read_text())
        (base / "config.toml").write_text(
            '[database]\nurl = "sqlite:///gb.db"\n[registers]\nfile = "registers.toml"\n'
            '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n'
            '[delivery]\nsink = "json"\njson_path = "delivered.jsonl"\n'
            + d.connectors_toml(slack_url=workspace.base_url, graph_url=graph.base_url)
            + f'\n[[connectors]]\nname = "instagram"\ntype = "instagram"\n'
              f'account = "brookfield-instagram"\nig_user_id = "{IG_USER}"\n'
              'access_token = "${FB_TOKEN}"\napp_secret = "${FB_APP_SECRET}"\n'
              'verify_token = "${FB_VERIFY}"\nbase_url = "http://127.0.0.1:9"\n'
              'max_retries = 0\npoll_interval_seconds = 3600\n')
        rt = Runtime.from_config(load_config(base / "config.toml", env=d.ENV))
        svc = Service(rt)
        svc.answer_seconds = 60  # the answer waits until the delivery is checked
        with TestClient(svc.http_app(), raise_server_exceptions=False) as client:
            yield World(svc, client, graph)
        svc.close()
        rt.close()


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]


def _post(world: World, path: str, body: bytes, headers: dict[str, str]) -> int:
    return world.client.post(path, content=body, headers=headers).status_code


# --- Facebook and Instagram (Meta) ---------------------------------------------------------

feed_value = _fields(["item", "verb", "post_id", "comment_id", "parent_id", "created_time",
                      "from", "message", "photo"])


@FUZZ
@given(others=st.lists(st.one_of(json_values, st.fixed_dictionaries(
    {"field": st.sampled_from(["feed", "mention", 1])}, optional={"value": feed_value})),
    max_size=4), position=st.integers(0, 4))
def test_facebook_deliveries_keep_their_valid_comment_whatever_is_beside_it(
        world: World, caplog: pytest.LogCaptureFixture, others: list[Any],
        position: int) -> None:
    cid = world.next_id("900001_fz")
    valid = {"field": "feed", "value": {
        "from": {"id": "6100000000123", "name": "A. Parent"}, "item": "comment",
        "verb": "add", "created_time": d.T0, "post_id": f"{d.PAGE}_900001",
        "parent_id": f"{d.PAGE}_900001", "comment_id": cid, "message": "Lovely concert"}}
    changes = [*others]
    changes.insert(min(position, len(changes)), valid)
    body = json.dumps({"object": "page", "entry": [{"id": d.PAGE, "time": d.T0,
                                                    "changes": changes}]}).encode()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status = _post(world, "/webhooks/facebook-page", body,
                       {"X-Hub-Signature-256": sign(body, d.FB_SECRET)})
    assert status == 200
    _no_traceback(caplog)
    assert world.checked(f"facebook:brookfield-facebook:{cid}")


@FUZZ
@given(others=st.lists(st.one_of(json_values, st.fixed_dictionaries(
    {"field": st.sampled_from(["comments", "live_comments", "mentions", 3])},
    optional={"value": _fields(["id", "text", "from", "media", "parent_id", "timestamp",
                                "hidden"])})), max_size=4))
def test_instagram_deliveries_keep_their_valid_comment_whatever_is_beside_it(
        world: World, caplog: pytest.LogCaptureFixture, others: list[Any]) -> None:
    cid = world.next_id("1790000")
    valid = {"field": "comments", "value": {"id": cid, "text": "Great photos",
                                            "from": {"id": "5500000001", "username": "parent"},
                                            "media": {"id": "17900000000001"}}}
    body = json.dumps({"object": "instagram", "entry": [
        {"id": IG_USER, "time": d.T0, "changes": [*others, valid]}]}).encode()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status = _post(world, "/webhooks/instagram", body,
                       {"X-Hub-Signature-256": sign(body, d.FB_SECRET)})
    assert status == 200
    _no_traceback(caplog)
    assert world.checked(f"instagram:brookfield-instagram:{cid}")


# --- WhatsApp -------------------------------------------------------------------------------------

wa_message = st.one_of(json_values, _fields(
    ["from", "id", "timestamp", "type", "text", "context", "image", "contacts", "location",
     "interactive", "edit", "revoke", "reaction", "order", "button"]))


@FUZZ
@given(others=st.lists(wa_message, max_size=4),
       contacts=st.one_of(json_values, st.just([{"wa_id": "447700900123"}])),
       metadata=st.one_of(json_values, st.just({"phone_number_id": d.WA_NUMBER_ID})))
def test_whatsapp_deliveries_keep_their_valid_message_whatever_is_beside_it(
        world: World, caplog: pytest.LogCaptureFixture, others: list[Any], contacts: Any,
        metadata: Any) -> None:
    mid = world.next_id("wamid.FZ")
    valid = d.whatsapp_message(mid, "see you at four")
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{
        "id": "WABA-0001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": metadata, "contacts": contacts,
            "messages": [*others, valid]}}]}]}).encode()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status = _post(world, "/webhooks/whatsapp", body,
                       {"X-Hub-Signature-256": sign(body, d.WA_SECRET)})
    assert status == 200
    _no_traceback(caplog)
    assert world.checked(f"whatsapp:brookfield-whatsapp:{mid}")


# --- the learners' Slack ------------------------------------------------------------------------

def _slack(world: World, payload: Any) -> int:
    body = json.dumps(payload).encode()
    stamp = str(int(__import__("time").time()))
    signature = SignatureVerifier(d.SLACK_SIGNING).generate_signature(timestamp=stamp, body=body)
    return _post(world, "/webhooks/learner-slack", body,
                 {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature})


@FEW
@given(event=st.one_of(json_values, _fields(
    ["type", "subtype", "channel", "channel_type", "user", "ts", "text", "message",
     "previous_message", "deleted_ts", "event_ts", "files", "thread_ts", "bot_id"])),
    envelope=_fields(["type", "event_id", "challenge"]))
def test_slack_events_of_any_shape_are_answered_and_a_valid_one_after_is_kept(
        world: World, caplog: pytest.LogCaptureFixture, event: Any,
        envelope: dict[str, Any]) -> None:
    caplog.clear()
    with caplog.at_level(logging.INFO):
        fuzzed = _slack(world, {"type": "event_callback", **envelope, "event": event})
        stamp = f"{d.T0 + world.n}.{world.n:06d}"
        world.n += 1
        valid = _slack(world, {"type": "event_callback", "event_id": world.next_id("EvFZ"),
                               "event": {"type": "message", "channel": "D0DM",
                                         "channel_type": "im", "user": "U0TUTOR", "ts": stamp,
                                         "text": "portfolio review on Thursday"}})
    assert fuzzed < 500 and valid == 200
    _no_traceback(caplog)
    assert world.checked(f"slack_workspace:brookfield-slack:D0DM:{stamp}")


# --- Teams --------------------------------------------------------------------------------------

@FEW
@given(others=st.lists(st.one_of(json_values, _fields(
    ["clientState", "resource", "lifecycleEvent", "subscriptionId", "changeType",
     "resourceData"])).map(lambda n: {**n, "clientState": d.ENV["TEAMS_CLIENT_STATE"]}
                           if isinstance(n, dict) and "clientState" not in n else n),
    max_size=3))
def test_teams_notifications_keep_their_valid_message_whatever_is_beside_it(
        world: World, caplog: pytest.LogCaptureFixture, others: list[Any]) -> None:
    mid = world.next_id("18000000")
    world.graph.messages[mid] = d.teams_message(mid, world.n)
    valid = json.loads(d.teams([mid]).body)["value"][0]
    body = json.dumps({"value": [*others, valid]}).encode()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status = _post(world, "/webhooks/teams", body, {"Content-Type": "application/json"})
    assert status in (202, 403)  # 403 only if no notification carried the clientState
    _no_traceback(caplog)
    from tests.msgraph_fixtures import CHAT

    assert world.checked(f"teams:brookfield-teams:{CHAT}:{mid}")


# --- the command line -------------------------------------------------------------------------

def _cli(args: list[str], env: dict[str, str] | None = None) -> Any:
    clean = {k: "" for k in os.environ if k.startswith("GOVERNANCE_BOT_")}
    result = CliRunner().invoke(app, args, env={**{k: None for k in clean}, **(env or {})})
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (
        f"{args}: {type(exc).__name__}: {exc}\n{result.output}")
    assert result.exit_code in (0, 1, 2, 3, 4), result.output
    assert "Traceback" not in result.output
    return result


toml_value = st.one_of(st.integers(-10, 10**12).map(str), st.booleans().map(str).map(str.lower),
                       st.text(max_size=20).map(json.dumps), st.just("[]"), st.just("{}"),
                       st.just('["x", 1]'), st.just('""'))
settings_names = st.sampled_from([
    "database.url", "database.echo", "registers.file", "detection.disabled_rules",
    "service.port", "service.lease_seconds", "service.max_body_bytes", "security.encryption_keys",
    "logging.level", "audit_log.anchor_file", "audit_log.anchor_minutes", "working_hours.monday",
    "organisation.timezone", "retention.categories", "slack.escalation_minutes",
    "console.idle_timeout_minutes", "nosuch.key", "database.nosuch"])


@FEW
@given(pairs=st.lists(st.tuples(settings_names, toml_value), max_size=4),
       garbage=st.text(max_size=40))
def test_any_config_file_is_used_or_refused_with_messages(
        tmp_path_factory: pytest.TempPathFactory, pairs: list[tuple[str, str]],
        garbage: str) -> None:
    folder = tmp_path_factory.mktemp("cfg")
    tables: dict[str, list[str]] = {}
    for name, value in pairs:
        section, key = name.rsplit(".", 1)
        tables.setdefault(section, []).append(f"{key} = {value}")
    text = "".join(f"[{section}]\n" + "\n".join(dict.fromkeys(lines)) + "\n"
                   for section, lines in tables.items())
    if "database" not in tables:
        text += '[database]\nurl = "sqlite:///gb.db"\n'
    (folder / "config.toml").write_text(text + ("\n# " + garbage.replace("\n", " ")))
    result = _cli(["flags", "list", "-c", str(folder / "config.toml")])
    if result.exit_code == 2:
        assert "Fix" in result.output or "fix" in result.output


@FEW
@given(overrides=st.dictionaries(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_", min_size=1, max_size=30).map(
        lambda s: "GOVERNANCE_BOT_" + s), st.text(max_size=20).filter(lambda v: "\x00" not in v),
    max_size=3))
def test_any_environment_overrides_are_used_or_refused_with_messages(
        tmp_path_factory: pytest.TempPathFactory, overrides: dict[str, str]) -> None:
    folder = tmp_path_factory.mktemp("env")
    (folder / "config.toml").write_text('[database]\nurl = "sqlite:///gb.db"\n')
    _cli(["flags", "list", "-c", str(folder / "config.toml")], env=overrides)


@pytest.fixture(scope="module")
def ingest_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "config.toml").write_text(
            f'[database]\nurl = "sqlite:///gb.db"\n[registers]\nfile = '
            f'"{REPO / "examples" / "registers.toml"}"\n'
            '[detection]\ndisabled_rules = ["safeguarding", "images", "toxicity"]\n')
        yield folder


@FEW
@given(lines=st.lists(st.binary(max_size=120) | json_values.map(
    lambda v: json.dumps(v).encode()), max_size=4))
def test_ingest_keeps_the_valid_line_among_any_others(ingest_folder: Path,
                                                      lines: list[bytes]) -> None:
    n = len(list(ingest_folder.glob("*.jsonl")))
    valid = json.dumps({"id": f"fz{n}", "platform": "facebook",
                        "account": "brookfield-facebook", "kind": "post",
                        "author": {"id": "104000000001"},
                        "created_at": "2026-11-20T10:00:00+00:00", "text": "Sports day"}).encode()
    batch = ingest_folder / f"batch-{n}.jsonl"
    clean = [line.replace(b"\n", b" ").replace(b"\r", b" ") for line in lines]
    batch.write_bytes(b"\n".join([*clean, valid]) + b"\n")
    result = _cli(["ingest", str(batch), "-c", str(ingest_folder / "config.toml"), "--strict"])
    assert result.exit_code in (0, 4), result.output
    from governance_bot.storage.db import Database

    db = Database(f"sqlite:///{ingest_folder / 'gb.db'}")
    with db.session() as s:
        keys = set(s.execute(select(m.ItemRecord.key)).scalars())
    db.dispose()
    assert f"facebook:brookfield-facebook:fz{n}" in keys


csv_cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)


@FEW
@given(header=st.sampled_from([
    "learner_id,first_name,last_name,date_of_birth,photo_consent",
    "learner_id,first_name,last_name", "nonsense,columns"]),
    rows=st.lists(st.lists(csv_cell, min_size=0, max_size=6), max_size=4))
def test_a_register_csv_of_any_content_is_imported_or_refused_with_messages(
        tmp_path_factory: pytest.TempPathFactory, header: str, rows: list[list[str]]) -> None:
    import csv
    import io

    folder = tmp_path_factory.mktemp("reg")
    (folder / "config.toml").write_text('[database]\nurl = "sqlite:///gb.db"\n')
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header.split(","))
    writer.writerows(rows)
    (folder / "learners.csv").write_text(buffer.getvalue())
    result = _cli(["registers", "import", "-c", str(folder / "config.toml"), "--learners",
                   str(folder / "learners.csv")])
    assert result.exit_code in (0, 2), result.output
