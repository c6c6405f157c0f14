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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from statistics import median
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import or_, select

from governance_bot.config import Config
from governance_bot.labels import SEVERITY_NAMES, audit_check_name, category_name, person_name
from governance_bot.storage import models as m
from governance_bot.storage.audit_models import AccessAuditRun, AccessFinding
from governance_bot.storage.db import Database

__all__ = ["Section", "access_audit_data", "access_audit_report", "governors_report",
           "governors_sections", "render_html"]

REMOVAL_ACTIONS = {"flag.removed", "flag.remove", "decision.remove"}
CHANGE_PREFIXES = ("register.", "config.", "rules.", "thresholds.")


@dataclass
class Section:
    heading: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    chart: str | None = None  # base64 PNG
    chart_alt: str = ""  # what the chart shows, for people who cannot see it
    empty: str = ""
    empty_tone: str = "neutral"  # good (green) only when the empty table is good news
    tone: str = ""  # of ``text``: good, bad or neutral
    severity_first: bool = False
    row_headers: bool = False  # the first cell of each row names the row


def _env() -> Environment:
    return Environment(loader=PackageLoader("governance_bot", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                       lstrip_blocks=True)


def render_html(title: str, organisation: str, period: str, sections: list[Section]) -> str:
    """A report as one self-contained HTML file (the console shows the same body)."""
    template = _env().get_template("report.html.j2")
    charts = [s.chart for s in sections if s.chart]
    return template.render(title=title, organisation=organisation, period=period,
                           generated=datetime.now(UTC).strftime("%d %B %Y %H:%M UTC"),
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


def _stacked(ax: Any, labels: list[str], series: list[tuple[str, list[int]]]) -> None:
    """Stacked bars at numbered positions, labelled afterwards (labels such as "Sep 2026"
    passed as categories make matplotlib log a note about date-like strings for every call)."""
    positions = list(range(len(labels)))
    bottom = [0] * len(labels)
    for name, values in series:
        ax.bar(positions, values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(positions, labels, rotation=45, ha="right")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _staff_names(db: Database) -> dict[str, str]:
    from governance_bot.register_store import load_registers

    with db.session() as session:
        return {s.staff_id: s.name for s in load_registers(session).staff}


# --- weekly access audit ----------------------------------------------------------------------
def access_audit_data(config: Config, db: Database, run_id: int, registers: Any = None
                      ) -> tuple[str, str, list[Section], list[list[str]]] | None:
    """(title, period, sections, CSV rows) of one weekly audit; None if there is no such run."""
    names = ({s.staff_id: s.name for s in registers.staff.values()} if registers is not None
             else _staff_names(db))
    with db.session() as session:
        run = session.get(AccessAuditRun, run_id)
        if run is None:
            return None
        findings = list(session.execute(select(AccessFinding).where(
            AccessFinding.run_id == run_id).order_by(AccessFinding.severity.desc(),
                                                     AccessFinding.account_id)).scalars())
        started = run.started_at
    csv_rows = [["severity", "account", "check", "finding", "remedy", "status", "resolved_by",
                 "resolved_by_name", "note"]]
    for f in findings:
        csv_rows.append([str(f.severity), f.account_id, f.check, f.message, f.remedy, f.status,
                         f.resolved_by or "",
                         person_name(f.resolved_by, names) if f.resolved_by else "",
                         f.resolution_note or ""])
    rows = [[f"{f.severity} {SEVERITY_NAMES.get(f.severity, '')}", f.account_id,
             audit_check_name(f.check), f.message, f.remedy,
             f.status + (f" by {person_name(f.resolved_by, names)}: {f.resolution_note}"
                         if f.resolved_by else "")]
            for f in findings]
    section = Section("Findings", columns=["severity", "account", "problem", "finding", "remedy",
                                            "status"], rows=rows, severity_first=True,
                      empty="No findings: every account has two current designated managers who "
                            "confirmed access, with two-factor authentication and fresh passwords.",
                      empty_tone="good")
    return (f"Dual-access audit #{run_id}", f"week of Monday {_monday(started):%d %B %Y}",
            [section], csv_rows)


def access_audit_report(config: Config, db: Database, run_id: int, out_dir: Path
                        ) -> tuple[Path, Path]:
    """Write ``access-audit-<run>.html`` and ``.csv``; return their paths."""
    data = access_audit_data(config, db, run_id)
    if data is None:
        raise KeyError(f"no access audit run {run_id}")
    title, period, sections, csv_rows = data
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"access-audit-{run_id}.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(csv_rows)
    html = render_html(title, config.organisation.name, period, sections)
    html_path = out_dir / f"access-audit-{run_id}.html"
    html_path.write_text(html, encoding="utf-8")
    return html_path, csv_path


# --- governors' report --------------------------------------------------------------------------
def governors_sections(config: Config, db: Database, start: date, end: date) -> list[Section]:
    """The sections of the governors' report for flags about items posted from ``start`` to
    ``end`` (inclusive), and the removals, audits and changes made in that period."""
    from governance_bot.masking import mask_learners
    from governance_bot.register_store import load_registers
    from governance_bot.registers import RegisterIndex

    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    t1 = datetime.combine(end, time.max, tzinfo=UTC)
    with db.session() as session:
        registers = RegisterIndex(load_registers(session))
    names = {s.staff_id: s.name for s in registers.staff.values()}
    with db.session() as session:
        # a flag belongs to the month its item was posted, not the month it was detected (a
        # backfill in March of January's posts is January's)
        flags = list(session.execute(select(m.Flag).where(
            m.Flag.item_created_at >= t0, m.Flag.item_created_at <= t1)).scalars())
        events = list(session.execute(select(m.AuditEvent).where(
            m.AuditEvent.created_at >= t0, m.AuditEvent.created_at <= t1,
            or_(m.AuditEvent.action.in_(REMOVAL_ACTIONS | {"flag.informed"}),
                *[m.AuditEvent.action.startswith(p) for p in CHANGE_PREFIXES])
        ).order_by(m.AuditEvent.seq)).scalars())
        audit_rows = session.execute(
            select(AccessAuditRun.started_at, AccessFinding.check, AccessFinding.status)
            .join(AccessFinding, AccessFinding.run_id == AccessAuditRun.id)
            .where(AccessAuditRun.started_at >= t0, AccessAuditRun.started_at <= t1)
        ).all()
    return [
        _flags_by_month(flags, start, end),
        _time_to_acknowledge(flags),
        # a reason is free text written by whoever decided: learners it names are masked
        _removals(events, names, lambda text: mask_learners(text, registers)),
        _audit_over_time(list(audit_rows)),
        _changes(events, names),
    ]


def governors_report(config: Config, db: Database, start: date, end: date, out: Path) -> Path:
    """The termly/annual report for governors, as one self-contained HTML file."""
    sections = governors_sections(config, db, start, end)
    html = render_html("Online safety: report to governors", config.organisation.name,
                       f"{start:%d %B %Y} to {end:%d %B %Y}", sections)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _months(start: date, end: date, present: set[str]) -> list[str]:
    """Every month of the period when it is at most a year, else only the months with flags."""
    months: list[str] = []
    y, mo = start.year, start.month
    while (y, mo) <= (end.year, end.month) and len(months) <= 12:
        months.append(f"{y:04d}-{mo:02d}")
        y, mo = (y + 1, 1) if mo == 12 else (y, mo + 1)
    return months if len(months) <= 12 else sorted(present)


def _month_label(key: str) -> str:
    return datetime.strptime(key, "%Y-%m").strftime("%b %Y")


def _flags_by_month(flags: list[m.Flag], start: date, end: date) -> Section:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for f in flags:
        counts[f.category][f"{f.item_created_at:%Y-%m}"] += 1
    months = _months(start, end, {mo for c in counts.values() for mo in c})
    categories = sorted(counts, key=lambda c: (-sum(counts[c].values()), category_name(c)))
    # one row per concern and one column per month: a year fits a 1280-pixel screen
    rows: list[list[Any]] = [[category_name(c), *[counts[c][mo] for mo in months],
                              sum(counts[c].values())] for c in categories]
    if rows:
        rows.append(["all concerns", *[sum(counts[c][mo] for c in categories) for mo in months],
                     len(flags)])
    chart = None
    if flags:
        fig, ax = _figure()
        _stacked(ax, [_month_label(mo) for mo in months],
                 [(category_name(c), [counts[c][mo] for mo in months]) for c in categories])
        ax.set_ylabel("flags")
        ax.set_title("Flags by month of posting and concern")
        chart = _png(fig)
    return Section("Flags by category and month", columns=["concern", *[_month_label(mo)
                                                                      for mo in months], "total"],
                   rows=rows, chart=chart, row_headers=True, empty="No flags in this period.",
                   chart_alt="Stacked bars of flags per month, by concern; the table below "
                             "gives the numbers.",
                   text=f"{len(flags)} flag{'' if len(flags) == 1 else 's'} about items posted "
                        "in the period, by the month of posting.")


def _time_to_acknowledge(flags: list[m.Flag]) -> Section:
    dsl = [f for f in flags if f.route == "dsl"]
    by_sev: dict[int, list[m.Flag]] = defaultdict(list)
    for f in dsl:
        by_sev[f.severity].append(f)
    rows: list[list[Any]] = []
    medians: dict[int, float] = {}
    for sev in sorted(by_sev, reverse=True):
        minutes = [(f.acknowledged_at - f.created_at).total_seconds() / 60
                   for f in by_sev[sev] if f.acknowledged_at is not None]
        waiting = len(by_sev[sev]) - len(minutes)
        if minutes:
            medians[sev] = median(minutes)
        rows.append([f"{sev} {SEVERITY_NAMES.get(sev, '')}", len(by_sev[sev]), len(minutes),
                     waiting, f"{median(minutes):.0f}" if minutes else "-",
                     f"{max(minutes):.0f}" if minutes else "-"])
    acknowledged = sum(r[2] for r in rows)
    waiting = len(dsl) - acknowledged
    chart = None
    if medians:
        fig, ax = _figure()
        sevs = sorted(medians, reverse=True)
        ax.barh(range(len(sevs)), [medians[s] for s in sevs], color="#1f5f99")
        ax.set_yticks(range(len(sevs)), [f"severity {s}" for s in sevs])
        ax.invert_yaxis()
        ax.set_xlabel("median minutes to acknowledge")
        ax.set_title("Flags sent to the DSL: median time to acknowledge")
        chart = _png(fig)
    if not dsl:
        text, tone = "", ""
    elif waiting:
        text = (f"{len(dsl)} flag{'' if len(dsl) == 1 else 's'} went to the DSL: "
                f"{acknowledged} acknowledged, {waiting} not yet acknowledged.")
        tone = "bad"
    else:
        text = (f"{len(dsl)} flag{'' if len(dsl) == 1 else 's'} went to the DSL: every one "
                "was acknowledged.")
        tone = "good"
    return Section("Time to acknowledge safeguarding flags",
                   columns=["severity", "flags to the DSL", "acknowledged",
                            "not yet acknowledged", "median minutes", "longest minutes"],
                   rows=rows, chart=chart, text=text, tone=tone, row_headers=True,
                   chart_alt="Median minutes to acknowledge per severity; the table below gives "
                             "the numbers.",
                   empty="No flags went to the DSL in this period.")


def _case(subject: str | None) -> str:
    return f"case {subject[5:]}" if subject and subject.startswith("flag:") else (subject or "")


def _removals(events: list[m.AuditEvent], names: dict[str, str],
              mask: Callable[[str], str]) -> Section:
    # who was informed of a removal made in Slack is its own event (relation and method only:
    # no learner ids or contacts in the report)
    informed: dict[str, list[str]] = defaultdict(list)
    for e in events:
        if e.action == "flag.informed":
            informed[e.subject or ""].extend(
                f"{p.get('relation', '')} ({str(p.get('method', '')).replace('_', ' ')})"
                for p in e.data.get("people", []) or [])
    rows = [[f"{e.created_at:%d %b %Y}", _case(e.subject),
             person_name(str(e.data.get("staff_id") or e.actor), names),
             mask(str(e.data.get("reason", ""))),
             ", ".join(e.data.get("informed", []) or informed.get(e.subject or "", []))]
            for e in events if e.action in REMOVAL_ACTIONS]
    return Section("Removals and their reasons", columns=["date", "case", "decided by", "reason",
                                                          "people informed"], rows=rows,
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
    checks = sorted({c for w in by_week.values() for c in w}, key=audit_check_name)
    chart = None
    if weeks:
        fig, ax = _figure()
        _stacked(ax, [datetime.strptime(w, "%Y-%m-%d").strftime("%d %b") for w in weeks],
                 [(audit_check_name(c), [by_week[w][c] for w in weeks]) for c in checks])
        ax.set_ylabel("findings")
        ax.set_title("Dual-access audit findings by week")
        chart = _png(fig)
    table = [[datetime.strptime(w, "%Y-%m-%d").strftime("week of %d %b %Y"),
              *[by_week[w][c] for c in checks]] for w in weeks]
    return Section("Dual-access audit findings over time",
                   columns=["week", *[audit_check_name(c) for c in checks]], rows=table,
                   chart=chart, row_headers=True,
                   chart_alt="Stacked bars of audit findings per week, by problem; the table "
                             "below gives the numbers.",
                   empty="No dual-access audit findings in the period.", empty_tone="good")


CHANGE_WORDS = {"added": "added", "updated": "changed", "removed": "removed"}
REGISTER_WORDS = {"staff": "staff register", "learners": "learner register",
                  "accounts": "accounts register"}


def _changes(events: list[m.AuditEvent], names: dict[str, str]) -> Section:
    """Changes summarised per day, person and kind: "learner register: 30 records added", never
    the learners' ids one by one."""
    groups: dict[tuple[str, str, str], list[m.AuditEvent]] = defaultdict(list)
    order: list[tuple[str, str, str]] = []
    for e in events:
        if not e.action.startswith(CHANGE_PREFIXES):
            continue
        key = (f"{e.created_at:%d %b %Y}", person_name(e.actor, names), e.action)
        if key not in groups:
            order.append(key)
        groups[key].append(e)
    rows = []
    for day, who, action in order:
        group = groups[(day, who, action)]
        parts = action.split(".")
        if parts[0] == "register" and len(parts) == 3:
            what = (f"{REGISTER_WORDS.get(parts[1], parts[1])}: {len(group)} record"
                    f"{'' if len(group) == 1 else 's'} {CHANGE_WORDS.get(parts[2], parts[2])}")
            fields = sorted({f for e in group for f in e.data.get("fields", []) or []})
            detail = ("fields: " + ", ".join(fields)) if fields else ""
            if parts[1] != "learners" and len(group) <= 10:  # never learners' ids
                detail = ", ".join(filter(None, [", ".join(
                    names.get((e.subject or "").split(":", 1)[-1], "")
                    or (e.subject or "").split(":", 1)[-1] for e in group), detail]))
        elif action == "config.changed":
            what = "configuration or rules changed"
            detail = ", ".join(sorted({str(f).strip("()") for e in group
                                       for f in e.data.get("fields", []) or []}))
        else:
            what = action.replace(".", ": ").replace("_", " ")
            detail = ""
        rows.append([day, who, what, detail])
    return Section("Changes to rules, thresholds, registers and configuration",
                   columns=["date", "who", "what changed", "details"], rows=rows,
                   empty="No changes in this period.")
