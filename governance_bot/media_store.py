"""The media store: pictures fetched from the platforms, each kept once under its SHA-256.

Policy link: photos of learners are personal data (UK GDPR), to be kept no longer than the item
they came with; a possibly explicit image is evidence ("do not look, do not delete, preserve for
police"): it is kept while a legal hold covers its item and is never shown or sent anywhere.

* A file is named by the SHA-256 of its bytes (``<folder>/ab/abcdef...``, no extension), so the
  same picture posted twice is stored once.
* The folder and its sub-folders are created readable by the service's user only (0700) and
  every file 0600, written to a temporary name and renamed, so a reader never sees half a file.
* Only a picture is stored: Pillow must recognise its first bytes as JPEG, PNG, GIF, WebP, BMP
  or TIFF, and its header must be within the images rule pack's pixel cap (a decompression bomb
  is refused before any pixel is decoded); the download before it is capped in bytes.
* With ``[security] encryption_keys`` configured, every file is encrypted at rest like the
  database's item columns (Fernet: AES-128-CBC with HMAC-SHA256, newest key first;
  ``governance-bot keys rotate`` re-encrypts the files too). The detectors (OCR, the image
  checks) then read a plain *working copy* that exists only while its item is checked
  (``<folder>/.work/<host>-<pid>/``, 0600) and is removed after; copies left by a process that
  died are removed by the next start. Without keys, files are stored as they came.
* Nothing here serves a file: no page, message, digest or export shows or links a stored
  picture. Files are removed only through :mod:`governance_bot.media` when no item keeping its
  content (retention, erasure; never one under a legal hold) refers to them any more.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from governance_bot.storage import crypto

__all__ = ["MediaRejected", "MediaStore", "StoredMedia"]

log = logging.getLogger(__name__)

# the formats a platform serves pictures in, and their media types (Pillow's format names)
FORMATS = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
           "WEBP": "image/webp", "BMP": "image/bmp", "TIFF": "image/tiff"}
_SHA = re.compile(r"^[0-9a-f]{64}$")
STALE_WORK_SECONDS = 24 * 3600


class MediaRejected(Exception):
    """The bytes are not a picture the store keeps (the message says why)."""


@dataclass(frozen=True, slots=True)
class StoredMedia:
    sha256: str
    path: Path  # the stored file (encrypted when keys are configured)
    mime_type: str
    size: int
    width: int
    height: int


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is masked by the umask; an existing folder is tightened


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (0600) through a temporary name in the same folder."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class MediaStore:
    """Pictures by SHA-256 in one folder (see the module docstring)."""

    def __init__(self, folder: Path, *, max_bytes: int = 25_000_000,
                 max_pixels: int = 40_000_000):
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        Image.init()  # every format plugin, so each kept format can be recognised
        self._formats = [name for name in FORMATS if name in Image.OPEN]
        _private_dir(folder)
        self._work_root = folder / ".work"
        self._work = self._work_root / f"{socket.gethostname()}-{os.getpid()}"
        self._clear_stale_work()

    @property
    def encrypted(self) -> bool:
        """Whether new files are encrypted (keys are configured in this process)."""
        return crypto.is_configured()

    # --- names ------------------------------------------------------------------------------
    def path_for(self, sha256: str) -> Path:
        if not _SHA.match(sha256):
            raise ValueError("not a SHA-256 in hex")
        return self.folder / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        try:
            return self.path_for(sha256).is_file()
        except ValueError:
            return False

    def shas(self) -> Iterator[str]:
        """Every stored picture's SHA-256."""
        for sub in self.folder.iterdir():
            if len(sub.name) == 2 and sub.is_dir():
                for path in sub.iterdir():
                    if _SHA.match(path.name):
                        yield path.name

    # --- writing ----------------------------------------------------------------------------
    def sniff(self, data: bytes) -> tuple[str, int, int]:
        """(media type, width, height) from the picture's own bytes; MediaRejected if it is not
        one of the kept formats or is over the caps."""
        if len(data) > self.max_bytes:
            raise MediaRejected(f"the file is {len(data):,} bytes, over the {self.max_bytes:,}-"
                                "byte limit")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data), formats=self._formats) as img:
                    fmt, (width, height) = img.format or "", img.size
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise MediaRejected("a possible decompression bomb (too many pixels)") from None
        except UnidentifiedImageError:
            raise MediaRejected("the file is not a picture (its first bytes are not JPEG, PNG, "
                                "GIF, WebP, BMP or TIFF)") from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise MediaRejected(f"the picture is damaged ({type(exc).__name__})") from None
        if width * height > self.max_pixels:
            raise MediaRejected(f"{width}x{height} pixels, over the {self.max_pixels:,}-pixel "
                                "limit")
        return FORMATS[fmt], width, height

    def put(self, data: bytes) -> StoredMedia:
        """Keep ``data`` (a picture) under its SHA-256; a picture already stored is not written
        again."""
        mime, width, height = self.sniff(data)
        sha = hashlib.sha256(data).hexdigest()
        path = self.path_for(sha)
        if not path.is_file():
            _private_dir(path.parent)
            _write_private(path, crypto.encrypt_bytes(data) if self.encrypted else data)
        return StoredMedia(sha, path, mime, len(data), width, height)

    # --- reading ----------------------------------------------------------------------------
    def read(self, sha256: str) -> bytes:
        """The picture's bytes (decrypted). FileNotFoundError if it is not stored."""
        return crypto.decrypt_bytes(self.path_for(sha256).read_bytes())

    def readable(self, sha256: str, data: bytes | None = None) -> tuple[Path, bool]:
        """A path the detectors can open, and whether it is a working copy to :meth:`release`
        after the item is checked. Plain files are read where they are stored."""
        path = self.path_for(sha256)
        if not self.encrypted:
            return path, False
        plain = data if data is not None else self.read(sha256)
        _private_dir(self._work)
        copy = self._work / f"{sha256}-{uuid.uuid4().hex[:8]}"
        _write_private(copy, plain)
        return copy, True

    def release(self, paths: Iterable[Path]) -> None:
        """Remove working copies (never a stored file)."""
        for path in paths:
            if path.parent == self._work:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    # --- removing and re-keying -------------------------------------------------------------
    def remove(self, sha256: str) -> bool:
        """Delete one stored picture; whether it was there."""
        try:
            self.path_for(sha256).unlink()
        except (FileNotFoundError, ValueError):
            return False
        return True

    def rotate(self) -> int:
        """Re-encrypt every file with the first key (plain ones are encrypted). Returns how many
        files were written."""
        if not self.encrypted:
            raise RuntimeError("no encryption keys configured")
        count = 0
        for sha in list(self.shas()):
            path = self.path_for(sha)
            _write_private(path, crypto.rotate_bytes(path.read_bytes()))
            count += 1
        return count

    def close(self) -> None:
        """Remove this process's working copies."""
        shutil.rmtree(self._work, ignore_errors=True)

    def _clear_stale_work(self) -> None:
        """Working copies of processes that are gone (a crash): removed, so no plain copy of an
        encrypted picture outlives its check."""
        if not self._work_root.is_dir():
            return
        host = socket.gethostname()
        now = time.time()
        for entry in self._work_root.iterdir():
            name, _, pid = entry.name.rpartition("-")
            gone = False
            if name == host and pid.isdigit():
                try:
                    os.kill(int(pid), 0)
                except ProcessLookupError:
                    gone = True
                except PermissionError:
                    gone = False
            with contextlib.suppress(OSError):
                stale = gone or now - entry.stat().st_mtime > STALE_WORK_SECONDS
                if stale and entry != self._work:
                    shutil.rmtree(entry, ignore_errors=True)
