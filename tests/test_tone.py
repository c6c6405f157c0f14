"""Professional tone: no kisses (x's), pet names, slang or over-familiar language from staff to
learners (P1 "What we expect of our staff"; P2 "Communicating with students"), and the official
accounts' posts consistent with the organisation's tone (P1 "Managing our online presence")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance_bot.findings import Category, Finding, Route, Severity
from governance_bot.items import Item
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.engine import build_detector
from rules.packs import load_pack
from rules.tone import ToneDetector
from tests.helpers import MemoryHistory, config_with, example_index

TUTOR = {"id": "teams:aad-0006"}  # S006 Daniel Mensah
COLLEAGUE = {"id": "teams:aad-0007"}  # S007
LEARNER = {"email": "ruby.fletcher@students.brookfield.example.org"}  # L006
ORG_FACEBOOK = {"id": "104000000001", "handle": "BrookfieldAcademy"}

_DETECTOR = ToneDetector.from_pack(load_pack("tone"))


def item(text: str, author: dict[str, Any] | None = None,
         to: list[dict[str, Any]] | None = None, kind: str = "chat_message",
         account: str = "brookfield-teams", **extra: Any) -> Item:
    platform = example_index().accounts[account].platform
    data = {"id": extra.pop("id", "t1"), "platform": platform, "account": account, "kind": kind,
            "author": author or TUTOR, "recipients": [LEARNER] if to is None else to,
            "created_at": "2026-03-10T11:00:00+00:00", "text": text, **extra}
    return example_index().resolve(Item.model_validate(data))


def findings(it: Item, history: MemoryHistory | None = None,
             detector: ToneDetector = _DETECTOR) -> list[Finding]:
    ctx = DetectionContext(registers=example_index(), history=history or MemoryHistory())
    return list(detector.detect(it, ctx))


def to_learner(text: str) -> list[Finding]:
    return findings(item(text))


# --- what a staff message to a learner must not contain --------------------------------------

@pytest.mark.parametrize(
    ("text", "kind", "term"),
    [
        ("See you tomorrow xx", "kiss", "xx"),
        ("see you tomorrow XX", "kiss", "xx"),
        ("Great work today x", "kiss", "x"),
        ("Great work today X", "kiss", "x"),
        ("Well done! x", "kiss", "x"),
        ("Thanks for staying late x\nMiss Carrington", "kiss", "x"),
        ("Thanks for tidying the art room x", "kiss", "x"),
        ("Have a good day x", "kiss", "x"),
        ("Good luck tomorrow xx see you after", "kiss", "xx"),
        ("Love the drawing xxx 🎨", "kiss", "xxx"),
        ("Night xoxo", "kiss", "xoxo"),
        ("Well done on your results 😘", "kiss", "😘"),
        ("Proud of you 💋", "kiss", "💋"),
        ("Thanks hun, got it", "pet_name", "hun"),
        ("Hi babe, can you bring your kit", "pet_name", "babe"),
        ("ok sweetie", "pet_name", "sweetie"),
        ("Morning darling!", "pet_name", "darling"),
        ("You did brilliantly today, gorgeous!", "pet_name", "gorgeous"),
        ("Thanks love", "pet_name", "love"),
        ("wagwan, you coming to revision?", "slang", "wagwan"),
        ("that essay was peng tbh", "slang", "peng"),
        ("wtf happened in the exam", "slang", "wtf"),
        ("Miss you in class, hope you're back soon", "over_familiar", "miss you"),
        ("Sweet dreams, big day tomorrow", "over_familiar", "sweet dreams"),
        ("Sending hugs", "over_familiar", "sending hugs"),
        ("This can be our little secret", "over_familiar", "our little secret"),
        ("Dont tell your mum I gave you the answers", "over_familiar", "dont tell your mum"),
        ("just keep this between us", "over_familiar", "keep this between us"),
        ("Mwah! see you Monday", "kiss", "mwah"),
        ("Honestly you’re my favourite in the group", "over_familiar", "you're my favourite"),
        ("you look gorgeous in that photo", "over_familiar", "you look gorgeous"),
        ("Please delete this message after reading", "over_familiar", "delete this message"),
    ],
)
def test_a_staff_message_to_a_learner_is_flagged(text: str, kind: str, term: str) -> None:
    [finding] = to_learner(text)
    assert finding.category == Category.tone
    signals = finding.evidence.detail["signals"]
    assert {"kind": kind, "term": term} in signals
    assert finding.subject == "staff:S006>learner:L006"
    assert finding.evidence.register_entry == "learner:L006"
    for start, end in finding.evidence.spans:
        assert text[start:end].casefold().replace("’", "'") in {
            s["term"] for s in signals}


@pytest.mark.parametrize(
    "text",
    [
        "Question 2: work out 3 x 4, then 12 x 7",
        "The answer is 3 x",
        "Year 10x are in the sports hall after lunch",
        "Photos are on X (formerly Twitter) and Facebook",
        "Follow us on X",
        "For question 5, solve for x",
        "Find x",
        "Plot y against x",
        "If y = x",
        "Let x = 4 and y = 2x",
        "the x-axis and the y-axis",
        "Use f(x) for the function",
        "Bring a shoebox for the Xmas appeal",
        "Room XX",
        "Deadline is XX/XX/2026",
        "Cost is £xx per head",
        "We read about Malcolm X",
        "This is Generation X",
        "Chapter XX",
        "Our class today was on Attila the Hun",
        "There is a sweetie stall at the fair",
        "What a gorgeous day for the trip!",
        "The weather was gorgeous",
        "I love your poster idea",
        "Lovely, see you at 10",
        "Thanks Mr Darling",
        "Hi Ruby, your assessment is on Thursday at 10:00 in D12. Thanks, Mr Mensah",
        "Please bring 2 x AA batteries",
        "Hi, the lab is 6 x 4 metres",
        "Excellent work on the extension task.",
        "Your hex value was 0xFF",
        "Use the xlsx template",
        "Don't tell anyone your password",
        "Please don't tell your friends the answers before they sit the test",
        "Write your name and put an X in the box",
    ],
)
def test_ordinary_staff_messages_to_a_learner_are_not_flagged(text: str) -> None:
    assert to_learner(text) == [], text


# --- who is checked ---------------------------------------------------------------------------

def test_a_learner_writing_xx_to_a_tutor_is_not_a_staff_breach() -> None:
    assert findings(item("thank you miss xx", author=LEARNER, to=[COLLEAGUE])) == []


def test_a_staff_member_writing_xx_to_a_colleague_is_not_checked() -> None:
    assert findings(item("Thanks for covering xx", to=[COLLEAGUE])) == []


def test_a_staff_reply_to_a_learners_comment_is_checked_through_the_thread() -> None:
    history = MemoryHistory()
    comment = item("best trip ever!!", author={"handle": "@willt_10"}, to=[], kind="comment",
                   account="brookfield-facebook", id="c1", parent_id="p1", thread_id="p1")
    history.add_item(comment)
    reply = item("Aww thank you xxx", author={"id": "fb:5501"}, to=[], kind="reply",
                 account="brookfield-facebook", id="r1", parent_id="c1", thread_id="p1")
    [finding] = findings(reply, history)
    assert finding.subject == "staff:S004>learner:L011"


def test_a_staff_reply_to_a_parent_is_not_a_message_to_a_learner() -> None:
    history = MemoryHistory()
    history.add_item(item("what time is pick up?", author={"handle": "@some.parent"}, to=[],
                          kind="comment", account="brookfield-facebook", id="c2",
                          parent_id="p1", thread_id="p1"))
    reply = item("Half three hun x", author={"id": "fb:5501"}, to=[], kind="reply",
                 account="brookfield-facebook", id="r2", parent_id="c2", thread_id="p1")
    assert findings(reply, history) == []


def test_the_organisations_own_post_signed_with_kisses_is_flagged() -> None:
    post = item("Happy half term everyone! xx", author=ORG_FACEBOOK, to=[], kind="post",
                account="brookfield-facebook")
    [finding] = findings(post)
    assert "Managing our online presence" in finding.explanation
    assert finding.subject == "account:brookfield-facebook"


def test_learner_only_phrases_do_not_apply_to_the_organisations_public_posts() -> None:
    post = item("Good luck Year 13, we'll miss you all! Sending hugs to our leavers",
                author=ORG_FACEBOOK, to=[], kind="post", account="brookfield-facebook")
    assert findings(post) == []


def test_checking_the_organisations_posts_can_be_switched_off() -> None:
    pack = {**load_pack("tone"), "audience": {"organisation": False}}
    detector = ToneDetector.from_pack(pack)
    post = item("Happy half term everyone! xx", author=ORG_FACEBOOK, to=[], kind="post",
                account="brookfield-facebook")
    assert findings(post, detector=detector) == []


# --- severity and explanation ----------------------------------------------------------------

def test_kisses_to_a_learner_are_low_severity_for_the_case_managers_summary() -> None:
    [finding] = to_learner("See you tomorrow xx")
    assert finding.severity == Severity.low
    # a concern about a member of staff: never the managers' digest (docs/routing.md)
    assert Router().route_finding(finding) == Route.case_digest


def test_stronger_over_familiarity_is_medium_severity_for_the_case_manager() -> None:
    [finding] = to_learner("You're my favourite, this is just between us xx")
    assert finding.severity == Severity.medium
    assert Router().route_finding(finding) == Route.case_manager
    kinds = {s["kind"] for s in finding.evidence.detail["signals"]}
    assert kinds == {"over_familiar", "kiss"}


def test_the_explanation_cites_the_duty_and_names_what_was_found_but_not_the_message() -> None:
    [finding] = to_learner("Don't forget the permission slip for Tuesday hun xx")
    assert "a kiss" in finding.explanation and "a pet name" in finding.explanation
    # the words themselves are message text: in the (encrypted) evidence, not the explanation
    assert "'hun'" not in finding.explanation and "'xx'" not in finding.explanation
    assert {s["term"] for s in finding.evidence.detail["signals"]} == {"hun", "xx"}
    assert "no kisses (x's), slang or over-familiar language" in finding.explanation
    assert "Communicating with students" in finding.explanation
    assert "permission slip" not in finding.explanation


def test_one_finding_per_item_with_every_span() -> None:
    text = "Thanks hun xx 😘"
    [finding] = to_learner(text)
    assert [text[a:b] for a, b in finding.evidence.spans] == ["hun", "xx", "😘"]


# --- the lexicons are data --------------------------------------------------------------------

def test_a_dsl_can_add_a_term_in_a_replacement_pack(tmp_path: Path) -> None:
    pack_text = (Path(__file__).resolve().parent.parent / "rules" / "packs" / "tone.toml"
                 ).read_text(encoding="utf-8")
    pack_text += ('\n[[lexicon]]\nkind = "slang"\nseverity = 2\naudience = "learners"\n'
                  'terms = ["rizz"]\n')
    (tmp_path / "tone.toml").write_text(pack_text, encoding="utf-8")
    assert to_learner("that presentation had rizz") == []
    detector = build_detector("tone", config_with({"detection": {"packs_dir": str(tmp_path)}}))
    ctx = DetectionContext(registers=example_index(), history=MemoryHistory())
    [finding] = list(detector.detect(item("that presentation had rizz"), ctx))
    assert {"kind": "slang", "term": "rizz"} in finding.evidence.detail["signals"]


def test_a_pack_with_a_bad_position_is_refused() -> None:
    pack = {**load_pack("tone"), "lexicon": [{"kind": "slang", "terms": ["x"],
                                              "position": "middle"}]}
    with pytest.raises(ValueError, match="position"):
        ToneDetector.from_pack(pack)


# --- robustness ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("xXo hunbe,.!?\n'’😘3=(")) | st.characters(),
               max_size=80))
def test_any_text_gives_spans_inside_it_and_never_fails(text: str) -> None:
    for signal in _DETECTOR.signals(text, to_learners=True):
        assert 0 <= signal.start < signal.end <= len(text)
        assert text[signal.start:signal.end].replace("’", "'").casefold() == signal.term


def test_detection_logs_nothing_about_the_message_above_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rules.out_of_hours import OutOfHoursDetector

    late = item("Our little secret, hun xx", id="late")
    late = late.model_copy(update={"created_at": late.created_at.replace(hour=23)})
    ooh = OutOfHoursDetector.from_pack(load_pack("out_of_hours"), config_with())
    with caplog.at_level("DEBUG"):
        assert findings(late) and findings(late, detector=_DETECTOR)
        ctx = DetectionContext(registers=example_index(), history=MemoryHistory())
        assert list(ooh.detect(late, ctx))
    above_debug = " ".join(r.getMessage() for r in caplog.records if r.levelname != "DEBUG")
    for secret in ("secret", "Ruby", "ruby.fletcher", "L006"):
        assert secret not in above_debug
