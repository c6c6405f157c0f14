"""A local OpenID Connect provider for the console's tests: a real HTTP server with a discovery
document, a JWKS, an authorisation endpoint that shows a sign-in form and redirects back with a
code, a token endpoint that checks the client's secret and returns an RS256-signed ID token
(issuer, audience, expiry, nonce, email), and a userinfo endpoint. The browser follows real
redirects to it and back, so the console's Authlib client does the whole protocol."""

from __future__ import annotations

import base64
import html
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "governance-console"
CLIENT_SECRET = "test-client-secret-5c1e"


class OidcProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "use": "sig"})
        self.codes: dict[str, dict[str, Any]] = {}
        self.redirect_uris: set[str] = set()
        self.email_verified = True
        self.token_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "claims_supported": ["sub", "email", "email_verified", "name"],
        }

    def id_token(self, email: str, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.url, "sub": f"user-{email}", "aud": CLIENT_ID,
                                  "iat": now, "exp": now + 300, "email": email,
                                  "email_verified": self.email_verified,
                                  "name": email.split("@")[0]}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode({"alg": "RS256", "kid": "test-key-1"}, claims, self.key)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                return {k: v[0] for k, v in parse_qs(raw).items()}

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    return self._json(200, provider.discovery())
                if url.path == "/jwks":
                    return self._json(200, {"keys": [provider.key.as_dict(private=False)]})
                if url.path == "/authorize":
                    if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                        return self._json(400, {"error": "invalid_request"})
                    fields = "".join(
                        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                        for k, v in query.items())
                    page = ("<!doctype html><html lang=en><title>Test identity provider</title>"
                            "<h1>Test identity provider</h1><form method=post action=/authorize>"
                            f"{fields}<label for=email>Email</label>"
                            "<input id=email name=email type=email>"
                            "<button type=submit>Continue</button></form></html>").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return None
                if url.path == "/userinfo":
                    return self._json(401, {"error": "invalid_token"})
                return self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                form = self._form()
                if url.path == "/authorize":
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = {"email": form.get("email", ""),
                                            "nonce": form.get("nonce"),
                                            "redirect_uri": form.get("redirect_uri")}
                    target = form.get("redirect_uri", "") + "?" + urlencode(
                        {"code": code, "state": form.get("state", "")})
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                    return None
                if url.path == "/token":
                    provider.token_requests += 1
                    client_id, secret = form.get("client_id"), form.get("client_secret")
                    auth = self.headers.get("Authorization", "")
                    if auth.startswith("Basic "):
                        client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                    if client_id != CLIENT_ID or secret != CLIENT_SECRET:
                        return self._json(401, {"error": "invalid_client"})
                    grant = provider.codes.pop(form.get("code", ""), None)
                    if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
                        return self._json(400, {"error": "invalid_grant"})
                    return self._json(200, {
                        "access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                        "expires_in": 300,
                        "id_token": provider.id_token(grant["email"], grant["nonce"])})
                return self._json(404, {"error": "not_found"})

        return Handler
