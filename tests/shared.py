"""The one place tests find ``../shared`` (recorded platform responses, datasets).

Set GOVERNANCE_BOT_SHARED to point elsewhere. Where it is absent (a user's clone) the tests that
need it are skipped with a reason; in CI (CI=true) its absence is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    env = os.environ.get("GOVERNANCE_BOT_SHARED")
    candidates = [Path(env)] if env else [REPO.parent / "shared"]
    for path in candidates:
        if (path / "fixtures").is_dir():
            return path
    return None


def require_shared(*parts: str) -> Path:
    """The path under ../shared, or skip (fail in CI) if it is not there."""
    base = shared_dir()
    if base is None:
        message = ("../shared (recorded platform responses and datasets) is not beside this "
                   "clone; set GOVERNANCE_BOT_SHARED to its path")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing from ../shared")
    return path
