"""Safeguarding and grooming detection: lexicons with context and negation, plus semantic matching.

Policy duties enforced (docs/classifiers-safeguarding.md):

* "Concerns reported through social media are handled like a face-to-face disclosure": self-harm,
  suicide, abuse, neglect and exploitation disclosures go to the Designated Safeguarding Lead at
  once (severity 4; 5 where there is an immediate risk to life).
* The four areas of risk (KCSIE): content (self-harm, extremism, sexual content), contact
  (grooming, requests to move to private or disappearing-message apps or to meet), conduct
  (bullying, sexting, threats) and commerce (scams, phishing, gambling, impersonation of the
  organisation's account; ``Category.commerce``, severity 3, for the account managers).

Everything the detector knows is data in ``rules/packs/safeguarding.toml``: families, their
sub-categories, lexical cues (regular expressions, some needing a context word nearby), idioms
that are masked before matching ("we killed it at sports day"), negation words, exemplar sentences
for semantic matching with the shipped sentence-embedding model, and per-family cosine thresholds
tuned on ``tests/data/safeguarding_dev.jsonl`` (bench/tune_safeguarding.py).

Nothing here logs message text above DEBUG; findings carry spans and the pack's cue labels, not
copies of what was written.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from governance_bot.items import ItemKind, Person, Role, Visibility
from rules.base import Category, DetectionContext, Evidence, Finding, Route, Severity

if TYPE_CHECKING:
    from governance_bot.config import Config
    from governance_bot.items import Item

__all__ = [
    "Cue",
    "Family",
    "PackError",
    "SafeguardingDetector",
    "SemanticHit",
    "SubCategory",
    "split_sentences",
]

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[\w']+")
_SENTENCE = re.compile(r"[^.!?\n;]+[.!?;]*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


class PackError(ValueError):
    """The safeguarding rule pack is malformed; the message names the key and the problem."""


@dataclass(frozen=True, slots=True)
class Cue:
    """One lexical cue: a pattern, how much it counts, and what must be near it."""

    family: str
    sub: str
    label: str
    regex: re.Pattern[str]
    weight: float = 1.0
    near: re.Pattern[str] | None = None
    window: int = 6
    negatable: bool = True
    not_from_organisation: bool = False


@dataclass(frozen=True, slots=True)
class SubCategory:
    family: str
    id: str
    title: str
    severity: Severity
    exemplars: tuple[str, ...] = ()
    must_catch: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Family:
    id: str
    title: str
    category: Category
    risk_area: str
    severity: Severity
    threshold: float
    duty: str
    urgent: tuple[re.Pattern[str], ...] = ()
    benign_exemplars: tuple[str, ...] = ()
    must_not_catch: tuple[str, ...] = ()
    subs: dict[str, SubCategory] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SemanticHit:
    family: str
    sub: str
    score: float
    exemplar: str
    benign: float
    span: tuple[int, int]


@dataclass(slots=True)
class _LexicalHit:
    cue: Cue
    span: tuple[int, int]


def _compile(pattern: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE | re.MULTILINE)
    except re.error as exc:
        raise PackError(f"{where}: {pattern!r} is not a valid regular expression ({exc})") from None


def _words(pattern: str) -> str:
    """A cue is matched as whole words: add word boundaries where the pattern starts/ends in one."""
    start = r"\b" if re.match(r"[\w(\\]", pattern) else ""
    end = r"\b" if re.search(r"[\w)?+*]$", pattern) else ""
    # a space in a cue matches any run of spaces; "x ?y" lets the space be left out
    body = pattern.replace(" ?", r"\s*").replace(" ", r"\s+")
    return f"{start}(?:{body}){end}"


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (or clauses ending in ``.!?;`` or a newline) in ``text``."""
    spans = []
    for m in _SENTENCE.finditer(text):
        a, b = m.span()
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b:
            spans.append((a, b))
    return spans


class SafeguardingDetector:
    """Safeguarding disclosures, grooming and contact risk, harmful content and commerce risk.

    Enforces "concerns reported through social media are handled like a face-to-face disclosure"
    and the content/contact/conduct/commerce areas of risk of Keeping Children Safe in Education:
    a finding names the family and sub-category, the pack cue or exemplar that matched, and goes
    to the DSL (``Category.safeguarding``) or the account managers (``Category.commerce``).
    """

    rule_id = "safeguarding"

    def __init__(
        self,
        families: Mapping[str, Family],
        cues: Sequence[Cue],
        idioms: Sequence[re.Pattern[str]],
        negations: Sequence[str],
        *,
        negation_window: int = 3,
        semantic: bool = True,
        semantic_margin: float = 0.03,
        min_sentence_words: int = 3,
        direct_to_learner_weight: float = 0.5,
        contact_family: str = "grooming",
        benign_exemplars: Sequence[str] = (),
    ) -> None:
        self.families = dict(families)
        self.cues = list(cues)
        self.idioms = list(idioms)
        self.negations = frozenset(n.casefold() for n in negations)
        self.negation_window = negation_window
        self.semantic_margin = semantic_margin
        self.min_sentence_words = min_sentence_words
        self.direct_to_learner_weight = direct_to_learner_weight
        self.contact_family = contact_family
        self.semantic_error: str | None = None
        self._exemplars: list[tuple[str, str, str]] = []  # family, sub, text
        self._benign: list[tuple[str, str]] = []  # family, text
        for fam in self.families.values():
            for sub in fam.subs.values():
                self._exemplars += [(fam.id, sub.id, t) for t in sub.exemplars]
            self._benign += [(fam.id, t) for t in fam.benign_exemplars]
        self._benign += [("*", t) for t in benign_exemplars]
        self._exemplar_vectors: np.ndarray | None = None
        self._benign_vectors: np.ndarray | None = None
        self.semantic = semantic and bool(self._exemplars)
        if self.semantic:
            self._load_semantic()

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_pack(cls, pack: dict[str, Any], config: Config | None = None) -> SafeguardingDetector:
        """Build from the ``safeguarding`` rule pack (``rules/packs/safeguarding.toml``)."""
        where = pack.get("_path", "safeguarding pack")
        settings = pack.get("settings", {})
        idioms = [_compile(_words(p), f"{where}: idioms") for p in pack.get("idioms", [])]
        families: dict[str, Family] = {}
        cues: list[Cue] = []
        raw_families = pack.get("families")
        if not isinstance(raw_families, dict) or not raw_families:
            raise PackError(f"{where}: [families] is missing or empty")
        default_window = int(settings.get("context_window", 6))
        for fid, raw in raw_families.items():
            fwhere = f"{where}: families.{fid}"
            try:
                category = Category(raw.get("category", "safeguarding"))
                severity = Severity(int(raw.get("severity", 4)))
            except ValueError as exc:
                raise PackError(f"{fwhere}: {exc}") from None
            if "duty" not in raw:
                raise PackError(f"{fwhere}: 'duty' (the policy duty it enforces) is missing")
            subs: dict[str, SubCategory] = {}
            for sid, sraw in raw.get("sub", {}).items():
                swhere = f"{fwhere}.sub.{sid}"
                subs[sid] = SubCategory(
                    family=fid,
                    id=sid,
                    title=sraw.get("title", sid.replace("_", " ")),
                    severity=Severity(int(sraw.get("severity", severity))),
                    exemplars=tuple(sraw.get("exemplars", [])),
                    must_catch=tuple(sraw.get("must_catch", [])),
                )
                for pattern in sraw.get("cues", []):
                    cues.append(Cue(fid, sid, pattern, _compile(_words(pattern), swhere)))
                for pattern in sraw.get("weak_cues", []):
                    cues.append(
                        Cue(fid, sid, pattern, _compile(_words(pattern), swhere), weight=0.5)
                    )
                for i, entry in enumerate(sraw.get("contextual", [])):
                    cwhere = f"{swhere}.contextual[{i}]"
                    if "cue" not in entry or "near" not in entry:
                        raise PackError(f"{cwhere}: needs 'cue' and 'near'")
                    near = "|".join(f"(?:{_words(n)})" for n in entry["near"])
                    cues.append(
                        Cue(
                            fid,
                            sid,
                            entry.get("label", entry["cue"]),
                            _compile(_words(entry["cue"]), cwhere),
                            weight=float(entry.get("weight", 1.0)),
                            near=_compile(near, cwhere),
                            window=int(entry.get("window", default_window)),
                            negatable=bool(entry.get("negatable", True)),
                            not_from_organisation=bool(entry.get("not_from_organisation", False)),
                        )
                    )
            families[fid] = Family(
                id=fid,
                title=raw.get("title", fid),
                category=category,
                risk_area=raw.get("risk_area", "content"),
                severity=severity,
                threshold=float(raw.get("semantic_threshold", 1.01)),
                duty=raw["duty"],
                urgent=tuple(
                    _compile(_words(p), f"{fwhere}.urgent") for p in raw.get("urgent", [])
                ),
                benign_exemplars=tuple(raw.get("benign_exemplars", [])),
                must_not_catch=tuple(raw.get("must_not_catch", [])),
                subs=subs,
            )
        return cls(
            families,
            cues,
            idioms,
            pack.get("negations", []),
            negation_window=int(settings.get("negation_window", 3)),
            semantic=bool(settings.get("semantic", True)),
            semantic_margin=float(settings.get("semantic_margin", 0.03)),
            min_sentence_words=int(settings.get("min_sentence_words", 3)),
            direct_to_learner_weight=float(settings.get("direct_to_learner_weight", 0.5)),
            contact_family=str(settings.get("contact_family", "grooming")),
            benign_exemplars=pack.get("benign_exemplars", []),
        )

    def _load_semantic(self) -> None:
        from rules.embeddings import EmbeddingModelUnavailable, embed_cached

        try:
            self._exemplar_vectors = embed_cached([t for _, _, t in self._exemplars])
            self._benign_vectors = embed_cached([t for _, t in self._benign])
        except EmbeddingModelUnavailable as exc:
            # said once at start-up; the lexicons still run
            self.semantic = False
            self.semantic_error = str(exc)
            log.warning("safeguarding: semantic matching is off: %s", exc)

    # -- matching ---------------------------------------------------------------------------

    def mask_idioms(self, text: str) -> str:
        """``text`` with benign idioms blanked out (same length, so spans stay valid)."""
        text = text.translate(_APOSTROPHES)
        for rx in self.idioms:
            text = rx.sub(lambda m: " " * len(m.group(0)), text)
        return text

    def _negated(self, text: str, tokens: list[re.Match[str]], start: int) -> bool:
        before = [t for t in tokens if t.end() <= start]
        sentence_start = max(text.rfind(c, 0, start) for c in ".!?\n;")
        window = [t for t in before[-self.negation_window:] if t.start() > sentence_start]
        return any(t.group(0).casefold() in self.negations for t in window)

    def _near(
        self, cue: Cue, text: str, tokens: list[re.Match[str]], span: tuple[int, int]
    ) -> bool:
        assert cue.near is not None
        idx = [i for i, t in enumerate(tokens) if t.end() > span[0] and t.start() < span[1]]
        if not idx:
            return False
        lo = tokens[max(0, idx[0] - cue.window)].start()
        hi = tokens[min(len(tokens) - 1, idx[-1] + cue.window)].end()
        return any(
            not (m.start() >= span[0] and m.end() <= span[1])
            for m in cue.near.finditer(text, lo, hi)
        )

    def lexical_hits(self, masked: str, from_organisation: bool = False) -> list[_LexicalHit]:
        tokens = list(_TOKEN.finditer(masked))
        hits: list[_LexicalHit] = []
        for cue in self.cues:
            if cue.not_from_organisation and from_organisation:
                continue
            for m in cue.regex.finditer(masked):
                span = m.span()
                if span[0] == span[1]:
                    continue
                if cue.negatable and self._negated(masked, tokens, span[0]):
                    continue
                if cue.near is not None and not self._near(cue, masked, tokens, span):
                    continue
                hits.append(_LexicalHit(cue, span))
        return hits

    def semantic_hits(self, masked: str) -> list[SemanticHit]:
        """The best exemplar per family for each sentence that clears the family's threshold and
        is closer (by the margin) to that exemplar than to every benign exemplar of the pack."""
        return self.semantic_hits_many([masked])[0]

    def semantic_hits_many(self, masked_texts: Sequence[str]) -> list[list[SemanticHit]]:
        """:meth:`semantic_hits` for many texts, embedding all their sentences in one batch."""
        if not self.semantic or self._exemplar_vectors is None:
            return [[] for _ in masked_texts]
        from rules.embeddings import embed

        all_spans = [
            [s for s in split_sentences(m)
             if len(_TOKEN.findall(m[s[0]:s[1]])) >= self.min_sentence_words]
            for m in masked_texts
        ]
        flat = [m[a:b] for m, spans in zip(masked_texts, all_spans, strict=True) for a, b in spans]
        vectors = embed(flat)
        out: list[list[SemanticHit]] = []
        pos = 0
        for spans in all_spans:
            out.append(list(self._score(vectors[pos:pos + len(spans)], spans)) if spans else [])
            pos += len(spans)
        return out

    def _score(self, vectors: np.ndarray, spans: list[tuple[int, int]]) -> Iterator[SemanticHit]:
        assert self._exemplar_vectors is not None
        sims = vectors @ self._exemplar_vectors.T
        benign_sims = (
            vectors @ self._benign_vectors.T
            if self._benign_vectors is not None and len(self._benign)
            else np.zeros((len(spans), 0))
        )
        fam_ids = np.array([f for f, _, _ in self._exemplars])
        for row, span in enumerate(spans):
            for fid, fam in self.families.items():
                mask = fam_ids == fid
                if not mask.any():
                    continue
                idx = np.flatnonzero(mask)
                best = idx[int(np.argmax(sims[row, idx]))]
                score = float(sims[row, best])
                benign = float(benign_sims[row].max()) if benign_sims.shape[1] else -1.0
                if score >= fam.threshold and score >= benign + self.semantic_margin:
                    _, sub, exemplar = self._exemplars[best]
                    yield SemanticHit(fid, sub, score, exemplar, benign, span)

    def family_scores(self, texts: Sequence[str]) -> list[dict[str, tuple[float, float]]]:
        """For tuning: per text, per family, (best exemplar cosine, best benign cosine) over its
        sentences (the sentence with the highest exemplar cosine wins)."""
        from rules.embeddings import embed

        masked_texts = [self.mask_idioms(t) for t in texts]
        all_spans = [split_sentences(m) or [(0, len(m))] for m in masked_texts]
        flat = [m[a:b] or " " for m, spans in zip(masked_texts, all_spans, strict=True)
                for a, b in spans]
        vectors_all = embed(flat)
        ex = (self._exemplar_vectors if self._exemplar_vectors is not None
              else np.zeros((0, vectors_all.shape[1]), dtype=np.float32))
        bn = (self._benign_vectors if self._benign_vectors is not None
              else np.zeros((0, vectors_all.shape[1]), dtype=np.float32))
        fam_ids = np.array([f for f, _, _ in self._exemplars])
        out: list[dict[str, tuple[float, float]]] = []
        pos = 0
        for spans in all_spans:
            vectors = vectors_all[pos:pos + len(spans)]
            pos += len(spans)
            sims = vectors @ ex.T
            bsims = vectors @ bn.T
            scores: dict[str, tuple[float, float]] = {}
            for fid in self.families:
                m = fam_ids == fid
                if not m.any():
                    continue
                per_sentence = sims[:, m].max(axis=1)
                row = int(np.argmax(per_sentence))
                benign = float(bsims[row].max()) if bsims.shape[1] else -1.0
                scores[fid] = (float(per_sentence[row]), benign)
            out.append(scores)
        return out

    # -- the detector -----------------------------------------------------------------------

    def _direct_to_learner(self, item: Item, ctx: DetectionContext) -> bool:
        """A private message to a learner from someone who is not staff or the organisation."""
        private_kind = item.kind in (ItemKind.direct_message, ItemKind.chat_message)
        if not private_kind and item.visibility not in (Visibility.direct, Visibility.private):
            return False
        author = item.author if item.author.role else ctx.registers.resolve_person(
            item.author, item.account
        )
        if author.role in (Role.staff, Role.organisation):
            return False
        recipients = [
            p if p.role else ctx.registers.resolve_person(p, item.account) for p in item.recipients
        ]
        return any(p.role == Role.learner for p in recipients)

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        text = item.text or ""
        if not text.strip():
            return []
        author = item.author if item.author.role else ctx.registers.resolve_person(
            item.author, item.account
        )
        return self.detect_text(
            text,
            direct_to_learner=self._direct_to_learner(item, ctx),
            from_organisation=author.role == Role.organisation,
            subject=_subject(item, author),
        )

    def detect_text(
        self,
        text: str,
        *,
        direct_to_learner: bool = False,
        from_organisation: bool = False,
        subject: str | None = None,
    ) -> list[Finding]:
        masked = self.mask_idioms(text)
        return self._detect_masked(
            text, masked, self.semantic_hits(masked), direct_to_learner=direct_to_learner,
            from_organisation=from_organisation, subject=subject,
        )

    def detect_batch(self, items: Sequence[Item], ctx: DetectionContext) -> list[list[Finding]]:
        """``detect`` for many items with one embedding batch (the pipeline's fast path)."""
        out: list[list[Finding]] = [[] for _ in items]
        todo = [i for i, item in enumerate(items) if (item.text or "").strip()]
        masked = [self.mask_idioms(items[i].text) for i in todo]
        semantic = self.semantic_hits_many(masked)
        for i, m_text, sem in zip(todo, masked, semantic, strict=True):
            item = items[i]
            author = item.author if item.author.role else ctx.registers.resolve_person(
                item.author, item.account
            )
            out[i] = self._detect_masked(
                item.text, m_text, sem, direct_to_learner=self._direct_to_learner(item, ctx),
                from_organisation=author.role == Role.organisation,
                subject=_subject(item, author),
            )
        return out

    def detect_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Findings for many plain texts at once (one embedding batch): for ``classify`` runs,
        evaluation and the pack's tables. No register context (as :meth:`detect_text`)."""
        masked = [self.mask_idioms(t) for t in texts]
        semantic = self.semantic_hits_many(masked)
        return [self._detect_masked(t, m, sem) for t, m, sem in zip(texts, masked, semantic,
                                                                    strict=True)]

    def _detect_masked(
        self,
        text: str,
        masked: str,
        semantic: list[SemanticHit],
        *,
        direct_to_learner: bool = False,
        from_organisation: bool = False,
        subject: str | None = None,
    ) -> list[Finding]:
        lexical = self.lexical_hits(masked, from_organisation=from_organisation)
        findings: list[Finding] = []
        for fid, fam in self.families.items():
            lex = [h for h in lexical if h.cue.family == fid]
            sem = [h for h in semantic if h.family == fid]
            weights: dict[str, float] = {}
            for h in lex:
                weights[h.cue.label] = max(weights.get(h.cue.label, 0.0), h.cue.weight)
            lexical_score = sum(weights.values())
            if fid == self.contact_family and lex and direct_to_learner:
                lexical_score += self.direct_to_learner_weight
            lexical_fires = lexical_score >= 1.0
            if not lexical_fires and not sem:
                continue
            findings.append(
                self._finding(fam, masked, lex if lexical_fires else [], sem, lexical_score,
                              subject)
            )
        if findings:
            log.info(
                "safeguarding: %d finding(s): %s",
                len(findings),
                ", ".join(f"{f.evidence.detail['family']}/{f.evidence.detail['sub_category']}"
                          for f in findings),
            )
            log.debug("safeguarding: text was %r", text)
        return findings

    def _finding(
        self,
        fam: Family,
        masked: str,
        lex: list[_LexicalHit],
        sem: list[SemanticHit],
        lexical_score: float,
        subject: str | None,
    ) -> Finding:
        best_sem = max(sem, key=lambda h: h.score) if sem else None
        if lex:
            strongest = max(lex, key=lambda h: (h.cue.weight, -h.span[0]))
            sub_id = strongest.cue.sub
        else:
            assert best_sem is not None
            sub_id = best_sem.sub
        subs_matched = {h.cue.sub for h in lex} | {h.sub for h in sem}
        severity = max(
            [fam.subs[s].severity for s in subs_matched if s in fam.subs] or [fam.severity]
        )
        urgent = [rx.pattern for rx in fam.urgent if rx.search(masked)]
        if urgent:
            severity = Severity.critical
        sub = fam.subs[sub_id]
        spans = sorted({h.span for h in lex} | ({best_sem.span} if best_sem and not lex else set()))
        method = "lexicon+semantic" if lex and sem else ("lexicon" if lex else "semantic")
        detail: dict[str, Any] = {
            "family": fam.id,
            "family_title": fam.title,
            "sub_category": sub.id,
            "sub_category_title": sub.title,
            "risk_area": fam.risk_area,
            "method": method,
            "cues": sorted({h.cue.label for h in lex}),
            "sub_categories": sorted(subs_matched),
        }
        if best_sem is not None:
            detail["semantic_score"] = round(best_sem.score, 4)
            detail["exemplar"] = best_sem.exemplar
            detail["threshold"] = fam.threshold
        if urgent:
            detail["immediate_risk"] = True
        score = max(min(1.0, 0.5 + 0.4 * lexical_score) if lex else 0.0,
                    best_sem.score if best_sem else 0.0)
        matched = (
            f"matched {', '.join(repr(c) for c in detail['cues'])}"
            if lex else f"close in meaning to {best_sem.exemplar!r}" if best_sem else ""
        )
        lead = "Immediate risk to life: " if urgent else ""
        explanation = (
            f"{lead}possible {sub.title} ({fam.title}; {fam.risk_area} risk), {matched}. "
            f"{fam.duty}"
        )
        return Finding(
            rule_id=self.rule_id,
            category=fam.category,
            severity=severity,
            score=round(float(score), 4),
            explanation=explanation,
            evidence=Evidence(spans=tuple(spans), detail=detail),
            route=Route.dsl if fam.category == Category.safeguarding else None,
            subject=subject,
        )

    # -- the pack's own examples -------------------------------------------------------------

    def examples(self) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
        """(family, sub-category, text) the pack must catch; (family, text) it must not."""
        catch = [(f.id, s.id, t) for f in self.families.values() for s in f.subs.values()
                 for t in s.must_catch]
        clear = [(f.id, t) for f in self.families.values() for t in f.must_not_catch]
        return catch, clear


def _subject(item: Item, author: Person) -> str | None:
    """Who the finding is about, for repeat counting: the register entry, else the handle."""
    if author.register_id and author.role:
        return f"{author.role.value}:{author.register_id}"
    if author.handle or author.id:
        return f"{item.platform}:{author.handle or author.id}"
    return None
