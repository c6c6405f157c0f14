"""The thread rules, as the policy states them (the packs' own examples run in
tests/test_rule_pack_examples.py; these follow real mail through the IMAP parser and the engine).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.imap import parse_message
from governance_bot.findings import Category, Route, Severity
from governance_bot.items import Item
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.conversation_drift import ConversationDriftDetector
from rules.engine import DetectionEngine, build_detector
from rules.packs import load_pack
from tests.helpers import MemoryHistory, config_with, example_index
from tests.test_imap import LEARNER, SECOND_STAFF, TUTOR, TUTOR_PERSONAL, make_mail

THREAD_RULES = ["personal_account_contact", "accountability", "conversation_drift"]


@pytest.fixture
def engine() -> DetectionEngine:
    config = config_with()
    return DetectionEngine([build_detector(r, config) for r in THREAD_RULES])


def run(engine: DetectionEngine, history: MemoryHistory, raw: bytes) -> tuple[Item, list]:
    registers = example_index()
    item = registers.resolve(parse_message(raw, platform="email", account="brookfield-email"))
    findings = engine.detect(item, DetectionContext(registers=registers, history=history))
    history.record(item, findings)
    return item, Router().apply(findings, item)  # routed as the pipeline routes them


def test_an_email_from_a_staff_members_personal_address_to_a_learner_goes_to_the_case_manager(
    engine: DetectionEngine,
) -> None:
    _, findings = run(engine, MemoryHistory(), make_mail(1, sender=TUTOR_PERSONAL))
    (contact,) = [f for f in findings if f.category == Category.personal_account_contact]
    assert contact.severity == Severity.medium
    assert contact.route == Route.case_manager  # a concern about staff (docs/routing.md)
    assert contact.subject == "staff:S006>learner:L001"
    # the personal address is evidence (encrypted at rest), not part of the printed explanation
    assert TUTOR_PERSONAL not in contact.explanation
    assert contact.evidence.detail["personal_account"] == TUTOR_PERSONAL
    assert "Session reminder" not in contact.explanation  # never the message text


def test_a_one_to_one_email_thread_is_reported_once_that_week_and_later_messages_add_nothing(
    engine: DetectionEngine,
) -> None:
    history = MemoryHistory()
    first = make_mail(1, message_id="<t1@brookfield.example.org>")
    reply = make_mail(2, sender=LEARNER, to=TUTOR, references=["t1@brookfield.example.org"],
                      message_id="<t2@brookfield.example.org>")
    again = make_mail(3, references=["t1@brookfield.example.org", "t2@brookfield.example.org"])
    flagged = [
        [f for f in run(engine, history, raw)[1] if f.category == Category.accountability]
        for raw in (first, reply, again)
    ]
    assert [len(f) for f in flagged] == [1, 0, 0]
    # a concern about staff, low severity: the case manager's summary, never the digest
    assert flagged[0][0].route == Route.case_digest
    assert "S006" in flagged[0][0].explanation and "L001" in flagged[0][0].explanation


def test_a_personal_account_message_is_one_personal_account_flag_not_two(
    engine: DetectionEngine,
) -> None:
    _, findings = run(engine, MemoryHistory(), make_mail(1, sender=TUTOR_PERSONAL))
    assert sorted(f.category for f in findings) == [Category.personal_account_contact]


def test_copying_a_second_member_of_staff_meets_the_accountability_duty(
    engine: DetectionEngine,
) -> None:
    _, findings = run(engine, MemoryHistory(), make_mail(1, cc=SECOND_STAFF))
    assert not [f for f in findings if f.category == Category.accountability]


def test_a_learner_trying_to_engage_over_a_long_chat_reaches_the_digest_once() -> None:
    detector = ConversationDriftDetector.from_pack(load_pack("conversation_drift"))
    registers = example_index()
    history = MemoryHistory()
    turns_flagged = []
    for n in range(10):
        from_staff = n % 2 == 0
        item = registers.resolve(Item.model_validate({
            "id": f"m{n}", "platform": "teams", "account": "brookfield-teams",
            "kind": "chat_message", "thread_id": "chat-1",
            "created_at": datetime(2026, 3, 10, 12, n, tzinfo=UTC),
            "text": "ok" if not from_staff else "noted",
            "author": {"id": "teams:aad-0006"} if from_staff else {"email": LEARNER},
            "recipients": [{"email": LEARNER}] if from_staff else [{"id": "teams:aad-0006"}],
        }))
        findings = list(detector.detect(item, DetectionContext(registers, history)))
        history.record(item, findings)
        turns_flagged += [f.evidence.detail["turns"] for f in findings]
    assert turns_flagged == [6]


def test_a_bad_topic_pattern_in_a_pack_is_a_clear_error() -> None:
    pack = {"topics": [{"id": "broken", "patterns": ["(unclosed"]}]}
    with pytest.raises(ValueError, match="topic 'broken' has a bad pattern"):
        ConversationDriftDetector.from_pack(pack)


def test_the_thread_rules_are_registered_and_build_from_their_shipped_packs() -> None:
    config = config_with()
    for rule_id in THREAD_RULES:
        assert build_detector(rule_id, config).rule_id == rule_id


# -- the example organisation (examples/): every item's expectation, for these rules ----------

# The first message of the drifting one-to-one thread ("your unit 3 draft is marked") is labelled
# with the whole scenario's drift; on its own it is an ordinary work message, so no rule that
# reads only the thread so far can flag it.
_NOT_KNOWABLE_YET = {("conversation_drift", "teams:brookfield-teams:msg-1391")}
_MY_RULES = [*THREAD_RULES, "video_session"]


def test_the_thread_rules_find_exactly_what_the_example_organisation_was_written_to_show(
) -> None:
    import json
    from pathlib import Path

    from connectors.jsonl import LineProblem, read_items
    from governance_bot.config import load_config
    from governance_bot.registers import RegisterIndex, read_toml

    examples = Path(__file__).resolve().parent.parent / "examples"
    expected = json.loads((examples / "expected-findings.json").read_text(encoding="utf-8"))
    config = load_config(examples / "config.toml", env={})
    index = RegisterIndex(read_toml(examples / "registers.toml"))
    detectors = [build_detector(rule, config) for rule in _MY_RULES]
    items = [parsed for path in sorted((examples / "items").glob("brookfield-*.jsonl"))
             for _f, _l, parsed in read_items(path) if not isinstance(parsed, LineProblem)]
    history = MemoryHistory()
    found: dict[str, set[str]] = {}
    for raw in sorted(items, key=lambda i: (i.created_at, i.edited_at or i.created_at)):
        item = index.resolve(raw)
        findings = [f for d in detectors
                    for f in d.detect(item, DetectionContext(registers=index, history=history))]
        history.record(item, findings)
        found[item.key] = {f.category.value for f in findings}
    wrong = []
    for key, entry in expected.items():
        for rule in _MY_RULES:
            want, got = rule in entry["expect"], rule in found.get(key, set())
            if want != got and (rule, key) not in _NOT_KNOWABLE_YET:
                wrong.append(f"{rule} {'missed' if want else 'wrongly flagged'} {key} "
                             f"({entry['scenario']})")
    assert wrong == []
    # (accountability reports a conversation once a week, not each message)
    assert sum(rule in f for f in found.values() for rule in _MY_RULES) >= 20
