"""A synthetic export of the group's previous software (Mediboard-style CSV), to rehearse and
measure the legacy import: patients made like `rempart generate` makes them, written as French
software writes them (cp1252 or UTF-8, `;`, dd/mm/yyyy), plus deliberate faults and duplicates.
Médecins traitants are drawn from the RPPS numbers given (the target database's GPs)."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rempart.patients.validation import PatientData
from rempart.synth.population import build_directory, make_chunk

HEADER = [
    "ipp", "nom", "prenom", "prenoms", "nom_jeune_fille", "naissance", "sexe", "lieu_naissance",
    "adresse", "cp", "ville", "tel", "tel2", "email", "matricule", "medecin_traitant_rpps",
]  # fmt: skip

# What each deliberate fault does to a row, and the reject reason the import must give.
FAULTS = ("nir_key", "future_birth", "no_name", "unknown_gp", "bad_date")


@dataclass(frozen=True)
class ExportSummary:
    rows: int
    faulty: dict[int, str]  # line number -> fault
    duplicated: int


def _row(data: PatientData, gp_rpps: str, ipp: int) -> list[str]:
    married = bool(data.usage_name)
    given = data.given_names.split(" ")
    return [
        str(ipp),
        data.usage_name if married else data.birth_name,
        data.first_given_name,
        " ".join(given),
        data.birth_name if married else "",
        data.birth_date.strftime("%d/%m/%Y"),
        data.sex.lower(),
        data.birth_place_code,
        data.address_line,
        data.postcode,
        data.city,
        data.phone_mobile,
        data.phone_home,
        data.email,
        data.nir,
        gp_rpps if data.gp_id else "",
    ]


def _fault(row: list[str], fault: str) -> None:
    if fault == "nir_key":
        row[14] = (row[14] or "1850375115042")[:13] + "00"
    elif fault == "future_birth":
        row[5] = "01/01/2999"
        row[14] = ""
    elif fault == "no_name":
        row[1] = row[4] = ""
    elif fault == "unknown_gp":
        row[15] = "10000000000"
    elif fault == "bad_date":
        row[5] = "31/02/1960"


def write_legacy_export(
    path: Path,
    *,
    patients: int,
    seed: int,
    today: dt.date,
    gps: list[str],
    encoding: str = "cp1252",
    faults: int = 0,
    duplicates: int = 0,
    progress: Callable[[int], None] | None = None,
) -> ExportSummary:
    directory = build_directory(
        seed=seed, patients=patients, today=today, clinics=12, health_centres=2, nursing_homes=3
    )
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    gp_draws = rng.integers(0, max(1, len(gps)), patients)
    faulty_rows = set(rng.choice(patients, size=min(faults, patients), replace=False).tolist())
    duplicate_rows = set(
        rng.choice(patients, size=min(duplicates, patients), replace=False).tolist()
    )
    faulty: dict[int, str] = {}
    line, number = 1, 0
    with path.open("w", encoding=encoding, errors="strict", newline="") as handle:
        out = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        out.writerow(HEADER)
        for index in range(directory.chunks):
            chunk = make_chunk(directory, index, with_care=False)
            for record in chunk.patients:
                gp = gps[gp_draws[number]] if gps else ""
                row = _row(record.data, gp, 100_000 + number)
                if number in faulty_rows:
                    fault = FAULTS[len(faulty) % len(FAULTS)]
                    _fault(row, fault)
                    faulty[line + 1] = fault
                out.writerow(row)
                line += 1
                if number in duplicate_rows and number not in faulty_rows:
                    # The same person registered again under another IPP: a vigilance case.
                    out.writerow([str(900_000 + number), *row[1:]])
                    line += 1
                number += 1
            if progress is not None:
                progress(len(chunk.patients))
    return ExportSummary(rows=line - 1, faulty=faulty, duplicated=len(duplicate_rows - faulty_rows))
