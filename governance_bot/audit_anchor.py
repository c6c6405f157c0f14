"""Anchoring the audit log's head outside the database.

A hash chain kept in the database shows a changed or removed event, but not a cut: delete the
last events and move ``audit_head`` back (or empty both tables) and what is left is a valid
chain. So the head (event number, hash and key id, sealed with the audit key) is written, at
``[audit_log] anchor_minutes`` intervals and whenever a command that wrote events ends, to places
the database's writers do not control:

* an append-only file (``anchor_file``; opened with ``O_APPEND``, created 0600; make it
  append-only for real with ``chattr +a`` as root, and back it up apart from the database);
* syslog (``syslog = true``), from where it can be forwarded to another machine;
* a Slack channel (``slack_channel``), so people see the head move.

``governance-bot audit-log verify`` reads the file back (storage/auditlog.py ``check_anchors``).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance_bot.config import Config
from governance_bot.storage import auditlog
from governance_bot.storage.db import Database

__all__ = ["anchor", "anchor_path", "anchor_reseal"]

log = logging.getLogger(__name__)


def anchor_path(config: Config) -> Path | None:
    """The anchor file; None when anchoring to a file is off, or when a relative path has no
    config file to be relative to (a configuration built in code: tests, benchmarks)."""
    path = config.audit_log.anchor_file
    if path is None or (not path.is_absolute() and config.source is None):
        return None
    return config.resolve_path(path)


def _last_line(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 4096))
            tail = fh.read().splitlines()
    except FileNotFoundError:
        return None
    for raw in reversed(tail):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        return record if isinstance(record, dict) else None
    return None


def anchor(config: Config, db: Database, now: datetime | None = None,
           slack_client: Any = None) -> dict[str, Any] | None:
    """Write the head where ``config`` says, unless it has not moved since the last anchor;
    returns what was written. Failures are logged, never raised: anchoring must not stop the
    service or a command (the next anchor tries again). ``keys rotate`` anchors its re-sealing
    with :func:`anchor_reseal` instead."""
    now = now or datetime.now(UTC)
    try:
        with db.session() as session:
            record = auditlog.anchor_record(session, now)
    except Exception as exc:
        log.warning("audit log: the head could not be read to anchor it (%s)", type(exc).__name__)
        return None
    if record is None:
        return None
    path = anchor_path(config)
    line = json.dumps(record, sort_keys=True)
    if path is not None:
        last = _last_line(path)
        if last is not None and last.get("seq") == record["seq"] and \
                last.get("hash") == record["hash"]:
            return None  # anchored already
        try:
            _append(path, line)
        except OSError as exc:
            log.error("audit log: could not append the anchor to %s (%s). Fix: let the "
                      "service's user append to it, or set [audit_log] anchor_file", path,
                      exc.strerror or exc)
    _publish(config, record, line, slack_client)
    log.debug("audit log anchored at event %d", record["seq"])
    return record


def anchor_reseal(config: Config, session: Any, now: datetime | None = None) -> None:
    """Write the re-sealed head, read from ``session`` before it commits, to the anchor file
    (and syslog / Slack): written ahead, so that a re-sealing the database keeps always has its
    anchor. Unlike :func:`anchor` this raises ``OSError`` when the file cannot be written: the
    caller then rolls the re-sealing back (a re-sealed log with no anchor saying so would look
    rewritten to every later ``audit-log verify``). An anchor written for a re-sealing that was
    then not committed (the command killed in between) is recognised as such by
    ``check_anchors``."""
    record = auditlog.anchor_record(session, now or datetime.now(UTC), resealed=True)
    if record is None:
        return
    line = json.dumps(record, sort_keys=True)
    path = anchor_path(config)
    if path is not None:
        _append(path, line)
    _publish(config, record, line, None)


def _append(path: Path, line: str) -> None:
    """Append ``line`` to the anchor file (created 0600) and sync it to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(config: Config, record: dict[str, Any], line: str, slack_client: Any) -> None:
    """The anchor to syslog and the Slack channel, where configured."""
    if config.audit_log.syslog:
        import syslog

        syslog.openlog("governance-bot", syslog.LOG_PID, syslog.LOG_AUTHPRIV)
        syslog.syslog(syslog.LOG_NOTICE, f"audit-anchor {line}")
    if config.audit_log.slack_channel:
        _post(config, record, slack_client)


def _post(config: Config, record: dict[str, Any], client: Any) -> None:
    try:
        if client is None:
            from governance_bot.slack.bot import make_client

            client = make_client(config)
        client.chat_postMessage(
            channel=config.audit_log.slack_channel,
            text=(f"Audit log anchor: event {record['seq']}, hash {record['hash'][:16]}..., key "
                  f"{record['key_id'] or 'none'}, at {record['anchored_at']}. If a later "
                  "`governance-bot audit-log verify` does not reach this event, events were "
                  "deleted."))
    except Exception as exc:
        log.warning("audit log: the anchor could not be posted to Slack (%s)",
                    type(exc).__name__)
