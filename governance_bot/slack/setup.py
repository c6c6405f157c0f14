"""Is Slack set up? The checks ``doctor`` runs, the one-line preflight of ``scan`` and ``run``,
and ``governance-bot slack test``.

Each problem is reported with its fix: a missing token, a token Slack refuses, a scope the app
lacks, a ``slack_user_id`` that is not in the workspace, someone who must receive flags with no
``slack_user_id`` at all. A misconfiguration never loses a flag: the notifications stay in the
outbox and are delivered once it is fixed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from governance_bot.config import Config
from governance_bot.registers import RegisterIndex, StaffMember
from governance_bot.slack.bot import make_client, slack_tokens

__all__ = ["REQUIRED_SCOPES", "SetupCheck", "SlackNotReady", "SlackUnreachable", "preflight",
           "send_test", "setup_checks"]

log = logging.getLogger(__name__)

# the bot scopes governance-bot uses (docs/slack-app-manifest.yaml; tests/slack/test_manifest.py)
REQUIRED_SCOPES = ("chat:write", "commands", "groups:history", "im:history", "im:write",
                   "mpim:history", "mpim:write", "users:read")
_TOKEN_FIX = ("set SLACK_BOT_TOKEN in the service's environment to the app's Bot User OAuth "
              "Token (xoxb-..., api.slack.com/apps -> your app -> OAuth & Permissions), or "
              "[slack] bot_token = \"${SLACK_BOT_TOKEN}\"")
_REFUSED = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
            "no_permission", "missing_scope"}


class SlackNotReady(Exception):
    """Slack cannot be used as configured; the message is one line: what, and how to fix it."""


class SlackUnreachable(SlackNotReady):
    """Slack could not be reached just now (network, an outage): not a misconfiguration; the
    outbox retries with backoff and loses nothing."""


@dataclass(slots=True)
class SetupCheck:
    name: str
    ok: bool
    message: str
    fix: str = ""
    warning: bool = False


def _client(config: Config, token: str) -> WebClient:
    return make_client(config, token, max_retries=1)


def _auth(config: Config) -> tuple[WebClient, dict[str, Any], set[str]]:
    """A client, ``auth.test``'s answer and the token's scopes; raises :class:`SlackNotReady`."""
    token = slack_tokens(config)[0]
    if not token:
        raise SlackNotReady(f"Slack is not set up: no bot token. Fix: {_TOKEN_FIX}.")
    client = _client(config, token)
    try:
        resp = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else "unknown"
        if error in _REFUSED:
            raise SlackNotReady(f"Slack refused the bot token ({error}). Fix: copy the Bot "
                                "User OAuth Token (xoxb-...) again into SLACK_BOT_TOKEN "
                                "(OAuth & Permissions; reinstall the app if it was "
                                "revoked).") from None
        raise SlackUnreachable(f"Slack answered {error} to auth.test. Fix: check "
                               "https://status.slack.com and try again.") from None
    except (SlackClientError, OSError) as exc:
        url = config.slack.web_api_url or "https://slack.com/api/"
        raise SlackUnreachable(f"Slack cannot be reached at {url} ({type(exc).__name__}). Fix: "
                            "check the server's internet access or proxy (and [slack] api_url "
                            "if set).") from None
    header = resp.headers.get("x-oauth-scopes") or resp.headers.get("X-OAuth-Scopes") or ""
    scopes = {s.strip() for s in str(header).split(",") if s.strip()}
    return client, dict(resp.data) if isinstance(resp.data, dict) else {}, scopes


def _missing_scopes(scopes: set[str]) -> list[str]:
    return [s for s in REQUIRED_SCOPES if s not in scopes] if scopes else []


def preflight(config: Config, serving: bool = False) -> None:
    """Before delivering: is Slack usable as configured? Raises :class:`SlackNotReady` with one
    line (what, and the fix); notifications then stay queued. ``serving``: the service is
    starting, so Slack's requests must be verifiable (signing secret) or Socket Mode must have
    its app-level token."""
    if serving:
        _, signing_secret, app_token = slack_tokens(config)
        if config.slack.mode == "http" and not signing_secret:
            raise SlackNotReady("Slack's requests cannot be verified: no signing secret. Fix: "
                                "set SLACK_SIGNING_SECRET (Basic Information -> Signing "
                                "Secret), or use [slack] mode = \"socket\".")
        if config.slack.mode == "socket" and not app_token:
            raise SlackNotReady("Socket Mode needs an app-level token. Fix: create one with "
                                "the connections:write scope and set SLACK_APP_TOKEN.")
    _, _, scopes = _auth(config)
    missing = _missing_scopes(scopes)
    if missing:
        raise SlackNotReady(f"The Slack app lacks the scope(s) {', '.join(missing)}. Fix: add "
                            "them under OAuth & Permissions (or create the app again from "
                            "docs/slack-app-manifest.yaml) and reinstall it to the workspace.")


def _who_must_receive(registers: RegisterIndex) -> list[StaffMember]:
    """Active staff who receive flags: the DSL team, account managers, case managers."""
    people: list[StaffMember] = []
    for s in registers.safeguarding_contacts():
        if s not in people:
            people.append(s)
    for account in registers.accounts.values():
        for s in registers.managers(account.account_id):
            if s.active and s not in people:
                people.append(s)
    for s in registers.staff.values():
        if s.active and s.role.value in ("headteacher", "chair_of_governors") and s not in people:
            people.append(s)
    return people


def setup_checks(config: Config, registers: RegisterIndex) -> list[SetupCheck]:
    """``doctor``'s Slack checks, each with its fix."""
    checks: list[SetupCheck] = []
    _, signing_secret, app_token = slack_tokens(config)
    if config.slack.mode == "http" and not signing_secret:
        checks.append(SetupCheck(
            "slack signing secret", False, "no signing secret: Slack's requests cannot be "
            "verified, so buttons and forms would be refused",
            "set SLACK_SIGNING_SECRET (Basic Information -> Signing Secret), or use [slack] "
            "mode = \"socket\""))
    if config.slack.mode == "socket" and not app_token:
        checks.append(SetupCheck("slack app token", False, "Socket Mode needs an app-level "
                                 "token", "create one with the connections:write scope "
                                 "(Basic Information -> App-Level Tokens) and set "
                                 "SLACK_APP_TOKEN"))
    try:
        client, data, scopes = _auth(config)
    except SlackNotReady as exc:
        what, _, fix = str(exc).partition(" Fix: ")
        checks.append(SetupCheck("slack token", False, what, fix.rstrip(".")))
        return checks
    checks.append(SetupCheck("slack token", True, f"accepted by Slack: the bot "
                             f"{data.get('user', '?')} in {data.get('team', '?')}"))
    missing = _missing_scopes(scopes)
    if missing:
        checks.append(SetupCheck(
            "slack scopes", False, f"the app lacks {', '.join(missing)}",
            "add them under OAuth & Permissions (or create the app again from "
            "docs/slack-app-manifest.yaml) and reinstall it to the workspace"))
    elif scopes:
        checks.append(SetupCheck("slack scopes", True, f"{len(REQUIRED_SCOPES)} scopes the "
                                 "bot needs are granted"))
    unknown, without = [], []
    for person in _who_must_receive(registers):
        if not person.slack_user_id:
            without.append(person)
            continue
        try:
            found = client.users_info(user=person.slack_user_id)
            user = found.get("user") or {}
            if user.get("deleted"):
                unknown.append(f"{person.name} ({person.staff_id}: {person.slack_user_id}, "
                               "deactivated)")
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "unknown"
            if error in ("user_not_found", "user_not_visible"):
                unknown.append(f"{person.name} ({person.staff_id}: {person.slack_user_id})")
            elif error == "missing_scope":
                break  # reported above
            else:
                unknown.append(f"{person.name} ({person.staff_id}: {error})")
        except (SlackClientError, OSError):
            break
    if unknown:
        checks.append(SetupCheck(
            "slack users", False, "not in the Slack workspace: " + "; ".join(unknown),
            "correct slack_user_id in the staff register (Slack profile -> ⋯ -> Copy member "
            "ID) and import it (`governance-bot registers import`)"))
    if without:
        checks.append(SetupCheck(
            "slack users", False, "no slack_user_id, so they receive no flags: "
            + "; ".join(f"{p.name} ({p.staff_id})" for p in without),
            "add their slack_user_id to the staff register and import it",
            warning=True))
    if not unknown and not without:
        checks.append(SetupCheck("slack users", True, "everyone who receives flags is in the "
                                 "Slack workspace"))
    return checks


def send_test(config: Config, registers: RegisterIndex, to: str, account: str | None) -> str:
    """Send a clearly marked test message to the DSL team (``to = "dsl"``) or to an account's
    managers (``to = "managers"``, ``account``); returns where it went. Raises
    :class:`SlackNotReady`."""
    client, _, _ = _auth(config)
    if to == "dsl":
        people = registers.safeguarding_contacts()
        who = "the DSL and deputies"
    else:
        if not account or account not in registers.accounts:
            known = ", ".join(sorted(registers.accounts)) or "none registered"
            raise SlackNotReady(f"unknown account {account!r}. Fix: give one of: {known}.")
        people = [s for s in registers.managers(account) if s.active]
        who = f"the designated managers of {account}"
    ids = sorted({p.slack_user_id for p in people if p.slack_user_id})
    if not ids:
        raise SlackNotReady(f"nobody among {who} has a slack_user_id. Fix: add them to the "
                            "staff register and import it.")
    try:
        channel = str(client.conversations_open(users=",".join(ids))["channel"]["id"])
        client.chat_postMessage(
            channel=channel,
            text=(":test_tube: TEST from governance-bot: this is a test message, not a flag. "
                  f"It checks that {who} receive governance-bot's messages here. Nothing to "
                  "do."))
    except SlackApiError as exc:
        error = exc.response.get("error") if exc.response is not None else "unknown"
        raise SlackNotReady(f"Slack refused the test message ({error}). Fix: run "
                            "`governance-bot doctor` for what to change.") from None
    return f"{who} ({', '.join(p.name for p in people if p.slack_user_id)})"
