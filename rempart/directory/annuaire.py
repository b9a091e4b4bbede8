"""The national directory of health professionals (annuaire santé, ANS open data), loaded into
the practitioners' directory: `rempart directory import FILE`.

The extract `PS_LibreAcces_Personne_activite_*.txt` is UTF-8, `|`-separated, one row per activity
of a professional (several rows for one person), over a million rows. Read by column name (the
ANS adds columns now and then), RPPS rows only (`Type d'identifiant PP` = 8), the first activity
with an address giving the practice address. Loaded on PostgreSQL through COPY into a temporary
table and one `INSERT ... ON CONFLICT (rpps) DO UPDATE`: re-runs are idempotent, a practitioner
an import created "to complete" is completed, and the group's own practitioners (internal) keep
their establishments.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction

from rempart.directory.models import Practitioner
from rempart.lib.identifiers import luhn_complete

Progress = Callable[[int], None]

COLUMNS = {
    "kind": "Type d'identifiant PP",
    "rpps": "Identifiant PP",
    "family_name": "Nom d'exercice",
    "given_name": "Prénom d'exercice",
    "profession": "Libellé profession",
    "specialty": "Libellé savoir-faire",
    "number": "Numéro Voie (coord. structure)",
    "street_kind": "Libellé type de voie (coord. structure)",
    "street": "Libellé Voie (coord. structure)",
    "postcode": "Code postal (coord. structure)",
    "city": "Libellé commune (coord. structure)",
}
RPPS_KIND = "8"


class DirectoryFileError(Exception):
    """The file cannot be read as a directory extract: nothing is loaded."""


@dataclass(frozen=True)
class Loaded:
    rows: int
    practitioners: int
    created: int
    completed: int


def _records(path: Path) -> tuple[list[str], Iterator[list[str]]]:
    handle = path.open("r", encoding="utf-8-sig", newline="")
    reader = csv.reader(handle, delimiter="|", quoting=csv.QUOTE_NONE)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, UnicodeDecodeError):
        handle.close()
        raise DirectoryFileError("fichier vide ou illisible (UTF-8 attendu)") from None
    missing = [c for c in ("kind", "rpps", "family_name", "given_name") if COLUMNS[c] not in header]
    if missing:
        handle.close()
        raise DirectoryFileError(
            "en-tête inattendu : colonnes absentes " + ", ".join(repr(COLUMNS[c]) for c in missing)
        )

    def rows() -> Iterator[list[str]]:
        with handle:
            try:
                yield from reader
            except UnicodeDecodeError:
                raise DirectoryFileError(
                    f"octets illisibles après la ligne {reader.line_num}"
                ) from None

    return header, rows()


def _valid_rpps(value: str) -> bool:
    return len(value) == 11 and value.isdigit() and luhn_complete(value[:10]) == value


def directory_import(path: Path, *, progress: Progress | None = None) -> Loaded:
    """Load the extract; returns the counts (rows read, practitioners kept, created, completed)."""
    if not path.is_file():
        raise DirectoryFileError(f"{path.name} : fichier introuvable")
    header, rows = _records(path)
    at = {name: header.index(column) for name, column in COLUMNS.items() if column in header}
    width = max(at.values()) + 1
    seen: dict[str, tuple[str, ...]] = {}
    count = 0

    def field(values: list[str], name: str) -> str:
        i = at.get(name)
        return " ".join(values[i].split()) if i is not None else ""

    for values in rows:
        count += 1
        if progress is not None and count % 50_000 == 0:
            progress(50_000)
        if len(values) < width or values[at["kind"]].strip() != RPPS_KIND:
            continue
        rpps = values[at["rpps"]].strip()
        if not _valid_rpps(rpps):
            continue
        address = " ".join(
            p for p in (field(values, "number"), field(values, "street_kind"),
                        field(values, "street")) if p
        )  # fmt: skip
        known = seen.get(rpps)
        if known is not None and (known[5] or not address):
            continue  # the first activity with an address gives the practice address
        postcode = field(values, "postcode")
        seen[rpps] = (
            field(values, "family_name")[:100].upper(), field(values, "given_name")[:100],
            field(values, "profession")[:100], field(values, "specialty")[:100],
            field(values, "city")[:100].upper(), address[:200],
            postcode if len(postcode) == 5 and postcode.isdigit() else "",
        )  # fmt: skip
    if progress is not None:
        progress(count % 50_000)
    created, completed = _upsert(seen)
    return Loaded(count, len(seen), created, completed)


def _upsert(practitioners: dict[str, tuple[str, ...]]) -> tuple[int, int]:
    from rempart.lib.ids import new_id

    table = Practitioner._meta.db_table
    before = dict(Practitioner.objects.values_list("rpps", "to_complete"))
    created = sum(1 for r in practitioners if r not in before)
    completed = sum(1 for r in practitioners if before.get(r))
    rows = [(new_id(), rpps, *values) for rpps, values in practitioners.items()]
    columns = ("id", "rpps", "family_name", "given_name", "profession", "specialty", "city",
               "address_line", "postcode")  # fmt: skip
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TABLE IF EXISTS pg_temp.annuaire")
            cursor.execute("CREATE TEMP TABLE annuaire (id uuid, " + ", ".join(
                f"{c} text" for c in columns[1:]) + ") ON COMMIT DROP")  # fmt: skip
            with cursor.copy(f"COPY annuaire ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}, internal, to_complete) "  # noqa: S608
                f"SELECT {', '.join(columns)}, false, false FROM annuaire "
                "ON CONFLICT (rpps) DO UPDATE SET family_name = EXCLUDED.family_name, "
                "given_name = EXCLUDED.given_name, profession = EXCLUDED.profession, "
                "specialty = EXCLUDED.specialty, city = EXCLUDED.city, "
                "address_line = EXCLUDED.address_line, postcode = EXCLUDED.postcode, "
                "to_complete = false"
            )
        else:  # SQLite (the demo): the same upsert through the ORM
            Practitioner.objects.bulk_create(
                [Practitioner(**dict(zip(columns, row, strict=True)), internal=False,
                              to_complete=False) for row in rows],
                batch_size=500, update_conflicts=True, unique_fields=["rpps"],
                update_fields=[*columns[2:], "to_complete"],
            )  # fmt: skip
    return created, completed
