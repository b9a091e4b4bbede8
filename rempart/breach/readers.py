"""A leaked sample as attackers post it, read into rows of text: CSV with any delimiter, JSON
(an array, an object holding one, or one object per line), XLSX, or plain text (one person per
line); UTF-8, UTF-16, cp1252 or whatever charset-normalizer recognises, and UTF-8 read as
cp1252 once ("Ã©") put right. Whether the first row is a header is decided from its cells.

Nothing here is kept: the caller holds the sample in memory, never on disk."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import orjson

MAX_COLUMNS = 200


class SampleError(Exception):
    """The file cannot be read as a sample (the message says why, never a value)."""


@dataclass
class Sample:
    header: list[str] | None
    rows: list[list[str]]
    layout: str  # "csv", "json", "xlsx", "text"
    encoding: str = ""


def read_sample(data: bytes) -> Sample:
    sample = _read(data)
    if not sample.rows:
        raise SampleError("aucune ligne lisible dans le fichier")
    return sample


def _read(data: bytes) -> Sample:
    if not data.strip():
        raise SampleError("le fichier est vide")
    if data[:4] == b"PK\x03\x04":
        return _xlsx(data)
    if data[:5] == b"%PDF-" or (b"\x00\x00\x00" in data[:64] and data[:2] not in (
        b"\xff\xfe", b"\xfe\xff"
    )):  # fmt: skip
        raise SampleError("format non reconnu (ni CSV, ni JSON, ni XLSX, ni texte)")
    text, encoding = _decode(data)
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        sample = _json(stripped)
        if sample is not None:
            sample.encoding = encoding
            return sample
    sample = _delimited(text)
    sample.encoding = encoding
    return sample


def _decode(data: bytes) -> tuple[str, str]:
    for bom, name in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"),
                      (b"\xfe\xff", "utf-16")):  # fmt: skip
        if data.startswith(bom):
            return data.decode(name, errors="replace"), name
    try:
        text = data.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:400_000]).best()
        encoding = best.encoding if best is not None else "cp1252"
        if encoding in ("ascii", "utf_8"):
            encoding = "cp1252"
        text = data.decode(encoding, errors="replace")
    if "\x00" in text:
        raise SampleError("format non reconnu (fichier binaire)")
    return _unmangle(text), encoding


_MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf©¨§ª«®¯°±²³´µ¶·¸¹º»¼½¾¿]")


def _unmangle(text: str) -> str:
    """UTF-8 once read as cp1252 or Latin-1 ("Ã©" for "é"), undone when it is most of the
    accents; otherwise the text as it is."""
    if len(_MOJIBAKE.findall(text[:200_000])) < 5:
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())[:10]
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _xlsx(data: bytes) -> Sample:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet = book.get_sheet_by_index(0).to_python(skip_empty_area=True)
    except Exception:  # calamine raises its own error types
        raise SampleError("classeur XLSX illisible") from None
    rows = [[_cell(v) for v in row] for row in sheet if any(v not in ("", None) for v in row)]
    if not rows:
        raise SampleError("le classeur est vide")
    return _with_header(rows, "xlsx")


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A nested record as flat columns ("adresse.ville")."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: _cell(value)}


def _fhir_patient(resource: dict[str, Any]) -> dict[str, str]:
    """A FHIR Patient (a Bulk Data file, an API answer) as the columns a French export would
    have: each name, phone and identifier in its own column, so that the analyser reads it like
    any file and the watermark written into the values still speaks."""
    if resource.get("resourceType") != "Patient":
        return _flatten(resource)

    def items(key: str) -> list[dict[str, Any]]:
        value = resource.get(key)
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    out: dict[str, str] = {}
    for name in items("name"):
        column = "nom_usage" if name.get("use") == "usual" else "nom_naissance"
        out.setdefault(column, _cell(name.get("family", "")))
        given = [g for g in name.get("given") or [] if isinstance(g, str)]
        listed = [str(e["valueString"]) for e in name.get("extension") or []
                  if isinstance(e, dict) and isinstance(e.get("valueString"), str)]  # fmt: skip
        if listed or given:
            out.setdefault("prenoms", listed[0] if listed else " ".join(given))
    for point in items("telecom"):
        if point.get("system") == "email":
            out.setdefault("email", _cell(point.get("value", "")))
        elif point.get("system") == "phone":
            column = "telephone_fixe" if point.get("use") == "home" else "telephone_portable"
            out.setdefault(column, _cell(point.get("value", "")))
    for identifier in items("identifier"):
        system = str(identifier.get("system", ""))
        if system.startswith("urn:oid:1.2.250.1.213.1.4."):
            out.setdefault("matricule_ins", _cell(identifier.get("value", "")))
        elif "ipp" in system.lower() or system.startswith("urn:rempart:ipp"):
            out.setdefault("ipp", _cell(identifier.get("value", "")))
    for address in items("address")[:1]:
        out["adresse"] = " ".join(x for x in address.get("line") or [] if isinstance(x, str))
        out["code_postal"] = _cell(address.get("postalCode", ""))
        out["ville"] = _cell(address.get("city", ""))
    genders = {"male": "M", "female": "F", "other": "I"}
    out["sexe"] = genders.get(str(resource.get("gender", "")), "")
    out["date_naissance"] = _cell(resource.get("birthDate", ""))
    for gp in items("generalPractitioner")[:1]:
        value = str((gp.get("identifier") or {}).get("value", ""))
        out["medecin_traitant_rpps"] = value[1:] if len(value) == 12 else value
    return {k: v for k, v in out.items() if v}


def _records_to_sample(records: list[Any]) -> Sample:
    header: dict[str, None] = {}
    flat: list[dict[str, str]] = []
    rows: list[list[str]] = []
    for record in records:
        if isinstance(record, dict) and record.get("resourceType") == "Bundle":
            for entry in record.get("entry") or []:
                if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
                    item = _fhir_patient(entry["resource"])
                    header.update(dict.fromkeys(item))
                    flat.append(item)
            continue
        if isinstance(record, dict):
            item = _fhir_patient(record) if record.get("resourceType") == "Patient" else (
                _flatten(record))  # fmt: skip
            header.update(dict.fromkeys(item))
            flat.append(item)
        elif isinstance(record, list):
            rows.append([_cell(v) for v in record])
        else:
            rows.append([_cell(record)])
    if flat:
        columns = list(header)[:MAX_COLUMNS]
        return Sample(columns, [[item.get(c, "") for c in columns] for item in flat], "json")
    return _with_header(rows, "json")


def _json(text: str) -> Sample | None:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            return _records_to_sample([orjson.loads(line) for line in lines])
        except orjson.JSONDecodeError:
            return None  # not JSON after all: read as text
    if isinstance(document, dict):
        lists = [v for v in document.values() if isinstance(v, list)]
        document = max(lists, key=len) if lists else [document]
    if not isinstance(document, list) or not document:
        raise SampleError("JSON sans liste d'enregistrements")
    return _records_to_sample(document)


def _delimited(text: str) -> Sample:
    lines = text.splitlines()
    head = "\n".join(lines[:100])
    try:
        dialect = csv.Sniffer().sniff(head, delimiters=";,\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ""
    if delimiter:
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=delimiter)
                if any(cell.strip() for cell in row)]  # fmt: skip
        widths = [len(r) for r in rows[:200]]
        if rows and max(widths) > 1 and max(widths) <= MAX_COLUMNS:
            return _with_header(rows, "csv")
    # Plain text: a person per line, the traits found in it by their shape.
    return Sample(None, [[line.strip()] for line in lines if line.strip()], "text")


_DATA_LIKE = re.compile(r"@|\d{2}[/.\-]\d{2}|\d{5,}")


def _with_header(rows: list[list[str]], layout: str) -> Sample:
    """The first row is a header when none of its cells looks like data and it is not like the
    rows below (a column of dates under a word)."""
    first = [c.strip() for c in rows[0]]
    data_like = any(_DATA_LIKE.search(c) for c in first)
    texty = sum(1 for c in first if c and not any(ch.isdigit() for ch in c))
    if not data_like and texty >= max(1, len(first) // 2):
        from rempart.breach.columns import header_kind

        below = rows[1:50]
        known = sum(1 for c in first if header_kind(c))
        differs = any(
            any(_DATA_LIKE.search(r[i]) for r in below if i < len(r)) for i in range(len(first))
        )
        if known or differs:
            return Sample(first, rows[1:], layout)
    return Sample(None, rows, layout)
