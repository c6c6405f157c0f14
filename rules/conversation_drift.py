"""``conversation_drift``: staff-learner messages turning into conversation.

Policy duty: "messages are for information (session reminders), not conversation; if a learner
tries to engage, end it and inform the DSL" (P2 "Communicating with students"; P1 "What we expect
of our staff"). Two signals in private staff-learner threads:

* a long back-and-forth: the conversation has switched between the staff member and the learner
  ``turns`` times (once per thread, on the message that reaches the number);
* personal topics (weekend plans, relationships, appearance, meeting up, moving to a personal
  app...) from the pack's lexicon: in a staff member's message (medium, to the DSL) or in a
  learner's message to staff (low: the learner trying to engage, for the digest).

The explanation names the topic, never the message text; the spans point at the words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, ItemKind, Role
from rules.base import DetectionContext, DetectorBase
from rules.normalise import plain_apostrophes
from rules.packs import CONVERSATION_DRIFT_DUTY, ConversationDriftPack, DriftTopicSpec
from rules.threads import PRIVATE_KIND_NAMES, resolved

if TYPE_CHECKING:
    from governance_bot.config import Config

__all__ = ["ConversationDriftDetector", "PersonalTopic"]


@dataclass(frozen=True, slots=True)
class PersonalTopic:
    """One personal topic from the pack: a label a DSL reads and the patterns that find it."""

    id: str
    label: str
    pattern: re.Pattern[str]

    @classmethod
    def from_pack(cls, entry: DriftTopicSpec) -> PersonalTopic:
        """From a topic of the pack (its patterns checked there)."""
        joined = "|".join(f"(?:{p})" for p in entry.patterns)
        return cls(entry.id, entry.label or entry.id, re.compile(joined, re.IGNORECASE))


class ConversationDriftDetector(DetectorBase):
    """Long back-and-forth or personal topics in staff-learner threads (P2 "Communicating with
    students": messages for information, not conversation)."""

    rule_id = "conversation_drift"

    def __init__(
        self,
        topics: Iterable[PersonalTopic],
        kinds: Iterable[str] = PRIVATE_KIND_NAMES,
        turns: int = 6,
        long_severity: Severity = Severity.low,
        staff_topic_severity: Severity = Severity.medium,
        learner_topic_severity: Severity = Severity.low,
        duty: str = CONVERSATION_DRIFT_DUTY,
    ):
        self.topics = tuple(topics)
        self.kinds = frozenset(ItemKind(k) for k in kinds)
        self.turns = turns
        self.long_severity = long_severity
        self.staff_topic_severity = staff_topic_severity
        self.learner_topic_severity = learner_topic_severity
        self.duty = duty

    @classmethod
    def from_pack(cls, pack: dict[str, Any] | ConversationDriftPack,
                  config: Config | None = None) -> ConversationDriftDetector:
        """Built from the pack read into :class:`rules.packs.ConversationDriftPack` (defaults
        there; a bad key or pattern is a PackError naming the file and the key)."""
        model = ConversationDriftPack.load(pack)
        return cls(
            topics=[PersonalTopic.from_pack(t) for t in model.topics],
            kinds=[k.value for k in model.threads.kinds],
            turns=model.threads.turns,
            long_severity=model.severity.long_conversation,
            staff_topic_severity=model.severity.staff_personal_topic,
            learner_topic_severity=model.severity.learner_personal_topic,
            duty=model.rule.duty,
        )

    def detect(self, item: Item, ctx: DetectionContext) -> Iterator[Finding]:
        if item.kind not in self.kinds:
            return
        regs = ctx.registers
        author = resolved(item.author, item, regs)
        recipients = [resolved(p, item, regs) for p in item.recipients]
        if author.role == Role.staff and author.register_id:
            learners = sorted({str(p.register_id) for p in recipients
                               if p.role == Role.learner and p.register_id})
            staff_id = author.register_id
        elif author.role == Role.learner and author.register_id:
            learners = [author.register_id]
            staff = sorted({str(p.register_id) for p in recipients
                            if p.role == Role.staff and p.register_id})
            if not staff:
                return
            staff_id = staff[0]
        else:
            return
        if not learners:
            return
        subject = f"staff:{staff_id}>learner:{learners[0]}"
        yield from self._topics(item, author.role, staff_id, learners, subject)
        yield from self._long(item, ctx, staff_id, learners, subject)

    def _topics(self, item: Item, role: Role, staff_id: str, learners: list[str],
                subject: str) -> Iterator[Finding]:
        text = plain_apostrophes(item.text)
        spans: list[tuple[int, int]] = []
        labels: list[str] = []
        for topic in self.topics:
            hits = [m.span() for m in topic.pattern.finditer(text)]
            if hits:
                spans.extend(hits)
                labels.append(topic.label)
        if not spans:
            return
        if role == Role.staff:
            who = f"Staff member {staff_id} raised personal topics with learner {learners[0]}"
            severity = self.staff_topic_severity
            advice = ""
        else:
            who = f"Learner {learners[0]} raised personal topics with staff member {staff_id}"
            severity = self.learner_topic_severity
            advice = " The staff member should end the conversation and inform the DSL."
        yield Finding(
            rule_id=self.rule_id,
            category=Category.conversation_drift,
            severity=severity,
            score=0.8,
            explanation=f"{who}: {', '.join(labels)}.{advice} {self.duty}",
            evidence=Evidence(
                spans=tuple(sorted(spans)),
                register_entry=f"learner:{learners[0]}",
                detail={"topics": labels, "author_role": role.value, "staff": staff_id},
            ),
            subject=subject,
        )

    def _long(self, item: Item, ctx: DetectionContext, staff_id: str, learners: list[str],
              subject: str) -> Iterator[Finding]:
        turns = 0
        previous: str | None = None
        for message in [*ctx.history.thread(item), item]:
            role = resolved(message.author, message, ctx.registers).role
            side = "staff" if role == Role.staff else "learner" if role == Role.learner else None
            if side is None:
                continue
            if previous is not None and side != previous:
                turns += 1
            previous = side
        if turns != self.turns:
            return  # once per thread, when the back-and-forth reaches the limit
        yield Finding(
            rule_id=self.rule_id,
            category=Category.conversation_drift,
            severity=self.long_severity,
            score=1.0,
            explanation=(
                f"The conversation between staff member {staff_id} and learner {learners[0]} on "
                f"{item.platform} has gone back and forth {turns} times. {self.duty}"
            ),
            evidence=Evidence(
                register_entry=f"learner:{learners[0]}",
                detail={"turns": turns, "thread": item.thread_key, "staff": staff_id},
            ),
            subject=subject,
        )
