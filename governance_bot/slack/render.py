"""The Slack message about a flag, for one person (or one private channel): what need-to-know
lets them see (``governance_bot.authz.Entitlement``), built with ``slack_sdk.models.blocks``.

* Only the findings routed to the reader; parts sent to others appear only as a note ("Hide/remove
  this post; the DSL has been informed.", "Also referred elsewhere.").
* Managers' messages mask learner identifying details (``[delivery] mask_learner_details``) and
  show, for a photo, whether each learner pictured has consent (without names) with a button to
  pre-approve it.
* The DSL's and the case manager's messages name the child (register name and id, year group or
  programme, tutor), show the thread's preceding messages and the item's text as ``[slack]
  dsl_content`` says (full, excerpt or none), say what to do now in the policy's words, and link
  to the item and to its case page.
* A possibly explicit image is never sent in any form: no image, text or link, only that it
  exists, is preserved and must not be viewed (policy: suspected indecent images of children are
  not viewed or forwarded; they are preserved and referred to the DSL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from governance_bot.authz import (
    DSL_NOTE,
    Action,
    ChildIdentity,
    Detail,
    Entitlement,
)
from governance_bot.findings import Route
from governance_bot.items import Item
from governance_bot.masking import (
    MASK,
    LearnerMasker,
    evidence_spans,
    excerpt,
    is_explicit_image,
    learner_masker,
    learner_pattern,
    mask_learners,
)
from governance_bot.registers import RegisterIndex
from governance_bot.storage import models as m

__all__ = [
    "CATEGORY_NAMES",
    "MASK",
    "SEVERITY_NAMES",
    "SHOW_GROUPED",
    "FlagSummary",
    "LearnerMasker",
    "excerpt",
    "headline",
    "is_explicit_image",
    "learner_masker",
    "learner_pattern",
    "mask_learners",
    "render_flag",
]

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
    "open": "Open",
    "acknowledged": "Acknowledged",
    "actioned": "Removed",
    "dismissed": "Kept",
    "escalated": "Escalated to the DSL",
    "closed": "Closed",
}
# What to do now, in the policies' words, per audience
WHAT_NOW = {
    "dsl": ("*What to do now:* acknowledge it. Treat it like a face-to-face disclosure: do not "
            "investigate or promise secrecy; follow the safeguarding procedure and record the "
            "outcome here."),
    "case": ("*What to do now:* a possible allegation about a member of staff (KCSIE part 4). "
             "Do not tell the member of staff; decide the next steps (consult the LADO where the "
             "harm threshold may be met) and record the outcome here."),
    "managers": ("*What to do now:* remove it (with the explanation the policy requires and the "
                 "people to inform), keep it (say why), or escalate it to the DSL."),
}
_BUTTONS = [  # (action, action id, label, style), in the order they are shown
    (Action.remove, "gb_remove", "Remove", "danger"),
    (Action.keep, "gb_keep", "Keep", None),
    (Action.escalate, "gb_escalate", "Escalate to DSL", None),
    (Action.acknowledge, "gb_ack", "Acknowledge", "primary"),
    (Action.record_outcome, "gb_outcome", "Record outcome", None),
    (Action.assign, "gb_assign", "Assign to deputy", None),
]


@dataclass(slots=True)
class FlagSummary:
    """What a message shows besides the item: the decisions so far, and the thread."""

    lines: list[str] = field(default_factory=list)
    group_count: int = 0  # further flags on the same thread recorded under this message
    group_latest: datetime | None = None  # the newest of them (its item's time)
    # the open ones among them not sent as messages of their own (they added nothing new for
    # this message's readers): listed, with a button to show them in the thread
    grouped_open: list[int] = field(default_factory=list)
    thread: list[Item] = field(default_factory=list)  # preceding messages (case view only)
    children: list[ChildIdentity] = field(default_factory=list)  # case view only
    photo_consent: list[tuple[str, bool]] = field(default_factory=list)
    case_url: str | None = None


# the button under a message that posts the flags recorded under it into its thread
SHOW_GROUPED = "gb_show_grouped"


def headline(entitlement: Entitlement) -> str:
    """"<category> · severity N" of the most severe finding the reader may see."""
    if not entitlement.findings:
        return "flag"
    top = max(entitlement.findings, key=lambda f: f.severity)
    return (f"{CATEGORY_NAMES.get(top.category.value, top.category.value)} · severity "
            f"{top.severity}")


def _when(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%a %d %b %Y %H:%M") if at else "unknown time"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:2900]))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text[:2900])])


def render_flag(
    flag: m.Flag,
    entitlement: Entitlement,
    findings: Sequence[m.Finding],
    item: Item,
    registers: RegisterIndex,
    *,
    tz: ZoneInfo,
    summary: FlagSummary | None = None,
    deleted: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """The notification text (for notifications and screen readers) and its blocks, for the
    reader ``entitlement`` describes. ``findings`` are the stored findings the reader may see
    (``entitlement.findings``)."""
    summary = summary or FlagSummary()
    mine = [f for f in findings if str(f.id) in entitlement.finding_keys] or list(findings)
    case = entitlement.child_identity
    mask = entitlement.detail in (Detail.masked, Detail.summary)
    sev = max((f.severity for f in mine), default=flag.severity)
    title_what = headline(entitlement).split(" · ")[0]
    icon = ":rotating_light:" if sev >= 4 else (":warning:" if sev == 3 else ":information_source:")
    title = (f"{icon} Flag #{flag.id}: {title_what} · severity {sev} "
             f"({SEVERITY_NAMES.get(sev, '?')})")
    text = f"Flag #{flag.id}: {title_what}, severity {sev}, {item.platform} {flag.account}"
    author = item.author.role.value if item.author.role else "unknown"
    blocks: list[Block] = [
        HeaderBlock(text=title[:150]),
        SectionBlock(fields=[
            MarkdownTextObject(text=f"*Platform*\n{item.platform}"),
            MarkdownTextObject(text=f"*Account*\n{flag.account}"),
            MarkdownTextObject(text=f"*Author*\n{author} ({item.kind.value})"),
            MarkdownTextObject(text=f"*Time*\n{_when(item.created_at, tz)}"),
        ]),
    ]
    if case and summary.children:
        blocks.append(_section("*Child*\n" + "\n".join(
            _escape(c.line()) for c in summary.children)))
    reasons = []
    for f in mine:
        line = mask_learners(f.explanation, registers) if mask else f.explanation
        reasons.append(f"• {_escape(line)} _(severity {f.severity})_")
    blocks.append(_section("*Why*\n" + "\n".join(reasons)))
    if entitlement.note:
        blocks.append(_section(f":arrow_right: *{entitlement.note}*"
                               if entitlement.note == DSL_NOTE else f"_{entitlement.note}_"))
    explicit = is_explicit_image(mine) or is_explicit_image(list(findings))
    if explicit:
        blocks.append(_section(
            ":no_entry: *A possibly explicit image.* It is not shown or linked here and must not "
            "be viewed, shared or deleted. It is preserved as evidence; the DSL decides on "
            "referral (police, CEOP, IWF)."))
    else:
        blocks.extend(_evidence(entitlement, mine, item, registers, summary, tz, deleted))
    if summary.photo_consent and not case:
        lines = [f"• {label}: {'photo consent on file' if ok else '*no photo consent*'}"
                 for label, ok in summary.photo_consent]
        blocks.append(_section("*Photo consent (from the register)*\n" + "\n".join(lines)))
    if flag.status not in ("actioned", "dismissed", "closed"):
        if case and Route.dsl in entitlement.routes:
            blocks.append(_context(WHAT_NOW["dsl"]))
        elif case:
            blocks.append(_context(WHAT_NOW["case"]))
        elif entitlement.actions & {Action.remove, Action.keep}:
            blocks.append(_context(WHAT_NOW["managers"]))
    status_line = f"*Status:* {STATUS_NAMES.get(flag.status, flag.status)}"
    if not case and flag.status == "escalated":
        status_line += " · now with the DSL and deputies"
    if summary.lines:
        status_line += "\n" + "\n".join(summary.lines)
    blocks.append(_section(status_line))
    if summary.group_count:
        latest = (f", the latest {_when(summary.group_latest, tz)}" if summary.group_latest
                  else "")
        if summary.grouped_open:
            shown = ", ".join(f"#{n}" for n in summary.grouped_open[:20])
            more = (f" and {len(summary.grouped_open) - 20} more"
                    if len(summary.grouped_open) > 20 else "")
            blocks.append(_context(
                f"{summary.group_count} further flag(s) on this thread{latest}. Nothing new for "
                f"you, so not sent separately; still open: {shown}{more}."))
        else:
            blocks.append(_context(f"{summary.group_count} further flag(s) on this thread"
                                   f"{latest}: see the replies below."))
    actions = _buttons(flag, entitlement, mine)
    if actions:
        blocks.append(ActionsBlock(block_id=f"gb_flag_{flag.id}", elements=actions))
    if summary.grouped_open:
        blocks.append(ActionsBlock(block_id=f"gb_group_{flag.id}", elements=[ButtonElement(
            action_id=SHOW_GROUPED, text="Show them in the thread", value=str(flag.id))]))
    return text, [b.to_dict() for b in blocks]


def _evidence(entitlement: Entitlement, findings: Sequence[m.Finding], item: Item,
              registers: RegisterIndex, summary: FlagSummary, tz: ZoneInfo,
              deleted: bool) -> list[Block]:
    out: list[Block] = []
    detail = entitlement.detail
    spans = evidence_spans([f.evidence for f in findings], len(item.text))
    evidence: str | None = None
    if not item.text or detail in (Detail.none, Detail.summary):
        evidence = None
    elif detail == Detail.full:
        evidence = item.text[:2500]
    elif detail == Detail.excerpt:
        evidence = excerpt(item.text, spans, mask=False)
    else:
        evidence = mask_learners(excerpt(item.text, spans, mask=True), registers)
    if entitlement.child_identity and summary.thread and detail in (Detail.full, Detail.excerpt):
        lines = []
        for earlier in summary.thread[-5:]:
            who = earlier.author.role.value if earlier.author.role else "unknown"
            said = earlier.text if detail == Detail.full else excerpt(earlier.text, [], False, 90)
            lines.append(f"> _{who}, {_when(earlier.created_at, tz)}:_ "
                         f"{_escape(said.replace(chr(10), ' '))[:400]}")
        out.append(_section("*Earlier in the thread*\n" + "\n".join(lines)))
    if evidence:
        label = "*Evidence* (learner details masked)" if detail == Detail.masked else "*Evidence*"
        out.append(_section(f"{label}\n> {_escape(evidence)}"))
    elif entitlement.child_identity and detail == Detail.none and item.text:
        out.append(_context("Content is not sent to Slack (dsl_content = none): open the case "
                            "in governance-bot."))
    links = []
    if item.url:
        gone = " (no longer on the platform; preserved copy in the archive)" if deleted else ""
        links.append(f"<{item.url}|Open the item>{gone}")
    if summary.case_url:
        links.append(f"<{summary.case_url}|Open the case in governance-bot>")
    if links:
        out.append(_context(" · ".join(links)))
    return out


def _buttons(flag: m.Flag, entitlement: Entitlement, findings: Sequence[m.Finding]
             ) -> list[ButtonElement]:
    out = []
    for action, action_id, label, style in _BUTTONS:
        if action in entitlement.actions:
            out.append(ButtonElement(action_id=action_id, text=label, value=str(flag.id),
                                     style=style))
    if Action.preapprove_photo in entitlement.actions:
        hashes = []
        for f in findings:
            sha = ((f.evidence or {}).get("detail") or {}).get("sha256")
            if f.category == "unapproved_photo" and sha and sha not in hashes:
                hashes.append(str(sha))
        if hashes:  # one button per message (action ids are unique within a block)
            out.append(ButtonElement(action_id="gb_photo", text="Pre-approve the photo",
                                     value=f"{flag.id}:{hashes[0]}"))
    return out
