"""Reports: the weekly access-audit report (HTML and CSV) and the termly/annual governors'
report (flags by category and month, time to acknowledge, removals and their reasons, audit
findings over time, changes to rules, registers and config), with charts drawn by matplotlib and
embedded in the HTML. No message text and no learner details appear in any report.
"""

from __future__ import annotations

import base64
import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib.resources import files
from pathlib import Path
from statistics import median
from typing import Any

from jinja2 import Environment, select_autoescape
from sqlalchemy import select

from governance_bot.config import Config
from governance_bot.storage import models as m
from governance_bot.storage.audit_models import AccessAuditRun, AccessFinding
from governance_bot.storage.db import Database

__all__ = ["Section", "access_audit_report", "governors_report", "render_html"]

REMOVAL_ACTIONS = {"flag.removed", "flag.remove", "decision.remove"}
CHANGE_PREFIXES = ("register.", "config.", "rules.", "thresholds.")


@dataclass
class Section:
    heading: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    chart: str | None = None  # base64 PNG
    empty: str = ""
    severity_first: bool = False


def _env() -> Environment:
    return Environment(autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                       lstrip_blocks=True)


def render_html(title: str, organisation: str, period: str, sections: list[Section]) -> str:
    template = _env().from_string(
        files("governance_bot").joinpath("templates/report.html.j2").read_text())
    charts = [s.chart for s in sections if s.chart]
    return template.render(title=title, organisation=organisation, period=period,
                           generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                           sections=sections, charts=charts)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figure() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(8, 3.4))


# --- weekly access audit ----------------------------------------------------------------------
def access_audit_report(config: Config, db: Database, run_id: int, out_dir: Path
                        ) -> tuple[Path, Path]:
    """Write ``access-audit-<run>.html`` and ``.csv``; return their paths."""
    with db.session() as session:
        run = session.get(AccessAuditRun, run_id)
        if run is None:
            raise KeyError(f"no access audit run {run_id}")
        findings = list(session.execute(select(AccessFinding).where(
            AccessFinding.run_id == run_id).order_by(AccessFinding.severity.desc(),
                                                     AccessFinding.account_id)).scalars())
        started = run.started_at
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"access-audit-{run_id}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["severity", "account", "check", "finding", "remedy", "status",
                         "resolved_by", "note"])
        for f in findings:
            writer.writerow([f.severity, f.account_id, f.check, f.message, f.remedy, f.status,
                             f.resolved_by or "", f.resolution_note or ""])
    rows = [[f.severity, f.account_id, f.check, f.message, f.remedy,
             f.status + (f" by {f.resolved_by}: {f.resolution_note}" if f.resolved_by else "")]
            for f in findings]
    section = Section("Findings", columns=["severity", "account", "check", "finding", "remedy",
                                            "status"], rows=rows, severity_first=True,
                      empty="No findings: every account has two current designated managers who "
                            "confirmed access, with two-factor authentication and fresh passwords.")
    html = render_html(f"Dual-access audit #{run_id}", config.organisation.name,
                       f"week of Monday {_monday(started):%d %B %Y}", [section])
    html_path = out_dir / f"access-audit-{run_id}.html"
    html_path.write_text(html, encoding="utf-8")
    return html_path, csv_path


# --- governors' report --------------------------------------------------------------------------
def governors_report(config: Config, db: Database, start: date, end: date, out: Path) -> Path:
    """The termly/annual report for governors, as one self-contained HTML file."""
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    t1 = datetime.combine(end, time.max, tzinfo=UTC)
    with db.session() as session:
        flags = list(session.execute(select(m.Flag).where(
            m.Flag.created_at >= t0, m.Flag.created_at <= t1)).scalars())
        events = list(session.execute(select(m.AuditEvent).where(
            m.AuditEvent.created_at >= t0, m.AuditEvent.created_at <= t1
        ).order_by(m.AuditEvent.seq)).scalars())
        audit_rows = session.execute(
            select(AccessAuditRun.started_at, AccessFinding.check, AccessFinding.status)
            .join(AccessFinding, AccessFinding.run_id == AccessAuditRun.id)
            .where(AccessAuditRun.started_at >= t0, AccessAuditRun.started_at <= t1)
        ).all()
    sections = [
        _flags_by_month(flags),
        _time_to_acknowledge(flags),
        _removals(events),
        _audit_over_time(list(audit_rows)),
        _changes(events),
    ]
    html = render_html("Online safety: report to governors", config.organisation.name,
                       f"{start:%d %B %Y} to {end:%d %B %Y}", sections)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _flags_by_month(flags: list[m.Flag]) -> Section:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for f in flags:
        counts[f"{f.created_at:%Y-%m}"][f.category] += 1
    months = sorted(counts)
    categories = sorted({c for month in counts.values() for c in month})
    rows = [[month, *[counts[month][c] for c in categories], sum(counts[month].values())]
            for month in months]
    chart = None
    if months:
        fig, ax = _figure()
        bottom = [0] * len(months)
        for cat in categories:
            values = [counts[mo][cat] for mo in months]
            ax.bar(months, values, bottom=bottom, label=cat)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel("flags")
        ax.set_title("Flags by category and month")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        chart = _png(fig)
    return Section("Flags by category and month", columns=["month", *categories, "total"],
                   rows=rows, chart=chart, empty="No flags in this period.",
                   text=f"{len(flags)} flag(s) in the period.")


def _time_to_acknowledge(flags: list[m.Flag]) -> Section:
    minutes: dict[int, list[float]] = defaultdict(list)
    for f in flags:
        if f.route == "dsl" and f.acknowledged_at is not None:
            minutes[f.severity].append((f.acknowledged_at - f.created_at).total_seconds() / 60)
    unacknowledged = sum(1 for f in flags if f.route == "dsl" and f.acknowledged_at is None)
    rows = [[sev, len(v), f"{median(v):.0f}", f"{max(v):.0f}"]
            for sev, v in sorted(minutes.items(), reverse=True)]
    chart = None
    if minutes:
        fig, ax = _figure()
        sevs = sorted(minutes, reverse=True)
        ax.boxplot([minutes[s] for s in sevs], tick_labels=[f"severity {s}" for s in sevs])
        ax.set_ylabel("minutes to acknowledge")
        ax.set_title("Safeguarding flags: time to acknowledge")
        chart = _png(fig)
    return Section("Time to acknowledge safeguarding flags",
                   columns=["severity", "flags", "median minutes", "longest minutes"], rows=rows,
                   chart=chart, text=f"{unacknowledged} safeguarding flag(s) not yet "
                   "acknowledged.", empty="No safeguarding flags were acknowledged in the period.")


def _removals(events: list[m.AuditEvent]) -> Section:
    # who was informed of a removal made in Slack is its own event (relation and method only:
    # no learner ids or contacts in the report)
    informed: dict[str, list[str]] = defaultdict(list)
    for e in events:
        if e.action == "flag.informed":
            informed[e.subject or ""].extend(
                f"{p.get('relation', '')} ({str(p.get('method', '')).replace('_', ' ')})"
                for p in e.data.get("people", []) or [])
    rows = [[f"{e.created_at:%Y-%m-%d}", e.subject or "", e.actor,
             str(e.data.get("reason", "")),
             ", ".join(e.data.get("informed", []) or informed.get(e.subject or "", []))]
            for e in events if e.action in REMOVAL_ACTIONS]
    return Section("Removals and their reasons", columns=["date", "flag", "decided by", "reason",
                                                          "informed"], rows=rows,
                   empty="No removals in this period.")


def _monday(at: Any) -> Any:
    """An audit's week is named by its Monday (an audit started on a Wednesday is still in the
    week of that Monday)."""
    day = at.date() if hasattr(at, "date") else at
    return day - timedelta(days=day.weekday())


def _audit_over_time(rows: list[Any]) -> Section:
    by_week: dict[str, Counter[str]] = defaultdict(Counter)
    for started_at, check, _status in rows:
        by_week[f"{_monday(started_at):%Y-%m-%d}"][check] += 1
    weeks = sorted(by_week)
    checks = sorted({c for w in by_week.values() for c in w})
    chart = None
    if weeks:
        fig, ax = _figure()
        bottom = [0] * len(weeks)
        for c in checks:
            values = [by_week[w][c] for w in weeks]
            ax.bar(weeks, values, bottom=bottom, label=c)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel("findings")
        ax.set_title("Dual-access audit findings by week")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.autofmt_xdate()
        chart = _png(fig)
    table = [[w, *[by_week[w][c] for c in checks]] for w in weeks]
    return Section("Dual-access audit findings over time", columns=["week", *checks],
                   rows=table, chart=chart, empty="No dual-access audit findings in the period.")


def _changes(events: list[m.AuditEvent]) -> Section:
    rows = [[f"{e.created_at:%Y-%m-%d %H:%M}", e.actor, e.action, e.subject or "",
             ", ".join(e.data.get("fields", []) or [])]
            for e in events if e.action.startswith(CHANGE_PREFIXES)]
    return Section("Changes to rules, thresholds, registers and configuration",
                   columns=["when", "who", "what", "record", "fields"], rows=rows,
                   empty="No changes in this period.")
