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
that are masked before matching ("we killed it at sports day"), negation words, concern and benign
exemplar sentences for contrastive semantic matching with the shipped sentence-embedding model,
contexts (a lesson, a game, sport, the school play...) in which a match by meaning alone must be
closer, the words impostors add to the organisation's account names (the impersonation check), and
per-family cosine thresholds and margins tuned on ``tests/data/safeguarding_dev.jsonl``
(tools/tune_safeguarding.py).

Nothing here logs message text above DEBUG; findings carry spans and the pack's cue labels, not
copies of what was written.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from governance_bot.findings import Category, Evidence, Finding, Route, Severity
from governance_bot.items import ItemKind, Person, Role, Visibility
from rules.base import DetectionContext, DetectorBase
from rules.classifier import MODEL_FILE as CLASSIFIER_FILE
from rules.classifier import FamilyClassifier
from rules.literal_prefilter import LiteralPrefilter, any_of, case_fold_table
from rules.normalise import NormalisedText, normalise
from rules.packs import CueSpec, PackError, SafeguardingPack, SlangSpec, ThreadContextSpec

if TYPE_CHECKING:
    from governance_bot.config import Config
    from governance_bot.items import Item

__all__ = [
    "Context",
    "Cue",
    "Family",
    "Impersonation",
    "PackError",
    "SafeguardingDetector",
    "SemanticHit",
    "SubCategory",
    "split_sentences",
]

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[\w']+")
_SENTENCE = re.compile(r"[^.!?\n;]+[.!?;]*")
_DOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.(org|com|net|uk|sch|ac|edu|gov)(\.[a-z]+)?")


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
    unless_context: tuple[str, ...] = ()
    authors: frozenset[Role] = frozenset()  # author roles the cue reads (empty: everyone)


@dataclass(frozen=True, slots=True)
class Context:
    """Talk about a lesson, a game, sport or the school play: words that make a meaning-only match
    less likely to be a concern. A text with one of ``words`` needs a closer match (the pack's
    ``context_penalty`` is taken off its cosine) for the ``families`` listed (empty: all)."""

    id: str
    regex: re.Pattern[str]
    families: frozenset[str] = frozenset()

    def applies(self, family: str) -> bool:
        return not self.families or family in self.families


@dataclass(frozen=True, slots=True)
class Impersonation:
    """An author whose handle or display name looks like one of the organisation's own accounts
    (but is not one of them) asking for money, bank or login details."""

    asks: re.Pattern[str]
    decorations: frozenset[str]
    similarity: float = 0.85
    family: str = "commerce"
    sub: str = "impersonation"


@dataclass(frozen=True, slots=True)
class SubCategory:
    family: str
    id: str
    title: str
    severity: Severity
    exemplars: tuple[str, ...] = ()
    must_catch: tuple[str, ...] = ()
    # a match by meaning with this sub-category's exemplars also needs one of these in the text
    semantic_requires: re.Pattern[str] | None = None
    slang: tuple[SlangSpec, ...] = ()
    authors: frozenset[Role] = frozenset()  # author roles it reads (empty: everyone)


@dataclass(frozen=True, slots=True)
class Family:
    id: str
    title: str
    category: Category
    risk_area: str
    severity: Severity
    threshold: float
    duty: str
    margin: float | None = None  # None: the pack-wide semantic_margin
    urgent: tuple[re.Pattern[str], ...] = ()
    benign_exemplars: tuple[str, ...] = ()
    must_not_catch: tuple[str, ...] = ()
    subs: dict[str, SubCategory] = field(default_factory=dict)
    classifier_threshold: float | None = None
    classifier_confident: float | None = None  # None: the pack-wide classifier_confident


@dataclass(frozen=True, slots=True)
class SemanticHit:
    family: str
    sub: str
    score: float
    exemplar: str
    benign: float
    span: tuple[int, int]
    method: str = "meaning"  # "meaning" (exemplar cosine) or "classifier" (its probability)
    threshold: float | None = None


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


# what a sentence neither starts nor ends with: spaces, and the commas, colons and dashes that
# are left orphaned when an idiom before or after them is blanked ("no one likes wet play, bring
# a coat" reads ", bring a coat": the sentence-embedding model reads a leading comma as a
# fragment of something else and the learned classifier's scores move a lot with it)
_ORPHAN_EDGE = frozenset(",:-\u2013\u2014")


def _by_lowest_bit(needs: Sequence[int]) -> dict[int, list[int]]:
    """Indexes of ``needs`` filed under each need's lowest bit (0: needs nothing): a text's scan
    can meet a need only if it has that bit."""
    out: dict[int, list[int]] = {}
    for index, need in enumerate(needs):
        out.setdefault(need & -need, []).append(index)
    return out


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (or clauses ending in ``.!?;`` or a newline) in ``text``,
    without the spaces and orphaned commas, colons or dashes at either end."""
    spans = []
    for m in _SENTENCE.finditer(text):
        a, b = trim_span(text, *m.span())
        if a < b:
            spans.append((a, b))
    return spans


def trim_span(text: str, a: int, b: int) -> tuple[int, int]:
    """``(a, b)`` narrowed past spaces and orphaned commas, colons or dashes at either end."""
    while a < b and (text[a].isspace() or text[a] in _ORPHAN_EDGE):
        a += 1
    while b > a and (text[b - 1].isspace() or text[b - 1] in _ORPHAN_EDGE):
        b -= 1
    return a, b


class SafeguardingDetector(DetectorBase):
    """Safeguarding disclosures, grooming and contact risk, harmful content and commerce risk.

    Enforces "concerns reported through social media are handled like a face-to-face disclosure"
    and the content/contact/conduct/commerce areas of risk of Keeping Children Safe in Education:
    a finding names the family and sub-category, the pack cue or exemplar that matched, and goes
    to the DSL (``Category.safeguarding``) or the account managers (``Category.commerce``).
    """

    rule_id = "safeguarding"
    batch_safe = True  # each item alone (and its thread): one embedding batch

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
        contexts: Sequence[Context] = (),
        context_penalty: float = 0.0,
        impersonation: Impersonation | None = None,
        thread_context: ThreadContextSpec | None = None,
        classifier: bool = True,
        classifier_context_threshold: float = 0.9,
        classifier_confident: float = 1.01,
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
        self.contexts = list(contexts)
        self.context_penalty = context_penalty
        self.impersonation = impersonation
        self.thread_context = thread_context or ThreadContextSpec()
        self._agreement = (
            _compile("|".join(f"(?:{_words(w)})" for w in self.thread_context.agreement),
                     "thread_context.agreement")
            if self.thread_context.agreement else None)
        self.use_classifier = classifier
        self.semantic_error: str | None = None
        self._exemplars: list[tuple[str, str, str]] = []  # family, sub, text
        self._benign: list[tuple[str, str]] = []  # family, text
        for fam in self.families.values():
            for sub in fam.subs.values():
                self._exemplars += [(fam.id, sub.id, t) for t in sub.exemplars]
            self._benign += [(fam.id, t) for t in fam.benign_exemplars]
        self._benign += [("*", t) for t in benign_exemplars]
        if impersonation is not None:
            self._impersonation_cue = Cue(
                impersonation.family, impersonation.sub,
                "account name like the organisation's, asking for money or details",
                impersonation.asks, negatable=False,
            )
        fam_ids = np.array([f for f, _, _ in self._exemplars])
        # exemplar columns of sub-categories whose meaning matches need a word in the text
        self._requires: list[tuple[re.Pattern[str], np.ndarray]] = []
        for fam in self.families.values():
            for sub in fam.subs.values():
                if sub.semantic_requires is not None:
                    cols = np.array([i for i, (f, s, _) in enumerate(self._exemplars)
                                     if f == fam.id and s == sub.id], dtype=int)
                    self._requires.append((sub.semantic_requires, cols))
        self._family_index: dict[str, np.ndarray] = {
            fid: np.flatnonzero(fam_ids == fid) for fid in self.families
            if (fam_ids == fid).any()
        }
        self._build_prefilter()
        self._exemplar_vectors: np.ndarray | None = None
        self._benign_vectors: np.ndarray | None = None
        self._semantic_lock = threading.Lock()
        # names already compared with the organisation's (per registers): name -> account or None
        self._imitations: tuple[object, dict[str, object]] = (None, {})
        # the embedding model loads when the first text needs it (models load lazily: a start
        # with nothing to check never pays for it); `preflight` says early if it cannot
        self.semantic = semantic and bool(self._exemplars)
        self._classifier: FamilyClassifier | None = None  # loaded with the model, on first use
        self._classifier_columns: dict[str, int] = {}
        self.classifier_context_threshold = classifier_context_threshold
        self.classifier_confident = classifier_confident

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | SafeguardingPack,
                  config: Config | None = None) -> SafeguardingDetector:
        """Build from the ``safeguarding`` rule pack (``rules/packs/safeguarding.toml``), read
        into :class:`rules.packs.SafeguardingPack` (a bad key or pattern is a
        :class:`PackError` naming the file and the key)."""
        model = SafeguardingPack.load(pack)
        where = model.path
        st = model.settings
        idioms = [_compile(_words(p), f"{where}: idioms") for p in model.idioms]
        contexts = [
            Context(cid, _compile("|".join(f"(?:{_words(w)})" for w in c.words),
                                  f"{where}: contexts.{cid}"), frozenset(c.families))
            for cid, c in model.contexts.items()
        ]
        families: dict[str, Family] = {}
        cues: list[Cue] = []

        def cue(fid: str, sid: str, spec: CueSpec, cwhere: str, weight: float | None = None,
                sub_authors: tuple[Role, ...] = ()) -> Cue:
            near = ("|".join(f"(?:{_words(n)})" for n in spec.near)) if spec.near else None
            return Cue(
                fid, sid, spec.label, _compile(_words(spec.pattern), cwhere),
                weight=spec.weight if weight is None else weight,
                near=_compile(near, cwhere) if near else None,
                window=spec.window if spec.window is not None else st.context_window,
                negatable=spec.negatable,
                not_from_organisation=spec.not_from_organisation,
                unless_context=spec.unless_context,
                authors=frozenset(spec.authors or sub_authors),
            )

        for fid, fam in model.families.items():
            fwhere = f"{where}: families.{fid}"
            subs: dict[str, SubCategory] = {}
            for sid, sub in fam.sub.items():
                swhere = f"{fwhere}.sub.{sid}"
                subs[sid] = SubCategory(
                    family=fid,
                    id=sid,
                    title=sub.title or sid.replace("_", " "),
                    severity=sub.severity or fam.severity,
                    exemplars=sub.exemplars,
                    must_catch=sub.must_catch,
                    semantic_requires=(
                        _compile("|".join(f"(?:{_words(w)})" for w in sub.semantic_requires),
                                 f"{swhere}.semantic_requires")
                        if sub.semantic_requires else None
                    ),
                    slang=sub.slang,
                    authors=frozenset(sub.authors),
                )
                cues += [cue(fid, sid, c, swhere, sub_authors=sub.authors)
                         for c in (*sub.cues, *sub.slang)]
                cues += [cue(fid, sid, c, swhere, weight=0.5, sub_authors=sub.authors)
                         for c in sub.weak_cues]
                cues += [cue(fid, sid, c, f"{swhere}.contextual", sub_authors=sub.authors)
                         for c in sub.contextual]
            families[fid] = Family(
                id=fid,
                title=fam.title,
                category=fam.category,
                risk_area=fam.risk_area,
                severity=fam.severity,
                threshold=fam.semantic_threshold,
                duty=fam.duty,
                margin=fam.semantic_margin,
                urgent=tuple(_compile(_words(p), f"{fwhere}.urgent") for p in fam.urgent),
                benign_exemplars=fam.benign_exemplars,
                must_not_catch=fam.must_not_catch,
                subs=subs,
                classifier_threshold=fam.classifier_threshold,
                classifier_confident=fam.classifier_confident,
            )
        impersonation = None
        if model.impersonation is not None:
            imp = model.impersonation
            impersonation = Impersonation(
                asks=_compile("|".join(f"(?:{_words(a)})" for a in imp.asks),
                              f"{where}: impersonation"),
                decorations=frozenset(d.casefold() for d in imp.decorations),
                similarity=imp.similarity,
                family=imp.family,
                sub=imp.sub,
            )
        return cls(
            families,
            cues,
            idioms,
            model.negations,
            negation_window=st.negation_window,
            semantic=st.semantic,
            semantic_margin=st.semantic_margin,
            min_sentence_words=st.min_sentence_words,
            direct_to_learner_weight=st.direct_to_learner_weight,
            contact_family=st.contact_family,
            benign_exemplars=model.benign_exemplars,
            contexts=contexts,
            context_penalty=st.context_penalty,
            impersonation=impersonation,
            thread_context=model.thread_context,
            classifier=st.classifier,
            classifier_context_threshold=st.classifier_context_threshold,
            classifier_confident=st.classifier_confident,
        )

    def _build_prefilter(self) -> None:
        """The literal prefilter over cues (with their ``near`` words), idioms and contexts.
        ``self._prefilter = False`` turns it off: every pattern then runs on every text (the full
        scan the tests compare against)."""
        literals = LiteralPrefilter()
        self._cue_needs = [literals.need((c.regex, c.near)) for c in self.cues]
        self._idiom_needs = [literals.need((rx,)) for rx in self.idioms]
        # a context or a semantic requirement is a list of words: "is any of them in the text"
        # is asked word by word, and only of the words whose required strings are there
        self._context_words = [literals.any_of(c.regex) for c in self.contexts]
        self._requires_words = [literals.any_of(rx) for rx, _ in self._requires]
        literals.build()
        self._literals = literals
        self._cues_by_bit = _by_lowest_bit(self._cue_needs)
        # text -> its scan: a batch's texts are each scanned once, not once per question asked
        # of them (masking, cues, contexts, semantic requirements); bounded, cleared when full
        self._scans: dict[str, int] = {}
        # the lowest bars a text must clear to be a candidate (:meth:`_could_hit`), made once
        self._bars: tuple[float, np.ndarray, np.ndarray] | None = None
        try:
            case_fold_table()
            self._prefilter = True
        except ValueError as exc:  # this Python's case folding breaks the prefilter's reasoning
            log.warning("safeguarding: literal prefilter off, every cue runs on every text: %s",
                        exc)
            self._prefilter = False

    def _scan(self, text: str) -> int:
        """The prefilter's bits for ``text``: -1 (every bit) when the prefilter is off. Recent
        texts' scans are remembered, so masking, the cues and the contexts of one text (of each
        text of a batch) share one scan."""
        if not self._prefilter:
            return -1
        found = self._scans.get(text)
        if found is None:
            found = self._literals.scan(text)
            self._remember_scan(text, found)
        return found

    def _remember_scan(self, text: str, found: int) -> None:
        # a batch's texts (each normalised and masked) fit; a long email is scanned again
        # rather than kept, so the cache stays a few megabytes at most
        if len(text) > 16_384:
            return
        if len(self._scans) >= 256:
            self._scans.clear()
        self._scans[text] = found

    def preflight(self) -> str | None:
        """Why semantic matching would be off, found without loading the model (None: ready);
        for start-up messages and ``doctor``."""
        if not self.semantic:
            return None
        from rules.embeddings import embeddings_status

        ok, message = embeddings_status()
        return None if ok else f"semantic matching will be off: {message}"

    def _ensure_semantic(self) -> bool:
        """Load the exemplar embeddings (and so the model) and the learned classifier on first
        use."""
        if self.semantic and self._exemplar_vectors is None:
            with self._semantic_lock:
                if self.semantic and self._exemplar_vectors is None:
                    self._load_semantic()
                    if self.semantic and self.use_classifier:
                        self._load_classifier()
        return self.semantic

    def _load_semantic(self) -> None:
        from rules.embeddings import EmbeddingModelUnavailable, embed_cached

        try:
            self._exemplar_vectors = embed_cached([t for _, _, t in self._exemplars])
            self._benign_vectors = embed_cached([t for _, t in self._benign])
        except EmbeddingModelUnavailable as exc:
            # said once, at first use; the lexicons still run
            self.semantic = False
            self.semantic_error = str(exc)
            log.warning("safeguarding: semantic matching is off: %s", exc)

    def _load_classifier(self) -> None:
        """The learned head (rules/classifier.py), for the families with a threshold."""
        wanted = {fid for fid, f in self.families.items() if f.classifier_threshold is not None}
        if not wanted:
            return
        try:
            head = FamilyClassifier.load(CLASSIFIER_FILE)
        except (OSError, KeyError, ValueError, ImportError) as exc:
            log.warning("safeguarding: the learned classifier is off (%s: %s); lexicons and "
                        "meaning matching still run", type(exc).__name__, exc)
            return
        self._classifier_columns = {f: i for i, f in enumerate(head.families) if f in wanted}
        self._bars = None  # made again from these columns
        if self._classifier_columns:
            self._classifier = head

    # -- matching ---------------------------------------------------------------------------

    def mask_idioms(self, text: str) -> str:
        """``text`` as matching reads it (rules/normalise.py: invisible characters, look-alike
        letters, leetspeak and spaced letters undone) with benign idioms blanked out."""
        return self._mask(normalise(text).text)

    def _mask(self, text: str) -> str:
        """An already normalised ``text`` with benign idioms blanked out (same length, so spans
        stay valid)."""
        # blanking only turns characters into spaces and no required string holds a space, so
        # the strings found before the first idiom are all that any later idiom can meet
        found = self._scan(text)
        for rx, need in zip(self.idioms, self._idiom_needs, strict=True):
            if found & need == need:
                text = rx.sub(_blank, text)
        if self._prefilter and text not in self._scans:
            # what the masked text can hold, at most (blanking only removes strings); a text
            # already scanned keeps its own, exact, scan
            self._remember_scan(text, found)
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

    def contexts_in(self, masked: str) -> set[str]:
        """The ids of the pack's contexts (lesson, game, sport...) that ``masked`` mentions."""
        return self._contexts_in(masked, self._scan(masked))

    def _contexts_in(self, masked: str, found: int) -> set[str]:
        if not self._prefilter:
            return {c.id for c in self.contexts if c.regex.search(masked)}
        return {c.id for c, words in zip(self.contexts, self._context_words, strict=True)
                if any_of(words, masked, found)}

    def _requires_met(self, masked: str) -> list[bool]:
        """Per ``semantic_requires`` pattern: does ``masked`` mention one of its words."""
        if not self._prefilter:
            return [bool(rx.search(masked)) for rx, _ in self._requires]
        found = self._scan(masked)
        return [any_of(words, masked, found) for words in self._requires_words]

    def _penalty(self, family: str, contexts: set[str]) -> float:
        """What a meaning-only match of ``family`` loses in a text mentioning ``contexts``."""
        if not contexts or not self.context_penalty:
            return 0.0
        hit = any(c.id in contexts and c.applies(family) for c in self.contexts)
        return self.context_penalty if hit else 0.0

    def confident(self, family: str) -> float:
        """The probability at which a classifier hit of ``family`` passes the benign gate."""
        fam = self.families[family]
        return (self.classifier_confident if fam.classifier_confident is None
                else fam.classifier_confident)

    def margin(self, family: str) -> float:
        fam = self.families[family]
        return self.semantic_margin if fam.margin is None else fam.margin

    def lexical_hits(self, masked: str, from_organisation: bool = False,
                     author_role: Role | None = None) -> list[_LexicalHit]:
        """The cues that fire on ``masked`` (idioms already blanked), in pack order with their
        spans. A cue whose required words (prefilter) are not all in the text cannot match it and
        is not run."""
        found = self._scan(masked)
        tokens: list[re.Match[str]] | None = None  # made at the first match
        contexts: set[str] | None = None
        hits: list[_LexicalHit] = []
        for index in self._possible_cues(found):
            cue, need = self.cues[index], self._cue_needs[index]
            if (cue.not_from_organisation and from_organisation) or found & need != need:
                continue
            if author_role is not None and not _reads(cue.authors, author_role):
                continue
            for m in cue.regex.finditer(masked):
                span = m.span()
                if span[0] == span[1]:
                    continue
                if tokens is None:
                    tokens = list(_TOKEN.finditer(masked))
                if cue.negatable and self._negated(masked, tokens, span[0]):
                    continue
                if cue.near is not None and not self._near(cue, masked, tokens, span):
                    continue
                if cue.unless_context:
                    if contexts is None:
                        contexts = self._contexts_in(masked, found)
                    if contexts.intersection(cue.unless_context):
                        continue
                hits.append(_LexicalHit(cue, span))
        return hits

    def _possible_cues(self, found: int) -> Iterable[int]:
        """The indexes (in pack order) of the cues whose required strings may all be in a text
        whose scan is ``found``: only the cues filed under a bit the scan has are looked at,
        not every cue of the pack."""
        if found == -1 or not self._prefilter:  # no prefilter: every cue runs
            return range(len(self.cues))
        by_bit = self._cues_by_bit
        picked = list(by_bit.get(0, ()))
        rest = found
        while rest:
            bit = rest & -rest
            rest ^= bit
            picked += by_bit.get(bit, ())
        picked.sort()
        return picked

    def lexical_families(self, masked: str, from_organisation: bool = False,
                         direct_to_learner: bool = False) -> set[str]:
        """The families whose lexical cues fire on ``masked`` (weak cues need company)."""
        hits = self.lexical_hits(masked, from_organisation=from_organisation)
        return {fid for fid in self.families
                if self._lexical_score(fid, hits, direct_to_learner)[0] >= 1.0}

    def _lexical_score(self, fid: str, lexical: list[_LexicalHit], direct_to_learner: bool
                       ) -> tuple[float, list[_LexicalHit]]:
        lex = [h for h in lexical if h.cue.family == fid]
        weights: dict[str, float] = {}
        for h in lex:
            weights[h.cue.label] = max(weights.get(h.cue.label, 0.0), h.cue.weight)
        score = sum(weights.values())
        if fid == self.contact_family and lex and direct_to_learner:
            score += self.direct_to_learner_weight
        return score, lex

    def semantic_hits(self, masked: str) -> list[SemanticHit]:
        """The best exemplar per family for each sentence that clears the family's threshold and
        is closer (by the family's margin) to that exemplar than to every benign exemplar of the
        pack. A text that mentions one of the family's contexts (a lesson, a game...) needs the
        threshold plus the pack's ``context_penalty``."""
        return self.semantic_hits_many([masked])[0]

    def _sentences(self, masked: str) -> list[tuple[int, int]]:
        return [s for s in split_sentences(masked)
                if len(_TOKEN.findall(masked[s[0]:s[1]])) >= self.min_sentence_words]

    def _units(self, masked: str) -> tuple[list[tuple[int, int]], bool]:
        """The spans embedded for ``masked``: its sentences long enough to compare by meaning;
        with the classifier on, a text with none (a short chat message, "ur so dumb") is one
        unit of its own, read by the classifier only (True)."""
        spans = self._sentences(masked)
        if spans or self._classifier is None:
            return spans, False
        start, end = trim_span(masked, 0, len(masked))
        if not _TOKEN.search(masked, start, end):
            return [], False
        return [(start, end)], True

    def _could_hit(self, sims: np.ndarray, probs: np.ndarray | None, short: bool) -> bool:
        """Whether any family could match one of a text's sentences, judged at the lowest bar
        it could meet: the family's threshold with no context penalty and its exemplars not
        ruled out by ``semantic_requires`` (both only raise the bar or lower the cosines). A
        text that cannot is not asked the questions that only decide between hits (its
        contexts, its semantic requirements), which most texts never need."""
        bars = self._bars
        if bars is None:
            lowest = min((fam.threshold for fam in self.families.values()), default=0.0) + min(
                0.0, self.context_penalty)
            columns = np.array(list(self._classifier_columns.values()), dtype=np.intp)
            thresholds = np.array([self.families[f].classifier_threshold
                                   for f in self._classifier_columns], dtype=np.float64)
            bars = self._bars = (lowest, columns, thresholds)
        lowest, columns, thresholds = bars
        if not short and sims.size and float(sims.max()) >= lowest:
            return True
        if probs is None or not len(probs) or not len(columns):
            return False
        # compared as float64, exactly as the per-family check compares them
        best = probs[:, columns].max(axis=0).astype(np.float64)
        return bool((best >= thresholds).any())

    def _similarities(self, masked_texts: Sequence[str], only_possible: bool = False
                      ) -> list[tuple[list[tuple[int, int]], np.ndarray, np.ndarray,
                                      np.ndarray | None, bool]]:
        """Per text: its sentence spans, their cosines with every exemplar and benign exemplar,
        the classifier's probabilities (None when it is off) and whether the text is a short
        unit read by the classifier only. ``only_possible``: a text no family could match
        (:meth:`_could_hit`) is given no spans, as if it had no sentence to compare."""
        from rules.embeddings import embed

        self._ensure_semantic()
        assert self._exemplar_vectors is not None
        units = [self._units(m) for m in masked_texts]
        flat = [m[a:b] for m, (spans, _) in zip(masked_texts, units, strict=True)
                for a, b in spans]
        vectors = embed(flat)
        sims = vectors @ self._exemplar_vectors.T
        bn = self._benign_vectors
        bsims = (vectors @ bn.T if bn is not None and len(self._benign)
                 else np.zeros((len(flat), 0), dtype=np.float32))
        probs = (self._classifier.probabilities(vectors, flat) if self._classifier is not None
                 else None)
        out: list[tuple[list[tuple[int, int]], np.ndarray, np.ndarray, np.ndarray | None,
                        bool]] = []
        pos = 0
        for m, (spans, short) in zip(masked_texts, units, strict=True):
            text_sims = sims[pos:pos + len(spans)]
            text_probs = probs[pos:pos + len(spans)] if probs is not None else None
            if only_possible and spans and not self._could_hit(text_sims, text_probs, short):
                out.append(([], text_sims[:0], bsims[pos:pos], text_probs, short))
                pos += len(spans)
                continue
            for (_, cols), met in zip(self._requires, self._requires_met(m), strict=True):
                if len(cols) and not met:
                    text_sims[:, cols] = -1.0
            out.append((spans, text_sims, bsims[pos:pos + len(spans)], text_probs, short))
            pos += len(spans)
        return out

    def semantic_hits_many(self, masked_texts: Sequence[str],
                           unmasked: Sequence[str] | None = None) -> list[list[SemanticHit]]:
        """:meth:`semantic_hits` for many texts, embedding all their sentences in one batch:
        matches by meaning with the exemplars and, where the classifier is on, its hits.
        ``unmasked``: the same texts before idioms were blanked, for their contexts (an idiom
        about a game, "beat me at FIFA", still says the text is about a game)."""
        if not self._ensure_semantic():
            return [[] for _ in masked_texts]
        out: list[list[SemanticHit]] = []
        for n, (m, (spans, sims, bsims, probs, short)) in enumerate(zip(
                masked_texts, self._similarities(masked_texts, only_possible=True),
                strict=True)):
            if not spans:
                out.append([])
                continue
            contexts = self.contexts_in(m)
            if unmasked is not None and unmasked[n] != m:
                contexts |= self.contexts_in(unmasked[n])
            hits = [] if short else list(self._score(sims, bsims, spans, contexts))
            if probs is not None:
                hits += self._classifier_hits(sims, bsims, probs, spans, contexts)
            out.append(hits)
        return out

    def _score(self, sims: np.ndarray, benign_sims: np.ndarray, spans: list[tuple[int, int]],
               contexts: set[str]) -> Iterator[SemanticHit]:
        for row, span in enumerate(spans):
            benign = float(benign_sims[row].max()) if benign_sims.shape[1] else -1.0
            for fid, fam in self.families.items():
                idx = self._family_index.get(fid)
                if idx is None:
                    continue
                best = idx[int(np.argmax(sims[row, idx]))]
                score = float(sims[row, best])
                needed = fam.threshold + self._penalty(fid, contexts)
                if score >= needed and score >= benign + self.margin(fid):
                    _, sub, exemplar = self._exemplars[best]
                    yield SemanticHit(fid, sub, score, exemplar, benign, span)

    def _classifier_hits(self, sims: np.ndarray, benign_sims: np.ndarray, probs: np.ndarray,
                         spans: list[tuple[int, int]], contexts: set[str]
                         ) -> Iterator[SemanticHit]:
        """Per family with a ``classifier_threshold``: the sentence with the highest probability,
        if it reaches the threshold (in a lesson, game or play context, at least
        ``classifier_context_threshold``). The sub-category is that of the family's closest
        exemplar; a family whose every exemplar is ruled out by ``semantic_requires`` (bullying
        with no one addressed) does not fire, and neither does a sentence closer in meaning to
        one of the pack's benign exemplars ("I would never hurt myself", "I'm so tired I could
        sleep for a week") than to every concern exemplar of the family, unless the classifier is
        confident (the family's ``classifier_confident``, else the pack-wide one)."""
        for fid, col in self._classifier_columns.items():
            fam = self.families[fid]
            threshold = fam.classifier_threshold
            assert threshold is not None
            if self._penalty(fid, contexts):
                threshold = max(threshold, self.classifier_context_threshold)
            row = int(np.argmax(probs[:, col]))
            p = float(probs[row, col])
            if p < threshold:
                continue
            idx = self._family_index.get(fid)
            if idx is not None:
                best = idx[int(np.argmax(sims[row, idx]))]
                benign = float(benign_sims[row].max()) if benign_sims.shape[1] else -1.0
                if sims[row, best] <= -1.0 or (
                        sims[row, best] < benign and p < self.confident(fid)):
                    continue
                _, sub, exemplar = self._exemplars[best]
            else:
                sub, exemplar = next(iter(fam.subs)), ""
            yield SemanticHit(fid, sub, p, exemplar, -1.0, spans[row], method="classifier",
                              threshold=threshold)

    def family_scores(self, texts: Sequence[str]) -> list[dict[str, tuple[float, float, float]]]:
        """For tuning: per text, per family, (best exemplar cosine, best benign cosine, context
        penalty as a multiple of ``context_penalty``: 0 or 1) over its sentences (the sentence
        with the highest exemplar cosine wins; texts too short to embed have no entry)."""
        masked_texts = [self.mask_idioms(t) for t in texts]
        out: list[dict[str, tuple[float, float, float]]] = []
        for m, (spans, sims, bsims, _, short) in zip(masked_texts,
                                                     self._similarities(masked_texts),
                                                     strict=True):
            if short:
                spans = []
            scores: dict[str, tuple[float, float, float]] = {}
            contexts = self.contexts_in(m)
            for fid in self.families:
                idx = self._family_index.get(fid)
                if idx is None or not spans:
                    continue
                per_sentence = sims[:, idx].max(axis=1)
                row = int(np.argmax(per_sentence))
                benign = float(bsims[row].max()) if bsims.shape[1] else -1.0
                in_context = any(c.id in contexts and c.applies(fid) for c in self.contexts)
                scores[fid] = (float(per_sentence[row]), benign, 1.0 if in_context else 0.0)
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

    def _organisation_cores(self, ctx: DetectionContext) -> dict[str, str]:
        """The organisation's social media account names reduced to letters and digits
        (``@brookfield.academy`` -> ``brookfieldacademy``), by account id; kept with the
        registers."""
        key = "safeguarding.organisation_cores"
        cached = ctx.registers.derived.get(key)
        if cached is None:
            cached = {}
            for account in ctx.registers.accounts.values():
                handle = account.handle.strip().casefold()
                if "@" in handle.lstrip("@") or _DOMAIN.fullmatch(handle):
                    continue  # an email address or web domain, not a social media name
                core = _handle_core(handle, frozenset())
                if len(core) >= 4:
                    cached[account.account_id] = core
            ctx.registers.derived[key] = cached
        return cast(dict[str, str], cached)

    def impersonated_account(self, author: Person, ctx: DetectionContext) -> str | None:
        """The organisation's account whose name ``author``'s handle or display name imitates
        ("@brookfield_academy_official", "Brookfield Academy Payments"), or None. The
        organisation's own accounts and people in the registers never count."""
        imp = self.impersonation
        if imp is None or author.register_id or author.role in (Role.organisation, Role.staff):
            return None
        cores = self._organisation_cores(ctx)
        # the answer for a name depends only on the name and the organisation's names: the same
        # commenters come back again and again, so each name is compared once per registers
        seen, memo = self._imitations
        if seen is not cores:
            memo = {}
            self._imitations = (cores, memo)
        for value in filter(None, (author.handle, author.name)):
            hit = memo.get(value, _UNSEEN)
            if hit is _UNSEEN:
                if len(memo) >= 100_000:  # a bound, not a cache that grows for ever
                    memo.clear()
                hit = memo[value] = _imitated(value, cores, imp)
            if hit is not None:
                return cast(str, hit)
        return None

    def _item_facts(self, item: Item, ctx: DetectionContext) -> dict[str, Any]:
        author = item.author if item.author.role else ctx.registers.resolve_person(
            item.author, item.account
        )
        return {
            "direct_to_learner": self._direct_to_learner(item, ctx),
            "from_organisation": author.role == Role.organisation,
            "author_role": author.role,
            "subject": _subject(item, author),
            "impersonating": self.impersonated_account(author, ctx),
        }

    def detect(self, item: Item, ctx: DetectionContext) -> Iterable[Finding]:
        text = item.text or ""
        if not text.strip():
            return []
        findings = self.detect_text(text, **self._item_facts(item, ctx))
        return findings + self._thread_findings(item, ctx, findings)

    # -- the thread's preceding messages -------------------------------------------------------

    def _thread_findings(self, item: Item, ctx: DetectionContext,
                         findings: Sequence[Finding]) -> list[Finding]:
        """A short reply that agrees with an earlier message of its thread ("same, every night"
        under "does anyone else think about ending it") is a disclosure of its own: judged with
        the thread's preceding messages by other people, where the connector gives them. Only
        short replies that read as agreement fetch the thread, so this costs nothing on the
        usual message."""
        tc = self.thread_context
        if self._agreement is None or not (item.parent_id or item.thread_id):
            return []
        have = {f.evidence.detail["family"] for f in findings}
        if set(tc.families) <= have:
            return []
        norm = normalise(item.text or "")
        if len(_TOKEN.findall(norm.text)) > tc.max_reply_words:
            return []
        agree = self._agreement.search(norm.text)
        if agree is None:
            return []
        author = item.author.keys()
        earlier = [e for e in ctx.history.thread(item, limit=4 * tc.lookback)
                   if e.key != item.key and (e.text or "").strip()
                   and not set(e.author.keys()) & set(author)][-tc.lookback:]
        out: list[Finding] = []
        for prev in reversed(earlier):  # the nearest message first
            for f in self.detect_text(prev.text):
                fid = f.evidence.detail["family"]
                if fid not in tc.families or fid in have:
                    continue
                have.add(fid)
                out.append(self._agreement_finding(self.families[fid],
                                                   f.evidence.detail["sub_category"],
                                                   norm.span(*agree.span()), item, ctx))
        return out

    def _agreement_finding(self, fam: Family, sub_id: str, span: tuple[int, int], item: Item,
                           ctx: DetectionContext) -> Finding:
        sub = fam.subs[sub_id]
        author = item.author if item.author.role else ctx.registers.resolve_person(
            item.author, item.account)
        detail: dict[str, Any] = {
            "family": fam.id, "family_title": fam.title, "sub_category": sub.id,
            "sub_category_title": sub.title, "risk_area": fam.risk_area, "method": "thread",
            "cues": [], "sub_categories": [sub.id], "thread_context": True,
        }
        explanation = (f"possible {sub.title} ({fam.title}; {fam.risk_area} risk): a reply "
                       f"agreeing with an earlier message in its thread that reads as "
                       f"{sub.title}. {fam.duty}")
        return Finding(
            rule_id=self.rule_id, category=fam.category, severity=max(fam.severity,
                                                                       sub.severity),
            score=0.6, explanation=explanation,
            evidence=Evidence(spans=(span,), detail=detail),
            route=Route.dsl if fam.category == Category.safeguarding else None,
            subject=_subject(item, author),
        )

    def detect_text(
        self,
        text: str,
        *,
        direct_to_learner: bool = False,
        from_organisation: bool = False,
        author_role: Role | None = None,
        subject: str | None = None,
        impersonating: str | None = None,
    ) -> list[Finding]:
        norm = normalise(text)
        masked = self._mask(norm.text)
        return self._detect_masked(
            norm, masked, self.semantic_hits_many([masked], [norm.text])[0],
            direct_to_learner=direct_to_learner,
            from_organisation=from_organisation, author_role=author_role, subject=subject,
            impersonating=impersonating,
        )

    def detect_batch(self, items: Sequence[Item], ctx: DetectionContext) -> list[list[Finding]]:
        """``detect`` for many items with one embedding batch (the pipeline's fast path)."""
        out: list[list[Finding]] = [[] for _ in items]
        todo = [i for i, item in enumerate(items) if (item.text or "").strip()]
        norms = [normalise(items[i].text) for i in todo]
        masked = [self._mask(n.text) for n in norms]
        semantic = self.semantic_hits_many(masked, [n.text for n in norms])
        for i, norm, m_text, sem in zip(todo, norms, masked, semantic, strict=True):
            item = items[i]
            out[i] = self._detect_masked(norm, m_text, sem, **self._item_facts(item, ctx))
            out[i] += self._thread_findings(item, ctx, out[i])
        return out

    def detect_many(self, texts: Sequence[str]) -> list[list[Finding]]:
        """Findings for many plain texts at once (one embedding batch): for ``classify`` runs,
        evaluation and the pack's tables. No register context (as :meth:`detect_text`)."""
        norms = [normalise(t) for t in texts]
        masked = [self._mask(n.text) for n in norms]
        semantic = self.semantic_hits_many(masked, [n.text for n in norms])
        return [self._detect_masked(n, m, sem) for n, m, sem in zip(norms, masked, semantic,
                                                                    strict=True)]

    def _detect_masked(
        self,
        norm: NormalisedText,
        masked: str,
        semantic: list[SemanticHit],
        *,
        direct_to_learner: bool = False,
        from_organisation: bool = False,
        author_role: Role | None = None,
        subject: str | None = None,
        impersonating: str | None = None,
    ) -> list[Finding]:
        lexical = self.lexical_hits(masked, from_organisation=from_organisation,
                                    author_role=author_role)
        if author_role is not None:
            # a sub-category about what adults do to children (secrecy, gifts, meeting...) is
            # not read in a known learner's own words, by meaning either
            semantic = [h for h in semantic
                        if _reads(self.families[h.family].subs[h.sub].authors, author_role)]
        if impersonating and self.impersonation is not None:
            ask = self.impersonation.asks.search(masked)
            if ask:
                lexical.append(_LexicalHit(self._impersonation_cue, ask.span()))
        findings: list[Finding] = []
        # only a family with a cue or a match of its own can fire (most texts have neither)
        named = {h.cue.family for h in lexical} | {h.family for h in semantic}
        for fid, fam in self.families.items():
            if fid not in named:
                continue
            sem = [h for h in semantic if h.family == fid]
            lexical_score, lex = self._lexical_score(fid, lexical, direct_to_learner)
            lexical_fires = lexical_score >= 1.0
            if not lexical_fires and not sem:
                continue
            findings.append(
                self._finding(fam, masked, lex if lexical_fires else [], sem, lexical_score,
                              subject, norm)
            )
        if findings:
            log.info(
                "safeguarding: %d finding(s): %s",
                len(findings),
                ", ".join(f"{f.evidence.detail['family']}/{f.evidence.detail['sub_category']}"
                          for f in findings),
            )
            log.debug("safeguarding: text was %r", norm.original)
        return findings

    def _finding(
        self,
        fam: Family,
        masked: str,
        lex: list[_LexicalHit],
        sem: list[SemanticHit],
        lexical_score: float,
        subject: str | None,
        norm: NormalisedText,
    ) -> Finding:
        meaning = [h for h in sem if h.method == "meaning"]
        learned = [h for h in sem if h.method == "classifier"]
        best_sem = max(meaning, key=lambda h: h.score) if meaning else None
        best_learned = max(learned, key=lambda h: h.score) if learned else None
        if lex:
            strongest = max(lex, key=lambda h: (h.cue.weight, -h.span[0]))
            sub_id = strongest.cue.sub
        else:
            first = best_sem or best_learned
            assert first is not None
            sub_id = first.sub
        subs_matched = {h.cue.sub for h in lex} | {h.sub for h in sem}
        severity = max(
            [fam.subs[s].severity for s in subs_matched if s in fam.subs] or [fam.severity]
        )
        urgent = [rx.pattern for rx in fam.urgent if rx.search(masked)]
        if urgent:
            severity = Severity.critical
        sub = fam.subs[sub_id]
        shown = best_sem or best_learned
        spans = sorted({norm.span(*h.span) for h in lex}
                       | ({norm.span(*shown.span)} if shown and not lex else set()))
        method = "+".join(name for name, on in (("lexicon", lex), ("semantic", meaning),
                                                ("classifier", learned)) if on)
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
        if best_learned is not None:
            detail["classifier_probability"] = round(best_learned.score, 4)
            detail["classifier_threshold"] = best_learned.threshold
            detail.setdefault("exemplar", best_learned.exemplar)
        if urgent:
            detail["immediate_risk"] = True
        score = max([min(1.0, 0.5 + 0.4 * lexical_score) if lex else 0.0,
                     *(h.score for h in (best_sem, best_learned) if h is not None)])
        if lex:
            matched = f"matched: {'; '.join(detail['cues'])}"
        elif best_sem is not None:
            matched = f"close in meaning to {best_sem.exemplar!r}"
        else:
            assert best_learned is not None and best_learned.threshold is not None
            closest = f", closest example {best_learned.exemplar!r}" if (
                best_learned.exemplar) else ""
            matched = (f"read as {fam.title} by the learned classifier (probability "
                       f"{best_learned.score:.2f}, threshold {best_learned.threshold:.2f})"
                       f"{closest}")
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


def _reads(authors: frozenset[Role], role: Role) -> bool:
    """Whether a cue or sub-category limited to ``authors`` (empty: everyone) reads a message
    whose author has ``role``."""
    return not authors or role in authors


def _blank(m: re.Match[str]) -> str:
    return " " * len(m.group(0))


_UNSEEN = object()


def _imitated(value: str, cores: Mapping[str, str], imp: Impersonation) -> str | None:
    """The account whose name ``value`` imitates (see ``impersonated_account``), or None."""
    core = _handle_core(value, imp.decorations)
    if len(core) < 4:
        return None
    for account_id, org in cores.items():
        if core == org or _alike(core, org, imp.similarity):
            return account_id
    return None


def _alike(a: str, b: str, at_least: float) -> bool:
    """``SequenceMatcher(None, a, b).ratio() >= at_least``, asking the cheap upper bounds of the
    ratio first (``real_quick_ratio() >= quick_ratio() >= ratio()``, computed the same way from
    whole numbers): a name that cannot reach the similarity is not matched character by
    character."""
    matcher = SequenceMatcher(None, a, b)
    return (matcher.real_quick_ratio() >= at_least and matcher.quick_ratio() >= at_least
            and matcher.ratio() >= at_least)


def _handle_core(value: str, decorations: frozenset[str]) -> str:
    """A handle or display name reduced to its letters and digits, without the words impostors
    add ("official", "real", "payments") and trailing digits: "@Brookfield_Academy_Official",
    "realbrookfieldacademy2" and "Brookfield Academy Payments" all give "brookfieldacademy"."""
    words = [w for w in re.split(r"[^0-9a-z]+", value.strip().casefold()) if w]
    core = "".join(w for w in words if w not in decorations)
    changed = True
    while changed:  # decorations run together with the name: "brookfieldacademyofficial"
        changed = False
        core = core.rstrip("0123456789")
        for d in decorations:
            if len(d) >= 4 and len(core) > len(d) + 3:
                if core.endswith(d):
                    core, changed = core[: -len(d)], True
                elif core.startswith(d):
                    core, changed = core[len(d):], True
    return core


def _subject(item: Item, author: Person) -> str | None:
    """Who the finding is about, for repeat counting: the register entry, else the handle."""
    if author.register_id and author.role:
        return f"{author.role.value}:{author.register_id}"
    if author.handle or author.id:
        return f"{item.platform}:{author.handle or author.id}"
    return None
