"""Screenshots of the case console at desktop and phone widths, for the README.

    .venv/bin/python docs/make_screenshots.py [OUT_DIR]     # default: docs/screenshots

Everything is real and local: the example organisation (``examples/config.toml``) is scanned
into a throwaway database, ``governance-bot run``'s HTTP application (with the console) serves it
on a loopback port, and Debian's Chromium, driven by Playwright, signs in through the
development sign-in the example enables (``[console] dev_login = true``) as the DSL and as an
account manager, and photographs the queue, a case, search and the governors' report.
Needs the `test` extra (Playwright) and the `chromium` Debian package. Every person and message
is invented.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = HERE / "screenshots"
DSL = "h.okafor@brookfield.example.org"
MANAGER = "t.ashworth@brookfield.example.org"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_screenshots(out: Path = DEFAULT_OUT) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    import uvicorn
    from playwright.sync_api import sync_playwright
    from sqlalchemy import select

    from governance_bot.config import load_config
    from governance_bot.runtime import Runtime
    from governance_bot.service import Service
    from governance_bot.storage import crypto
    from governance_bot.storage import models as m

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="gb-screens-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVERNANCE_BOT_")}
    env.update({"GOVERNANCE_BOT_DATABASE__URL": f"sqlite:///{tmp / 'screens.db'}",
                "GOVERNANCE_BOT_SERVICE__PORT": str(port),
                "GOVERNANCE_BOT_LOGGING__LEVEL": "WARNING",
                # flags into a file, not printed (the console is what is being photographed)
                "GOVERNANCE_BOT_DELIVERY__SINK": "json",
                "GOVERNANCE_BOT_DELIVERY__JSON_PATH": str(tmp / "flags.jsonl"),
                "GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS": crypto.generate_key()})
    config = load_config(ROOT / "examples" / "config.toml", env=env)
    rt = Runtime.from_config(config)
    for connector in rt.connectors:
        rt.pipeline.scan(connector)
    rt.sender().drain()
    with rt.db.session() as s:
        case = s.execute(select(m.Flag.id).where(m.Flag.route == "dsl", m.Flag.category ==
                                                 "safeguarding").order_by(
            m.Flag.severity.desc(), m.Flag.id)).scalars().first()
        masked = s.execute(select(m.Flag.id).where(
            m.Flag.route == "account_managers",
            m.Flag.account == "brookfield-facebook").order_by(m.Flag.id)).scalars().first()
    server = uvicorn.Server(uvicorn.Config(Service(rt).http_app(), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    shots: list[Path] = []
    pages = {DSL: [("queue", "/"), ("case", f"/flags/{case}"), ("search", "/search?q=home"),
                   ("report", "/reports/governors?from=2026-01-01&to=2026-12-31")],
             MANAGER: [("manager-case", f"/flags/{masked}")]}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=CHROMIUM_ARGS)
            for size, (width, height) in SIZES.items():
                for email, views in pages.items():
                    context = browser.new_context(viewport={"width": width, "height": height},
                                                  locale="en-GB")
                    page = context.new_page()
                    page.goto(f"{base}/signin")
                    page.get_by_label("Staff email").fill(email)
                    page.get_by_role("button", name="Sign in").click()
                    page.wait_for_load_state()
                    for name, path in views:
                        page.goto(base + path)
                        target = out / f"{name}-{size}.png"
                        page.screenshot(path=str(target))
                        shots.append(target)
                    context.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        rt.close()
    return shots


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    for path in make_screenshots(target):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
