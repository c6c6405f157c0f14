"""The contract every connector keeps, run against every case in ``tests/contract/cases_*.py``.

Policy link: the DSL relies on "nothing missed": an account whose token expired must say so
plainly to a person, a busy platform must be waited for rather than given up on, one bad record
must not hide the rest, and children's data and secrets must never reach the logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import httpx
import pytest
import respx

from connectors.base import FatalError, FetchResult
from governance_bot.config import ConfigError, load_config
from tests.contract.harness import (
    ContractCase,
    SleepRecorder,
    build_connector,
    discover_cases,
    fail_first,
    write_config,
)

CASES = discover_cases()
BASE_URL = "https://contract.test/api"
CHECKS = ("config", "page", "pages", "unauthorised", "rate_limited", "server_error", "malformed",
          "secrets_in_logs")


def applies(case: ContractCase, check: str) -> None:
    """Skip ``check`` for a case that declared it not applicable (with its reason)."""
    assert set(case.not_applicable) <= set(CHECKS), f"unknown checks in {case.id}"
    if check in case.not_applicable:
        pytest.skip(f"{case.id}: {case.not_applicable[check]}")


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest) -> ContractCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    # every request must be answered by a route a case installed: nothing reaches the network
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


def _fetch(case: ContractCase, tmp_path: Path, sleep: SleepRecorder) -> FetchResult:
    connector = build_connector(case, tmp_path, BASE_URL, sleep)
    try:
        return connector.fetch(None)
    finally:
        connector.close()


def _table(case: ContractCase) -> dict[str, object]:
    return {"name": f"{case.id}-contract", "account": case.account, **case.settings(BASE_URL)}


# --- configuration -----------------------------------------------------------------------------

def test_valid_settings_are_accepted_and_secrets_masked(case: ContractCase, tmp_path: Path
                                                        ) -> None:
    connector = build_connector(case, tmp_path, BASE_URL, SleepRecorder())
    assert connector.type == case.type
    shown = repr(connector) + repr(connector.settings) + str(connector.settings.masked())
    for secret in case.secrets:
        assert secret not in shown
    connector.close()


def test_a_missing_required_setting_is_refused_naming_the_key(case: ContractCase, tmp_path: Path
                                                              ) -> None:
    applies(case, "config")
    assert case.required, "a case must name at least one required setting"
    for key in case.required:
        table = {k: v for k, v in _table(case).items() if k != key}
        with pytest.raises(ConfigError) as err:
            load_config(write_config(tmp_path, table), env=dict(case.env))
        assert key in str(err.value), f"the error does not name {key!r}: {err.value}"


def test_an_invalid_setting_is_refused_naming_the_key(case: ContractCase, tmp_path: Path) -> None:
    applies(case, "config")
    assert case.invalid, "a case must give at least one invalid value"
    for key, value in case.invalid.items():
        table = {**_table(case), key: value}
        with pytest.raises(ConfigError) as err:
            load_config(write_config(tmp_path, table), env=dict(case.env))
        assert key in str(err.value), f"the error does not name {key!r}: {err.value}"


def test_a_secret_written_in_the_file_is_refused(case: ContractCase, tmp_path: Path) -> None:
    if case.secret_key is None:
        pytest.skip(f"{case.id} takes no secret")
    table = {**_table(case), case.secret_key: "literal-secret-in-file"}
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, table), env=dict(case.env))
    assert case.secret_key in str(err.value)
    assert "must not be written" in str(err.value)
    assert "literal-secret-in-file" not in str(err.value)


def test_an_unset_environment_variable_is_named(case: ContractCase, tmp_path: Path) -> None:
    if not case.env:
        pytest.skip(f"{case.id} reads nothing from the environment")
    missing = sorted(case.env)[0]
    env = {k: v for k, v in case.env.items() if k != missing}
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, _table(case)), env=env)
    assert missing in str(err.value)


# --- reading -----------------------------------------------------------------------------------

def test_one_page_is_read_completely(case: ContractCase, tmp_path: Path,
                                     router: respx.MockRouter) -> None:
    applies(case, "page")
    expected = case.page(router, BASE_URL)
    result = _fetch(case, tmp_path, SleepRecorder())
    assert {i.id for i in result.items} == expected.ids
    assert result.problems == []
    for item in result.items:
        assert item.account == case.account
        assert item.created_at.tzinfo is not None and item.created_at.utcoffset() == UTC.utcoffset(
            None)
    assert result.cursor, "a fetch must return a cursor so the next poll is incremental"


def test_pagination_reaches_the_end(case: ContractCase, tmp_path: Path,
                                    router: respx.MockRouter) -> None:
    applies(case, "pages")
    expected = case.pages(router, BASE_URL)
    result = _fetch(case, tmp_path, SleepRecorder())
    assert {i.id for i in result.items} == expected.ids
    assert len(result.items) == len(expected.ids), "an item was produced twice"
    assert router.calls.call_count >= 2


def test_refused_credentials_stop_with_the_account_and_the_fix(
        case: ContractCase, tmp_path: Path, router: respx.MockRouter) -> None:
    applies(case, "unauthorised")
    expected = case.page(router, BASE_URL)
    fail_first(expected.first, [httpx.Response(401, json={"error": "unauthorised"})])
    with pytest.raises(FatalError) as err:
        _fetch(case, tmp_path, SleepRecorder())
    message = str(err.value)
    assert case.account in message
    assert "Fix:" in message
    for secret in case.secrets:
        assert secret not in message


def test_rate_limited_waits_the_time_the_platform_asks(
        case: ContractCase, tmp_path: Path, router: respx.MockRouter) -> None:
    applies(case, "rate_limited")
    expected = case.page(router, BASE_URL)
    fail_first(expected.first, [httpx.Response(429, headers={"Retry-After": "37"})])
    sleep = SleepRecorder()
    result = _fetch(case, tmp_path, sleep)
    assert sleep.waits and sleep.waits[0] == 37.0
    assert {i.id for i in result.items} == expected.ids


def test_server_errors_back_off_then_succeed(
        case: ContractCase, tmp_path: Path, router: respx.MockRouter) -> None:
    applies(case, "server_error")
    expected = case.page(router, BASE_URL)
    fail_first(expected.first, [httpx.Response(500), httpx.Response(503)])
    sleep = SleepRecorder()
    result = _fetch(case, tmp_path, sleep)
    assert len(sleep.waits) >= 2 and all(w > 0 for w in sleep.waits[:2])
    assert sleep.waits[1] > sleep.waits[0], "the second wait should be longer (backoff)"
    assert {i.id for i in result.items} == expected.ids


def test_a_malformed_record_is_skipped_and_logged_with_its_source(
        case: ContractCase, tmp_path: Path, router: respx.MockRouter,
        caplog: pytest.LogCaptureFixture) -> None:
    applies(case, "malformed")
    expected = case.malformed(router, BASE_URL)
    assert expected.where, "a malformed case must say where the bad record is"
    with caplog.at_level(logging.WARNING):
        result = _fetch(case, tmp_path, SleepRecorder())
    assert {i.id for i in result.items} == expected.ids
    assert len(result.problems) >= 1
    assert any(expected.where in p for p in result.problems), result.problems
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(expected.where in w for w in warnings), warnings


def test_secrets_never_reach_the_logs(case: ContractCase, tmp_path: Path,
                                      router: respx.MockRouter,
                                      caplog: pytest.LogCaptureFixture) -> None:
    applies(case, "secrets_in_logs")
    expected = case.pages(router, BASE_URL)
    fail_first(expected.first, [httpx.Response(429, headers={"Retry-After": "1"}),
                                httpx.Response(500)])
    with caplog.at_level(logging.DEBUG):
        result = _fetch(case, tmp_path, SleepRecorder())
    assert result.items
    logged = caplog.text + "\n".join(result.problems)
    assert logged, "nothing was logged at DEBUG, so this test would prove nothing"
    for secret in case.secrets:
        assert secret not in logged
