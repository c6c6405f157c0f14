"""Every rule pack is read into one typed model: defaults written once, unknown keys refused.

A DSL edits packs by hand; a misspelt key ("visibilty") must be an error naming the file and the
key, never a setting silently ignored (docs/rule-packs.md, "Typed packs").
"""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import pytest

from rules.engine import DETECTORS, build_detector
from rules.packs import (
    ACCOUNTABILITY_DUTY,
    CONVERSATION_DRIFT_DUTY,
    OUT_OF_HOURS_DUTY,
    TONE_DUTY,
    AccountabilityPack,
    ConversationDriftPack,
    ImagesPack,
    LearnerPiiPack,
    OutOfHoursPack,
    PackError,
    PersonalAccountContactPack,
    RootPackModel,
    SafeguardingPack,
    TonePack,
    VideoSessionPack,
    load_pack,
    pack_names,
)
from tests.helpers import config_with

MODELS: dict[str, type[RootPackModel]] = {
    "accountability": AccountabilityPack,
    "conversation_drift": ConversationDriftPack,
    "images": ImagesPack,
    "learner_pii": LearnerPiiPack,
    "out_of_hours": OutOfHoursPack,
    "personal_account_contact": PersonalAccountContactPack,
    "safeguarding": SafeguardingPack,
    "tone": TonePack,
    "video_session": VideoSessionPack,
}
# a key that is surely no pack's, in a section each pack has
MISSPELT: dict[str, tuple[str, str]] = {
    "accountability": ("threads", "unknown_participant_is_cc"),
    "conversation_drift": ("threads", "turn"),
    "images": ("explicit", "treshold"),
    "learner_pii": ("scope", "visibilty"),
    "out_of_hours": ("messages", "author_role"),
    "personal_account_contact": ("messages", "kind"),
    "safeguarding": ("settings", "semantik"),
    "tone": ("kisses", "emojis"),
    "video_session": ("sessions", "minimum_staff"),
}


def test_every_shipped_pack_has_a_typed_model() -> None:
    # toxicity's model lives with its backends (rules/toxicity.py: ToxicityPack)
    assert set(pack_names()) - {"toxicity"} == set(MODELS)


@pytest.mark.parametrize("rule_id", sorted(MODELS))
def test_every_shipped_pack_reads_into_its_model(rule_id: str) -> None:
    model = MODELS[rule_id].load(load_pack(rule_id))
    assert model.path.endswith(f"{rule_id}.toml")


@pytest.mark.parametrize("rule_id", sorted(MISSPELT))
def test_a_misspelt_key_is_refused_naming_the_file_and_the_key(rule_id: str) -> None:
    section, key = MISSPELT[rule_id]
    pack: dict[str, Any] = copy.deepcopy(load_pack(rule_id))
    pack.setdefault(section, {})[key] = 1
    with pytest.raises(PackError) as caught:
        MODELS[rule_id].load(pack)
    message = str(caught.value)
    assert pack["_path"] in message
    assert f"{section}.{key}: not a known key (misspelt?)" in message


# (safeguarding: built with its embedding model, checked in tests/test_safeguarding.py)
@pytest.mark.parametrize("rule_id", sorted(set(MISSPELT) - {"safeguarding"}))
def test_the_rule_refuses_a_misspelt_key_when_it_is_built(rule_id: str, tmp_path: Any) -> None:
    """The rule is built from the same model: the engine reports the bad pack, it does not run
    with the setting ignored."""
    section, key = MISSPELT[rule_id]
    text = Path(load_pack(rule_id)["_path"]).read_text(encoding="utf-8")
    header = f"[{section}]\n"
    assert header in text
    (tmp_path / f"{rule_id}.toml").write_text(text.replace(header, f"{header}{key} = 1\n", 1),
                                              encoding="utf-8")
    with pytest.raises(PackError, match=rf"{rule_id}\.toml: .*{section}\.{key}"):
        build_detector(rule_id, config_with({"detection": {"packs_dir": str(tmp_path)}}))


@pytest.mark.parametrize(("rule_id", "change", "message"), [
    ("tone", {"lexicon": [{"kind": "slang", "terms": ["rizz"], "position": "middle"}]},
     "lexicon.0.position"),
    ("tone", {"lexicon": [{"kind": "slang", "terms": []}]}, "lexicon.0.terms"),
    ("tone", {"kisses": {"score": 2}}, "kisses.score"),
    ("out_of_hours", {"messages": {"author_roles": ["teacher"]}}, "messages.author_roles.0"),
    ("out_of_hours", {"severity": {"repeated": 9}}, "severity.repeated"),
    ("conversation_drift", {"threads": {"turns": "six"}}, "threads.turns: expected a number"),
    ("conversation_drift", {"topics": [{"id": "broken", "patterns": ["(unclosed"]}]},
     "topic 'broken' has a bad pattern"),
    ("conversation_drift", {"topics": [{"label": "no id", "patterns": ["x"]}]},
     "topics.0.id: missing"),
    ("accountability", {"threads": {"kinds": ["letter"]}}, "threads.kinds.0"),
    ("images", {"faces": {"detector": "cnn"}}, "faces.detector"),
    ("images", {"limits": {"max_pixels": "lots"}}, "limits.max_pixels: expected a number"),
    ("images", {"image_text": {"enabled": "sometimes"}}, "image_text.enabled: expected true or"),
])
def test_a_wrong_value_is_one_error_naming_the_key(rule_id: str, change: dict[str, Any],
                                                   message: str) -> None:
    pack = {**load_pack(rule_id), **change}
    with pytest.raises(PackError) as caught:
        MODELS[rule_id].load(pack)
    assert message in str(caught.value)


@pytest.mark.parametrize(("rule_id", "duty"), [
    ("tone", TONE_DUTY), ("out_of_hours", OUT_OF_HOURS_DUTY),
    ("conversation_drift", CONVERSATION_DRIFT_DUTY), ("accountability", ACCOUNTABILITY_DUTY),
])
def test_a_pack_without_its_rule_section_quotes_the_rules_own_duty(rule_id: str,
                                                                  duty: str) -> None:
    pack = {k: v for k, v in load_pack(rule_id).items() if k != "rule"}
    model = MODELS[rule_id].load(pack)
    assert model.rule.id == rule_id and model.rule.duty == duty  # type: ignore[attr-defined]
    module, _, attr = DETECTORS[rule_id].partition(":")
    detector = getattr(importlib.import_module(module), attr).from_pack(pack, config_with())
    assert detector.duty == duty


def test_the_shipped_duties_are_the_defaults() -> None:
    """The defaults in rules/packs.py say what the shipped packs say: a pack that leaves its
    [rule] section out behaves as shipped."""
    for rule_id, duty in (("tone", TONE_DUTY), ("out_of_hours", OUT_OF_HOURS_DUTY),
                          ("conversation_drift", CONVERSATION_DRIFT_DUTY),
                          ("accountability", ACCOUNTABILITY_DUTY)):
        assert load_pack(rule_id)["rule"]["duty"] == duty, rule_id
