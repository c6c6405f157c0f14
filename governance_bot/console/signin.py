"""Signing in to the console: OpenID Connect through the organisation's identity provider (Authlib
does the protocol: discovery, state, nonce, the code exchange and the ID token's signature,
issuer, audience and expiry), or, for the bundled example only, a development sign-in.

Whoever signs in is matched by email to the staff register; anyone else is refused with a page
that says why, and the refusal is audited. No passwords are ever kept here.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from governance_bot.config import Config
from governance_bot.registers import RegisterIndex, StaffMember

__all__ = ["dev_login_refusal", "is_loopback", "make_oauth", "staff_for_email"]

log = logging.getLogger(__name__)


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dev_login_refusal(config: Config) -> str | None:
    """Why the development sign-in may not be used, or None if it may."""
    if not config.console.dev_login:
        return "the development sign-in is off ([console] dev_login = false)"
    if not is_loopback(config.service.host):
        return (f"the development sign-in is refused: the service is bound to "
                f"{config.service.host}, not a loopback address (127.0.0.1)")
    return None


def staff_for_email(registers: RegisterIndex, email: str | None) -> StaffMember | None:
    """The active staff member whose register email is ``email`` (case does not matter)."""
    if not email:
        return None
    wanted = email.strip().casefold()
    for s in registers.staff.values():
        if s.active and s.email and s.email.strip().casefold() == wanted:
            return s
    return None


def make_oauth(config: Config) -> Any | None:
    """Authlib's Starlette client for the configured provider, or None if none is configured."""
    oidc = config.console.oidc
    issuer = oidc.issuer_url()
    if not issuer or not oidc.client_id:
        return None
    from authlib.integrations.starlette_client import OAuth

    oauth = OAuth()
    oauth.register(
        name="idp",
        client_id=oidc.client_id,
        client_secret=oidc.client_secret.get_secret_value() if oidc.client_secret else None,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": oidc.scopes},
    )
    return oauth.idp


def email_from_claims(config: Config, claims: dict[str, Any]) -> tuple[str | None, str | None]:
    """(email, why not) from verified ID token claims. An address the provider itself marks as
    unverified is not trusted."""
    if claims.get("email_verified") is False:
        return None, "your identity provider has not verified your email address"
    email = claims.get("email")
    if not email and config.console.oidc.provider == "entra":
        # Entra ID puts the sign-in name (normally the email) in preferred_username
        email = claims.get("preferred_username")
    if not email:
        return None, "your identity provider did not give an email address"
    return str(email), None
