"""Fuzzing every loader and inbound endpoint with hypothesis: no crash (only the documented error
types), and no partial write (a refused import or webhook leaves the database as it was).

Entry points: the JSONL item loader (``connectors/jsonl.py``), the register CSV and TOML readers
and their import (``governance_bot/registers.py``, ``runtime.import_register_files``), the config
loader (``governance_bot/config.py``), and the service's HTTP endpoints (``/webhooks/{name}`` with
the Meta signature check, ``/healthz``, ``/metrics``) through Starlette's test client.
Each property runs at most ~200 examples with no deadline, so the whole file stays well under a
minute on two cores.
"""

from __future__ import annotations

import json
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from connectors.jsonl import LineProblem, parse_line, read_items
from connectors.meta import sign
from governance_bot.config import ConfigError, load_config
from governance_bot.items import Item
from governance_bot.registers import RegisterError, read_csv, read_toml
from governance_bot.runtime import Runtime, import_register_files
from governance_bot.service import Service
from governance_bot.storage import models as m
from governance_bot.storage.db import Database
from governance_bot.storage.dp_models import WebhookDelivery

REPO = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=80)

APP_SECRET = "fuzz-app-secret-0f8e"
PAGE = "104000000001"

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(
    max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=6),
    max_leaves=25)

ITEM_FIELDS = ["id", "platform", "account", "kind", "author", "recipients", "created_at",
               "edited_at", "visibility", "text", "media", "parent_id", "thread_id", "url", "raw"]
item_like = st.fixed_dictionaries({
    "id": st.text(max_size=8), "platform": st.sampled_from(["facebook", "x", ""]),
    "account": st.sampled_from(["brookfield-facebook", ""]),
    "kind": st.sampled_from(["post", "comment", "direct_message", "meeting", "nope"]),
    "created_at": st.sampled_from(["2026-11-02T10:00:00Z", "2026-11-02T10:00:00",
                                   "yesterday", "2026-13-45T99:00:00+00:00"]) | st.integers(),
}, optional={k: json_values for k in ITEM_FIELDS
             if k not in ("id", "platform", "account", "kind", "created_at")})


# --- JSONL --------------------------------------------------------------------------------------
@FUZZ
@given(st.text(max_size=300) | item_like.map(json.dumps) | json_values.map(json.dumps))
@example("[" * 100_000)  # nested past Python's recursion limit
@example('{"a":' * 50_000 + "1" + "}" * 50_000)
def test_a_jsonl_line_is_an_item_a_problem_or_blank(line: str) -> None:
    parsed = parse_line(line, Path("in.jsonl"), 7)
    assert parsed is None or isinstance(parsed, Item | LineProblem)
    if isinstance(parsed, LineProblem):
        assert str(parsed).startswith("in.jsonl:7: ")


@FEW
@given(st.binary(max_size=2000))
def test_a_jsonl_file_of_any_bytes_yields_items_or_problems(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "items.jsonl"
        path.write_bytes(data)
        for _file, line, parsed in read_items(path):
            assert line >= 1 and isinstance(parsed, Item | LineProblem)


# --- registers ----------------------------------------------------------------------------------
LEARNER_COLUMNS = ["learner_id", "first_name", "last_name", "preferred_name", "date_of_birth",
                   "email", "photo_consent", "comms_consent", "employer", "handles"]
csv_cell = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
csv_text = st.one_of(
    st.text(max_size=400),
    st.lists(st.lists(csv_cell, min_size=1, max_size=12), min_size=1, max_size=6).map(
        lambda rows: "\n".join(",".join(r) for r in [LEARNER_COLUMNS, *rows])),
)


@pytest.fixture(scope="module")
def register_db() -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/reg.db")
        db.ensure_schema()
        import_register_files(db, toml=REPO / "examples" / "registers.toml")
        yield db
        db.dispose()


def _snapshot(db: Database) -> tuple[int, ...]:
    with db.session() as s:
        return tuple(
            s.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (m.Learner, m.Staff, m.Account, m.AuditEvent, m.ItemRecord, m.ItemVersion,
                      WebhookDelivery)
        )


@FUZZ
@given(csv_text | st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
       st.booleans())
def test_a_register_csv_is_read_into_rows_and_problems(text: str, latin1: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "learners.csv"
        path.write_bytes(text.encode("latin-1" if latin1 and _latin1(text) else "utf-8",
                                     errors="surrogateescape"))
        rows, problems = read_csv(path, "learners")
        assert all(isinstance(p, str) and p.startswith(str(path)) for p in problems)
        assert all(r.learner_id for r in rows)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


toml_value = st.recursive(
    st.integers(-5, 5) | st.booleans() | st.text(string.ascii_letters + " -@.", max_size=10),
    lambda inner: st.lists(inner, max_size=3), max_leaves=6)


def _toml_text(tables: dict[str, list[dict[str, Any]]]) -> str:
    out = []
    for name, rows in tables.items():
        for row in rows:
            out.append(f"[[{name}]]")
            out += [f"{k} = {json.dumps(v)}" for k, v in row.items()]
    return "\n".join(out) + "\n"


register_toml = st.dictionaries(
    st.sampled_from(["learners", "staff", "accounts", "pupils"]),
    st.lists(st.dictionaries(st.sampled_from([*LEARNER_COLUMNS, "staff_id", "name", "role",
                                              "account_id", "platform", "handle", "managers",
                                              "x"]),
                             toml_value, max_size=6), max_size=3), max_size=3).map(_toml_text)


@FEW
@given(register_toml | st.text(max_size=200), st.sampled_from(["toml", "learners"]))
def test_an_import_that_fails_writes_nothing(register_db: Database, text: str, kind: str
                                             ) -> None:
    before = _snapshot(register_db)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("r.toml" if kind == "toml" else "learners.csv")
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            summary = import_register_files(register_db, actor="fuzz", **{kind: path})
        except RegisterError as exc:
            assert exc.problems and all(str(path) in p for p in exc.problems)
            assert _snapshot(register_db) == before
        else:
            after = _snapshot(register_db)
            assert summary.changed or after == before


@FUZZ
@given(st.binary(max_size=300))
def test_a_register_toml_of_any_bytes_is_read_or_refused_with_its_name(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registers.toml"
        path.write_bytes(data)
        try:
            read_toml(path)
        except RegisterError as exc:
            assert all(p.startswith(str(path)) for p in exc.problems)


# --- config -------------------------------------------------------------------------------------
SECTIONS = ["organisation", "database", "registers", "working_hours", "detection", "routing",
            "delivery", "slack", "service", "logging", "audit", "security", "retention", "nope"]
KEYS = ["name", "timezone", "url", "level", "port", "sink", "monday", "enabled", "bot_token",
        "encryption_keys", "unflagged_days", "categories", "host", "disabled_rules", "x"]
config_value = st.one_of(
    st.integers(-2, 70000), st.booleans(), st.sampled_from(
        ["${MISSING_VAR}", "${GB_FUZZ_SET}", "Europe/London", "Mars/Olympus", "INFO", "08:00-18:00",
         "sqlite:///x.db", "", "slack", "25:00-26:00"]),
    st.text(string.printable, max_size=15), st.lists(st.text(string.ascii_lowercase, max_size=6),
                                                     max_size=3))


def _config_text(sections: dict[str, dict[str, Any]]) -> str:
    out = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        out += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(out) + "\n"


config_toml = st.dictionaries(st.sampled_from(SECTIONS), st.dictionaries(
    st.sampled_from(KEYS), config_value, max_size=4), max_size=5).map(_config_text)


@FUZZ
@given(config_toml | st.text(max_size=200))
def test_a_config_file_loads_or_every_problem_is_named(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            config = load_config(path, env={"GB_FUZZ_SET": "value"})
        except ConfigError as exc:
            assert exc.problems and all(str(path) in p or "GOVERNANCE_BOT_" in p
                                        for p in exc.problems)
        else:
            assert config.source == path


# --- HTTP endpoints -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service() -> Iterator[tuple[Service, TestClient]]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "registers.toml").write_text((REPO / "examples" / "registers.toml").read_text())
        (base / "config.toml").write_text(f"""
[database]
url = "sqlite:///gb.db"
[registers]
file = "registers.toml"
[delivery]
sink = "json"
json_path = "delivered.jsonl"
[[connectors]]
name = "fb"
type = "facebook"
account = "brookfield-facebook"
page_id = "{PAGE}"
access_token = "${{GB_FUZZ_TOKEN}}"
app_secret = "${{GB_FUZZ_SECRET}}"
verify_token = "${{GB_FUZZ_VERIFY}}"
base_url = "http://127.0.0.1:9"
max_retries = 0
""")
        config = load_config(base / "config.toml", env={
            "GB_FUZZ_TOKEN": "tok", "GB_FUZZ_SECRET": APP_SECRET, "GB_FUZZ_VERIFY": "v-123"})
        rt = Runtime.from_config(config)
        svc = Service(rt)
        with TestClient(svc.http_app(), raise_server_exceptions=True) as client:
            yield svc, client
        rt.close()


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF,
                                             blacklist_characters="\x7f"), max_size=80)
signature = st.one_of(st.none(), header_text, st.text("0123456789abcdef", min_size=64,
                                                      max_size=64).map(lambda h: f"sha256={h}"),
                      header_text.map(lambda h: f"sha256={h}"))


@FUZZ
@given(body=st.binary(max_size=600) | json_values.map(lambda v: json.dumps(v).encode()),
       sig=signature, path=st.sampled_from(["fb", "fb", "nope", "%2e%2e", "fb%00"]))
def test_an_unsigned_or_mis_signed_webhook_is_refused_and_writes_nothing(
        service: tuple[Service, TestClient], body: bytes, sig: str | None, path: str) -> None:
    svc, client = service
    before = _snapshot(svc.rt.db)
    headers = {"Content-Type": b"application/json"}
    if sig is not None:  # header bytes as they arrive on the wire (latin-1)
        headers["X-Hub-Signature-256"] = sig.encode("latin-1")
    response = client.post(f"/webhooks/{path}", content=body, headers=headers)
    assert response.status_code in (403, 404)
    assert _snapshot(svc.rt.db) == before


page_event = st.fixed_dictionaries({
    "object": st.sampled_from(["page", "instagram", 3, None]),
    "entry": st.one_of(json_values, st.lists(st.fixed_dictionaries({
        "id": st.sampled_from([PAGE, "999", 5]),
        "changes": st.one_of(json_values, st.lists(st.fixed_dictionaries({
            "field": st.sampled_from(["feed", "mention", 1]),
            "value": st.one_of(json_values, st.fixed_dictionaries({}, optional={
                "item": st.sampled_from(["comment", "post", "status", 0]),
                "verb": st.sampled_from(["add", "edited", "remove"]),
                "post_id": json_values, "comment_id": json_values, "parent_id": json_values,
                "created_time": st.integers(-2**40, 2**40) | json_values,
                "from": json_values, "message": json_values, "photo": json_values,
            })),
        }), max_size=3)),
    }), max_size=3)),
})


@FUZZ
@given(event=page_event.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=300))
@example(event=b"[" * 100_000)
def test_a_signed_webhook_of_any_shape_is_answered_without_a_crash(
        service: tuple[Service, TestClient], event: bytes) -> None:
    svc, client = service
    before = _snapshot(svc.rt.db)
    response = client.post("/webhooks/fb", content=event,
                           headers={"X-Hub-Signature-256": sign(event, APP_SECRET)})
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert _snapshot(svc.rt.db) == before


@FEW
@given(query=st.dictionaries(st.sampled_from(["hub.mode", "hub.verify_token", "hub.challenge",
                                              "x"]), st.text(max_size=30), max_size=4))
def test_the_subscription_handshake_answers_only_the_right_token(
        service: tuple[Service, TestClient], query: dict[str, str]) -> None:
    _svc, client = service
    response = client.get("/webhooks/fb", params=query)
    ok = query.get("hub.mode") == "subscribe" and query.get("hub.verify_token") == "v-123"
    assert response.status_code == (200 if ok else 403)
    if ok:
        assert response.text == query.get("hub.challenge", "")


@FEW
@given(path=st.sampled_from(["/healthz", "/metrics"]),
       method=st.sampled_from(["GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
       query=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=3),
       headers=st.dictionaries(st.text(string.ascii_letters + "-", min_size=1, max_size=12),
                               header_text.map(lambda h: h.encode("latin-1")), max_size=3))
def test_healthz_and_metrics_answer_anything_without_a_crash(
        service: tuple[Service, TestClient], path: str, method: str, query: dict[str, str],
        headers: dict[str, bytes]) -> None:
    svc, client = service
    before = _snapshot(svc.rt.db)
    response = client.request(method, path, params=query, headers=headers)
    assert response.status_code in ((200,) if method in ("GET", "HEAD") else (405,))
    if method == "GET" and path == "/healthz":
        assert response.json()["status"] == "ok"
    if method == "GET" and path == "/metrics":
        assert "governance_bot_outbox_pending" in response.text
    assert _snapshot(svc.rt.db) == before
