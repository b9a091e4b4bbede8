"""What an export's file holds: the columns of each field group, a patient as a row (with its
watermark), and the three file formats. Everything happens in memory: no clear row ever
touches the disk, only the encrypted file does."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson
from django.utils.translation import gettext_lazy as _

from rempart.exports import marks

# Field group -> its columns (the header French clinic software writes).
GROUPS: dict[str, tuple[str, ...]] = {
    "ipp": ("ipp",),
    "identite": ("nom_naissance", "nom_usage", "prenoms", "premier_prenom", "sexe",
                 "date_naissance"),
    "ins": ("matricule_ins", "lieu_naissance", "statut_identite"),
    "adresse": ("adresse", "code_postal", "ville"),
    "telephone": ("telephone_portable", "telephone_fixe"),
    "email": ("email",),
    "medecin_traitant": ("medecin_traitant", "medecin_traitant_rpps"),
}  # fmt: skip
GROUP_LABELS = {
    "ipp": _("IPP de l'établissement"),
    "identite": _("Identité (noms, prénoms, sexe, date de naissance)"),
    "ins": _("INS (matricule, lieu de naissance, statut de l'identité)"),
    "adresse": _("Adresse postale"),
    "telephone": _("Téléphones"),
    "email": _("Adresse électronique"),
    "medecin_traitant": _("Médecin traitant"),
}
XLSX_MAX_ROWS = 200_000  # an XLSX is built in memory: beyond this, CSV or NDJSON


class FormatError(Exception):
    pass


def columns_for(groups: Sequence[str]) -> list[str]:
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise FormatError("unknown or no field group")
    return [c for g in GROUPS if g in groups for c in GROUPS[g]]


def patient_row(
    values: dict[str, Any], *, ipp: str, gp: tuple[str, str] | None, mark: marks.RowMark
) -> dict[str, str]:
    """Every column of a patient (the file keeps those asked for), written with the row's marks.
    `values` are the patient's decrypted identity and contact records."""
    return {
        "ipp": ipp,
        "nom_naissance": values.get("birth_name", ""),
        "nom_usage": values.get("usage_name", ""),
        "prenoms": values.get("given_names", ""),
        "premier_prenom": values.get("first_given_name", ""),
        "sexe": values.get("sex", ""),
        "date_naissance": values.get("birth_date", ""),
        "matricule_ins": values.get("nir", ""),
        "lieu_naissance": values.get("birth_place_code", ""),
        "statut_identite": values.get("identity_status", ""),
        "adresse": marks.street_written(values.get("address_line", ""), mark.street),
        "code_postal": values.get("postcode", ""),
        "ville": marks.town_written(values.get("city", ""), mark.saint),
        "telephone_portable": _phone(values.get("phone_mobile", ""), mark.phone_mobile),
        "telephone_fixe": _phone(values.get("phone_home", ""), mark.phone_home),
        "email": values.get("email", ""),
        "medecin_traitant": gp[0] if gp else "",
        "medecin_traitant_rpps": gp[1] if gp else "",
    }


def _phone(number: str, style: int) -> str:
    return marks.phone_written(number, style) if number else ""


def render(fmt: str, columns: list[str], rows: list[dict[str, str]]) -> bytes:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
        writer.writerow(columns)
        writer.writerows([row[c] for c in columns] for row in rows)
        return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM: Excel reads UTF-8 right
    if fmt == "ndjson":
        return b"".join(orjson.dumps({c: row[c] for c in columns}) + b"\n" for row in rows)
    if fmt == "xlsx":
        return _xlsx(columns, rows)
    raise FormatError(f"unknown format {fmt}")


def _xlsx(columns: list[str], rows: list[dict[str, str]]) -> bytes:
    import xlsxwriter

    if len(rows) > XLSX_MAX_ROWS:
        raise FormatError("too many rows for an XLSX file: choose CSV or NDJSON")
    buffer = io.BytesIO()
    # in_memory: xlsxwriter's temporary files would hold the rows in clear on disk
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet("patients")
    sheet.write_row(0, 0, columns)
    for i, row in enumerate(rows, start=1):
        sheet.write_row(i, 0, [row[c] for c in columns])
    book.close()
    return buffer.getvalue()
