"""The local model store: where prepared model files live, and the records that vouch for them.

Nothing here downloads, and nothing here imports a model library. Weights and their ONNX exports
are put into the store by one explicit step, ``governance-bot models fetch`` (run where there is
internet, or pointed at a folder prepared elsewhere: ``--from DIR``); at run time the loaders read
only the store, and a missing model is reported with that step as the fix (docs/models.md).

An ONNX export is checked against the reference model once, when it is made: the largest
difference on a fixed check set is recorded in a JSON file beside it, keyed by what it was made
from (the weights' SHA-256) and the ONNX Runtime version it was checked with. At start-up the
loaders compare the record with the files and the installed runtime, which costs a ``stat`` and
a small JSON read: the reference model is never built at run time. A new ONNX Runtime version
needs ``models fetch`` again (the record has no entry for it yet).

Layout (``GOVERNANCE_BOT_MODEL_CACHE``, else ``~/.cache/governance-bot``)::

    embeddings/all-minilm-l6-v2/model.onnx        the sentence-embedding model, exported
    embeddings/all-minilm-l6-v2/model.onnx.json   its record
    embeddings/all-minilm-l6-v2/vectors/*.npy     embeddings of rule-pack exemplars, by content
    detoxify/<model>/detoxify-<model>.ckpt        Detoxify's weights (tensors and config only)
    detoxify/<model>/detoxify-<model>-hf/         its transformer config and tokenizer files
    detoxify/<model>/detoxify-<model>.onnx(.json) exports (first-token, int8, plain) + records
    profanity/alt-profanity-check-<version>.npz(.json)  the profanity fallback's arrays + record
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "FETCH_STEP",
    "ExportRecord",
    "FileIdentity",
    "file_identity",
    "package_version",
    "runtime_version",
    "store_dir",
]

FETCH_STEP = "governance-bot models fetch"


def store_dir() -> Path:
    """The model store: ``GOVERNANCE_BOT_MODEL_CACHE``, else the user's cache folder, else (a
    read-only home, as under some service managers) the temporary folder."""
    configured = os.environ.get("GOVERNANCE_BOT_MODEL_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "governance-bot"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / f"governance-bot-{os.getuid()}"


def package_version(name: str) -> str | None:
    """An installed distribution's version, read from its metadata (nothing imported)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def runtime_version() -> str | None:
    """The installed ONNX Runtime's version (the key of a parity entry), or None."""
    return package_version("onnxruntime")


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A weights file by content. The SHA-256 is what records are keyed by; size and mtime let
    a later start trust a recorded hash without reading hundreds of megabytes again."""

    size: int
    mtime_ns: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "sha256": self.sha256}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_identity(path: Path, known: dict[str, Any] | None = None) -> FileIdentity:
    """``path``'s identity; ``known`` (a recorded identity of the same path) is trusted when its
    size and mtime still match, so the file is hashed only when it changed."""
    st = path.stat()
    if known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns \
            and known.get("sha256"):
        return FileIdentity(st.st_size, st.st_mtime_ns, str(known["sha256"]))
    return FileIdentity(st.st_size, st.st_mtime_ns, _sha256(path))


@dataclass
class ExportRecord:
    """The JSON record beside an ONNX export (``<export>.json``)."""

    path: Path
    data: dict[str, Any]

    @staticmethod
    def sidecar(export: Path) -> Path:
        return export.with_name(export.name + ".json")

    @classmethod
    def read(cls, export: Path) -> ExportRecord | None:
        side = cls.sidecar(export)
        if not export.is_file() or not side.is_file():
            return None
        try:
            data = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(export, data) if isinstance(data, dict) else None

    @classmethod
    def new(cls, path: Path, source: FileIdentity, **details: Any) -> ExportRecord:
        return cls(path, {"source": source.as_dict(), **details, "parity": {}})

    def write(self) -> None:
        """Written beside the export, then renamed: a process starting at the same time never
        reads half a record."""
        side = self.sidecar(self.path)
        partial = side.with_name(f".{side.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(self.data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(partial, side)

    def made_from(self, source: FileIdentity) -> bool:
        return (self.data.get("source") or {}).get("sha256") == source.sha256

    def _file_stat(self) -> dict[str, int]:
        st = self.path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def unchanged(self) -> bool:
        """The export is the file that was checked (same size and modification time)."""
        try:
            return self.data.get("file") == self._file_stat()
        except OSError:
            return False

    def add_parity(self, runtime: str, max_abs_diff: float, tolerance: float, texts: int,
                   reference: str) -> None:
        """Record a parity check of the export as it is now (a changed export forgets the
        checks of its earlier self)."""
        stat = self._file_stat()
        if self.data.get("file") != stat:
            self.data["parity"] = {}
            self.data["file"] = stat
        self.data.setdefault("parity", {})[runtime] = {
            "max_abs_diff": max_abs_diff, "tolerance": tolerance,
            "ok": bool(max_abs_diff <= tolerance), "texts": texts, "reference": reference,
            "checked": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def parity(self, runtime: str | None) -> dict[str, Any] | None:
        """The parity check recorded for ``runtime`` on the export as it is, if any."""
        if runtime is None or not self.unchanged():
            return None
        entry = (self.data.get("parity") or {}).get(runtime)
        return entry if isinstance(entry, dict) else None

    def verified(self, source: FileIdentity, runtime: str | None) -> bool:
        """Made from ``source`` and checked within its tolerance on ``runtime``."""
        entry = self.parity(runtime)
        return self.made_from(source) and entry is not None and bool(entry.get("ok"))

    def describe(self, runtime: str | None) -> str:
        entry = self.parity(runtime)
        if entry is None:
            if not self.unchanged():
                return f"{self.path} has changed since it was checked"
            return f"not checked with onnxruntime {runtime}"
        verdict = "within" if entry.get("ok") else "OUTSIDE"
        return (f"parity with {entry.get('reference', 'the reference')} "
                f"{float(entry['max_abs_diff']):.1e} on {entry.get('texts')} check texts, "
                f"{verdict} {float(entry['tolerance']):.0e} (onnxruntime {runtime}, checked "
                f"{entry.get('checked', '?')})")
