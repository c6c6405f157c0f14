"""Changes to configuration, rules and thresholds are recorded in the audit log (who, what, when),
because the policy requires changes to filtering and monitoring to be logged.

At start-up the running configuration and every rule pack are fingerprinted; if anything differs
from the last recorded fingerprints, a ``config.changed`` event lists which sections and packs
changed. Secrets are never part of a fingerprint's input in clear (only their presence).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from pathlib import Path
from typing import Any

from sqlalchemy import select

from governance_bot.config import Config
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.db import Database

__all__ = ["fingerprints", "record_config_changes"]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprints(config: Config) -> dict[str, str]:
    from rules.packs import SHIPPED

    data = config.model_dump(mode="json")  # SecretStr dumps as "**********"
    out = {f"config:{section}": _digest(value) for section, value in data.items()}
    folders = [SHIPPED]
    if config.detection.packs_dir:
        folders.append(config.resolve_path(config.detection.packs_dir))
    for folder in folders:
        for pack in sorted(Path(folder).glob("*.toml")):
            out[f"rules:{pack.stem}"] = hashlib.sha256(pack.read_bytes()).hexdigest()[:16]
    return out


def record_config_changes(db: Database, config: Config, actor: str | None = None) -> list[str]:
    """Append a ``config.changed`` event if the configuration or rules changed; return what
    changed since the last recorded start (nothing on the first start, which is recorded too)."""
    actor = actor or f"{getpass.getuser()}@{socket.gethostname()}"
    current = fingerprints(config)
    with db.session() as session:
        last = session.execute(
            select(m.AuditEvent).where(m.AuditEvent.action == "config.changed")
            .order_by(m.AuditEvent.seq.desc()).limit(1)
        ).scalars().first()
        previous: dict[str, str] = dict(last.data.get("fingerprints", {})) if last else {}
        changed = sorted(k for k in set(current) | set(previous)
                         if current.get(k) != previous.get(k))
        if changed:
            auditlog.append(session, actor, "config.changed", str(config.source or "(defaults)"),
                            {"fields": changed if previous else ["(first start)"],
                             "fingerprints": current})
    return changed if previous else []
