"""Secrets the database keeps for itself, and the check that the configured keys fit it.

* ``encryption-check``: a token encrypted with the configured keys the first time they are used
  on this database. Its presence says the database holds encrypted data: opening it without a key
  is then an error (never new rows written in plain text beside the encrypted ones), and opening
  it with keys that do not decrypt the token is an error too, before anything is read or written.
  Migration 0012 writes it for a database encrypted before it existed (and refuses to upgrade
  such a database without its keys).
* ``thread-key``: 32 random bytes, kept encrypted like the other columns, that turn each thread
  key (``platform:account:thread``, which for WhatsApp holds both phone numbers) into a keyed
  pseudonym (HMAC-SHA256) before it is stored in ``items.thread_key`` and ``flags.thread_key``. It
  is generated once per database and does not change when the encryption keys rotate (rotation
  re-encrypts it), so a thread stays one thread.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import weakref
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from governance_bot.storage import crypto
from governance_bot.storage.models import Keyring

__all__ = ["CHECK", "THREAD_KEY", "check_encryption", "forget_all", "holds_encrypted_data",
           "pseudonym", "thread_digest"]

CHECK = "encryption-check"
THREAD_KEY = "thread-key"
_TOKEN = "governance-bot encryption check"
_DIGEST_PREFIX = "t1:"
_secrets: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()

NO_KEY = ("this database holds encrypted data and no encryption key is configured. Fix: set "
          "GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS (or [security] encryption_keys = "
          "\"${YOUR_VARIABLE}\") to the key(s) it was written with")
WRONG_KEY = ("the configured encryption keys cannot read this database (it was encrypted with "
             "another key). Fix: set GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS to the key(s) it "
             "was written with; when changing keys, put the new key first and keep the old ones "
             "after it until `governance-bot keys rotate` has run")

# (table, column) pairs that hold encrypted values, sampled to find legacy encrypted data
_SAMPLED = (("item_versions", "data"), ("register_learners", "data"),
            ("register_staff", "data"), ("findings", "evidence"))


def holds_encrypted_data(conn: Any) -> bool:
    """Whether any sampled table holds a value encrypted by governance-bot (one row suffices)."""
    for table, column in _SAMPLED:
        row = conn.execute(text(
            f"SELECT 1 FROM {table} WHERE CAST({column} AS TEXT) LIKE :mark LIMIT 1"),
            {"mark": f"%{crypto.MARK}%"}).first()
        if row is not None:
            return True
    return False


def _sample_encrypted(conn: Any) -> str | None:
    for table, column in _SAMPLED:
        row = conn.execute(text(
            f"SELECT CAST({column} AS TEXT) FROM {table} WHERE CAST({column} AS TEXT) LIKE :mark "
            "LIMIT 1"), {"mark": f"%{crypto.MARK}%"}).first()
        if row is not None:
            value = str(row[0])
            start = value.index(crypto.MARK)
            end = value.find('"', start)
            return value[start:end if end > 0 else None]
    return None


def check_encryption(session: Session) -> str:
    """Raise :class:`crypto.KeyError_` with the fix if the configured keys do not fit this
    database; otherwise say how it stands (for ``doctor``). Writes the check token the first time
    keys are used."""
    raw = session.execute(text("SELECT value FROM keyring WHERE name = :name"),
                          {"name": CHECK}).scalar_one_or_none()
    if raw is None or not str(raw).startswith(crypto.MARK):
        if not crypto.is_configured():
            return "off: nothing is encrypted at rest (docs/security.md)"
        if raw is None:
            session.add(Keyring(name=CHECK, value=_TOKEN))
        else:
            session.get(Keyring, CHECK).value = _TOKEN  # type: ignore[union-attr]
        session.flush()
        return "on: the keys are recorded as this database's keys"
    if not crypto.is_configured():
        raise crypto.KeyError_(NO_KEY)
    try:
        crypto.decrypt(str(raw))
    except crypto.KeyError_:
        raise crypto.KeyError_(WRONG_KEY) from None
    return "on: the keys read this database"


def _secret(session: Session) -> bytes:
    bind = session.get_bind()
    engine: Engine = bind if isinstance(bind, Engine) else bind.engine
    secret = _secrets.get(engine)
    if secret is None:
        row = session.get(Keyring, THREAD_KEY)
        if row is None:  # a database made by the models directly (tests), not by migrations
            row = Keyring(name=THREAD_KEY, value=os.urandom(32).hex())
            session.add(row)
            session.flush()
        secret = bytes.fromhex(row.value)
        _secrets[engine] = secret
    return secret


def thread_digest(session: Session, thread_key: str) -> str:
    """The pseudonym stored for ``thread_key`` in this database."""
    return pseudonym(_secret(session), thread_key)


def pseudonym(secret: bytes, thread_key: str) -> str:
    return _DIGEST_PREFIX + hmac.new(secret, thread_key.encode(), hashlib.sha256).hexdigest()


def forget_all() -> None:
    """Drop the cached thread secrets (after a downgrade removed them)."""
    _secrets.clear()
