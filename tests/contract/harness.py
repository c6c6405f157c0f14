"""The shared connector contract: what every connector must do, whatever its platform or transport.

A platform joins the suite by adding a module ``tests/contract/cases_<something>.py`` that exposes
``CASES: list[CaseBase]``. ``tests/contract/test_contract.py`` then runs every contract check
against every case; nothing else needs editing.

The checks are written once, against a :class:`Bench`: one check's world for one case (the
platform or its real stand-in, plus how to build the connector from a config file). Each *case
kind* supplies the bench for its transport:

* :class:`ContractCase` (HTTP): respx replays recorded real responses. A case gives three route
  installers (``page``, ``pages``, ``malformed``); each returns an :class:`Installed` naming the
  item ids the connector must produce and the route of the *first* request a fetch makes. The
  bench makes that request fail (401, 429 with Retry-After, 500) itself.
* :class:`ImapCase`: a real Dovecot (tests/imap_server.py), reached through a watching proxy that
  can drop connections mid-fetch. Refused login, Dovecot's per-user connection limit (``[LIMIT]``,
  the IMAP form of "busy"), dropped connections, many messages across fetch batches and a broken
  MIME message are all produced by the real server.
* :class:`SlackWebApiCase`: the real ``slack_sdk`` against the local fake Slack Web API
  (tests/fake_slack_workspace.py), which answers ``invalid_auth``, ``ratelimited`` + Retry-After,
  5xx and cursor pages like Slack does.
* :class:`WebhookOnlyCase`: a platform that only pushes (WhatsApp Cloud API): the checks that
  apply run through the signed webhook path; the polling checks are declared not applicable.
* :class:`FileCase`: the ``jsonl`` input: real files in a temporary folder.

Any case may also give :class:`Webhooks` (deliveries, and how the platform signs them) so the
webhook checks (signed delivery read, forged/unsigned/stale refused, re-delivery recognised) run
for it.

Settings are given as the ``[[connectors]]`` table of a config file, with secrets written as
``"${ENV_VAR}"`` and the values in ``env``; the bench writes a real config file and loads it
with :func:`governance_bot.config.load_config`, so configuration errors are checked end to end.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
import pytest
import respx
from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from slack_sdk.signature import SignatureVerifier

from connectors.base import Connector, HttpConnector, WebhookRequest, WebhookResponse
from connectors.meta import sign as meta_sign
from connectors.registry import load
from governance_bot.config import connector_settings, load_config
from governance_bot.items import Item

__all__ = [
    "BASE_URL",
    "Bench",
    "CaseBase",
    "ContractCase",
    "Delivery",
    "Expected",
    "FileCase",
    "GraphClientState",
    "ImapCase",
    "Installed",
    "MailSet",
    "MetaSigner",
    "Outcome",
    "SlackSigner",
    "SlackWebApiCase",
    "SleepRecorder",
    "WebhookOnlyCase",
    "Webhooks",
    "build_connector",
    "discover_cases",
    "fail_first",
    "toml_table",
]

CONTRACT_DIR = Path(__file__).resolve().parent
BASE_URL = "https://contract.test/api"

Scenario = Literal["page", "pages", "malformed"]
# Installer: (router, base_url) -> what the connector must produce.
Installer = Callable[[respx.MockRouter, str], "Installed"]


# --- what a scenario must produce, and what a read produced ---------------------------------------


@dataclass(slots=True)
class Installed:
    """What an HTTP scenario's routes should make the connector produce."""

    ids: set[str]  # item ids a fetch must return, no more, no fewer
    first: respx.Route  # the route answering the first request of a fetch
    # for ``malformed``: a text a problem report (and the log line) must contain to say where the
    # bad record came from, e.g. the endpoint path or the bad record's id
    where: str = ""


@dataclass(slots=True)
class Expected:
    """What a scenario must make the connector produce, whatever the transport."""

    ids: set[str]
    where: str = ""  # malformed: the text that says where the bad record is


@dataclass(slots=True)
class Outcome:
    """What one read produced."""

    items: list[Item]
    # None: this path reports unreadable records only in the log (a webhook answers the platform,
    # not the poller), so only the log line is checked
    problems: list[str] | None
    cursor: dict[str, Any] | None


class SleepRecorder:
    """Stands in for ``time.sleep``: records each requested wait instead of waiting.

    ``on_wait`` (if set) is called with each wait, after it is recorded: a bench uses it to let
    "time pass" on the platform, e.g. another client logging out while the connector waits.
    """

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.on_wait: Callable[[float], None] | None = None

    def __call__(self, seconds: float) -> None:
        self.waits.append(float(seconds))
        if self.on_wait is not None:
            self.on_wait(float(seconds))


# --- config files ------------------------------------------------------------------------------


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


# --- webhooks ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook body and the item ids it must produce (``where``: for a malformed one)."""

    body: bytes
    ids: set[str]
    where: str = ""


class MetaSigner:
    """Signs like Meta (WhatsApp, Facebook, Instagram): ``X-Hub-Signature-256``, an HMAC of the
    body. Meta re-sends an unacknowledged delivery byte for byte."""

    def __init__(self, secret: str):
        self.secret = secret

    def sign(self, body: bytes, *, redelivery: bool = False) -> WebhookRequest:
        return _request(body, {"Content-Type": "application/json",
                               "X-Hub-Signature-256": meta_sign(body, self.secret)})

    def forgeries(self, body: bytes) -> dict[str, WebhookRequest]:
        return {
            "unsigned": _request(body, {"Content-Type": "application/json"}),
            "signed with another secret": _request(
                body, {"X-Hub-Signature-256": meta_sign(body, "someone-elses-secret")}),
            "body changed after signing": _request(
                body + b" ", {"X-Hub-Signature-256": meta_sign(body, self.secret)}),
            "not a sha256 signature": _request(body, {"X-Hub-Signature-256": "sha1=" + "0" * 40}),
        }


class SlackSigner:
    """Signs like Slack's Events API: ``v0=`` HMAC of ``v0:<timestamp>:<body>``. Slack re-sends an
    unacknowledged event with a new timestamp (so a new signature) and ``X-Slack-Retry-Num``."""

    def __init__(self, secret: str):
        self.secret = secret

    def _signed(self, body: bytes, stamp: int, secret: str | None = None,
                extra: dict[str, str] | None = None) -> WebhookRequest:
        signature = SignatureVerifier(secret or self.secret).generate_signature(
            timestamp=str(stamp), body=body)
        assert signature is not None
        return _request(body, {"Content-Type": "application/json",
                               "X-Slack-Request-Timestamp": str(stamp),
                               "X-Slack-Signature": signature, **(extra or {})})

    def sign(self, body: bytes, *, redelivery: bool = False) -> WebhookRequest:
        now = int(time.time())
        if redelivery:
            return self._signed(body, now + 1, extra={"X-Slack-Retry-Num": "1",
                                                      "X-Slack-Retry-Reason": "http_timeout"})
        return self._signed(body, now)

    def forgeries(self, body: bytes) -> dict[str, WebhookRequest]:
        now = int(time.time())
        good = self._signed(body, now)
        return {
            "unsigned": _request(body, {"Content-Type": "application/json"}),
            "signed with another secret": self._signed(body, now, secret="someone-elses-secret"),
            "body changed after signing": _request(body + b" ", dict(good.headers)),
            "a captured request replayed an hour later": self._signed(body, now - 3600),
        }


class GraphClientState:
    """Microsoft Graph change notifications are not signed: each notification carries the
    ``clientState`` secret given when subscribing. Graph re-sends an unacknowledged notification
    body unchanged."""

    def __init__(self, client_state: str):
        self.client_state = client_state

    def sign(self, body: bytes, *, redelivery: bool = False) -> WebhookRequest:
        return _request(body, {"Content-Type": "application/json"})

    def _with(self, body: bytes, state: str | None) -> WebhookRequest:
        payload = json.loads(body)
        for note in payload["value"]:
            note.pop("clientState", None)
            if state is not None:
                note["clientState"] = state
        return _request(json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def forgeries(self, body: bytes) -> dict[str, WebhookRequest]:
        return {"without clientState": self._with(body, None),
                "a guessed clientState": self._with(body, "guessed-client-state"),
                "clientState with one more letter": self._with(body, self.client_state + "x")}


Signer = MetaSigner | SlackSigner | GraphClientState


@dataclass(frozen=True, slots=True)
class Webhooks:
    """How a case's platform pushes: the signer and the deliveries to send (built lazily, since
    recorded ones come from ../shared)."""

    signer: Signer
    deliveries: Callable[[], list[Delivery]]  # at least two different valid ones
    malformed: Callable[[], Delivery] | None = None
    # HTTP cases: routes the connector calls while handling a delivery (e.g. Graph fetching the
    # message a notification names)
    routes: Callable[[respx.MockRouter, str], None] | None = None


def _request(body: bytes, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="POST", path="/webhooks/contract", headers=headers, query={},
                          body=body)


# --- cases and benches -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CaseBase:
    """One connector configured for the contract suite (fields common to every case kind)."""

    id: str  # test id, e.g. "facebook"
    type: str  # connector type as registered in connectors/registry.py
    # where the platform is (a base URL, "host:port", a path) -> the [[connectors]] table
    settings: Callable[[str], dict[str, Any]]
    env: dict[str, str]  # environment the ${ENV} references resolve against
    secrets: tuple[str, ...]  # secret values that must never appear in repr or logs
    required: tuple[str, ...]  # settings keys without which the config must be refused
    invalid: dict[str, Any]  # key -> a value the config must refuse, naming the key
    account: str = "contract-account"
    # a settings key holding a secret that must be refused when written literally in the file
    secret_key: str | None = None
    # contract checks that cannot apply to this connector, each with the reason, e.g.
    # {"rate_limited": "IMAP has no Retry-After"}; keys: see CHECKS in test_contract.py
    not_applicable: dict[str, str] = field(default_factory=dict)
    webhooks: Webhooks | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    kind: ClassVar[str] = ""
    placeholder: ClassVar[str] = BASE_URL  # "where" for checks that need no platform

    def make(self, settings: Any, sleep: Callable[[float], None]) -> Connector:
        """Build the connector from loaded settings, with the test's sleep where it takes one."""
        return load(self.type)(settings)

    def bench(self, request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
        raise NotImplementedError


def build_connector(case: CaseBase, tmp_path: Path, where: str | None = None,
                    sleep: Callable[[float], None] | None = None,
                    env: dict[str, str] | None = None,
                    overrides: dict[str, Any] | None = None) -> Connector:
    """Write the case's settings to a config file, load it like the service does, and build the
    connector with an injected ``sleep``."""
    table = {"name": f"{case.id}-contract", "account": case.account,
             **case.settings(case.placeholder if where is None else where), **(overrides or {})}
    config = load_config(write_config(tmp_path, table), env=dict(case.env if env is None else env))
    (settings,) = connector_settings(config)
    return case.make(settings, sleep or SleepRecorder())


class Bench:
    """One contract check's world for one case: the platform (or its stand-in) and the connector.

    The checks call, in this order: ``prepare`` a scenario, optionally make the platform refuse
    the credentials, rate-limit or fail first, then ``read``. A kind overrides what its transport
    can do; what it leaves out must be declared not applicable by its cases.
    """

    def __init__(self, case: CaseBase, tmp_path: Path, where: str):
        self.case = case
        self.tmp_path = tmp_path
        self.where = where
        self.env = dict(case.env)
        self.overrides: dict[str, Any] = {}
        self.sleep = SleepRecorder()

    def connector(self) -> Connector:
        return build_connector(self.case, self.tmp_path, self.where, self.sleep, self.env,
                               self.overrides)

    def prepare(self, scenario: Scenario) -> Expected:
        raise NotImplementedError(f"{self.case.kind} has no {scenario!r} scenario")

    def refuse_credentials(self) -> None:
        raise NotImplementedError

    def rate_limit_first(self, seconds: int) -> float | None:
        """Make the platform say "too busy" first. Returns the wait it asked for (the connector
        must wait exactly that), or None if the platform names no time (any backoff will do)."""
        raise NotImplementedError

    def fail_first(self, count: int) -> None:
        """Make the first ``count`` attempts fail the way the platform fails (5xx, a drop)."""
        raise NotImplementedError

    def round_trips(self) -> int | None:
        """Requests (or fetch batches) the reads made; None where nothing is paged."""
        return None

    def read(self) -> Outcome:
        connector = self.connector()
        try:
            result = connector.fetch(None)
        finally:
            connector.close()
        return Outcome(items=result.items, problems=result.problems, cursor=result.cursor)

    def deliver(self, request: WebhookRequest) -> WebhookResponse:
        connector = self.connector()
        try:
            return connector.read_webhook(request)  # deferred records read at once
        finally:
            connector.close()

    def close(self) -> None:
        return None


# --- HTTP ----------------------------------------------------------------------------------------


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
                result = normal_side_effect(request, *args, **kwargs)
                assert isinstance(result, httpx.Response)
                return result
            raise AssertionError("fail_first supports callable side effects only")
        if normal_return is None:
            raise AssertionError(f"route {route!r} has no normal answer")
        return normal_return

    route.side_effect = answer


@dataclass(frozen=True, kw_only=True)
class ContractCase(CaseBase):
    """An HTTP connector: respx replays recorded responses (see the module docstring)."""

    page: Installer
    pages: Installer
    malformed: Installer

    kind: ClassVar[str] = "http"

    def make(self, settings: Any, sleep: Callable[[float], None]) -> Connector:
        cls = load(self.type)
        if issubclass(cls, HttpConnector):
            return cls(settings, client=httpx.Client(), sleep=sleep,
                       clock=lambda: 1_790_000_000.0)
        return cls(settings)

    def bench(self, request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
        return HttpBench(self, tmp_path)


class HttpBench(Bench):
    case: ContractCase

    def __init__(self, case: ContractCase, tmp_path: Path):
        super().__init__(case, tmp_path, BASE_URL)
        # every request must be answered by a route a case installed: nothing reaches the network
        self.router = respx.mock(assert_all_called=False, assert_all_mocked=True)
        self.router.start()
        self._first: respx.Route | None = None
        self._routes_installed = False

    def prepare(self, scenario: Scenario) -> Expected:
        installed: Installed = getattr(self.case, scenario)(self.router, BASE_URL)
        self._first = installed.first
        return Expected(ids=installed.ids, where=installed.where)

    def _fail(self, responses: list[httpx.Response]) -> None:
        assert self._first is not None, "prepare a scenario first"
        fail_first(self._first, responses)

    def refuse_credentials(self) -> None:
        self._fail([httpx.Response(401, json={"error": "unauthorised"})])

    def rate_limit_first(self, seconds: int) -> float | None:
        self._fail([httpx.Response(429, headers={"Retry-After": str(seconds)})])
        return float(seconds)

    def fail_first(self, count: int) -> None:
        self._fail([httpx.Response(500 if n % 2 == 0 else 503) for n in range(count)])

    def round_trips(self) -> int | None:
        return int(self.router.calls.call_count)

    def deliver(self, request: WebhookRequest) -> WebhookResponse:
        webhooks = self.case.webhooks
        if webhooks is not None and webhooks.routes is not None and not self._routes_installed:
            webhooks.routes(self.router, BASE_URL)
            self._routes_installed = True
        return super().deliver(request)

    def close(self) -> None:
        self.router.stop()


# --- IMAP (a real Dovecot) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MailSet:
    """Raw messages to put in a fresh folder, the item ids they must produce, and (malformed)
    the position of the broken one."""

    messages: list[bytes]
    ids: set[str]
    broken: int | None = None  # index into ``messages``
    batch_size: int | None = None  # the connector's batch_size for this scenario


@dataclass(frozen=True, kw_only=True)
class ImapCase(CaseBase):
    """An IMAP mailbox on the real Dovecot the tests start (tests/imap_server.py)."""

    user: str  # a user of the test Dovecot
    password_env: str  # the env var the settings read the password from
    page: Callable[[], MailSet]
    pages: Callable[[], MailSet]
    malformed: Callable[[], MailSet]

    kind: ClassVar[str] = "imap"
    placeholder: ClassVar[str] = "127.0.0.1:1143"

    def make(self, settings: Any, sleep: Callable[[float], None]) -> Connector:
        return load(self.type)(settings, sleep=sleep)

    def bench(self, request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
        from tests.imap_server import DovecotServer

        server = request.getfixturevalue("dovecot_server")
        assert isinstance(server, DovecotServer)
        return ImapBench(self, tmp_path, server)


class ImapBench(Bench):
    case: ImapCase

    def __init__(self, case: ImapCase, tmp_path: Path, server: Any):
        from tests.imap_server import CuttingProxy

        self.server = server
        # the connector always goes through a proxy: it counts the commands sent and can drop
        # connections in the middle of a fetch (cuts=0: only watching, until fail_first)
        self.proxy = CuttingProxy((server.host, server.port), cuts=0, cut_on=b"BODY.PEEK[]")
        super().__init__(case, tmp_path, f"127.0.0.1:{self.proxy.port}")
        self.env[case.password_env] = server.password
        self.admin = self._login()
        self.folder = f"Contract{uuid.uuid4().hex[:10]}"
        self.admin.create_folder(self.folder)
        self.overrides["folders"] = [self.folder]
        self.held: list[IMAPClient] = []

    def _login(self) -> IMAPClient:
        client = IMAPClient(self.server.host, port=self.server.port, ssl=False, timeout=5)
        client.login(self.case.user, self.server.password)
        return client

    def prepare(self, scenario: Scenario) -> Expected:
        mails: MailSet = getattr(self.case, scenario)()
        for raw in mails.messages:
            self.admin.append(self.folder, raw)
        if mails.batch_size is not None:
            self.overrides["batch_size"] = mails.batch_size
        where = ""
        if mails.broken is not None:
            where = f"{self.folder} uid {mails.broken + 1}"  # a fresh folder numbers from 1
        return Expected(ids=mails.ids, where=where)

    def refuse_credentials(self) -> None:
        self.env[self.case.password_env] = "not-the-password-3x"

    def rate_limit_first(self, seconds: int) -> float | None:
        """Fill Dovecot's per-user connection limit (mail_max_userip_connections) so the
        connector's login is refused with ``[LIMIT]``; while it waits, one session logs out."""
        while True:
            try:
                self.held.append(self._login())
            except LoginError as exc:
                assert "LIMIT" in str(exc), exc
                break
            assert len(self.held) < 50, "Dovecot never refused a connection for its limit"

        def one_logs_out(_seconds: float) -> None:
            if self.held:
                with contextlib.suppress(Exception):
                    self.held.pop().logout()
                time.sleep(0.3)  # Dovecot's anvil counts the session gone a moment later

        self.sleep.on_wait = one_logs_out
        return None  # IMAP names no time to wait: any growing backoff is right

    def fail_first(self, count: int) -> None:
        self.proxy.cuts_left = count

    def round_trips(self) -> int | None:
        return self.proxy.commands(b"BODY.PEEK[]")  # one body fetch per batch

    def close(self) -> None:
        for client in [*self.held, self.admin]:
            with contextlib.suppress(Exception):
                client.logout()
        self.proxy.close()


# --- Slack Web API (real slack_sdk, local fake API) -----------------------------------------


@dataclass(frozen=True, kw_only=True)
class SlackWebApiCase(CaseBase):
    """A Slack connector read with the real ``slack_sdk`` from the local fake Web API.

    ``workspace(scenario)`` gives the fake's contents as FakeWorkspace keyword arguments
    (users, channels, history, replies, members, page_size) plus ``ids`` and ``where``.
    """

    token_env: str
    workspace: Callable[[Scenario], dict[str, Any]]
    clock: float

    kind: ClassVar[str] = "slack_web_api"
    placeholder: ClassVar[str] = "http://127.0.0.1:9/api/"

    def make(self, settings: Any, sleep: Callable[[float], None]) -> Connector:
        now = self.clock
        return load(self.type)(settings, sleep=sleep, clock=lambda: now)

    def bench(self, request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
        return SlackBench(self, tmp_path)


class SlackBench(Bench):
    case: SlackWebApiCase

    def __init__(self, case: SlackWebApiCase, tmp_path: Path):
        from tests.fake_slack_workspace import FakeWorkspace

        data = {k: v for k, v in case.workspace("page").items() if k not in ("ids", "where")}
        self.fake = FakeWorkspace(token=case.env[case.token_env], **data).__enter__()
        super().__init__(case, tmp_path, self.fake.base_url)

    def prepare(self, scenario: Scenario) -> Expected:
        data = self.case.workspace(scenario)
        expected = Expected(ids=data.pop("ids"), where=data.pop("where", ""))
        for key, value in data.items():
            setattr(self.fake, key, value)
        return expected

    def refuse_credentials(self) -> None:
        self.env[self.case.token_env] = "xoxb-revoked-0000"

    def rate_limit_first(self, seconds: int) -> float | None:
        self.fake.fail_next.append((429, {"ok": False, "error": "ratelimited"},
                                    {"Retry-After": str(seconds)}))
        return float(seconds)

    def fail_first(self, count: int) -> None:
        for n in range(count):
            status = 500 if n % 2 == 0 else 503
            self.fake.fail_next.append((status, {"ok": False, "error": "fatal_error"}, {}))

    def round_trips(self) -> int | None:
        return sum(1 for m in self.fake.methods() if m == "conversations.history")

    def close(self) -> None:
        self.fake.__exit__(None, None, None)


# --- webhook-only platforms ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WebhookOnlyCase(CaseBase):
    """A platform that keeps no history to poll: everything arrives as signed webhooks.
    ``webhooks`` is required; ``malformed`` is read through the webhook."""

    kind: ClassVar[str] = "webhook"

    def bench(self, request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
        assert self.webhooks is not None, f"{self.id}: a webhook-only case needs webhooks"
        return WebhookOnlyBench(self, tmp_path)


class WebhookOnlyBench(Bench):
    def __init__(self, case: CaseBase, tmp_path: Path):
        super().__init__(case, tmp_path, case.placeholder)
        assert case.webhooks is not None
        self.webhooks = case.webhooks
        self._body: bytes | None = None

    def prepare(self, scenario: Scenario) -> Expected:
        if scenario != "malformed" or self.webhooks.malformed is None:
            raise NotImplementedError(f"{self.case.id}: no {scenario!r} delivery")
        delivery = self.webhooks.malformed()
        self._body = delivery.body
        return Expected(ids=delivery.ids, where=delivery.where)

    def read(self) -> Outcome:
        assert self._body is not None, "prepare a scenario first"
        response = self.deliver(self.webhooks.signer.sign(self._body))
        assert response.status == 200, response
        return Outcome(items=response.items, problems=None, cursor=None)


# --- local files -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FileCase(CaseBase):
    """A connector reading local files (``jsonl``). ``files(scenario)`` gives file name ->
    lines, the ids they must produce and (malformed) the ``name:line`` of the bad line."""

    files: Callable[[Scenario], tuple[dict[str, list[str]], set[str], str]]

    kind: ClassVar[str] = "file"
    placeholder: ClassVar[str] = "items.jsonl"

    def bench(self, request: pytest.FixtureRequest, tmp_path: Path) -> Bench:
        return FileBench(self, tmp_path)


class FileBench(Bench):
    case: FileCase

    def __init__(self, case: FileCase, tmp_path: Path):
        self.folder = tmp_path / "input"
        self.folder.mkdir()
        super().__init__(case, tmp_path, str(self.folder))

    def prepare(self, scenario: Scenario) -> Expected:
        files, ids, where = self.case.files(scenario)
        for name, lines in files.items():
            (self.folder / name).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / name).write_text("".join(f"{line}\n" for line in lines),
                                            encoding="utf-8")
        return Expected(ids=ids, where=where)

    def refuse_credentials(self) -> None:
        # a file has no credentials; its equivalent is a path the service cannot read
        self.where = str(self.tmp_path / "moved-away" / "items.jsonl")


# --- discovery -----------------------------------------------------------------------------------


def discover_cases() -> list[CaseBase]:
    """Every case from every ``cases_*.py`` module beside this file."""
    cases: list[CaseBase] = []
    for path in sorted(CONTRACT_DIR.glob("cases_*.py")):
        module = importlib.import_module(f"tests.contract.{path.stem}")
        found = getattr(module, "CASES", None)
        if not isinstance(found, list) or not all(isinstance(c, CaseBase) for c in found):
            raise TypeError(f"{path}: CASES must be a list of contract cases (CaseBase)")
        cases.extend(found)
    ids = [c.id for c in cases]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"contract case ids used twice: {sorted(duplicates)}")
    return cases


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)
