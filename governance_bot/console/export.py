"""A case for a referral: PDF (to attach to a CPOMS or MyConcern record or a LADO referral), CSV
(the chronology, one event a row) and JSON (everything, ``Case.as_dict``).

An export holds exactly what its author may see on the case page (the same ``load_case``), says
who exported it and when, and is audited by the caller.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from governance_bot.config import Config
from governance_bot.console.cases import (
    ROUTE_NAMES,
    SEVERITY_NAMES,
    STATUS_NAMES,
    Case,
    category_name,
)

__all__ = ["case_csv", "case_pdf", "case_text"]

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)


def case_csv(case: Case) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["when (UTC)", "who", "what", "detail"])
    for e in case.chronology():
        writer.writerow([e.at.isoformat(timespec="seconds"), e.who, e.what, e.detail])
    return buf.getvalue()


def case_text(case: Case, config: Config) -> str:
    """The case as plain text (``flags show``): the same sections as the page and the PDF."""
    tz = ZoneInfo(config.organisation.timezone)

    def when(at: datetime | None) -> str:
        return at.astimezone(tz).strftime("%a %d %b %Y %H:%M") if at else ""

    f = case.flag
    lines = [f"Case {f.id}: {category_name(case.category)}",
             f"  severity {case.severity} ({SEVERITY_NAMES.get(case.severity, '')}) · "
             f"{STATUS_NAMES.get(f.status, f.status)} · sent to the "
             f"{ROUTE_NAMES.get(case.route, case.route)}"
             + (f" · assigned to {case.assigned_to}" if case.assigned_to else "")
             + (f" · outcome: {case.outcome}" if case.outcome else ""),
             f"  {case.where} · posted {when(f.item_created_at)} by {case.author}"]
    if case.url:
        lines.append(f"  {case.url}")
    if case.record.deleted_at:
        lines.append(f"  deleted on the platform {when(case.record.deleted_at)} (its last copy "
                     "is kept)")
    lines += ["", "The item:"]
    if case.explicit_image:
        lines.append("  A possibly explicit image: never displayed.")
    lines += [f"  {line}" for line in (case.text or "(no text)").splitlines()]
    lines += ["", "Why it was flagged:"]
    lines += [f"  - {category_name(x.category)}, severity {x.severity}: {x.explanation}"
              for x in case.findings]
    for lr in case.learners:
        lines += ["", f"Learner: {lr.name} ({lr.learner_id})"
                  + (f", born {lr.date_of_birth:%d %b %Y}" if lr.date_of_birth else "")
                  + f", photo consent {'yes' if lr.photo_consent else 'no'}"]
        for fid, at, cat, sev, status in lr.earlier_flags:
            lines.append(f"  earlier: case {fid}, {when(at)}: {category_name(cat)}, severity "
                         f"{sev}, {STATUS_NAMES.get(status, status)}")
    if len(case.thread) > 1:
        lines += ["", "The conversation around it:"]
        for t in case.thread:
            mark = " <- this item" if t.this else ""
            lines.append(f"  {when(t.at)} {t.author}: {t.text}{mark}")
    lines += ["", "What happened:"]
    for e in case.chronology():
        lines.append(f"  {when(e.at)}  {e.who}: {e.what}" + (f" ({e.detail})" if e.detail
                                                            else ""))
    lines += ["", "Versions:"] + [f"  {when(e.at)}: {e.what}" for e in case.versions]
    lines += ["", f"Audit trail ({len(case.audit)} events):"]
    lines += [f"  {when(e.at)} {e.who}: {e.what}" for e in case.audit]
    return "\n".join(lines)


def case_pdf(case: Case, config: Config, exported_by: str, now: datetime) -> bytes:
    from fpdf import FPDF

    tz = ZoneInfo(config.organisation.timezone)

    def when(at: datetime | None) -> str:
        return at.astimezone(tz).strftime("%d %b %Y %H:%M") if at else ""

    pdf = FPDF(format="A4")
    pdf.set_margins(18, 16, 18)
    pdf.set_auto_page_break(True, margin=16)
    family = "Helvetica"
    regular = next((d / "DejaVuSans.ttf" for d in FONT_DIRS if (d / "DejaVuSans.ttf").is_file()),
                   None)
    if regular is not None:
        pdf.add_font("DejaVu", "", str(regular))
        bold = regular.with_name("DejaVuSans-Bold.ttf")
        pdf.add_font("DejaVu", "B", str(bold if bold.is_file() else regular))
        family = "DejaVu"

    def text(value: str) -> str:
        # the core fonts know Latin-1 only; DejaVu knows the rest
        return value if family == "DejaVu" else value.encode("latin-1", "replace").decode(
            "latin-1")

    f = case.flag
    pdf.set_title(f"Case {f.id}")
    pdf.set_author(config.organisation.name)
    pdf.add_page()
    pdf.set_font(family, "B", 15)
    pdf.multi_cell(0, 8, text(f"{config.organisation.name}: online-safety case {f.id}"),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, "", 9)
    pdf.multi_cell(0, 5, text(f"Exported by {exported_by} on {when(now)}. Confidential: "
                              "safeguarding record; share only with those who need to know."),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    def heading(title: str) -> None:
        pdf.ln(2)
        pdf.set_font(family, "B", 12)
        pdf.multi_cell(0, 7, text(title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, "", 10)

    def line(label: str, value: str) -> None:
        pdf.set_font(family, "B", 10)
        pdf.multi_cell(0, 5.5, text(f"{label}: "), new_x="END", new_y="TOP")
        pdf.set_font(family, "", 10)
        pdf.multi_cell(0, 5.5, text(value or "-"), new_x="LMARGIN", new_y="NEXT")

    heading("Summary")
    line("Severity", f"{case.severity} ({SEVERITY_NAMES.get(case.severity, '')})")
    line("Concern", category_name(case.category))
    line("Status", STATUS_NAMES.get(f.status, f.status))
    line("Sent to", ROUTE_NAMES.get(case.route, case.route))
    line("Where", case.where)
    line("Posted", when(f.item_created_at))
    line("Flagged", when(f.created_at))
    if case.assigned_to:
        line("Assigned to", case.assigned_to)
    if case.outcome:
        line("Outcome", case.outcome)

    heading("The item")
    line("Author", case.author)
    if case.url:
        line("Link", case.url)
    if case.explicit_image:
        pdf.multi_cell(0, 5.5, text("A possibly explicit image: not reproduced. It is preserved "
                                    "for the DSL and the police."),
                       new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 5.5, text(case.text or "(no text)"), new_x="LMARGIN", new_y="NEXT")

    heading("Why it was flagged")
    for finding in case.findings:
        pdf.multi_cell(0, 5.5, text(f"- {category_name(finding.category)}, severity "
                                    f"{finding.severity}: {finding.explanation}"),
                       new_x="LMARGIN", new_y="NEXT")

    for learner in case.learners:
        heading(f"Learner: {learner.name}")
        line("Register id", learner.learner_id)
        if learner.date_of_birth:
            line("Date of birth", learner.date_of_birth.strftime("%d %b %Y"))
        line("Photo consent", "yes" if learner.photo_consent else "no")
        if learner.employer:
            line("Employer", learner.employer)
        if learner.earlier_flags:
            pdf.multi_cell(0, 5.5, text("Earlier flags about this learner:"),
                           new_x="LMARGIN", new_y="NEXT")
            for fid, at, cat, sev, status in learner.earlier_flags:
                pdf.multi_cell(0, 5.5, text(f"- case {fid}, {when(at)}: {category_name(cat)}, "
                                            f"severity {sev}, {STATUS_NAMES.get(status, status)}"
                                            ), new_x="LMARGIN", new_y="NEXT")

    if case.thread:
        heading("The conversation around it")
        for t in case.thread:
            mark = " (this item)" if t.this else ""
            gone = " [deleted]" if t.deleted else ""
            pdf.multi_cell(0, 5.5, text(f"{when(t.at)} {t.author}{mark}{gone}: {t.text}"),
                           new_x="LMARGIN", new_y="NEXT")

    heading("Chronology")
    for e in case.chronology():
        detail = f" - {e.detail}" if e.detail else ""
        pdf.multi_cell(0, 5.5, text(f"{when(e.at)}  {e.who}: {e.what}{detail}"),
                       new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
