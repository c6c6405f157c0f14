"""Which audience a finding goes to: the need-to-know table of docs/routing.md.

A finding is one of three kinds, from its category and who wrote the item:

* **safeguarding** (not by staff): the DSL and deputies (``Route.dsl``) from severity 2;
* **staff conduct** (a concern about a member of staff, a possible allegation under KCSIE part
  4): the case manager (``Route.case_manager``) from severity 3 or when the detector asks for
  the urgent route, the case manager's daily summary (``Route.case_digest``) at severity 2;
* **content on the official accounts**: the account managers at severity 3, their digest at 2,
  the DSL at 4-5.

Severity 1 is recorded only. ``[routing] overrides`` change single cells (``"tone" = "dsl"``,
``"learner_pii:2" = "account_managers"``) but never send safeguarding or staff conduct to the
account managers or to a digest.

The router decides the *audience kind* only; who the people are (and that nobody receives a
concern about themselves) is ``governance_bot.authz``. Routing is applied by the pipeline (and
``classify``) after detection: detectors return unrouted findings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace

from governance_bot.findings import Category, Finding, Route, Severity
from governance_bot.items import Item, Role

__all__ = [
    "CONTENT_ONLY_ROUTES",
    "ROUTE_PRIORITY",
    "STAFF_CONDUCT",
    "STAFF_WHEN_STAFF_WROTE_IT",
    "FindingKind",
    "Router",
    "finding_kind",
]

log = logging.getLogger(__name__)

# Concerns about a member of staff, whoever wrote the item.
STAFF_CONDUCT = frozenset({
    Category.out_of_hours,
    Category.personal_account_contact,
    Category.accountability,
    Category.conversation_drift,
    Category.video_session,
})
# Concerns about a member of staff when a member of staff wrote the item (otherwise content, or
# for safeguarding, a safeguarding concern about a child).
STAFF_WHEN_STAFF_WROTE_IT = frozenset({
    Category.tone,
    Category.toxicity,
    Category.deletion,
    Category.safeguarding,
})
# Routes that may carry content findings only (never safeguarding, never staff conduct).
CONTENT_ONLY_ROUTES = frozenset({Route.account_managers, Route.digest})

ROUTE_PRIORITY = {Route.dsl: 5, Route.case_manager: 4, Route.account_managers: 3,
                  Route.case_digest: 2, Route.digest: 1, Route.record_only: 0}


class FindingKind:
    """The three kinds of finding (docs/routing.md, "Categories")."""

    safeguarding = "safeguarding"
    staff_conduct = "staff_conduct"
    content = "content"


def _staff_subject(subject: str | None) -> bool:
    return any(part.startswith("staff:") for part in (subject or "").split(">"))


def finding_kind(category: Category | str, author_role: Role | str | None,
                 subject: str | None = None) -> str:
    """``FindingKind`` of a finding of ``category`` on an item written by ``author_role``."""
    category = Category(category)
    staff_wrote_it = author_role is not None and Role(author_role) == Role.staff
    if category in STAFF_CONDUCT:
        return FindingKind.staff_conduct
    if category in STAFF_WHEN_STAFF_WROTE_IT and (
            staff_wrote_it or (category != Category.safeguarding and _staff_subject(subject))):
        return FindingKind.staff_conduct
    if category == Category.safeguarding:
        return FindingKind.safeguarding
    return FindingKind.content


class Router:
    """The need-to-know table, with the config's single-cell overrides."""

    def __init__(self, overrides: Mapping[str, str] | None = None):
        self.overrides = {k: Route(v) for k, v in (overrides or {}).items()}

    def route(self, category: Category, severity: Severity, author_role: Role | None = None,
              *, urgent: bool = False, subject: str | None = None) -> Route:
        """The audience for a finding of ``category`` and ``severity`` on an item written by
        ``author_role``. ``urgent``: the detector asked for the urgent route (e.g. repeated
        out-of-hours contact with one learner)."""
        kind = finding_kind(category, author_role, subject)
        # a safeguarding concern about a member of staff is never left for a summary
        urgent = urgent or (kind == FindingKind.staff_conduct
                            and Category(category) == Category.safeguarding
                            and severity > Severity.information)
        default = self._default(kind, Severity(severity), urgent)
        cell = self.overrides.get(f"{Category(category).value}:{int(severity)}")
        if cell is None:
            cell = self.overrides.get(Category(category).value)
        if cell is None:
            return default
        if kind != FindingKind.content and cell in CONTENT_ONLY_ROUTES:
            # safeguarding and staff conduct never reach managers or a digest
            log.debug("routing override %s for a %s finding ignored", cell.value, kind)
            return default
        if kind == FindingKind.staff_conduct and cell == Route.dsl:
            return Route.case_manager  # a concern about staff goes to its case manager
        return cell

    @staticmethod
    def _default(kind: str, severity: Severity, urgent: bool) -> Route:
        if severity <= Severity.information and not urgent:
            return Route.record_only
        if kind == FindingKind.safeguarding:
            return Route.dsl
        if kind == FindingKind.staff_conduct:
            return (Route.case_manager if urgent or severity >= Severity.medium
                    else Route.case_digest)
        if urgent or severity >= Severity.high:
            return Route.dsl
        return Route.account_managers if severity >= Severity.medium else Route.digest

    def route_finding(self, finding: Finding, item: Item | None = None) -> Route:
        """The route of ``finding`` on ``item`` (its author decides whether it is a concern about
        staff). A detector's own route is read as "urgent" (``Route.dsl``) or "record only";
        any other route it set is kept for content."""
        author = item.author.role if item is not None else None
        asked = finding.route
        if asked == Route.record_only:
            return Route.record_only
        route = self.route(finding.category, finding.severity, author,
                           urgent=asked in (Route.dsl, Route.case_manager),
                           subject=finding.subject)
        if asked in (Route.account_managers, Route.digest) and route in CONTENT_ONLY_ROUTES:
            return asked
        return route

    def apply(self, findings: Iterable[Finding], item: Item) -> list[Finding]:
        """``findings`` with their routes set (the pipeline calls this after detection)."""
        return [replace(f, route=self.route_finding(f, item)) for f in findings]

    @staticmethod
    def primary(routes: Iterable[Route]) -> Route:
        """The most urgent of ``routes`` (the flag's headline route)."""
        routes = list(routes)
        return max(routes, key=lambda r: ROUTE_PRIORITY[r]) if routes else Route.record_only
