"""The words people read for the codes the records keep: categories, severities, statuses,
routes, outcomes and audit checks. Reports, the console, exports and the command line use these,
so nobody meets ``personal_account_contact`` where "contact from a personal account" is meant."""

from __future__ import annotations

__all__ = ["AUDIT_CHECK_NAMES", "CATEGORY_NAMES", "OUTCOME_NAMES", "ROUTE_NAMES",
           "SEVERITY_NAMES", "STATUS_NAMES", "audit_check_name", "category_name", "person_name"]

SEVERITY_NAMES = {1: "information", 2: "low", 3: "medium", 4: "high", 5: "critical"}
CATEGORY_NAMES = {
    "learner_pii": "learner personal details",
    "unapproved_photo": "photo without consent",
    "location": "location disclosed",
    "out_of_hours": "out-of-hours contact",
    "tone": "unprofessional tone",
    "toxicity": "abusive or toxic content",
    "safeguarding": "safeguarding concern",
    "commerce": "scam or commercial content",
    "personal_account_contact": "contact from a personal account",
    "accountability": "one-to-one contact without a second adult",
    "conversation_drift": "conversation drifting from its purpose",
    "deletion": "deleted item",
    "video_session": "video session settings",
    "account_audit": "account access audit",
}
ROUTE_NAMES = {"dsl": "DSL and deputies", "account_managers": "account managers",
               "digest": "daily digest", "record_only": "recorded only"}
STATUS_NAMES = {"open": "open", "acknowledged": "acknowledged", "actioned": "removed",
                "dismissed": "kept", "escalated": "escalated to the DSL", "closed": "closed"}
OUTCOME_NAMES = {
    "social_care": "referred to children's social care",
    "police": "referred to the police",
    "ceop": "reported to CEOP",
    "iwf": "reported to the IWF",
    "lado": "referred to the LADO (allegation against staff)",
    "no_further_action": "no further action",
    "monitoring": "monitoring",
}
AUDIT_CHECK_NAMES = {
    "unknown_manager": "manager not in the staff register",
    "leaver_as_manager": "a leaver is still a designated manager",
    "too_few_managers": "fewer than two current managers",
    "no_attestation": "a manager did not confirm access",
    "cannot_log_in": "a manager cannot log in",
    "two_factor_off": "two-factor authentication off",
    "stale_password": "password older than the policy allows",
    "unknown_admin": "an administrator nobody registered",
    "leaver_with_access": "a leaver still has access",
    "admin_not_designated": "an administrator who is not a designated manager",
    "admin_two_factor_off": "an administrator without two-factor authentication",
    "manager_without_access": "a designated manager without access",
    "setting": "an account setting against the policy",
    "video_meeting_security": "video meeting security settings",
}


def category_name(category: str) -> str:
    return CATEGORY_NAMES.get(category, category.replace("_", " "))


def audit_check_name(check: str) -> str:
    return AUDIT_CHECK_NAMES.get(check, check.replace("_", " "))


def person_name(actor: str | None, staff_names: dict[str, str]) -> str:
    """A name for whoever an audit event or a record names: a member of staff by name, the
    service as itself, a server login as such (never a bare ``staff:S004``)."""
    if not actor:
        return "nobody"
    key = actor.removeprefix("staff:")
    if key in staff_names:
        return staff_names[key]
    if actor in ("governance-bot", "system"):
        return "governance-bot"
    if actor == "config":
        return "the configuration's register files"
    if actor.startswith("slack:"):
        return f"Slack user {actor[6:]}"
    if actor.startswith("console:"):
        return f"console sign-in attempt ({actor[8:]})"
    if "@" in actor and " " not in actor and "." not in actor.split("@", 1)[1]:
        return f"server login “{actor.split('@', 1)[0]}”"  # getuser()@hostname
    return actor
