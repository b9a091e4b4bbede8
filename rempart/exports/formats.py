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


def render(fmt: str, columns: list[str], rows: list[dict[str, str]], finess: str = "") -> bytes:
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
    if fmt == "fhir":
        keep = set(columns)
        return b"".join(orjson.dumps(fhir_patient(row, keep, finess)) + b"\n" for row in rows)
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


_FR_CORE = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
_GENDERS = {"M": "male", "F": "female", "I": "other"}


def fhir_patient(row: dict[str, str], keep: set[str], finess: str) -> dict[str, Any]:
    """A row as a FHIR Patient (FR Core) for Bulk Data, with the columns asked for only. No
    resource id: the export's canary rows have none to give, and a file where only they lacked
    one would point them out; the IPP identifies each row."""

    def get(column: str) -> str:
        return row[column] if column in keep else ""

    resource: dict[str, Any] = {"resourceType": "Patient",
                                "meta": {"profile": [_FR_CORE + "fr-core-patient"]}}  # fmt: skip
    identifiers = []
    if get("ipp"):
        identifiers.append({"use": "usual", "system": f"urn:rempart:ipp:{finess}",
                            "type": {"coding": [{"system": "http://terminology.hl7.org/"
                                                 "CodeSystem/v2-0203", "code": "PI"}]},
                            "value": get("ipp")})  # fmt: skip
    nir = get("matricule_ins")
    if nir and get("statut_identite") in ("RECUP", "QUAL"):
        system = "urn:oid:1.2.250.1.213.1.4.9" if nir[0] in "78" else "urn:oid:1.2.250.1.213.1.4.8"
        identifiers.append({"use": "official", "system": system, "value": nir})
    if identifiers:
        resource["identifier"] = identifiers
    if get("statut_identite"):
        resource["extension"] = [{"url": _FR_CORE + "fr-core-identity-reliability", "extension": [
            {"url": "identityStatus", "valueCoding": {
                "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445",
                "code": get("statut_identite")}}]}]  # fmt: skip
    if get("lieu_naissance"):
        resource.setdefault("extension", []).append({
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": {"extension": [{"url": _FR_CORE + "fr-core-address-insee-code",
                                            "valueCoding": {
                "system": "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM",
                "code": get("lieu_naissance")}}]}})  # fmt: skip
    first = get("premier_prenom") or (get("prenoms").split() or [""])[0]
    names = []
    if get("nom_naissance"):
        official: dict[str, Any] = {"use": "official", "family": get("nom_naissance")}
        if first:
            official["given"] = [first]
        if get("prenoms"):
            official["extension"] = [{"url": _FR_CORE + "fr-core-patient-birth-list-given-name",
                                      "valueString": get("prenoms")}]  # fmt: skip
        names.append(official)
    if get("nom_usage"):
        names.append(
            {"use": "usual", "family": get("nom_usage"), **({"given": [first]} if first else {})}
        )
    if names:
        resource["name"] = names
    telecom = [{"system": "phone", "value": get(c), "use": use}
               for c, use in (("telephone_portable", "mobile"), ("telephone_fixe", "home"))
               if get(c)]  # fmt: skip
    if get("email"):
        telecom.append({"system": "email", "value": get("email")})
    if telecom:
        resource["telecom"] = telecom
    if get("sexe"):
        resource["gender"] = _GENDERS.get(get("sexe"), "unknown")
    if get("date_naissance"):
        resource["birthDate"] = get("date_naissance")
    address = {k: v for k, v in (("line", [get("adresse")] if get("adresse") else None),
                                 ("postalCode", get("code_postal")), ("city", get("ville")))
               if v}  # fmt: skip
    if address:
        resource["address"] = [{"use": "home", **address}]
    if get("medecin_traitant_rpps"):
        resource["generalPractitioner"] = [
            {
                "display": get("medecin_traitant"),
                "identifier": {
                    "system": "urn:oid:1.2.250.1.71.4.2.1",
                    "value": "8" + get("medecin_traitant_rpps"),
                },
            }
        ]
    return resource
