"""What the dual-access audit checks for one official account, as pure functions.

Policy (P1 "Managing our online presence", P2 "Information security"): every account is
password-protected, at least two designated staff can access it, passwords are strong, changed
regularly and not shared, two-factor authentication is on, settings are private where the policy
says so, and admin access is limited to the designated staff.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from connectors.base import AccountFacts
from governance_bot.config import AccessAuditSettings
from governance_bot.registers import Account, RegisterIndex

__all__ = ["Attestation", "Problem", "check_account"]


@dataclass(frozen=True, slots=True)
class Attestation:
    """A manager's answer this week. ``None`` fields were not answered."""

    staff_id: str
    can_log_in: bool | None
    two_factor: bool | None
    password_changed_on: date | None
    answered: bool


@dataclass(frozen=True, slots=True)
class Problem:
    """One audit finding: what is wrong, how serious, and what to do about it."""

    account_id: str
    check: str
    severity: int
    message: str
    remedy: str
    subject: str | None = None

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.account_id, self.check, self.subject)


def _admin_key(admin: Mapping[str, Any]) -> list[str]:
    return [str(admin[k]) for k in ("email", "id", "handle") if admin.get(k)]


def check_account(
    account: Account,
    registers: RegisterIndex,
    settings: AccessAuditSettings,
    today: date,
    attestations: Iterable[Attestation] = (),
    facts: AccountFacts | None = None,
    attestations_closed: bool = True,
    managers_asked: bool = True,
) -> list[Problem]:
    """Every problem with ``account``. With ``attestations_closed`` False (before the deadline)
    missing answers are not yet problems. With ``managers_asked`` False (no Slack to ask them)
    a missing answer is reported as such ("could not be asked"), not as a manager's failure to
    confirm."""
    out: list[Problem] = []
    aid = account.account_id
    named = [registers.staff.get(sid) for sid in account.managers]
    unknown_ids = [sid for sid, s in zip(account.managers, named, strict=True) if s is None]
    leavers = [s for s in named if s is not None and not s.active]
    current = [s for s in named if s is not None and s.active]

    for sid in unknown_ids:
        out.append(Problem(aid, "unknown_manager", 3,
                           f"manager {sid} is not in the staff register",
                           f"add {sid} to the staff register or remove them from the account's "
                           "managers", sid))
    for s in leavers:
        out.append(Problem(aid, "leaver_as_manager", 4,
                           f"{s.name} ({s.staff_id}) has left but is still a designated manager",
                           f"remove {s.staff_id} from the managers of {aid}, change the account's "
                           "password and revoke their sessions and admin role on the platform",
                           s.staff_id))
    if len(current) < settings.min_managers:
        out.append(Problem(aid, "too_few_managers", 4,
                           f"{len(current)} current designated manager(s); the policy needs at "
                           f"least {settings.min_managers}",
                           "appoint another current member of staff as a designated manager "
                           "(accounts register) and make sure they can log in", None))

    by_staff = {a.staff_id: a for a in attestations}
    for s in current:
        att = by_staff.get(s.staff_id)
        if att is None or not att.answered:
            if attestations_closed and not managers_asked:
                out.append(Problem(aid, "not_asked", 2,
                                   f"{s.name} could not be asked to confirm access: Slack is "
                                   "not set up, so nobody was asked this week",
                                   f"set up Slack (docs/slack.md) so the managers are asked "
                                   f"every Monday; meanwhile check with {s.name} by hand that "
                                   f"they can log in to {account.handle}", s.staff_id))
            elif attestations_closed:
                out.append(Problem(aid, "no_attestation", 3,
                                   f"{s.name} did not confirm access this week",
                                   f"ask {s.name} to log in to {account.handle} and answer the "
                                   "access check; if they cannot, reset access now", s.staff_id))
            continue
        if att.can_log_in is False:
            out.append(Problem(aid, "cannot_log_in", 4,
                               f"{s.name} cannot log in to {account.handle}",
                               "restore their access today: only one person can reach the "
                               "account until then", s.staff_id))
        if settings.require_two_factor and att.two_factor is False:
            out.append(Problem(aid, "two_factor_off", 3,
                               f"{s.name} reports two-factor authentication is off",
                               "turn on two-factor authentication for the account (an "
                               "authenticator app, not SMS, where the platform allows)",
                               s.staff_id))
        if settings.password_max_age_days and att.password_changed_on is not None:
            age = (today - att.password_changed_on).days
            if age > settings.password_max_age_days:
                out.append(Problem(aid, "stale_password", 2,
                                   f"password last changed {age} days ago (policy: every "
                                   f"{settings.password_max_age_days} days)",
                                   "change the password now, in the password manager, and share "
                                   "it only through the password manager", s.staff_id))

    if facts is not None:
        out.extend(_check_facts(account, registers, settings, facts, [s.staff_id for s in current]))
    return out


def _check_facts(account: Account, registers: RegisterIndex, settings: AccessAuditSettings,
                 facts: AccountFacts, current_ids: list[str]) -> list[Problem]:
    out: list[Problem] = []
    aid = account.account_id
    with_access: set[str] = set()
    for admin in facts.admins:
        match = next((m for k in _admin_key(admin) if (m := registers.lookup(k))), None)
        label = str(admin.get("name") or admin.get("email") or admin.get("id") or "unnamed")
        if match is None or match.role.value != "staff":
            out.append(Problem(aid, "unknown_admin", 4,
                               f"the platform lists an admin the registers do not know: {label}"
                               + (f" (role {admin['role']})" if admin.get("role") else ""),
                               "remove their admin role on the platform, or add them to the staff "
                               "register and the account's managers if they should have it",
                               label))
            continue
        staff = registers.staff[match.register_id]
        with_access.add(staff.staff_id)
        if not staff.active:
            out.append(Problem(aid, "leaver_with_access", 4,
                               f"{staff.name} has left but still has admin access on the platform",
                               "remove their admin role on the platform and change the password",
                               staff.staff_id))
        elif staff.staff_id not in account.managers:
            out.append(Problem(aid, "admin_not_designated", 2,
                               f"{staff.name} has admin access but is not a designated manager",
                               "remove the admin role, or add them to the account's managers",
                               staff.staff_id))
        if settings.require_two_factor and admin.get("two_factor") is False:
            out.append(Problem(aid, "admin_two_factor_off", 3,
                               f"the platform reports two-factor authentication off for "
                               f"{staff.name}", "turn on two-factor authentication",
                               staff.staff_id))
    if facts.admins:
        for sid in current_ids:
            if sid not in with_access:
                name = registers.staff[sid].name
                out.append(Problem(aid, "manager_without_access", 3,
                                   f"{name} is a designated manager but has no admin role on the "
                                   "platform", "give them the admin role on the platform", sid))
    platform = f"{account.platform.lower()}."
    for key, required in settings.required_settings.items():
        # "mastodon.locked": required on every Mastodon account, so a setting the platform did
        # not report is unknown, not passed; an unscoped key is checked where it is reported
        scoped = key.startswith(platform)
        setting = key.removeprefix(platform) if scoped else key
        if "." in setting:
            continue  # scoped to another platform
        if setting not in facts.privacy or facts.privacy[setting] is None:
            if scoped:
                out.append(Problem(aid, "setting_unknown", 3,
                                   f"{account.platform} did not report {setting}; the policy "
                                   f"requires {required!r}, so it cannot be confirmed",
                                   f"check {setting} on the platform by hand (it should be "
                                   f"{required!r}) and that the connector's token may read it",
                                   setting))
            continue
        if facts.privacy[setting] != required:
            out.append(Problem(aid, "setting", 3,
                               f"{setting} is {facts.privacy[setting]!r}; the policy requires "
                               f"{required!r}", f"set {setting} to {required!r} on the platform",
                               setting))
    for meeting in facts.meetings:
        mid = str(meeting.get("id") or meeting.get("topic") or "a meeting")
        for setting, required in settings.required_settings.items():
            if "." in setting:
                continue
            if meeting.get(setting) is None:
                out.append(Problem(aid, "video_meeting_security_unknown", 3,
                                   f"meeting {mid}: the platform did not report {setting}",
                                   f"check that learner sessions have {setting} = {required!r} "
                                   "(the policy: video sessions are password-protected)",
                                   f"{mid}:{setting}"))
            elif meeting[setting] != required:
                out.append(Problem(aid, "video_meeting_security", 3,
                                   f"meeting {mid}: {setting} is {meeting[setting]!r}",
                                   f"set {setting} to {required!r} for learner sessions "
                                   "(the policy: video sessions are password-protected)",
                                   f"{mid}:{setting}"))
    return out
