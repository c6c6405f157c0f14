"""The rules' fast paths give exactly the answers of the plain code they replace.

Two shortcuts in the safeguarding rule (bench/rules_cost.py measures what they save):

* "is any word of this list in the text" looks only at the words whose required strings the
  literal scan found (``WordList``), not at every word;
* whether a commenter's name imitates one of the organisation's accounts is decided once per
  name, and the character-by-character comparison is skipped when the ratio's cheap upper
  bounds already say it cannot reach the similarity.

Each is compared with the plain version on the corpora (the example organisation, the
development sets, the load benchmark's comments) and on generated inputs (hypothesis).
"""

from __future__ import annotations

import json
import random
import string
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance_bot.items import Item, Person, Role
from governance_bot.registers import RegisterIndex, read_toml
from rules.base import DetectionContext
from rules.literal_prefilter import WordList
from rules.packs import load_pack
from rules.safeguarding import SafeguardingDetector, _handle_core

REPO = Path(__file__).resolve().parent.parent
PACK = load_pack("safeguarding")


@pytest.fixture(scope="module")
def detector() -> SafeguardingDetector:
    pack = {**PACK, "settings": {**PACK["settings"], "semantic": False}}
    return SafeguardingDetector.from_pack(pack)


@pytest.fixture(scope="module")
def registers() -> RegisterIndex:
    return RegisterIndex(read_toml(REPO / "examples" / "registers.toml"))


def _plain_any(words: list[Any], text: str, found: int) -> bool:
    return any(found & need == need and rx.search(text) for rx, need in words)


def _word_lists(det: SafeguardingDetector) -> list[WordList]:
    lists = [*det._context_words, *det._requires_words]
    assert lists and all(isinstance(w, WordList) for w in lists)
    return lists


def _corpus() -> list[str]:
    texts = [json.loads(line)["text"] for line in
             (REPO / "tests" / "data" / "safeguarding_dev.jsonl").read_text().splitlines()
             if line.strip()]
    for path in sorted((REPO / "examples" / "items").glob("brookfield-*.jsonl")):
        texts += [json.loads(line).get("text", "") for line in path.read_text().splitlines()
                  if line.strip()]
    from bench.pipeline_load import text_for

    texts += [text_for(i, [("Ava", "Okafor"), ("Leo", "Brennan")]) for i in range(150)]
    return [t for t in texts if t]


def test_on_the_corpora_a_word_list_answers_as_asking_every_word(
        detector: SafeguardingDetector) -> None:
    rng = random.Random(5)
    checked = hits = 0
    for text in _corpus():
        masked = detector.mask_idioms(text)
        found = detector._scan(masked)
        for words in _word_lists(detector):
            # the scan's own bits, and random ones (more strings "found" than the text has)
            for mask in (found, found | rng.getrandbits(64), rng.getrandbits(256)):
                got = words.any(masked, mask)
                assert got == _plain_any(list(words), masked, mask)
                checked += 1
                hits += got
    assert checked > 10_000 and hits > 100  # a real comparison: many lists do match


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.sampled_from(["lesson", "pshe", "fifa", "match", "rehearsal",
                                       "worksheet", "assembly", "the law", "play", "xx"]),
                      max_size=6),
       noise=st.text(alphabet=string.ascii_letters + " .,!'", max_size=40),
       extra=st.integers(min_value=0, max_value=2**80))
def test_generated_texts_and_masks_give_the_same_answer(words: list[str], noise: str,
                                                        extra: int) -> None:
    det = _DETECTOR
    text = " ".join([*words, noise])
    masked = det.mask_idioms(text)
    found = det._scan(masked)
    for wl in _word_lists(det):
        for mask in (found, found | extra, extra):
            assert wl.any(masked, mask) == _plain_any(list(wl), masked, mask)


_DETECTOR = SafeguardingDetector.from_pack(
    {**PACK, "settings": {**PACK["settings"], "semantic": False}})


def _plain_imitation(det: SafeguardingDetector, author: Person,
                     ctx: DetectionContext) -> str | None:
    """The comparison as it was: every name, every account, the full ratio."""
    imp = det.impersonation
    assert imp is not None
    if author.register_id or author.role in (Role.organisation, Role.staff):
        return None
    cores = det._organisation_cores(ctx)
    for value in filter(None, (author.handle, author.name)):
        core = _handle_core(value, imp.decorations)
        if len(core) < 4:
            continue
        for account_id, org in cores.items():
            if core == org or SequenceMatcher(None, core, org).ratio() >= imp.similarity:
                return account_id
    return None


def _names_like(org: str, rng: random.Random) -> list[str]:
    """Names near an organisation's: its own, with letters changed, dropped, added, with the
    words impostors add, and unrelated ones."""
    out = [org, org.upper(), f"@{org}_official", f"real{org}2", f"{org} payments"]
    for _ in range(30):
        chars = list(org)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(chars))
            roll = rng.random()
            if roll < 0.33:
                chars[i] = rng.choice(string.ascii_lowercase)
            elif roll < 0.66 and len(chars) > 2:
                del chars[i]
            else:
                chars.insert(i, rng.choice(string.ascii_lowercase + "_."))
        out.append("".join(chars))
    out += ["".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 20)))
            for _ in range(30)]
    return out


def test_a_commenters_name_imitates_the_same_account_as_with_the_full_comparison(
        detector: SafeguardingDetector, registers: RegisterIndex) -> None:
    ctx = DetectionContext(registers=registers, history=None)  # type: ignore[arg-type]
    cores = detector._organisation_cores(ctx)
    assert cores
    rng = random.Random(11)
    names = [n for org in cores.values() for n in _names_like(org, rng)]
    found = 0
    for _ in range(2):  # the second time from what was remembered
        for name in names:
            for author in (Person(handle=name), Person(name=name.replace("_", " "), handle="@x"),
                           Person(handle=f"@{name}", role=Role.public)):
                got = detector.impersonated_account(author, ctx)
                assert got == _plain_imitation(detector, author, ctx), author
                found += got is not None
    assert found > 50  # many of them do imitate an account


@settings(max_examples=300, deadline=None)
@given(name=st.text(alphabet=string.ascii_letters + string.digits + " _.-@", max_size=30))
def test_any_name_gets_the_same_answer(name: str) -> None:
    det = _DETECTOR
    ctx = DetectionContext(registers=_REGISTERS, history=None)  # type: ignore[arg-type]
    author = Person(handle=name or None, name=name or None)
    assert det.impersonated_account(author, ctx) == _plain_imitation(det, author, ctx)


_REGISTERS = RegisterIndex(read_toml(REPO / "examples" / "registers.toml"))


def test_findings_on_the_corpora_are_those_of_the_plain_code(
        detector: SafeguardingDetector, registers: RegisterIndex,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole rule (lexicons, contexts, impersonation) with and without the shortcuts."""
    ctx = DetectionContext(registers=registers, history=None)  # type: ignore[arg-type]
    texts = _corpus()
    authors = [Person(handle="@brookfield_academy_official"), Person(handle="@parent42"),
               Person(name="Brookfield Academy Payments", handle="@bap")]
    items = [Item.model_validate({
        "id": f"c{i}", "platform": "facebook", "account": "brookfield-facebook",
        "kind": "comment", "author": authors[i % 3].model_dump(exclude_none=True),
        "created_at": "2026-03-04T16:00:00+00:00", "text": text}) for i, text in enumerate(texts)]

    def findings() -> list[Any]:
        return [[f.to_dict() for f in per] for per in detector.detect_batch(items, ctx)]

    fast = findings()
    import rules.safeguarding as sg

    monkeypatch.setattr(sg, "any_of", _plain_any)
    monkeypatch.setattr(detector, "impersonated_account",
                        lambda author, c: _plain_imitation(detector, author, c))
    assert findings() == fast
    assert sum(1 for f in fast if f) > 50  # a real comparison: many items have findings
