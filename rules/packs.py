"""Rule packs: TOML data a DSL can read and tune (``rules/packs/*.toml``).

A pack holds a rule's lexicons, thresholds and defaults, plus examples it must catch and must not
catch (checked by tests/test_rule_pack_examples.py). ``[detection] packs_dir`` in the config
points at a folder whose packs replace the shipped ones of the same name.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

__all__ = ["SHIPPED", "load_pack", "pack_names"]

SHIPPED = Path(__file__).resolve().parent / "packs"


def pack_names(extra_dir: Path | None = None) -> list[str]:
    names = {p.stem for p in SHIPPED.glob("*.toml")}
    if extra_dir and extra_dir.is_dir():
        names |= {p.stem for p in extra_dir.glob("*.toml")}
    return sorted(names)


def load_pack(name: str, extra_dir: Path | None = None) -> dict[str, Any]:
    """The pack called ``name``: from ``extra_dir`` if it has one, else the shipped one."""
    for folder in filter(None, [extra_dir, SHIPPED]):
        path = folder / f"{name}.toml"
        if path.is_file():
            with path.open("rb") as fh:
                try:
                    pack = tomllib.load(fh)
                except tomllib.TOMLDecodeError as exc:
                    raise ValueError(f"{path}: not valid TOML: {exc}") from None
            pack.setdefault("_path", str(path))
            return pack
    raise FileNotFoundError(f"no rule pack named {name!r} in {extra_dir or ''} {SHIPPED}")
