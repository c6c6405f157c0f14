"""Who a finding goes to: the severity x category matrix (docs/routing.md).

* severity 4-5, any category: the DSL and deputies;
* safeguarding and staff-conduct categories: the DSL and deputies at severity 3, the digest below;
* content on the official accounts (learner details, photos, toxicity, scams, location, deletions):
  the account's designated managers at severity 3, the digest at 2;
* severity 1: recorded only.

``[routing] overrides`` in the config changes single cells: ``"tone" = "dsl"`` or
``"learner_pii:2" = "account_managers"``.
"""

from __future__ import annotations

from collections.abc import Mapping

from governance_bot.findings import Category, Finding, Route, Severity

__all__ = ["ROUTE_PRIORITY", "STAFF_CONDUCT", "Router"]

STAFF_CONDUCT = frozenset({
    Category.safeguarding,
    Category.out_of_hours,
    Category.tone,
    Category.personal_account_contact,
    Category.accountability,
    Category.conversation_drift,
    Category.video_session,
})

ROUTE_PRIORITY = {Route.dsl: 3, Route.account_managers: 2, Route.digest: 1, Route.record_only: 0}


class Router:
    def __init__(self, overrides: Mapping[str, str] | None = None):
        self.overrides = {k: Route(v) for k, v in (overrides or {}).items()}

    def route(self, category: Category, severity: Severity) -> Route:
        cell = self.overrides.get(f"{category.value}:{int(severity)}")
        if cell is None:
            cell = self.overrides.get(category.value)
        if cell is not None:
            return cell
        if severity >= Severity.high:
            return Route.dsl
        if severity <= Severity.information:
            return Route.record_only
        if category in STAFF_CONDUCT:
            return Route.dsl if severity >= Severity.medium else Route.digest
        return Route.account_managers if severity >= Severity.medium else Route.digest

    def route_finding(self, finding: Finding) -> Route:
        return finding.route or self.route(finding.category, finding.severity)

    @staticmethod
    def primary(routes: list[Route]) -> Route:
        return max(routes, key=lambda r: ROUTE_PRIORITY[r]) if routes else Route.record_only
