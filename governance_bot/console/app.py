"""The case console's web application (Starlette, server-rendered Jinja2 pages).

Served by ``governance-bot run`` on the service's own HTTP server. Each request is tied to a
signed-in member of staff (``sessions``); what they find and see is decided by the authorisation
module (``access``); every page view and every action is written to the hash-chained audit log
(who looked at which safeguarding case is itself a record the DSL needs).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy import and_, func, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from governance_bot.config import Config
from governance_bot.console import access as authz_view
from governance_bot.console.cases import (
    CATEGORY_NAMES,
    OUTCOME_NAMES,
    ROUTE_NAMES,
    SEVERITY_NAMES,
    STATUS_NAMES,
    Case,
    QueueFilters,
    category_name,
    load_case,
    load_queue,
    staff_name,
)
from governance_bot.console.sessions import COOKIE, SECURE_COOKIE, SessionInfo, SessionStore
from governance_bot.console.signin import (
    dev_login_refusal,
    email_from_claims,
    is_loopback,
    make_oauth,
    staff_for_email,
)
from governance_bot.console.visible import FlagLens
from governance_bot.registers import RegisterIndex
from governance_bot.storage import auditlog
from governance_bot.storage import models as m
from governance_bot.storage.console_models import CaseNote
from governance_bot.storage.db import Database

__all__ = ["ConsoleApp", "build_console"]

log = logging.getLogger(__name__)

HERE = files("governance_bot.console")
Handler = Callable[..., Awaitable[Response]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Forbidden(Exception):
    """403: the viewer is signed in but their role does not allow this page or action."""


class NotFound(Exception):
    """404: no such thing, or a thing the viewer may not know exists."""


@dataclass(slots=True)
class Ctx:
    """One signed-in request."""

    request: Request
    session: SessionInfo
    viewer: authz_view.Viewer


class ConsoleApp:
    def __init__(self, config: Config, db: Database, registers: Callable[[], RegisterIndex], *,
                 connectors: list[Any] | None = None, decisions: Any = None,
                 clock: Callable[[], datetime] = _utcnow, secret: str | None = None):
        self.config = config
        self.settings = config.console
        self.db = db
        self.registers = registers
        self.connectors = connectors or []
        self.clock = clock
        # the service's decisions (Slack's, when Slack is on: every message is re-rendered after
        # a decision); a new one per action, with the connectors and registers of the moment
        self.decisions: Callable[[], Any] = decisions or self._own_decisions
        self.tz = ZoneInfo(config.organisation.timezone)
        self.store = SessionStore(db, timedelta(minutes=self.settings.idle_timeout_minutes),
                                  timedelta(hours=self.settings.absolute_timeout_hours))
        configured = self.settings.session_secret
        self.secret = (configured.get_secret_value() if configured else None) or secret or \
            secrets.token_urlsafe(32)
        self.oauth = make_oauth(config)
        self.dev_refusal = dev_login_refusal(config)
        if config.console.dev_login and self.dev_refusal:
            log.error("console: %s", self.dev_refusal)
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(str(HERE.joinpath("templates"))),
                                 FileSystemLoader(str(files("governance_bot")
                                                      .joinpath("templates")))]),
            autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(
            severity_names=SEVERITY_NAMES, category_names=CATEGORY_NAMES,
            route_names=ROUTE_NAMES, status_names=STATUS_NAMES, outcome_names=OUTCOME_NAMES,
            category_name=category_name, organisation=config.organisation.name)
        # need to know over many flags (the queue, its counts); keeps what never changes
        self.lens = FlagLens()
        self.env.filters["when"] = self._when
        self.env.filters["day"] = lambda d: d.astimezone(self.tz).strftime("%d %b %Y") if d else ""

    # --- helpers ------------------------------------------------------------------------------
    def _own_decisions(self) -> Any:
        from governance_bot.decisions import Decisions

        return Decisions(self.db, lambda: authz_view.need_to_know(self.config, self.registers()),
                         connectors=self.connectors, clock=self.clock)

    def _when(self, at: datetime | None) -> str:
        return at.astimezone(self.tz).strftime("%a %d %b %Y, %H:%M") if at else ""

    def secure(self, request: Request) -> bool:
        """Secure cookies, except over plain HTTP to a service bound to loopback (development):
        a browser drops a Secure cookie set over http."""
        return request.url.scheme == "https" or not is_loopback(self.config.service.host)

    def cookie_name(self, request: Request) -> str:
        return SECURE_COOKIE if self.secure(request) else COOKIE

    def render(self, request: Request, template: str, status: int = 200,
               ctx: Ctx | None = None, **values: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request=request, me=ctx.viewer if ctx else None,
            csrf=ctx.session.csrf_token if ctx else None, **values)
        return HTMLResponse(html, status_code=status, headers=_page_headers())

    def audit(self, actor: str, action: str, subject: str | None,
              data: dict[str, Any] | None = None) -> None:
        with self.db.session() as session:
            auditlog.append(session, actor, action, subject, data or {}, at=self.clock())

    def access(self, viewer: authz_view.Viewer) -> Callable[[m.Flag, list[m.Finding], Any], Any]:
        return lambda flag, findings, item: authz_view.case_access(viewer, flag, findings, item)

    # --- who is asking ------------------------------------------------------------------------
    async def _ctx(self, request: Request) -> Ctx | Response:
        token = request.cookies.get(self.cookie_name(request))
        now = self.clock()
        background = request.headers.get("x-requested-with") == "fetch"
        info, why = await run_in_threadpool(self.store.get, token, now, not background)
        if info is None:
            if background:
                return JSONResponse({"signed_out": True, "why": why}, status_code=401)
            target = "/signin" + (f"?expired={why}" if why in ("idle", "absolute") else "")
            resp = RedirectResponse(target, status_code=303)
            if token:
                resp.delete_cookie(self.cookie_name(request), path="/")
            return resp
        viewer = authz_view.viewer_for(self.registers(), self.config, info.staff_id)
        if viewer is None:  # left the register, or made inactive, since signing in
            await run_in_threadpool(self.store.end, info.id, "not in register", now)
            return self.render(request, "refused.html.j2", 403, email=info.email,
                               why="you are no longer an active member of staff in the register")
        return Ctx(request, info, viewer)

    def page(self, handler: Callable[[Ctx], Awaitable[Response]]) -> Handler:
        async def endpoint(request: Request) -> Response:
            ctx = await self._ctx(request)
            if isinstance(ctx, Response):
                return ctx
            if request.method == "POST":
                form = await request.form()
                token = form.get("csrf_token")
                if not self.store.csrf_ok(ctx.session, token if isinstance(token, str) else None):
                    await run_in_threadpool(
                        self.audit, f"staff:{ctx.viewer.staff_id}", "console.csrf_refused",
                        None, {"path": request.url.path})
                    return self.render(request, "error.html.j2", 403, ctx=ctx,
                                       title="This form has expired",
                                       message="The form was not sent from this console (or "
                                       "has expired). Go back, reload the page and try again.")
            try:
                return await handler(ctx)
            except NotFound:
                await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}",
                                        "console.not_found", None, {"path": request.url.path})
                return self.render(request, "error.html.j2", 404, ctx=ctx, title="Not found",
                                   message="There is nothing here, or nothing you may see.")
            except Forbidden as exc:
                await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}",
                                        "console.forbidden", None,
                                        {"path": request.url.path})
                return self.render(request, "error.html.j2", 403, ctx=ctx,
                                   title="Not for your role", message=str(exc))

        return endpoint

    # --- sign-in ------------------------------------------------------------------------------
    async def signin_page(self, request: Request) -> Response:
        expired = request.query_params.get("expired")
        login_csrf = request.session.setdefault("login_csrf", secrets.token_urlsafe(24))
        return self.render(request, "signin.html.j2", oidc=self.oauth is not None,
                           provider=self.settings.oidc.provider,
                           dev=self.settings.dev_login and self.dev_refusal is None
                           and is_loopback(request.client.host if request.client else None),
                           dev_refusal=self.dev_refusal if self.settings.dev_login else None,
                           login_csrf=login_csrf, expired=expired,
                           staff=sorted(self.registers().staff.values(), key=lambda s: s.name)
                           if self.settings.dev_login and self.dev_refusal is None else [])

    async def signin_start(self, request: Request) -> Response:
        if self.oauth is None:
            return self.render(request, "error.html.j2", 404, title="Sign-in is not set up",
                               message="No identity provider is configured: see [console.oidc] "
                               "in docs/console.md.")
        return await self.oauth.authorize_redirect(
            request, str(request.url_for("signin_callback")))

    async def signin_callback(self, request: Request) -> Response:
        from authlib.integrations.base_client import OAuthError

        if self.oauth is None:
            return RedirectResponse("/signin", status_code=303)
        try:
            token = await self.oauth.authorize_access_token(request)
        except OAuthError as exc:
            log.warning("console: sign-in failed at the identity provider: %s", exc.error)
            return self.render(request, "refused.html.j2", 403, email=None,
                               why="the identity provider did not confirm who you are "
                               f"({exc.error}); try signing in again")
        claims = dict(token.get("userinfo") or {})
        email, why = email_from_claims(self.config, claims)
        return await self._signed_in(request, email, "oidc", why)

    async def signin_dev(self, request: Request) -> Response:
        client = request.client.host if request.client else None
        form = await request.form()
        if not self.settings.dev_login or self.dev_refusal or not is_loopback(client):
            await run_in_threadpool(self.audit, f"console:{client}", "console.signin_refused",
                                    None, {"method": "dev", "why": "development sign-in refused"})
            return self.render(request, "error.html.j2", 403, title="Development sign-in refused",
                               message=self.dev_refusal or "The development sign-in is only "
                               "for the bundled example, from this machine.")
        expected = request.session.get("login_csrf")
        if not expected or not secrets.compare_digest(str(form.get("csrf_token") or ""),
                                                      str(expected)):
            return self.render(request, "error.html.j2", 403, title="This form has expired",
                               message="Reload the sign-in page and try again.")
        return await self._signed_in(request, str(form.get("email") or ""), "dev", None)

    async def _signed_in(self, request: Request, email: str | None, method: str,
                         why: str | None) -> Response:
        staff = staff_for_email(self.registers(), email) if why is None else None
        now = self.clock()
        if staff is None:
            await run_in_threadpool(self.audit, f"console:{email or 'unknown'}",
                                    "console.signin_refused", None,
                                    {"method": method, "why": why or "not in the staff register"})
            return self.render(request, "refused.html.j2", 403, email=email,
                               why=why or "this email address is not an active member of staff "
                               "in the register")
        token, _csrf = await run_in_threadpool(self.store.start, staff.staff_id, email or "",
                                               method, now)
        await run_in_threadpool(self.audit, f"staff:{staff.staff_id}", "console.signin",
                                f"staff:{staff.staff_id}", {"method": method})
        request.session.pop("login_csrf", None)
        resp = RedirectResponse(request.session.pop("next", None) or "/", status_code=303)
        resp.set_cookie(self.cookie_name(request), token, httponly=True,
                        secure=self.secure(request), samesite="lax", path="/",
                        max_age=self.settings.absolute_timeout_hours * 3600)
        return resp

    async def signout(self, ctx: Ctx) -> Response:
        await run_in_threadpool(self.store.end, ctx.session.id, "signed out", self.clock())
        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.signout",
                                f"staff:{ctx.viewer.staff_id}", {})
        resp = RedirectResponse("/signin?signed_out=1", status_code=303)
        resp.delete_cookie(self.cookie_name(ctx.request), path="/")
        return resp

    # --- the queue ----------------------------------------------------------------------------
    def _filters(self, request: Request) -> QueueFilters:
        q = request.query_params

        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(q[name]) if q.get(name) else None
            except ValueError:
                return None

        severity = q.get("severity")
        page = q.get("page", "1")
        return QueueFilters(
            route=q.get("route") or None, category=q.get("category") or None,
            severity=int(severity) if severity and severity.isdigit() else None,
            account=q.get("account") or None, status=q.get("status", "open") or "open",
            since=day("from"), until=day("to"), sort=q.get("sort") or "newest",
            page=int(page) if page.isdigit() else 1)

    def _shown(self, viewer: authz_view.Viewer) -> Callable[[Any, Any], Any]:
        """Each flag the viewer may see, as they see it: need to know itself decides, for
        every flag listed or counted (``FlagLens``; it also knows the item's author, which the
        queue's scope cannot)."""
        return lambda session, where: self.lens.listed(session, where, viewer.staff, viewer.nt)

    def _queue(self, viewer: authz_view.Viewer, filters: QueueFilters) -> Any:
        with self.db.session() as session:
            return load_queue(session, authz_view.queue_scope(viewer), filters,
                              listed=self._shown(viewer))

    async def queue(self, ctx: Ctx) -> Response:
        viewer = ctx.viewer
        if not viewer.safeguarding and not viewer.managed_accounts:
            if viewer.administrator:
                return RedirectResponse("/system", status_code=303)
            return self.render(ctx.request, "empty.html.j2", ctx=ctx)
        filters = self._filters(ctx.request)
        page = await run_in_threadpool(self._queue, viewer, filters)
        await run_in_threadpool(self.audit, f"staff:{viewer.staff_id}", "console.view", "queue",
                                {"flags": [r.id for r in page.rows][:100]})
        accounts = sorted(self.registers().accounts) if viewer.safeguarding else \
            sorted(viewer.managed_accounts)
        return self.render(ctx.request, "queue.html.j2", ctx=ctx, page=page, f=filters,
                           accounts=accounts, query=ctx.request.query_params)

    async def queue_updates(self, ctx: Ctx) -> Response:
        """New flags since ``after`` in the open queue (polled every few seconds by the page)."""
        try:
            after = int(ctx.request.query_params.get("after", "0"))
        except ValueError:
            after = 0
        filters = self._filters(ctx.request)
        filters.page = 1

        def newer() -> Any:
            with self.db.session() as session:
                scope = and_(authz_view.queue_scope(ctx.viewer), m.Flag.id > after)
                return load_queue(session, scope, filters, listed=self._shown(ctx.viewer))

        page = await run_in_threadpool(newer)
        rows = page.rows
        if rows:
            await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                    "queue", {"flags": [r.id for r in rows][:100], "live": True})
        html = self.env.get_template("queue_rows.html.j2").render(rows=rows, new=True)
        return JSONResponse({"html": html, "count": len(rows),
                             "latest": max([after, *[r.id for r in rows]])})

    # --- a case -------------------------------------------------------------------------------
    def _case(self, viewer: authz_view.Viewer, flag_id: int) -> Case | None:
        with self.db.session() as session:
            return load_case(session, flag_id, config=self.config, registers=self.registers(),
                             access=self.access(viewer))

    async def case(self, ctx: Ctx) -> Response:
        flag_id = _int(ctx.request.path_params["flag_id"])
        case = await run_in_threadpool(self._case, ctx.viewer, flag_id) if flag_id else None
        if case is None:
            raise NotFound()
        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                f"flag:{flag_id}", {"page": "case"})
        from governance_bot.decisions import INFORM_METHODS, OUTCOMES

        nt = ctx.viewer.nt
        facts_team = [s for s in nt.dsl_team() if not any(
            f"staff:{s.staff_id}" in (f.subject or "").split(">") for f in case.findings)]
        removal: dict[str, Any] = {}
        if "remove" in case.actions:
            decisions = self.decisions()
            removal = {"moderation": decisions.moderation_options(case.flag.account),
                       "inform": await run_in_threadpool(decisions.inform_roles, case.flag.id),
                       "methods": INFORM_METHODS}
        photos = sorted({str((f.evidence or {}).get("detail", {}).get("sha256"))
                         for f in case.findings
                         if (f.evidence or {}).get("detail", {}).get("sha256")})
        return self.render(ctx.request, "case.html.j2", ctx=ctx, case=case, deputies=facts_team,
                           outcomes=OUTCOMES, removal=removal, photos=photos,
                           notice=ctx.request.query_params.get("done"),
                           problem=ctx.request.query_params.get("problem"),
                           notes_possible=_encryption_on())

    async def add_note(self, ctx: Ctx) -> Response:
        flag_id = _int(ctx.request.path_params["flag_id"])
        case = await run_in_threadpool(self._case, ctx.viewer, flag_id) if flag_id else None
        if case is None:
            raise NotFound()
        if not case.can_write_notes:
            raise Forbidden("Case notes are written by the DSL and deputies.")
        if not _encryption_on():
            raise Forbidden("Case notes are kept only encrypted: set [security] encryption_keys "
                            "(docs/security.md) first.")
        form = await ctx.request.form()
        text = str(form.get("note") or "").strip()
        if not text:
            return RedirectResponse(f"/flags/{flag_id}?problem=empty-note#notes", status_code=303)
        now = self.clock()

        def write() -> None:
            with self.db.session() as session:
                note = CaseNote(flag_id=flag_id, staff_id=ctx.viewer.staff_id, text=text[:20000],
                                created_at=now)
                session.add(note)
                session.flush()
                auditlog.append(session, f"staff:{ctx.viewer.staff_id}", "console.note",
                                f"flag:{flag_id}", {"note_id": note.id}, at=now)

        await run_in_threadpool(write)
        return RedirectResponse(f"/flags/{flag_id}?done=note#notes", status_code=303)

    async def act(self, ctx: Ctx) -> Response:
        from governance_bot.console import actions

        flag_id = _int(ctx.request.path_params["flag_id"])
        action = ctx.request.path_params["action"]
        if flag_id is None:
            raise NotFound()
        case = await run_in_threadpool(self._case, ctx.viewer, flag_id) if flag_id else None
        if case is None:
            raise NotFound()
        if action not in actions.NAMES:
            raise NotFound()
        # whether this person may, now, is the decisions module's to say (a form sent twice is
        # answered "already recorded"; someone else's decision is refused and audited)
        form = await ctx.request.form()
        fields = {k: str(v) for k, v in form.items() if k not in ("csrf_token", "inform")}
        inform = [str(v) for v in form.getlist("inform")]
        result = await run_in_threadpool(actions.carry_out, self.decisions(), ctx.viewer,
                                         flag_id, action, fields, inform)
        query = {"done": action} if result.ok else {"problem": result.message}
        return RedirectResponse(f"/flags/{flag_id}?{urlencode(query)}", status_code=303)

    async def media(self, ctx: Ctx) -> Response:
        """A thumbnail of an image the archive keeps a copy of, for those who may see the case;
        never a possibly explicit image."""
        from starlette.responses import FileResponse

        flag_id = _int(ctx.request.path_params["flag_id"])
        index = _int(ctx.request.path_params["index"])
        case = await run_in_threadpool(self._case, ctx.viewer, flag_id) if flag_id else None
        if case is None or index is None or case.explicit_image:
            raise NotFound()
        shown = {md["index"]: md for md in case.media if md["thumbnail"]}
        if index not in shown:
            raise NotFound()
        path = case.item.media[index].local_path
        if not path:
            raise NotFound()
        from pathlib import Path

        file = Path(path)
        if not file.is_file():
            raise NotFound()
        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                f"flag:{flag_id}", {"page": "media", "index": index})
        return FileResponse(file, media_type=str(shown[index]["mime"]),
                            headers={"Cache-Control": "no-store"})

    # --- exports ------------------------------------------------------------------------------
    async def export(self, ctx: Ctx) -> Response:
        from governance_bot.console.export import case_csv, case_pdf

        flag_id = _int(ctx.request.path_params["flag_id"])
        fmt = ctx.request.path_params["fmt"]
        if fmt not in ("pdf", "csv", "json"):
            raise NotFound()
        case = await run_in_threadpool(self._case, ctx.viewer, flag_id) if flag_id else None
        if case is None:
            raise NotFound()
        if not case.can_export:
            raise Forbidden("Cases are exported by the DSL team and the case manager.")
        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.export",
                                f"flag:{flag_id}", {"format": fmt})
        name = f"case-{flag_id}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"',
                   "Cache-Control": "no-store"}
        if fmt == "json":
            body = json.dumps(case.as_dict(), indent=2, ensure_ascii=False)
            return Response(body, media_type="application/json", headers=headers)
        if fmt == "csv":
            return Response(case_csv(case), media_type="text/csv; charset=utf-8", headers=headers)
        pdf = await run_in_threadpool(case_pdf, case, self.config, ctx.viewer.staff.name,
                                      self.clock())
        return Response(pdf, media_type="application/pdf", headers=headers)

    # --- search -------------------------------------------------------------------------------
    async def search(self, ctx: Ctx) -> Response:
        from governance_bot.console.search import SearchQuery, run_search

        viewer = ctx.viewer
        if not viewer.safeguarding and not viewer.managed_accounts:
            raise Forbidden("Search is for the DSL and deputies and the account managers.")
        q = SearchQuery.from_params(ctx.request.query_params)
        hits = None
        if q.asked:
            hits = await run_in_threadpool(run_search, self, viewer, q)
            await run_in_threadpool(self.audit, f"staff:{viewer.staff_id}", "console.search",
                                    None, {"fields": q.fields_used(),
                                           "flags": [h.case.flag.id for h in hits][:100]})
        accounts = sorted(self.registers().accounts) if viewer.safeguarding else \
            sorted(viewer.managed_accounts)
        return self.render(ctx.request, "search.html.j2", ctx=ctx, q=q, hits=hits,
                           accounts=accounts)

    # --- reports ------------------------------------------------------------------------------
    def _reports_allowed(self, viewer: authz_view.Viewer) -> None:
        if not (viewer.safeguarding or viewer.administrator or viewer.managed_accounts):
            raise Forbidden("Reports are for the DSL and deputies, the account managers and "
                            "the administrators.")

    async def reports(self, ctx: Ctx) -> Response:
        from governance_bot.storage.audit_models import AccessAuditRun

        self._reports_allowed(ctx.viewer)

        def runs() -> list[AccessAuditRun]:
            with self.db.session() as session:
                return list(session.execute(select(AccessAuditRun).order_by(
                    AccessAuditRun.id.desc()).limit(26)).scalars())

        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                "reports", {})
        today = self.clock().astimezone(self.tz).date()
        return self.render(ctx.request, "reports.html.j2", ctx=ctx,
                           governors=ctx.viewer.nt.handles_cases(ctx.viewer.staff),
                           runs=await run_in_threadpool(runs),
                           default_from=(today - timedelta(days=90)).isoformat(),
                           default_to=today.isoformat())

    async def governors(self, ctx: Ctx) -> Response:
        from governance_bot.reports import governors_sections

        if not ctx.viewer.nt.handles_cases(ctx.viewer.staff):
            raise Forbidden("The report to governors is for the DSL team and the case manager: "
                            "it counts every case.")
        q = ctx.request.query_params
        try:
            first = date.fromisoformat(q.get("from", ""))
            last = date.fromisoformat(q.get("to", ""))
        except ValueError:
            return RedirectResponse("/reports?problem=dates", status_code=303)
        sections = await run_in_threadpool(governors_sections, self.config, self.db, first, last)
        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                "report:governors", {"from": first.isoformat(),
                                                     "to": last.isoformat()})
        period = f"{first:%d %B %Y} to {last:%d %B %Y}"
        if q.get("download"):
            from governance_bot.reports import render_html

            html = render_html("Online safety: report to governors",
                               self.config.organisation.name, period, sections)
            return Response(html, media_type="text/html", headers={
                "Content-Disposition": f'attachment; filename="governors-{first}-{last}.html"'})
        return self.render(ctx.request, "report_page.html.j2", ctx=ctx,
                           title="Online safety: report to governors", period=period,
                           sections=sections, download=f"/reports/governors?from={first}"
                           f"&to={last}&download=1")

    async def access_audit(self, ctx: Ctx) -> Response:
        from governance_bot.reports import access_audit_data

        self._reports_allowed(ctx.viewer)
        run_id = _int(ctx.request.path_params["run_id"])
        fmt = ctx.request.path_params.get("fmt", "html")
        data = await run_in_threadpool(access_audit_data, self.config, self.db, run_id or 0,
                                       self.registers())
        if data is None:
            raise NotFound()
        title, period, sections, csv_rows = data
        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                f"access_audit:{run_id}", {"format": fmt})
        if fmt == "csv":
            buf = io.StringIO()
            csv.writer(buf).writerows(csv_rows)
            return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
                "Content-Disposition": f'attachment; filename="access-audit-{run_id}.csv"'})
        return self.render(ctx.request, "report_page.html.j2", ctx=ctx, title=title,
                           period=period, sections=sections,
                           download=f"/reports/access-audit/{run_id}.csv")

    # --- administrators: system health and the audit log --------------------------------------
    async def system(self, ctx: Ctx) -> Response:
        if not ctx.viewer.nt.oversees(ctx.viewer.staff):
            raise Forbidden("System health is for the administrators and the DSL.")

        def facts() -> dict[str, Any]:
            with self.db.session() as session:
                states = list(session.execute(select(m.ConnectorState)
                                              .order_by(m.ConnectorState.name)).scalars())
                pending = session.execute(select(func.count()).select_from(m.OutboxMessage)
                                          .where(m.OutboxMessage.delivered_at.is_(None))
                                          ).scalar_one()
                verified = auditlog.verify(session)
            return {"states": states, "pending": pending, "verified": verified}

        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                "system", {})
        return self.render(ctx.request, "system.html.j2", ctx=ctx,
                           **await run_in_threadpool(facts))

    async def audit_log(self, ctx: Ctx) -> Response:
        if not ctx.viewer.nt.oversees(ctx.viewer.staff):
            raise Forbidden("The audit log is for the administrators and the DSL.")
        before = _int(ctx.request.query_params.get("before", "")) or None

        def events() -> list[m.AuditEvent]:
            with self.db.session() as session:
                query = select(m.AuditEvent).order_by(m.AuditEvent.seq.desc()).limit(100)
                if before:
                    query = query.where(m.AuditEvent.seq < before)
                return list(session.execute(query).scalars())

        rows = await run_in_threadpool(events)
        await run_in_threadpool(self.audit, f"staff:{ctx.viewer.staff_id}", "console.view",
                                "audit_log", {"before": before})
        regs = self.registers()
        return self.render(ctx.request, "audit.html.j2", ctx=ctx, events=rows,
                           who=lambda actor: _actor(regs, actor))

    # --- the app ------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        """The console's routes, to sit beside the service's own (/healthz, /webhooks/...,
        /slack/events): added to the service's router, not mounted under it, so a wrong method
        on a service path still answers 405."""
        p = self.page
        return [
            Route("/", p(self.queue), name="queue"),
            Route("/queue/updates", p(self.queue_updates)),
            Route("/signin", self.signin_page, name="signin"),
            Route("/signin/oidc", self.signin_start),
            Route("/signin/callback", self.signin_callback, name="signin_callback"),
            Route("/signin/dev", self.signin_dev, methods=["POST"]),
            Route("/signout", p(self.signout), methods=["POST"]),
            Route("/flags/{flag_id}", p(self.case)),
            Route("/flags/{flag_id}/notes", p(self.add_note), methods=["POST"]),
            Route("/flags/{flag_id}/actions/{action}", p(self.act), methods=["POST"]),
            Route("/flags/{flag_id}/export.{fmt}", p(self.export)),
            Route("/flags/{flag_id}/media/{index}", p(self.media)),
            Route("/search", p(self.search)),
            Route("/reports", p(self.reports)),
            Route("/reports/governors", p(self.governors)),
            Route("/reports/access-audit/{run_id}", p(self.access_audit)),
            Route("/reports/access-audit/{run_id}.{fmt}", p(self.access_audit)),
            Route("/system", p(self.system)),
            Route("/audit", p(self.audit_log)),
            Mount("/static", StaticFiles(directory=str(HERE.joinpath("static"))), name="static"),
        ]

    def middleware(self) -> list[Middleware]:
        """Authlib's state and nonce between the redirect and the callback, and the sign-in
        form's CSRF token: a short-lived signed cookie, separate from the session, set only
        when the sign-in pages use it."""
        return [Middleware(SessionMiddleware, secret_key=self.secret, session_cookie="gb_signin",
                           max_age=900, same_site="lax",
                           https_only=not is_loopback(self.config.service.host))]

    def build(self) -> Starlette:
        return Starlette(routes=self.routes(), middleware=self.middleware())


def _page_headers() -> dict[str, str]:
    # nothing from elsewhere; no framing; pages with case content are never cached
    return {
        "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                   "style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
                                   "form-action 'self'; base-uri 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 12 else None


def _encryption_on() -> bool:
    from governance_bot.storage import crypto

    return crypto.is_configured()


def _actor(registers: RegisterIndex, actor: str) -> str:
    if actor.startswith("staff:"):
        return staff_name(registers, actor)
    return actor


def build_console(config: Config, db: Database, registers: Callable[[], RegisterIndex], *,
                  connectors: list[Any] | None = None, decisions: Any = None,
                  clock: Callable[[], datetime] = _utcnow) -> Starlette:
    """The console as a Starlette app, to be mounted at the root of the service."""
    return ConsoleApp(config, db, registers, connectors=connectors, decisions=decisions,
                      clock=clock).build()


def not_found_text() -> PlainTextResponse:
    return PlainTextResponse("not found", status_code=404)
