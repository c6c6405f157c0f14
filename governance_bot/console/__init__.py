"""The case console: a server-rendered web application where the DSL and the account managers
see, act on and record every flag (served by ``governance-bot run``; docs/console.md)."""

from __future__ import annotations

from governance_bot.console.app import ConsoleApp, build_console

__all__ = ["ConsoleApp", "build_console"]
