"""The normalised item: its documented schema matches the code, and times are UTC."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from governance_bot.items import Item
from governance_bot.schema import item_schema, item_schema_text

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLE = {
    "id": "1", "platform": "x", "account": "acc", "kind": "reply",
    "author": {"id": "9", "handle": "@a", "name": "A"}, "recipients": [{"handle": "@b"}],
    "created_at": "2026-06-01T09:30:00+01:00", "visibility": "public", "text": "hi",
    "media": [{"url": "https://example.org/a.jpg", "mime_type": "image/jpeg"}],
    "parent_id": "0", "thread_id": "0", "url": "https://example.org/1",
}


def test_the_documented_schema_is_the_one_the_code_uses():
    assert (DOCS / "item.schema.json").read_text() == item_schema_text(), (
        "regenerate with: python -m governance_bot.schema > docs/item.schema.json")


def test_the_contract_fields_are_present_and_not_renamed():
    props = item_schema()["properties"]
    for name in ("id", "platform", "account", "kind", "author", "recipients", "created_at",
                 "visibility", "text", "media", "parent_id", "thread_id", "url"):
        assert name in props


def test_a_documented_example_validates_and_its_time_becomes_utc():
    jsonschema.validate(EXAMPLE, item_schema())
    item = Item.model_validate(EXAMPLE)
    assert item.created_at.isoformat() == "2026-06-01T08:30:00+00:00"


@pytest.mark.parametrize("field, value", [
    ("created_at", "2026-06-01T09:30:00"),  # no offset
    ("kind", "story"),
    ("visibility", "secret"),
    ("id", ""),
])
def test_invalid_items_are_refused_naming_the_field(field: str, value: str):
    with pytest.raises(ValidationError) as info:
        Item.model_validate({**EXAMPLE, field: value})
    assert field in json.dumps(info.value.errors(include_url=False), default=str)
