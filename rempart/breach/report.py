"""The analysis report for people: a summary in French, an HTML page and a PDF, each with the
four charts (matches, establishments, data categories, freshness). It is made from the stored
report alone (counts, names of establishments, exports and accounts), never from patient data."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from fpdf import FPDF

from rempart.records.reports import _latin1
from rempart.web.charts import horizontal_bars

CATEGORY_LABELS = {
    "identite": "Identité (noms, prénoms, sexe)", "date_naissance": "Date de naissance",
    "ins": "INS (matricule, lieu de naissance)", "adresse": "Adresse postale",
    "telephone": "Téléphone", "email": "Adresse électronique",
    "medecin_traitant": "Médecin traitant", "ipp": "Numéro de dossier (IPP)",
    "clinique": "Données cliniques",
}  # fmt: skip
KIND_LABELS = {
    "family": "nom de naissance", "usage": "nom d'usage", "given": "prénom(s)",
    "full_name": "nom complet", "birth_date": "date de naissance", "sex": "sexe",
    "nir": "matricule INS (NIR)", "email": "adresse électronique", "phone": "téléphone",
    "address": "adresse", "postcode": "code postal", "city": "ville",
    "gp": "médecin traitant", "gp_rpps": "RPPS du médecin traitant", "ipp": "IPP",
    "birth_place": "lieu de naissance", "clinical": "données cliniques", "other": "non reconnu",
    "text": "texte libre",
}  # fmt: skip
SOURCE_LABELS = {
    "export": "un export contrôlé du groupe",
    "hors_export": "aucun export : la base de données, une sauvegarde ou un compte",
    "aucune": "aucune (pas de patient du groupe)",
}


def charts(report: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    m = report["matches"]
    return {
        "Correspondances": [("Exactes", m["exact"]), ("Partielles", m["partial"]),
                            ("Aucune", m["none"])],
        "Patients par établissement": [(e["name"], e["patients"])
                                       for e in report.get("establishments", [])[:12]],
        "Catégories de données exposées (lignes)": [
            (CATEGORY_LABELS.get(k, k), v) for k, v in report.get("categories", {}).items()],
        "Dossiers concernés par mois de création": list(
            report.get("freshness", {}).get("by_month", {}).items()),
    }  # fmt: skip


def source_sentence(report: dict[str, Any]) -> str:
    source = report["source"]
    attributed = [e for e in source["exports"] if e["attributed"]]
    if attributed:
        e = attributed[0]
        return (f"Issu de l'export {e['id']} du {(e['produced_at'] or '')[:10]}, demandé par "
                f"{e['requested_by']}, approuvé par {e['approved_by']} ({e['establishment']}) : "
                f"{e['canary_rows_found']} ligne(s) leurre(s) de l'export retrouvée(s), "
                f"filigrane {e['mark_agree']}/{e['mark_seen']}.")  # fmt: skip
    return f"Origine : {SOURCE_LABELS[source['verdict']]}."


def summary_lines(report: dict[str, Any]) -> list[str]:
    m = report["matches"]
    lines = [
        f"Échantillon {report['file']['name']} : {report['file']['rows']} lignes "
        f"({report['file']['layout']}, {report['file']['encoding'] or 'binaire'}).",
        f"Nature : {report['nature']} ; {m['exact']} correspondances exactes, {m['partial']} "
        f"partielles, {m['none']} sans correspondance ; {m['patients']} patients du groupe "
        f"(confiance {m['confidence']}).",
        "Catégories exposées : " + (", ".join(
            CATEGORY_LABELS.get(k, k) for k in report.get("categories", {})) or "aucune") + ".",
        source_sentence(report),
    ]  # fmt: skip
    if report.get("establishments"):
        places = [f"{e['name']} ({e['patients']})" for e in report["establishments"][:6]]
        lines.append("Établissements : " + ", ".join(places) + ".")
    newest = report.get("freshness", {}).get("newest_record")
    if newest:
        lines.append(f"Dossier le plus récent de l'échantillon créé le {newest[:10]} : "
                     "données prises après cette date.")  # fmt: skip
    canaries = report["source"]["db_canaries"]
    if canaries["found"]:
        readers = ", ".join(canaries["read_by"]) or "aucun compte"
        explained = canaries.get("in_attributed_export", 0)
        why = (f" ; {explained} d'entre eux figurent dans l'export identifié (attendu)"
               if explained else "")  # fmt: skip
        lines.append(f"{canaries['found']} dossier(s) leurre(s) de la base dans l'échantillon, "
                     f"ouvert(s) dans l'application par : {readers}{why}.")  # fmt: skip
    accounts = report["source"]["accounts"]
    if accounts:
        lines.append("Comptes dont les accès couvrent le mieux l'échantillon : " + ", ".join(
            f"{a['username']} ({a['share']:.0%})" for a in accounts[:3]) + ".")  # fmt: skip
    return lines


def report_context(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "report": report, "summary": summary_lines(report),
        "charts": [(title, horizontal_bars(items, title=title), items)
                   for title, items in charts(report).items() if items],
        "category_labels": CATEGORY_LABELS,
        "columns": [(c["header"], KIND_LABELS.get(c["kind"], c["kind"]))
                    for c in report["file"]["columns"]],
    }  # fmt: skip


def report_html(report: dict[str, Any]) -> str:
    """A standalone page (no script, no outside resource) to keep with the breach file."""
    return render_to_string("breach/report_standalone.html", report_context(report))


def report_pdf(report: dict[str, Any]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title("Analyse d'un échantillon de fuite")
    pdf.set_creator("Rempart")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 14)
    pdf.cell(0, 10, _latin1("Analyse d'un échantillon de fuite"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    for line in summary_lines(report):
        pdf.multi_cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    for title, items in charts(report).items():
        if items:
            _pdf_bars(pdf, title, items)
    exports = report["source"]["exports"]
    if exports:
        pdf.set_font("helvetica", "B", 11)
        pdf.cell(0, 8, "Exports comparés", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("helvetica", "", 8)
        with pdf.table(col_widths=[40, 22, 22, 18, 18, 18, 20], text_align="LEFT") as table:
            table.row(["Export", "Demandé par", "Approuvé par", "Lignes", "Leurres",
                       "Filigrane", "Attribué"])  # fmt: skip
            for e in exports:
                table.row([e["id"][:18], e["requested_by"], e["approved_by"],
                           str(e["rows_of_export"]), str(e["canary_rows_found"]),
                           f"{e['mark_agree']}/{e['mark_seen']}",
                           "oui" if e["attributed"] else "non"])  # fmt: skip
    return bytes(pdf.output())


def _pdf_bars(pdf: FPDF, title: str, items: list[tuple[str, int]]) -> None:
    if pdf.get_y() > 240:
        pdf.add_page()
    pdf.set_font("helvetica", "B", 11)
    pdf.cell(0, 8, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 8)
    peak = max((v for _, v in items), default=0) or 1
    for label, value in items:
        y = pdf.get_y()
        pdf.set_xy(10, y)
        pdf.cell(62, 5, _latin1(str(label))[:40])
        pdf.set_fill_color(11, 79, 124)
        pdf.rect(74, y + 1, max(0.5, 100 * value / peak), 3.5, style="F")
        pdf.set_xy(176, y)
        pdf.cell(24, 5, f"{value:,}".replace(",", " "), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
