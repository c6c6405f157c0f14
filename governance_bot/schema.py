"""The JSON Schema of the normalised item (docs/item.schema.json), generated from the model."""

from __future__ import annotations

import json
from typing import Any

from governance_bot.items import Item

__all__ = ["item_schema", "item_schema_text"]


def item_schema() -> dict[str, Any]:
    schema = Item.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "governance-bot normalised item"
    return schema


def item_schema_text() -> str:
    return json.dumps(item_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(item_schema_text(), end="")
