"""Every rule pack's own examples: what it must catch fires, what it must not catch does not.

Generic over ``rules/packs/*.toml``: any pack whose rule id (the file name) is a registered
detector and that has ``[[must_catch]]`` or ``[[must_not_catch]]`` examples is checked here, with
the default configuration (plus an example's ``config`` overrides), the example organisation's
registers and an in-memory history. The example schema is documented in docs/rule-packs.md.
"""

from __future__ import annotations

import importlib
import tomllib
from typing import Any

import pytest

from governance_bot.findings import Route, Severity
from rules.engine import DETECTORS
from rules.packs import SHIPPED
from tests.helpers import config_with, example_index, run_example


def _examples() -> list[Any]:
    params = []
    for path in sorted(SHIPPED.glob("*.toml")):
        rule_id = path.stem
        if rule_id not in DETECTORS:
            continue
        with path.open("rb") as fh:
            pack = tomllib.load(fh)
        for expect in ("must_catch", "must_not_catch"):
            for n, spec in enumerate(pack.get(expect, [])):
                if isinstance(spec, str):  # the shorthand: just the text
                    spec = {"text": spec}
                label = spec.get("name") or spec.get("why") or spec.get("text", "")[:40]
                params.append(pytest.param(
                    rule_id, pack, expect, spec, f"{rule_id}-{expect}-{n}",
                    id=f"{rule_id}:{expect}:{n}:{label}",
                ))
    return params


EXAMPLES = _examples()


def _detector(rule_id: str, pack: dict[str, Any], spec: dict[str, Any]) -> Any:
    module, _, attr = DETECTORS[rule_id].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls.from_pack(pack, config_with(spec.get("config")))


def test_the_conduct_packs_ship_examples_of_both_kinds() -> None:
    for rule_id in ("out_of_hours", "tone"):
        kinds = {e.values[2] for e in EXAMPLES if e.values[0] == rule_id}
        assert kinds == {"must_catch", "must_not_catch"}, rule_id


@pytest.mark.parametrize(("rule_id", "pack", "expect", "spec", "item_id"), EXAMPLES)
def test_rule_pack_example(
    rule_id: str, pack: dict[str, Any], expect: str, spec: dict[str, Any], item_id: str
) -> None:
    detector = _detector(rule_id, pack, spec)
    findings = run_example(detector, spec, example_index(), item_id)
    mine = [f for f in findings if f.rule_id == rule_id]
    if expect == "must_not_catch":
        assert not mine, [f.explanation for f in mine]
        return
    assert mine, f"{spec.get('name')!r} was not caught"
    if "expect_severity" in spec:
        assert max(f.severity for f in mine) == Severity(spec["expect_severity"])
    if "expect_route" in spec:
        assert Route(spec["expect_route"]) in {f.route for f in mine}
    if "learner" in spec:  # the learner the finding must name
        assert f"learner:{spec['learner']}" in {f.evidence.register_entry for f in mine}
    for f in mine:
        assert f.explanation
        assert f.category.value == pack.get("rule", {}).get("category", f.category.value)


def test_an_example_written_as_just_its_text_is_the_accounts_own_post_on_a_term_day() -> None:
    from governance_bot.items import ItemKind, Role, Visibility
    from tests.helpers import example_item

    item = example_item({"text": "Well done to the netball team"}, example_index(), "ex-1")
    assert item.kind == ItemKind.post
    assert item.visibility == Visibility.public
    assert item.author.role == Role.organisation
    assert item.account == "brookfield-facebook" and item.platform == "facebook"
    assert item.created_at.isoformat() == "2026-11-18T12:00:00+00:00"


def test_example_shorthands_for_authors_and_recipients() -> None:
    from governance_bot.items import Role
    from tests.helpers import example_item

    item = example_item({"text": "hi", "kind": "direct_message",
                         "author_handle": "@dan_mensah_88", "recipients": ["@maisie.fb"]},
                        example_index(), "ex-3")
    assert (item.author.role, item.author.register_id) == (Role.staff, "S006")
    assert [(p.role, p.register_id) for p in item.recipients] == [(Role.learner, "L002")]


def test_an_example_on_an_account_not_in_the_registers_is_refused() -> None:
    from tests.helpers import example_item

    with pytest.raises(ValueError, match="not in the registers"):
        example_item({"text": "hi", "account": "nowhere"}, example_index(), "ex-2")
