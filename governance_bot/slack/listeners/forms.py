"""Modal forms (Block Kit, built with ``slack_sdk.models``) and reading their answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View

__all__ = ["checkboxes", "modal", "note", "option", "select", "selected", "selected_all",
           "text_input", "typed"]


def modal(callback_id: str, title: str, flag_id: int, version: int, blocks: Sequence[Block],
          submit: str) -> dict[str, Any]:
    """A form about a flag; it remembers the flag's version it was opened at (a repeated
    submission then finds the flag changed and is answered "already recorded")."""
    view = View(type="modal", callback_id=callback_id,
                private_metadata=json.dumps({"flag_id": flag_id, "version": version}),
                title=PlainTextObject(text=title[:24]), submit=PlainTextObject(text=submit),
                close=PlainTextObject(text="Cancel"), blocks=list(blocks))
    return view.to_dict()


def option(value: str, text: str, description: str | None = None) -> Option:
    return Option(value=value, text=PlainTextObject(text=text[:75]),
                  description=PlainTextObject(text=description[:75]) if description else None)


def text_input(block_id: str, label: str, optional: bool = False, multiline: bool = True
               ) -> InputBlock:
    return InputBlock(block_id=block_id, optional=optional, label=label,
                      element=PlainTextInputElement(action_id="value", multiline=multiline))


def select(block_id: str, label: str, options: Sequence[Option], initial: int | None = None,
           optional: bool = False) -> InputBlock:
    element = StaticSelectElement(action_id="value", options=list(options),
                                  initial_option=options[initial] if initial is not None
                                  else None)
    return InputBlock(block_id=block_id, label=label, element=element, optional=optional)


def checkboxes(block_id: str, label: str, options: Sequence[Option], optional: bool = True
               ) -> InputBlock:
    return InputBlock(block_id=block_id, label=label, optional=optional,
                      element=CheckboxesElement(action_id="value", options=list(options)))


def note(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def _state(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    value = values.get("value") if isinstance(values, dict) else None
    return value if isinstance(value, dict) else {}


def typed(view: dict[str, Any], block_id: str) -> str:
    """What was typed into a text input ("" if nothing)."""
    return str(_state(view, block_id).get("value") or "")


def selected(view: dict[str, Any], block_id: str, default: str = "") -> str:
    """The value of the option chosen in a select ("" / ``default`` if none)."""
    chosen = _state(view, block_id).get("selected_option") or {}
    return str(chosen.get("value", default)) if isinstance(chosen, dict) else default


def selected_all(view: dict[str, Any], block_id: str) -> list[str]:
    """The values of the options ticked in a checkbox group."""
    chosen = _state(view, block_id).get("selected_options") or []
    return [str(o.get("value")) for o in chosen if isinstance(o, dict) and o.get("value")]
