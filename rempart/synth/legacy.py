"""A synthetic export of the group's previous software (Mediboard-style CSV), to rehearse and
measure the legacy import: patients made like `rempart generate` makes them, written as French
software and the people typing in it write them: cp1252 or UTF-8, `;`, dd/mm/yyyy mostly but
also yyyy-mm-dd and dd-mm-yyyy, stray and doubled spaces, phones in every French notation,
e-mail addresses with accents, médecins traitants that are town GPs outside the group's
directory (well-formed RPPS numbers), plus deliberate faults (some refuse the line, most only
lose a field) and double registrations."""

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

# Deliberate faults: those that leave no usable identity refuse the line; the others only lose
# a field (with a warning), the patient comes in.
REFUSING = ("future_birth", "no_name", "bad_date", "no_birth_date")
WARNING = ("nir_key", "bad_gp", "bad_email", "bad_phone", "bad_postcode", "bad_place",
           "wrong_town")  # fmt: skip
FAULTS = REFUSING + WARNING


@dataclass(frozen=True)
class ExportSummary:
    rows: int
    faulty: dict[int, str]  # line number -> fault
    duplicated: int

    @property
    def refused(self) -> dict[int, str]:
        return {line: f for line, f in self.faulty.items() if f in REFUSING}

    @property
    def warned(self) -> dict[int, str]:
        return {line: f for line, f in self.faulty.items() if f in WARNING}


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


def _accented_email(data: PatientData, number: int) -> str:
    """The address as the person gave it: accents kept (`lou.guér3@exemple.fr`, RFC 6531)."""
    first = "".join(c for c in data.first_given_name.lower() if c.isalpha())
    family = "".join(c for c in (data.usage_name or data.birth_name).lower() if c.isalpha())
    return f"{first}.{family}{number % 100}@exemple.fr"


def _phone_style(number: str, style: int) -> str:
    """06 12 34 56 78 as people write it: spaced, dotted, run together, +33, 0033."""
    if not number:
        return ""
    digits = number.replace(" ", "")
    return (number, number.replace(" ", "."), digits, "+33 " + number[1:],
            "0033" + digits[1:])[style]  # fmt: skip


def _town_style(town: str, postcode: str, style: int) -> str:
    if style == 0:
        return town.replace("SAINT-", "ST ").title()
    if style == 1 and town == "PARIS":
        return f"Paris {int(postcode[3:])}e"
    return f"{town} CEDEX"


def _messy(row: list[str], u: np.ndarray, data: PatientData, number: int) -> None:
    """What people and old software do to clean data, none of it a fault."""
    if u[0] < 0.25 and data.email:
        row[13] = _accented_email(data, number)
    if u[1] < 0.1:
        row[5] = data.birth_date.isoformat()
    elif u[1] < 0.15:
        row[5] = data.birth_date.strftime("%d-%m-%Y")
    if u[2] < 0.08:
        row[1] = f" {row[1]}  "
    if u[3] < 0.08:
        row[10] = f"{row[10]} "
    elif u[3] < 0.2:  # the town as people write it: "St-Denis", "Paris 11e", "Créteil Cedex"
        row[10] = _town_style(row[10], row[9], int(u[3] * 100) % 3)
        row[8] = row[8].replace(" ", "  ", 1)
    style = int(u[4] * 5)
    row[11], row[12] = _phone_style(row[11], style), _phone_style(row[12], style)


def _fault(row: list[str], fault: str) -> None:
    if fault == "nir_key":
        row[14] = (row[14] or "1850375115042")[:13] + "00"
    elif fault == "future_birth":
        row[5] = "01/01/2999"
        row[14] = ""
    elif fault == "no_name":
        row[1] = row[4] = ""
    elif fault == "bad_date":
        row[5] = "31/02/1960"
    elif fault == "no_birth_date":
        row[5] = ""
        row[14] = ""
    elif fault == "bad_gp":
        row[15] = "1234567"
    elif fault == "bad_email":
        row[13] = "jean..dupont@@exemple"
    elif fault == "bad_phone":
        row[11] = "06 12"
    elif fault == "bad_postcode":
        row[9] = "9310"
    elif fault == "wrong_town":  # a town that this postcode does not serve
        row[10] = "MARSEILLE" if not row[9].startswith("13") else "LILLE"
    elif fault == "bad_place":
        row[7] = "ZZ999"
        row[14] = ""  # a NIR would carry the place too


def town_gps(count: int, seed: int, taken: set[str]) -> list[str]:
    """Well-formed RPPS numbers (11 digits, Luhn key) of town GPs outside the directory."""
    from rempart.lib.identifiers import luhn_complete

    rng = np.random.default_rng(np.random.SeedSequence([seed, 5]))
    found: list[str] = []
    while len(found) < count:
        rpps = luhn_complete(f"1{int(rng.integers(0, 10**9)):09d}")
        if rpps not in taken:
            taken.add(rpps)
            found.append(rpps)
    return found


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
    # Most médecins traitants are town GPs the group's directory does not hold (yet).
    doctors = list(gps) + town_gps(max(20, patients // 300), seed, set(gps))
    gp_draws = rng.integers(0, len(doctors), patients)
    mess = rng.random((patients, 5))
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
                gp = doctors[gp_draws[number]]
                row = _row(record.data, gp, 100_000 + number)
                _messy(row, mess[number], record.data, number)
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
