"""The contract every connector keeps, run against every case in ``tests/contract/cases_*.py``.

Policy link: the DSL relies on "nothing missed": an account whose token expired must say so
plainly to a person, a busy platform must be waited for rather than given up on, one bad record
must not hide the rest, a forged or replayed webhook must not put words in anyone's mouth, and
children's data and secrets must never reach the logs.

The checks are written once against a ``Bench`` (tests/contract/harness.py); each case kind
(HTTP, IMAP, Slack Web API, webhook-only, file) supplies the bench for its transport.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from connectors.base import Capability, FatalError
from connectors.registry import BUILTINS, load
from governance_bot.config import ConfigError, load_config
from governance_bot.storage.db import Database
from governance_bot.webhooks import ReplayGuard
from tests.contract.harness import (
    Bench,
    CaseBase,
    Outcome,
    build_connector,
    discover_cases,
    write_config,
)
from tests.contract.visible import VISIBLE

CASES = discover_cases()
POLLING_CHECKS = ("page", "pages", "unauthorised", "rate_limited", "server_error")
WEBHOOK_CHECKS = ("webhook", "signature_rejected", "replay")
CHECKS = ("config", *POLLING_CHECKS, "malformed", "secrets_in_logs", *WEBHOOK_CHECKS)


def applies(case: CaseBase, check: str) -> None:
    """Skip ``check`` for a case that declared it not applicable (with its reason)."""
    assert set(case.not_applicable) <= set(CHECKS), f"unknown checks in {case.id}"
    if check in case.not_applicable:
        pytest.skip(f"{case.id}: {case.not_applicable[check]}")
    if check in WEBHOOK_CHECKS and case.webhooks is None:
        if Capability.webhook not in load(case.type).capabilities:
            pytest.skip(f"{case.id}: the connector takes no webhooks")
        pytest.fail(f"{case.id}: its connector takes webhooks; give the case `webhooks` or "
                    f"declare {check!r} not applicable with the reason")


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> CaseBase:
    made: CaseBase = request.param
    return made


@pytest.fixture
def bench(case: CaseBase, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bench]:
    made = case.bench(request, tmp_path)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def replay_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayGuard]:
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('replay') / 'contract.db'}")
    db.ensure_schema()
    yield ReplayGuard(db, timedelta(hours=72))
    db.dispose()


def _table(case: CaseBase) -> dict[str, object]:
    return {"name": f"{case.id}-contract", "account": case.account,
            **case.settings(case.placeholder)}


def _ids(outcome: Outcome) -> set[str]:
    return {i.id for i in outcome.items}


# --- coverage ----------------------------------------------------------------------------------

def test_every_registered_connector_has_a_contract_case() -> None:
    """A new connector cannot skip the suite: every built-in needs at least one case."""
    covered = {c.type for c in CASES}
    missing = sorted(set(BUILTINS) - covered)
    assert not missing, f"no contract case for: {missing} (add tests/contract/cases_<name>.py)"


def test_every_case_names_a_registered_connector_and_reasons_for_its_gaps(case: CaseBase
                                                                         ) -> None:
    assert load(case.type).type == case.type
    assert set(case.not_applicable) <= set(CHECKS), f"unknown checks in {case.id}"
    for check, reason in case.not_applicable.items():
        assert len(reason.strip()) >= 15, f"{case.id}: say why {check!r} does not apply"
    takes_webhooks = Capability.webhook in load(case.type).capabilities
    if case.webhooks is not None:
        assert takes_webhooks, f"{case.id}: webhooks given for a connector that takes none"
    elif takes_webhooks:
        undeclared = [c for c in WEBHOOK_CHECKS if c not in case.not_applicable]
        assert not undeclared, (f"{case.id}: its connector takes webhooks: give `webhooks` or "
                                f"declare {undeclared} not applicable with the reason")
    else:
        assert not set(WEBHOOK_CHECKS) & set(case.not_applicable), \
            f"{case.id}: the connector takes no webhooks, nothing to declare"


# --- configuration -----------------------------------------------------------------------------

def test_valid_settings_are_accepted_and_secrets_masked(case: CaseBase, tmp_path: Path) -> None:
    connector = build_connector(case, tmp_path)
    assert connector.type == case.type
    shown = repr(connector) + repr(connector.settings) + str(connector.settings.masked())
    for secret in case.secrets:
        assert secret not in shown
    connector.close()


def test_a_missing_required_setting_is_refused_naming_the_key(case: CaseBase, tmp_path: Path
                                                              ) -> None:
    applies(case, "config")
    assert case.required, "a case must name at least one required setting"
    for key in case.required:
        table = {k: v for k, v in _table(case).items() if k != key}
        with pytest.raises(ConfigError) as err:
            load_config(write_config(tmp_path, table), env=dict(case.env))
        assert key in str(err.value), f"the error does not name {key!r}: {err.value}"


def test_an_invalid_setting_is_refused_naming_the_key(case: CaseBase, tmp_path: Path) -> None:
    applies(case, "config")
    assert case.invalid, "a case must give at least one invalid value"
    for key, value in case.invalid.items():
        table = {**_table(case), key: value}
        with pytest.raises(ConfigError) as err:
            load_config(write_config(tmp_path, table), env=dict(case.env))
        assert key in str(err.value), f"the error does not name {key!r}: {err.value}"


def test_a_secret_written_in_the_file_is_refused(case: CaseBase, tmp_path: Path) -> None:
    if case.secret_key is None:
        pytest.skip(f"{case.id} takes no secret")
    table = {**_table(case), case.secret_key: "literal-secret-in-file"}
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, table), env=dict(case.env))
    assert case.secret_key in str(err.value)
    assert "must not be written" in str(err.value)
    assert "literal-secret-in-file" not in str(err.value)


def test_an_unset_environment_variable_is_named(case: CaseBase, tmp_path: Path) -> None:
    if not case.env:
        pytest.skip(f"{case.id} reads nothing from the environment")
    missing = sorted(case.env)[0]
    env = {k: v for k, v in case.env.items() if k != missing}
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, _table(case)), env=env)
    assert missing in str(err.value)


# --- reading -----------------------------------------------------------------------------------

def test_one_page_is_read_completely(case: CaseBase, bench: Bench) -> None:
    applies(case, "page")
    expected = bench.prepare("page")
    result = bench.read()
    assert _ids(result) == expected.ids
    assert result.problems == []
    for item in result.items:
        assert item.account == case.account
        assert item.created_at.tzinfo is not None and item.created_at.utcoffset() == UTC.utcoffset(
            None)
    assert result.cursor, "a fetch must return a cursor so the next poll is incremental"


def test_pagination_reaches_the_end(case: CaseBase, bench: Bench) -> None:
    applies(case, "pages")
    expected = bench.prepare("pages")
    result = bench.read()
    assert _ids(result) == expected.ids
    assert len(result.items) == len(expected.ids), "an item was produced twice"
    trips = bench.round_trips()
    if trips is not None:
        assert trips >= 2, f"{trips} request(s): the scenario was not really paged"


def test_refused_credentials_stop_with_the_account_and_the_fix(case: CaseBase,
                                                               bench: Bench) -> None:
    applies(case, "unauthorised")
    bench.prepare("page")
    bench.refuse_credentials()
    with pytest.raises(FatalError) as err:
        bench.read()
    message = str(err.value)
    assert case.account in message
    assert "Fix:" in message
    for secret in case.secrets:
        assert secret not in message


def test_rate_limited_waits_the_time_the_platform_asks(case: CaseBase, bench: Bench) -> None:
    applies(case, "rate_limited")
    expected = bench.prepare("page")
    asked = bench.rate_limit_first(37)
    result = bench.read()
    assert bench.sleep.waits, "the connector did not wait before trying again"
    if asked is not None:
        assert bench.sleep.waits[0] == asked
    else:  # the platform names no time: a pause, not a hammering
        assert bench.sleep.waits[0] > 0
    assert _ids(result) == expected.ids


def test_server_errors_back_off_then_succeed(case: CaseBase, bench: Bench) -> None:
    applies(case, "server_error")
    expected = bench.prepare("page")
    bench.fail_first(2)
    result = bench.read()
    waits = bench.sleep.waits
    assert len(waits) >= 2 and all(w > 0 for w in waits[:2]), waits
    assert waits[1] > waits[0], "the second wait should be longer (backoff)"
    assert _ids(result) == expected.ids
    assert len(result.items) == len(expected.ids), "an item was produced twice"


def test_a_malformed_record_is_skipped_and_logged_with_its_source(
        case: CaseBase, bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    applies(case, "malformed")
    expected = bench.prepare("malformed")
    assert expected.where, "a malformed case must say where the bad record is"
    with caplog.at_level(logging.WARNING):
        result = bench.read()
    assert _ids(result) == expected.ids, "the good records around the bad one must be read"
    if result.problems is not None:
        assert len(result.problems) >= 1
        assert any(expected.where in p for p in result.problems), result.problems
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(expected.where in w for w in warnings), warnings


def test_secrets_never_reach_the_logs(case: CaseBase, bench: Bench,
                                      caplog: pytest.LogCaptureFixture) -> None:
    applies(case, "secrets_in_logs")
    logged_problems: list[str] = []
    # httpx and httpcore too: the CLI quiets them (cli._setup_logging), and a test that ran the
    # CLI earlier in the same process must not hide what they would log here
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="httpx"), \
            caplog.at_level(logging.DEBUG, logger="httpcore"):
        if "pages" not in case.not_applicable:
            bench.prepare("pages")
            if "rate_limited" not in case.not_applicable:
                bench.rate_limit_first(1)
            if "server_error" not in case.not_applicable:
                bench.fail_first(1)
            result = bench.read()
            assert result.items
            logged_problems += result.problems or []
        if case.webhooks is not None:
            signer = case.webhooks.signer
            for delivery in case.webhooks.deliveries():
                assert bench.deliver(signer.sign(delivery.body)).status in (200, 202)
                for forged in signer.forgeries(delivery.body).values():
                    bench.deliver(forged)
    logged = caplog.text + "\n".join(logged_problems)
    assert logged, "nothing was logged at DEBUG, so this test would prove nothing"
    for secret in case.secrets:
        assert secret not in logged


# --- webhooks ----------------------------------------------------------------------------------

def test_a_signed_delivery_is_read(case: CaseBase, bench: Bench) -> None:
    applies(case, "webhook")
    assert case.webhooks is not None
    deliveries = case.webhooks.deliveries()
    assert len(deliveries) >= 2, "give at least two different deliveries"
    for delivery in deliveries:
        response = bench.deliver(case.webhooks.signer.sign(delivery.body))
        assert response.status in (200, 202), response  # Graph expects 202 Accepted
        assert {i.id for i in response.items} == delivery.ids
        for item in response.items:
            assert item.account == case.account
            assert item.created_at.utcoffset() == UTC.utcoffset(None)


def test_a_forged_unsigned_or_stale_delivery_is_refused(
        case: CaseBase, bench: Bench, caplog: pytest.LogCaptureFixture) -> None:
    applies(case, "signature_rejected")
    assert case.webhooks is not None
    delivery = case.webhooks.deliveries()[0]
    forgeries = case.webhooks.signer.forgeries(delivery.body)
    for label, request in forgeries.items():
        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = bench.deliver(request)
        assert response.status in (401, 403), f"{label}: answered {response.status}"
        assert response.items == [], f"{label}: items were read from a refused delivery"
        assert response.replay_key is None, f"{label}: a refused delivery must not be claimed"
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings, f"{label}: a refused delivery must be logged"
        assert delivery.body.decode() not in caplog.text


def test_a_redelivery_is_recognised_and_not_processed_twice(
        case: CaseBase, bench: Bench, replay_guard: ReplayGuard) -> None:
    applies(case, "replay")
    assert case.webhooks is not None
    signer = case.webhooks.signer
    one, two = case.webhooks.deliveries()[:2]
    first = bench.deliver(signer.sign(one.body))
    again = bench.deliver(signer.sign(one.body, redelivery=True))
    other = bench.deliver(signer.sign(two.body))
    assert first.replay_key, "an accepted delivery must carry a replay key"
    assert again.replay_key == first.replay_key, "the platform's re-delivery was not recognised"
    assert other.replay_key and other.replay_key != first.replay_key, \
        "two different deliveries share a replay key: the second would be dropped"
    # what the service does with the keys (governance_bot/webhooks.py): the first claim wins
    name = f"{case.id}-contract"
    assert replay_guard.claim(name, first.replay_key) is True
    assert replay_guard.claim(name, again.replay_key) is False
    assert replay_guard.claim(name, other.replay_key) is True


# --- what a reader sees, and threads --------------------------------------------------------


@pytest.mark.parametrize("connector", sorted(BUILTINS))
def test_everything_a_reader_sees_reaches_the_text_labelled(connector: str) -> None:
    """Policy: nothing a reader can see escapes the detectors. Records written in the platform's
    documented shape (tests/contract/visible.py), with HTML structures a body may hold, are
    parsed by the connector: every visible phrase must be in the item's text, each part where
    the item's ``parts`` say it is."""
    assert connector in VISIBLE, f"add what a reader of {connector} sees to visible.py"
    for shown in VISIBLE[connector]():
        item = shown.item
        assert item is not None, f"{connector}: the record was not read at all"
        for phrase in shown.phrases:
            assert phrase in item.text, f"{connector}: {phrase!r} is not in {item.text!r}"
        labelled = {p.source for p in item.parts}
        assert set(shown.sources) <= labelled, (connector, shown.sources, labelled)
        for part in item.parts:
            assert 0 <= part.start <= part.end <= len(item.text)
            if part.source != "body":
                label = f"[{part.source}]\n"
                assert item.text[part.start - len(label):part.start] == label
        assert "<p>" not in item.text and "</li>" not in item.text


def test_threads_name_the_conversation_root(case: CaseBase, bench: Bench) -> None:
    """Rules that read a conversation's history see one conversation: every item names its
    root, a reply the same root as what it replies to, and a root is its own root."""
    if "page" in case.not_applicable:
        if case.webhooks is None:
            pytest.skip(f"{case.id}: {case.not_applicable['page']}")
        items = [i for d in case.webhooks.deliveries()
                 for i in bench.deliver(case.webhooks.signer.sign(d.body)).items]
    else:
        bench.prepare("page")
        items = bench.read().items
    if case.type == "website":
        assert all(i.thread_id is None for i in items)  # a page is not part of a conversation
        return
    by_id = {i.id: i for i in items}
    assert items
    for item in items:
        assert item.thread_id, f"{case.id}: {item.id} names no conversation"
        parent = by_id.get(item.parent_id or "")
        if parent is not None:
            assert item.thread_id == parent.thread_id, (case.id, item.id, parent.id)
        root = by_id.get(item.thread_id)
        if root is not None:
            assert root.thread_id == root.id, (case.id, root.id, root.thread_id)
