"""The shared connector contract: what every HTTP connector must do, whatever its platform.

A platform joins the suite by adding a module ``tests/contract/cases_<something>.py`` that exposes
``CASES: list[ContractCase]``. ``tests/contract/test_contract.py`` then runs every contract test
against every case; nothing else needs editing.

A case says how to configure the connector and how to install respx routes (replaying recorded
real responses where ../shared has them) for a few scenarios:

* ``page``: one complete listing with a single page per endpoint;
* ``pages``: a listing that takes two or more pages to reach the end;
* ``malformed``: one page where one record is unreadable among good ones.

Each installer returns an :class:`Installed` naming the item ids the connector must produce and
the respx route of the *first* request a fetch makes. The harness makes that first request fail
(401, 429 with Retry-After, 500) by putting failure responses in front of the route's normal
answer, so a case does not write those scenarios itself.

Settings are given as the ``[[connectors]]`` table of a config file, with secrets written as
``"${ENV_VAR}"`` and the values in ``env``; the harness writes a real config file and loads it
with :func:`governance_bot.config.load_config`, so configuration errors are checked end to end.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import respx

from connectors.base import Connector, HttpConnector
from connectors.registry import load
from governance_bot.config import connector_settings, load_config

__all__ = [
    "ContractCase",
    "Installed",
    "SleepRecorder",
    "build_connector",
    "discover_cases",
    "fail_first",
    "toml_table",
]

CONTRACT_DIR = Path(__file__).resolve().parent

# Installer: (router, base_url) -> what the connector must produce.
Installer = Callable[[respx.MockRouter, str], "Installed"]


@dataclass(slots=True)
class Installed:
    """What a scenario's routes should make the connector produce."""

    ids: set[str]  # item ids a fetch must return, no more, no fewer
    first: respx.Route  # the route answering the first request of a fetch
    # for ``malformed``: a text a problem report (and the log line) must contain to say where the
    # bad record came from, e.g. the endpoint path or the bad record's id
    where: str = ""


@dataclass(frozen=True, slots=True)
class ContractCase:
    """One connector configured for the contract suite."""

    id: str  # test id, e.g. "facebook"
    type: str  # connector type as registered in connectors/registry.py
    settings: Callable[[str], dict[str, Any]]  # base_url -> [[connectors]] table
    env: dict[str, str]  # environment the ${ENV} references resolve against
    secrets: tuple[str, ...]  # secret values that must never appear in repr or logs
    required: tuple[str, ...]  # settings keys without which the config must be refused
    invalid: dict[str, Any]  # key -> a value the config must refuse, naming the key
    page: Installer
    pages: Installer
    malformed: Installer
    account: str = "contract-account"
    # a settings key holding a secret that must be refused when written literally in the file
    secret_key: str | None = None
    # contract checks that cannot apply to this connector, each with the reason, e.g.
    # {"rate_limited": "IMAP has no Retry-After"}; keys: see CHECKS in test_contract.py
    not_applicable: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class SleepRecorder:
    """Stands in for ``time.sleep``: records each requested wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(float(seconds))


def fail_first(route: respx.Route, failures: list[httpx.Response]) -> None:
    """Make ``route`` answer ``failures`` in turn before its normal answer."""
    normal_side_effect = route.side_effect
    normal_return = route.return_value
    queue = list(failures)

    def answer(request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
        if queue:
            return queue.pop(0)
        if normal_side_effect is not None:
            if callable(normal_side_effect):
                result: httpx.Response = normal_side_effect(request, *args, **kwargs)
                return result
            raise AssertionError("fail_first supports callable side effects only")
        if normal_return is None:
            raise AssertionError(f"route {route!r} has no normal answer")
        return normal_return

    route.side_effect = answer


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_table(table: dict[str, Any]) -> str:
    """A ``[[connectors]]`` table as TOML text (values None are left out)."""
    lines = ["[[connectors]]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines) + "\n"


def write_config(tmp_path: Path, table: dict[str, Any]) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(toml_table(table), encoding="utf-8")
    return path


def build_connector(
    case: ContractCase,
    tmp_path: Path,
    base_url: str,
    sleep: Callable[[float], None],
    client: httpx.Client | None = None,
) -> Connector:
    """Write the case's settings to a config file, load it like the service does, and build the
    connector with an injected ``sleep`` and a fixed clock."""
    table = {"name": f"{case.id}-contract", "account": case.account, **case.settings(base_url)}
    config = load_config(write_config(tmp_path, table), env=dict(case.env))
    (settings,) = connector_settings(config)
    cls = load(case.type)
    if issubclass(cls, HttpConnector):
        return cls(settings, client=client or httpx.Client(), sleep=sleep,
                   clock=lambda: 1_790_000_000.0)
    return cls(settings)


def discover_cases() -> list[ContractCase]:
    """Every case from every ``cases_*.py`` module beside this file."""
    cases: list[ContractCase] = []
    for path in sorted(CONTRACT_DIR.glob("cases_*.py")):
        module = importlib.import_module(f"tests.contract.{path.stem}")
        found = getattr(module, "CASES", None)
        if not isinstance(found, list) or not all(isinstance(c, ContractCase) for c in found):
            raise TypeError(f"{path}: CASES must be a list of ContractCase")
        cases.extend(found)
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"contract case ids used twice: {sorted(duplicates)}")
    return cases


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)

