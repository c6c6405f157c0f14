"""Signing in, without a browser: the OpenID Connect exchange against the local provider done by
hand (the console's redirect, the provider's form post, the callback), the cookies a deployed
console sets, the identity provider's word on the email, and the development sign-in that exists
only for the bundled example on one's own machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from starlette.testclient import TestClient

from governance_bot.config import ConfigError, load_config
from governance_bot.console import build_console
from governance_bot.register_store import load_registers
from governance_bot.registers import RegisterIndex
from governance_bot.runtime import import_register_files
from governance_bot.storage.db import Database
from tests.console.conftest import DSL, REGISTERS, UNKNOWN
from tests.console.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider


@pytest.fixture(scope="module")
def idp() -> Iterator[OidcProvider]:
    with OidcProvider() as provider:
        yield provider


def console(tmp: Path, idp: OidcProvider | None = None, *, host: str = "127.0.0.1",
            dev_login: bool = False) -> tuple[Any, Database]:
    from governance_bot.config import Config

    console_cfg: dict[str, Any] = {"dev_login": dev_login, "session_secret": "s3cret"}
    if idp is not None:
        console_cfg["oidc"] = {"issuer": idp.url, "client_id": CLIENT_ID,
                               "client_secret": CLIENT_SECRET}
    config = Config(database={"url": f"sqlite:///{tmp / 'gb.db'}"}, service={"host": host},
                    console=console_cfg)
    db = Database(config.database_url)
    db.ensure_schema()
    import_register_files(db, toml=REGISTERS)
    with db.session() as s:
        registers = RegisterIndex(load_registers(s))
    return build_console(config, db, lambda: registers), db


def oidc_sign_in(client: TestClient, idp: OidcProvider, email: str) -> httpx.Response:
    """The browser's part of the code flow, done with plain HTTP."""
    start = client.get("/signin/oidc", follow_redirects=False)
    assert start.status_code == 302
    authorize = urlparse(start.headers["location"])
    assert authorize.netloc == urlparse(idp.url).netloc
    params = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert params["client_id"] == CLIENT_ID and params["nonce"] and params["state"]
    back = httpx.post(f"{idp.url}/authorize", data={**params, "email": email},
                      follow_redirects=False)
    callback = urlparse(back.headers["location"])
    return client.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def test_a_deployed_console_sets_secure_host_only_cookies(tmp_path: Path, idp: OidcProvider):
    app, db = console(tmp_path, idp, host="0.0.0.0")
    with TestClient(app, base_url="https://console.brookfield.example.org") as client:
        done = oidc_sign_in(client, idp, DSL)
        assert done.status_code == 303 and done.headers["location"] == "/"
        cookie = next(v for k, v in done.headers.multi_items() if k == "set-cookie"
                      and v.startswith("__Host-gb_session="))
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= attributes
        assert client.get("/", follow_redirects=False).status_code == 200
    db.dispose()


def test_an_unverified_email_from_the_provider_is_not_trusted(tmp_path: Path,
                                                             idp: OidcProvider):
    app, db = console(tmp_path, idp)
    idp.email_verified = False
    try:
        with TestClient(app) as client:
            refused = oidc_sign_in(client, idp, DSL)
    finally:
        idp.email_verified = True
    assert refused.status_code == 403
    assert "has not verified your email address" in refused.text
    db.dispose()


def test_a_tampered_callback_is_refused(tmp_path: Path, idp: OidcProvider):
    app, db = console(tmp_path, idp)
    with TestClient(app) as client:
        client.get("/signin/oidc", follow_redirects=False)
        forged = client.get("/signin/callback?code=made-up&state=made-up",
                            follow_redirects=False)
    assert forged.status_code == 403 and "did not confirm who you are" in forged.text
    db.dispose()


def test_an_unknown_person_gets_a_clear_refusal(tmp_path: Path, idp: OidcProvider):
    app, db = console(tmp_path, idp)
    with TestClient(app) as client:
        refused = oidc_sign_in(client, idp, UNKNOWN)
    assert refused.status_code == 403
    assert "You cannot use this console" in refused.text and UNKNOWN in refused.text
    assert "set-cookie" not in {k for k, v in refused.headers.multi_items()
                                if "gb_session" in v}
    db.dispose()


def test_the_development_sign_in_works_for_the_example_on_loopback(tmp_path: Path):
    app, db = console(tmp_path, dev_login=True)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        page = client.get("/signin")
        assert "Development sign-in" in page.text
        token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        assert client.post("/signin/dev", data={"email": DSL}).status_code == 403  # no token
        done = client.post("/signin/dev", data={"email": DSL, "csrf_token": token},
                           follow_redirects=False)
        assert done.status_code == 303
        assert "Helen Okafor" in client.get("/").text
    db.dispose()


def test_the_development_sign_in_is_refused_from_another_machine(tmp_path: Path):
    app, db = console(tmp_path, dev_login=True)
    with TestClient(app, client=("192.0.2.10", 50000)) as client:
        assert "Development sign-in" not in client.get("/signin").text
        assert client.post("/signin/dev", data={"email": DSL}).status_code == 403
    db.dispose()


def test_the_development_sign_in_is_refused_when_bound_to_a_public_address(tmp_path: Path):
    app, db = console(tmp_path, dev_login=True, host="0.0.0.0")
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        page = client.get("/signin")
        assert "Development sign-in" not in page.text
        assert "refused: the service is bound to 0.0.0.0" in page.text
        assert client.post("/signin/dev", data={"email": DSL}).status_code == 403
    db.dispose()
    # and the configuration itself is refused, with the fix
    (tmp_path / "config.toml").write_text(
        '[service]\nhost = "0.0.0.0"\n[console]\ndev_login = true\n')
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path / "config.toml", env={})
    assert "console.dev_login: refused because the service is bound to 0.0.0.0" in str(exc.value)
