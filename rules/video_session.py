"""``video_session``: video sessions with learners that lack a passcode or a second adult.

Policy duty: "video sessions password-protected; an additional staff member present; a parent
present at home" (P1 "What we expect of our staff"; P2 "Communicating with students"). A
``meeting`` item with at least one learner among its participants is checked for:

* no passcode (the meeting's settings say so; unknown settings are not guessed);
* fewer than ``min_staff`` staff members present (the host counts; a staff member's personal
  account counts as present but is flagged by personal_account_contact);
* optionally, no waiting room.

One finding per meeting lists every reason; its severity is the highest of them. The connector
puts the settings in the item's ``video_session`` field (connectors/zoom.py); items from other
sources may carry them as ``meeting`` (``passcode_required``, ``lobby_enabled``, ``participants``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from governance_bot.findings import Category, Evidence, Finding, Severity
from governance_bot.items import Item, ItemKind, Role
from rules.base import DetectionContext, DetectorBase
from rules.packs import VideoSessionPack
from rules.threads import resolved

if TYPE_CHECKING:
    from governance_bot.config import Config

__all__ = ["VideoSessionDetector"]

_DEFAULT_DUTY = (
    "Video sessions with learners are password-protected and an additional member of staff is "
    "present (P1 \"What we expect of our staff\"; P2 \"Communicating with students\")."
)


def _session(item: Item) -> dict[str, Any]:
    """The meeting's settings: ``video_session`` (connectors/zoom.py: passcode, waiting_room)
    or ``meeting`` (passcode_required, lobby_enabled, participants as register ids), as items
    written by other sources (the jsonl examples, a Teams meeting export) carry them."""
    extra = item.model_extra or {}
    session = extra.get("video_session")
    if isinstance(session, dict):
        return session
    meeting = extra.get("meeting")
    if isinstance(meeting, dict):
        return {"passcode": meeting.get("passcode_required"),
                "waiting_room": meeting.get("lobby_enabled", meeting.get("waiting_room")),
                "participants": meeting.get("participants")}
    return {}


class VideoSessionDetector(DetectorBase):
    """Meetings with learners: passcode, waiting room and at least two staff present (P1 "What we
    expect of our staff"; P2 "Communicating with students": video sessions)."""

    rule_id = "video_session"

    def __init__(
        self,
        min_staff: int = 2,
        no_passcode_severity: Severity = Severity.medium,
        too_few_staff_severity: Severity = Severity.medium,
        no_waiting_room_severity: Severity | None = Severity.low,
        duty: str = _DEFAULT_DUTY,
    ):
        self.min_staff = min_staff
        self.no_passcode_severity = no_passcode_severity
        self.too_few_staff_severity = too_few_staff_severity
        self.no_waiting_room_severity = no_waiting_room_severity
        self.duty = duty

    @classmethod
    def from_pack(cls, pack: dict[str, Any], config: Config | None = None
                  ) -> VideoSessionDetector:
        """Built from the pack read into :class:`rules.packs.VideoSessionPack` (defaults there;
        a bad key is a PackError naming the file and the key)."""
        model = VideoSessionPack.load(pack)
        waiting = model.severity.no_waiting_room
        return cls(
            min_staff=model.sessions.min_staff,
            no_passcode_severity=model.severity.no_passcode,
            too_few_staff_severity=model.severity.too_few_staff,
            no_waiting_room_severity=Severity(waiting) if waiting else None,
            duty=model.rule.duty or _DEFAULT_DUTY,
        )

    def detect(self, item: Item, ctx: DetectionContext) -> Iterator[Finding]:
        if item.kind != ItemKind.meeting:
            return
        people = [resolved(p, item, ctx.registers) for p in [item.author, *item.recipients]]
        session = _session(item)
        listed = [str(x) for x in session.get("participants") or [] if isinstance(x, str)]
        learners = sorted({str(p.register_id) for p in people
                           if p.role == Role.learner and p.register_id}
                          | {x for x in listed if x in ctx.registers.learners})
        if not learners:
            return
        staff = sorted({str(p.register_id) for p in people
                        if p.role == Role.staff and p.register_id}
                       | {x for x in listed if x in ctx.registers.staff})
        reasons: list[str] = []
        severities: list[Severity] = []
        if session.get("passcode") is False:
            reasons.append("the meeting had no passcode")
            severities.append(self.no_passcode_severity)
        if len(staff) < self.min_staff:
            who = "no member of staff" if not staff else f"only {len(staff)} member of staff"
            reasons.append(f"{who} took part (at least {self.min_staff} required)")
            severities.append(self.too_few_staff_severity)
        if session.get("waiting_room") is False and self.no_waiting_room_severity is not None:
            reasons.append("the waiting room was off")
            severities.append(self.no_waiting_room_severity)
        if not reasons:
            return
        host = resolved(item.author, item, ctx.registers)
        host_text = (f"hosted by staff member {host.register_id}"
                     if host.role == Role.staff and host.register_id else "hosted by an account "
                     "not in the staff register")
        count = len(learners)
        yield Finding(
            rule_id=self.rule_id,
            category=Category.video_session,
            severity=max(severities),
            score=1.0,
            explanation=(
                f"A {item.platform} session on {item.created_at:%d %B %Y at %H:%M} UTC "
                f"{host_text} with {count} learner{'s' if count != 1 else ''} "
                f"({', '.join(learners)}): {'; '.join(reasons)}. {self.duty}"
            ),
            evidence=Evidence(
                register_entry=f"learner:{learners[0]}",
                detail={"learners": learners, "staff": staff, "reasons": reasons,
                        "passcode": session.get("passcode"),
                        "waiting_room": session.get("waiting_room")},
            ),
            subject=f"meeting:{item.thread_id or item.id}",
        )
