"""Encryption at rest for message text, media references and learner details.

With ``[security] encryption_keys`` set (from the environment, comma-separated Fernet keys), the
columns that hold item content, register records and decision notes are stored encrypted
(AES-128-CBC + HMAC-SHA256, via the ``cryptography`` package's Fernet). The first key encrypts;
every key decrypts, so a key is rotated by putting a new key first and running
``governance-bot keys rotate``, which re-encrypts every row with it; then the old key can go.
Rows written before encryption was switched on are read as they are and encrypted by ``rotate``.
The media store's files (pictures fetched from the platforms, governance_bot/media_store.py) are
encrypted the same way (:func:`encrypt_bytes`), and ``rotate`` re-encrypts them too.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, Text, TypeDecorator
from sqlalchemy.engine import Dialect

__all__ = ["MARK", "EncryptedJSON", "EncryptedText", "KeyError_", "configure", "decrypt",
           "decrypt_bytes", "derived_keys", "encrypt", "encrypt_bytes", "generate_key",
           "is_configured", "rotate_bytes"]

MARK = "gbenc1:"
_MARK = MARK
_cipher: MultiFernet | None = None
_keys: list[str] = []  # as configured, newest first (the audit log derives its keys from them)


class KeyError_(RuntimeError):
    """Encrypted data cannot be read: no key, or not the right key."""


def generate_key() -> str:
    return Fernet.generate_key().decode()


def configure(keys: list[str] | None) -> None:
    """Set (or, with None/empty, clear) the keys for this process."""
    global _cipher, _keys
    if not keys:
        _cipher, _keys = None, []
        return
    try:
        _cipher = MultiFernet([Fernet(k.strip().encode()) for k in keys if k.strip()])
        _keys = [k.strip() for k in keys if k.strip()]
    except ValueError as exc:
        raise KeyError_("an encryption key is not a valid Fernet key (generate one with "
                        "`governance-bot keys generate`)") from exc


def is_configured() -> bool:
    return _cipher is not None


def derived_keys(purpose: bytes) -> list[bytes]:
    """A 32-byte key for ``purpose`` from each configured key (HKDF-SHA256), newest first:
    other secrets (the audit log's HMAC key) rotate with the encryption keys and never meet the
    database, while a key for one purpose tells nothing about another."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    out = []
    for key in _keys:
        raw = base64.urlsafe_b64decode(key.encode())
        out.append(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                        info=purpose).derive(raw))
    return out


def _encrypt(text: str) -> str:
    assert _cipher is not None
    return _MARK + _cipher.encrypt(text.encode()).decode()


def _decrypt(token: str) -> str:
    if _cipher is None:
        raise KeyError_("this database holds encrypted data: set [security] encryption_keys "
                        "(GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS) to read it")
    try:
        return _cipher.decrypt(token[len(_MARK):].encode()).decode()
    except InvalidToken as exc:
        raise KeyError_("encrypted data could not be read with the configured keys (was a "
                        "key removed before `governance-bot keys rotate`?)") from exc


def encrypt(text: str) -> str:
    """``text`` encrypted with the first key (for values stored outside the ORM columns)."""
    if _cipher is None:
        raise KeyError_("no encryption key is configured")
    return _encrypt(text)


def decrypt(token: str) -> str:
    """A value from :func:`encrypt` (or any encrypted column) in clear."""
    return _decrypt(token)


def rotate_token(value: str) -> str:
    """Re-encrypt one stored value with the first key (plaintext is encrypted)."""
    assert _cipher is not None
    if value.startswith(_MARK):
        return _MARK + _cipher.rotate(value[len(_MARK):].encode()).decode()
    return _encrypt(value)


_BYTES_MARK = _MARK.encode()


def encrypt_bytes(data: bytes) -> bytes:
    """A file's content encrypted with the first key (the media store's files)."""
    assert _cipher is not None
    return _BYTES_MARK + _cipher.encrypt(data)


def decrypt_bytes(data: bytes) -> bytes:
    """A file's content as written: decrypted when it was encrypted, as it is otherwise."""
    if not data.startswith(_BYTES_MARK):
        return data
    if _cipher is None:
        raise KeyError_("this file is encrypted: set [security] encryption_keys "
                        "(GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS) to read it")
    try:
        return _cipher.decrypt(data[len(_BYTES_MARK):])
    except InvalidToken as exc:
        raise KeyError_("an encrypted file could not be read with the configured keys (was a "
                        "key removed before `governance-bot keys rotate`?)") from exc


def rotate_bytes(data: bytes) -> bytes:
    """A file's content re-encrypted with the first key (a plain one is encrypted)."""
    assert _cipher is not None
    if data.startswith(_BYTES_MARK):
        return _BYTES_MARK + _cipher.rotate(data[len(_BYTES_MARK):])
    return encrypt_bytes(data)


class EncryptedJSON(TypeDecorator[Any]):
    """JSON stored as an encrypted string when keys are configured, as plain JSON otherwise."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or _cipher is None:
            return value
        return {"enc": _encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")))}

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("enc"), str) \
                and value["enc"].startswith(_MARK):
            return json.loads(_decrypt(value["enc"]))
        return value


class EncryptedText(TypeDecorator[str]):
    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or _cipher is None:
            return value
        return _encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and value.startswith(_MARK):
            return _decrypt(value)
        return value
