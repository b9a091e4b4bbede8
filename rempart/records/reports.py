"""The patient access report as text and as PDF (fpdf2), in French."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from fpdf import FPDF

from rempart.care.models import Drug, Prescription, Route
from rempart.directory.models import Practitioner
from rempart.records.selectors.audit import AccessEntry, AccessReport

TITLE = "Qui a consulté ce dossier"
COLUMNS = (("Date", 30), ("Personne", 38), ("Fonction", 38), ("Établissement", 40),
           ("Action", 44), ("Motif", 32), ("Issue", 20))  # fmt: skip


def _when(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%d/%m/%Y %H:%M")


def _header(report: AccessReport) -> list[str]:
    p = report.patient
    born = p.birth_date.strftime("%d/%m/%Y") if p.birth_date else "?"
    return [
        f"{TITLE} — relevé des accès au dossier patient",
        f"Patient : {p.birth_name or ''} {p.given_names or ''}, né(e) le {born}",
        f"Relevé établi le {_when(report.made_at)} ; {len(report.entries)} accès enregistrés.",
    ]


def _row(e: AccessEntry) -> list[str]:
    return [_when(e.at), e.who, e.role, e.establishment or "—", f"{e.action} ({e.what})",
            e.purpose, e.outcome]  # fmt: skip


def access_report_text(report: AccessReport) -> str:
    lines = [*_header(report), ""]
    lines.append(" | ".join(name for name, _ in COLUMNS))
    lines.extend(" | ".join(_row(e)) for e in report.entries)
    if not report.entries:
        lines.append("Aucun accès enregistré.")
    return "\n".join(lines) + "\n"


def _latin1(text: str) -> str:
    """The PDF core fonts speak Latin-1: French needs only œ and typographic quotes mapped."""
    text = text.replace("œ", "oe").replace("Œ", "OE").replace("’", "'").replace("—", "-")
    text = text.replace("·", ".")
    return text.encode("latin-1", "replace").decode("latin-1")


def access_report_pdf(report: AccessReport) -> bytes:
    pdf = FPDF(orientation="L", format="A4")
    pdf.set_title(TITLE)
    pdf.set_creator("Rempart")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 14)
    title, *rest = _header(report)
    pdf.cell(0, 10, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    for line in rest:
        pdf.cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    with pdf.table(col_widths=[w for _, w in COLUMNS], text_align="LEFT") as table:
        table.row([_latin1(name) for name, _ in COLUMNS])
        for entry in report.entries:
            table.row([_latin1(cell) for cell in _row(entry)])
    return bytes(pdf.output())


def ordonnance_pdf(prescription: Prescription) -> bytes:
    """The printed ordonnance: prescriber (name, RPPS), patient identity, lines, date."""
    patient = prescription.patient
    prescriber = prescription.prescriber
    pdf = FPDF(format="A4")
    pdf.set_title("Ordonnance")
    pdf.set_creator("Rempart")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 12)
    pdf.cell(0, 7, _latin1(f"Dr {prescriber.given_name} {prescriber.family_name}"),
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.set_font("helvetica", "", 10)
    pdf.cell(0, 5, _latin1(f"{prescriber.specialty} — RPPS {prescriber.rpps}"),
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(8)
    signed = prescription.signed_at or prescription.prescribed_at
    pdf.cell(0, 6, _latin1(f"Le {timezone.localtime(signed):%d/%m/%Y}"), align="R",
             new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    born = patient.birth_date.strftime("%d/%m/%Y") if patient.birth_date else "?"
    pdf.set_font("helvetica", "B", 11)
    pdf.cell(0, 7, _latin1(f"{patient.birth_name or ''} {patient.given_names or ''}, "
                           f"né(e) le {born}"), new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    gp = Practitioner.objects.filter(pk=patient.gp_id).first() if patient.gp_id else None
    if gp is not None:  # a copy goes to the médecin traitant, named from the directory
        pdf.set_font("helvetica", "", 9)
        where = ", ".join(p for p in (gp.address_line, f"{gp.postcode} {gp.city}".strip()) if p)
        pdf.cell(0, 5, _latin1(f"Médecin traitant : {gp} (RPPS {gp.rpps})"
                               + (f", {where}" if where else "")),
                 new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    pdf.ln(6)
    pdf.set_font("helvetica", "", 11)
    names = {d.code: str(d) for d in Drug.objects.filter(
        code__in=[line.content["drug"] for line in prescription.lines.all()])}  # fmt: skip
    for line in prescription.lines.order_by("position"):
        c = line.content
        pdf.set_font("helvetica", "B", 11)
        pdf.multi_cell(0, 6, _latin1(names.get(c["drug"], c["drug"])), new_x="LMARGIN",
                       new_y="NEXT")  # fmt: skip
        pdf.set_font("helvetica", "", 11)
        detail = (f"{c['dose']}, {Route(c['route']).label.lower()}, {c['frequency']}, "
                  f"pendant {c['duration_days']} jours.")  # fmt: skip
        if c.get("instructions"):
            detail += f" {c['instructions']}"
        pdf.multi_cell(0, 6, _latin1(detail), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    if prescription.signed_at is None:
        pdf.set_font("helvetica", "B", 14)
        pdf.cell(0, 10, "BROUILLON - NON SIGNEE", align="C")
    return bytes(pdf.output())
