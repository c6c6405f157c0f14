"""Block Kit layout of a flag message, with the policy's limits on what may be shown.

* Managers' messages mask learner identifying details by default (``[delivery]
  mask_learner_details``): evidence spans are blacked out in any excerpt, and registered learners'
  names, preferred names, aliases and handles never appear (policy: learners' personal details are
  not shared; the flag must not repeat the breach it reports). The register's names are found in
  one pass with an Aho-Corasick automaton built once per register (cost independent of the
  register's size); ``learner_pattern`` is the same rule as one regular expression.
* The DSL's messages carry ``[slack] dsl_content`` = full, excerpt or none of the item's text.
* A flag with a finding about a possibly explicit image is never sent to Slack in any form: no
  image, no text, no link, only that it exists and where to look (policy: suspected indecent
  images of children are not viewed or forwarded; they are preserved and referred to the DSL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import ahocorasick

from governance_bot.findings import Route
from governance_bot.flags import FlagStatus
from governance_bot.items import Item
from governance_bot.registers import RegisterIndex
from governance_bot.storage import models as m

__all__ = [
    "DSL_ACTIONS",
    "MANAGER_ACTIONS",
    "Audience",
    "FlagSummary",
    "LearnerMasker",
    "audience_for",
    "excerpt",
    "is_explicit_image",
    "learner_masker",
    "learner_pattern",
    "mask_learners",
    "render_flag",
]

Audience = Literal["managers", "dsl"]

# action ids on the buttons; the role check middleware reads them
MANAGER_ACTIONS = ("gb_remove", "gb_keep", "gb_escalate")
DSL_ACTIONS = ("gb_ack", "gb_outcome", "gb_assign")

SEVERITY_NAMES = {1: "information", 2: "low", 3: "medium", 4: "high", 5: "critical"}
CATEGORY_NAMES = {
    "learner_pii": "learner personal details",
    "unapproved_photo": "photo without consent",
    "out_of_hours": "out-of-hours contact",
    "tone": "tone",
    "toxicity": "abusive or toxic content",
    "safeguarding": "safeguarding concern",
    "commerce": "scam or commercial content",
    "personal_account_contact": "contact from a personal account",
    "accountability": "accountability",
    "conversation_drift": "conversation drift",
    "deletion": "deleted item",
    "video_session": "video session",
    "location": "location disclosed",
    "account_audit": "account audit",
}
STATUS_NAMES = {
    FlagStatus.open: "Open",
    FlagStatus.acknowledged: "Acknowledged",
    FlagStatus.actioned: "Removed",
    FlagStatus.dismissed: "Kept",
    FlagStatus.escalated: "Escalated to the DSL",
    FlagStatus.closed: "Closed",
}
MASK = "█████"
EXPLICIT_RULES = frozenset({"explicit_image", "nsfw_image", "indecent_image", "csam_image"})


def is_explicit_image(findings: list[m.Finding]) -> bool:
    """A finding about a possibly explicit image: a known image rule id, or evidence detail
    ``explicit_image = true`` (any detector can set it)."""
    for f in findings:
        detail = (f.evidence or {}).get("detail") or {}
        if f.rule_id in EXPLICIT_RULES or detail.get("explicit_image") is True:
            return True
    return False


def audience_for(route: Route | str) -> Audience:
    return "dsl" if Route(route) == Route.dsl else "managers"


def _learner_terms(registers: RegisterIndex) -> tuple[set[str], set[str]]:
    """(names, handles) to mask: names with their capital letters, handles and emails in any
    case. Both spellings of an apostrophe."""
    names: set[str] = set()
    handles: set[str] = set()
    for lr in registers.iter_learners():
        for value in (lr.full_name, lr.first_name, lr.last_name, lr.preferred_name, *lr.aliases):
            if value and len(value.strip()) >= 2:
                names.add(value.strip())
                names.add(value.strip().replace("'", "’"))
        for value in (lr.email, *lr.handles):
            if value and len(value.strip()) >= 2:
                handles.add(value.strip().lstrip("@"))
    return names, handles


def learner_pattern(registers: RegisterIndex) -> re.Pattern[str] | None:
    """One regex matching every registered learner's names, aliases, email and handles (cached).

    Names match with their capital letter (so "Will" is masked, the verb "will" is not); emails
    and handles match in any case, with or without a leading "@"; neither inside a longer word.
    ``mask_learners`` applies the same rule with an automaton (and this regex where a text's
    lower case has a different length)."""
    cached = registers.derived.get("slack.learner_pattern")
    if cached is not None:
        return cached if isinstance(cached, re.Pattern) else None
    names, handles = _learner_terms(registers)
    if not names and not handles:
        registers.derived["slack.learner_pattern"] = False
        return None

    def alternation(terms: set[str]) -> str:
        return "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) or "(?!)"

    pattern = re.compile(
        rf"(?<![\w@])(?:@?(?i:{alternation(handles)})|{alternation(names)})(?!\w)")
    registers.derived["slack.learner_pattern"] = pattern
    return pattern


def _word(ch: str) -> bool:
    """A word character, as the regex ``\\w``."""
    return ch.isalnum() or ch == "_"


class LearnerMasker:
    """Finds registered learners' names and handles in a text in one pass (Aho-Corasick over the
    lower-cased text), then keeps the matches that obey ``learner_pattern``'s rule: a name in its
    own capitalisation, a handle or email in any case with an optional "@", neither preceded by a
    word character or "@" nor followed by a word character. Of overlapping matches the leftmost,
    then the longest, is masked."""

    def __init__(self, names: set[str], handles: set[str]):
        terms: dict[str, tuple[set[str], bool]] = {}
        for name in names:
            terms.setdefault(name.lower(), (set(), False))[0].add(name)
        for handle in handles:
            exact, _ = terms.get(handle.lower(), (set(), False))
            terms[handle.lower()] = (exact, True)
        self.automaton: Any = ahocorasick.Automaton()
        for key, (exact, is_handle) in terms.items():
            self.automaton.add_word(key, (len(key), frozenset(exact), is_handle))
        self.automaton.make_automaton()

    def spans(self, text: str) -> list[tuple[int, int]] | None:
        """Non-overlapping (start, end) of every learner detail; None if the text's lower case
        has another length (a few non-Latin letters), where offsets would not line up."""
        low = text.lower()
        if len(low) != len(text):
            return None
        found: list[tuple[int, int]] = []
        for last, (length, exact, is_handle) in self.automaton.iter(low):
            start, end = last - length + 1, last + 1
            if end < len(text) and _word(text[end]):
                continue
            if is_handle:
                at = start - 1 if start > 0 and text[start - 1] == "@" else start
                if at == 0 or not (_word(text[at - 1]) or text[at - 1] == "@"):
                    found.append((at, end))
                    continue
            if text[start:end] in exact and (
                    start == 0 or not (_word(text[start - 1]) or text[start - 1] == "@")):
                found.append((start, end))
        found.sort(key=lambda span: (span[0], -span[1]))
        kept: list[tuple[int, int]] = []
        for start, end in found:
            if not kept or start >= kept[-1][1]:
                kept.append((start, end))
        return kept


def learner_masker(registers: RegisterIndex) -> LearnerMasker | None:
    """The register's masker, built once per register (cached on it)."""
    cached = registers.derived.get("slack.learner_masker")
    if cached is not None:
        return cached if isinstance(cached, LearnerMasker) else None
    names, handles = _learner_terms(registers)
    masker = LearnerMasker(names, handles) if names or handles else None
    registers.derived["slack.learner_masker"] = masker if masker is not None else False
    return masker


def mask_learners(text: str, registers: RegisterIndex) -> str:
    """``text`` with every registered learner's name, alias, email and handle replaced by
    "[learner]"."""
    masker = learner_masker(registers)
    if masker is None or not text:
        return text
    spans = masker.spans(text)
    if spans is None:
        pattern = learner_pattern(registers)
        return pattern.sub("[learner]", text) if pattern else text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append("[learner]")
        pos = end
    out.append(text[pos:])
    return "".join(out)


def _spans(findings: list[m.Finding], length: int) -> list[tuple[int, int]]:
    out = []
    for f in findings:
        for span in (f.evidence or {}).get("spans") or []:
            a, b = int(span[0]), int(span[1])
            if 0 <= a < b <= length:
                out.append((a, b))
    return sorted(out)


def excerpt(text: str, spans: list[tuple[int, int]], mask: bool, width: int = 120) -> str:
    """Up to ``width`` characters each side of the first evidence span; spans blacked out when
    ``mask``."""
    if mask:
        for a, b in sorted(spans, reverse=True):
            text = text[:a] + MASK + text[b:]
        # spans moved: find the first mask instead
        first = text.find(MASK) if spans else 0
    else:
        first = spans[0][0] if spans else 0
    start = max(0, first - width)
    end = min(len(text), first + width + (len(MASK) if mask else 0))
    piece = text[start:end].replace("\n", " ").strip()
    return ("…" if start > 0 else "") + piece + ("…" if end < len(text) else "")


@dataclass(slots=True)
class FlagSummary:
    """What a message shows besides the item: the latest decisions, as readable lines."""

    lines: list[str]
    group_count: int = 0  # further flags on the same thread shown under this message


def _when(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%a %d %b %Y %H:%M") if at else "unknown time"


def _mrkdwn_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_flag(
    flag: m.Flag,
    findings: list[m.Finding],
    item: Item,
    route: Route,
    registers: RegisterIndex,
    *,
    tz: ZoneInfo,
    mask_for_managers: bool = True,
    dsl_content: str = "excerpt",
    summary: FlagSummary | None = None,
    deleted: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """The notification text (for notifications and screen readers) and its blocks."""
    audience = audience_for(route)
    sev = flag.severity
    category = CATEGORY_NAMES.get(flag.category, flag.category.replace("_", " "))
    status = FlagStatus(flag.status)
    explicit = is_explicit_image(findings)
    icon = ":rotating_light:" if sev >= 4 else (":warning:" if sev == 3 else ":information_source:")
    title = f"{icon} Flag #{flag.id}: {category} · severity {sev} ({SEVERITY_NAMES.get(sev, '?')})"
    text = f"Flag #{flag.id}: {category}, severity {sev}, {item.platform} {flag.account}"
    author = item.author.role.value if item.author.role else "unknown"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*Platform*\n{item.platform}"},
            {"type": "mrkdwn", "text": f"*Account*\n{flag.account}"},
            {"type": "mrkdwn", "text": f"*Author*\n{author} ({item.kind.value})"},
            {"type": "mrkdwn", "text": f"*Time*\n{_when(item.created_at, tz)}"},
        ]},
    ]
    mask = audience == "managers" and mask_for_managers
    reasons = []
    for f in findings:
        line = f.explanation
        if mask:
            line = mask_learners(line, registers)
        reasons.append(f"• {_mrkdwn_escape(line)} _(severity {f.severity}, {f.rule_id})_")
    blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                               "text": ("*Why*\n" + "\n".join(reasons))[:2900]}})
    if explicit:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            ":no_entry: *A possibly explicit image.* It is not shown or linked here and must not "
            "be viewed, shared or deleted. It is preserved as evidence; the DSL decides on "
            "referral (police, CEOP, IWF).")}})
    else:
        spans = _spans(findings, len(item.text))
        evidence: str | None
        if not item.text:
            evidence = None
        elif audience == "managers":
            piece = excerpt(item.text, spans, mask=mask)
            evidence = mask_learners(piece, registers) if mask else piece
        elif dsl_content == "full":
            evidence = item.text[:2500]
        elif dsl_content == "excerpt":
            evidence = excerpt(item.text, spans, mask=False)
        else:
            evidence = None
        if evidence:
            label = "*Evidence* (learner details masked)" if mask else "*Evidence*"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
                f"{label}\n> {_mrkdwn_escape(evidence)}")[:2900]}})
        elif audience == "dsl" and dsl_content == "none" and item.text:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
                "Content is not sent to Slack (dsl_content = none): open the item in "
                "governance-bot.")}]})
        if item.url:
            gone = " (no longer on the platform; preserved copy in the archive)" if deleted else ""
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"<{item.url}|Open the item>{gone}"}]})
    status_line = f"*Status:* {STATUS_NAMES.get(status, status.value)}"
    if audience == "managers" and flag.route == Route.dsl.value:
        status_line += " · now with the DSL and deputies (safeguarding)"
    if summary and summary.lines:
        status_line += "\n" + "\n".join(summary.lines)
    blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": status_line[:2900]}})
    if summary and summary.group_count:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"{summary.group_count} further flag(s) on this thread: see the replies below.")}]})
    actions = _buttons(flag, audience, status)
    if actions:
        blocks.append({"type": "actions", "block_id": f"gb_flag_{flag.id}", "elements": actions})
    return text, blocks


def _button(action_id: str, label: str, flag_id: int, style: str | None = None
            ) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "button", "action_id": action_id, "value": str(flag_id),
                         "text": {"type": "plain_text", "text": label}}
    if style:
        b["style"] = style
    return b


def _buttons(flag: m.Flag, audience: Audience, status: FlagStatus) -> list[dict[str, Any]]:
    if status in (FlagStatus.actioned, FlagStatus.dismissed, FlagStatus.closed):
        return []
    if audience == "managers":
        if status == FlagStatus.escalated or flag.route == Route.dsl.value:
            return []  # with the DSL now: managers no longer decide
        return [_button("gb_remove", "Remove", flag.id, "danger"),
                _button("gb_keep", "Keep", flag.id),
                _button("gb_escalate", "Escalate to DSL", flag.id)]
    out = []
    if status == FlagStatus.open or status == FlagStatus.escalated:
        out.append(_button("gb_ack", "Acknowledge", flag.id, "primary"))
    out.append(_button("gb_outcome", "Record outcome", flag.id))
    out.append(_button("gb_assign", "Assign to deputy", flag.id))
    return out
