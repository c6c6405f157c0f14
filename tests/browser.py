"""The one place tests get a real browser: Debian's Chromium driven by Playwright for Python
(the Playwright browser download is not available here, so ``executable_path`` points at the
system Chromium), and axe-core, from the npm registry, run inside it.

Where Chromium or axe-core is absent the tests that need them are skipped with the reason; in CI
(CI=true), where .ci/run installs both, their absence is an error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
AXE_JS = REPO / ".npm-tools" / "node_modules" / "axe-core" / "axe.min.js"

__all__ = ["axe_violations", "browser_page", "chromium_path", "launch"]


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def chromium_path() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).is_file():
            return candidate
    _missing("Chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    raise AssertionError("unreachable")


@contextmanager
def launch() -> Iterator[Any]:
    """One headless Chromium (share it per test module: starting one takes a second or two)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed (the `test` extra installs it)")
        raise
    path = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browser_page(width: int = 1280, height: int = 900) -> Iterator[Any]:
    with launch() as browser:
        context = browser.new_context(viewport={"width": width, "height": height})
        try:
            yield context.new_page()
        finally:
            context.close()


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")
                   ) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.x A/AA (and 2.2) violations on the page, of the given impacts."""
    if not AXE_JS.is_file():
        _missing(f"axe-core is not installed: run `npm install --prefix .npm-tools axe-core@4.11`"
                 f" ({AXE_JS} is missing; .ci/run installs it)")
    page.add_script_tag(content=AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]
