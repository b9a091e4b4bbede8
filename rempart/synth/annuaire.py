"""A synthetic extract of the national directory of health professionals, in the layout the ANS
publishes (`PS_LibreAcces_Personne_activite_*.txt`): UTF-8, `|`-separated, one row per activity,
RPPS and older ADELI identifiers mixed, names and practice addresses drawn from the same French
lists as the synthetic patients. For the tests, the demo and the bench (a million rows)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rempart.lib.identifiers import luhn_complete
from rempart.synth import data as ref
from rempart.synth.names import FamilyNames, GivenNames

HEADER = [
    "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP",
    "Code civilité d'exercice", "Libellé civilité d'exercice", "Code civilité", "Libellé civilité",
    "Nom d'exercice", "Prénom d'exercice", "Code profession", "Libellé profession",
    "Code catégorie professionnelle", "Libellé catégorie professionnelle",
    "Code type savoir-faire", "Libellé type savoir-faire", "Code savoir-faire",
    "Libellé savoir-faire", "Code mode exercice", "Libellé mode exercice", "Numéro SIRET site",
    "Numéro SIREN site", "Numéro FINESS site", "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure", "Raison sociale site", "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)", "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)", "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)", "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)", "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)", "Code commune (coord. structure)",
    "Libellé commune (coord. structure)", "Code pays (coord. structure)",
    "Libellé pays (coord. structure)", "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)", "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)", "Code Département (structure)",
    "Libellé Département (structure)", "Ancien identifiant de la structure",
    "Autorité d'enregistrement", "Code secteur d'activité", "Libellé secteur d'activité",
    "Code section tableau pharmaciens", "Libellé section tableau pharmaciens", "Code rôle",
    "Libellé rôle", "Code genre activité", "Libellé genre activité",
]  # fmt: skip
Profession = tuple[str, str, tuple[str, ...], float]
PROFESSIONS: tuple[Profession, ...] = (  # (code, label, specialties, weight)
    ("10", "Médecin", ("Médecine générale", "Cardiologie et maladies vasculaires", "Pédiatrie",
                       "Psychiatrie", "Gynécologie-obstétrique", "Dermatologie et vénéréologie",
                       "Anesthesie-réanimation", "Radio-diagnostic"), 0.35),
    ("60", "Infirmier", ("",), 0.35),
    ("21", "Pharmacien", ("",), 0.15),
    ("70", "Masseur-Kinésithérapeute", ("",), 0.15),
)  # fmt: skip


def write_directory_extract(
    path: Path, *, people: int, seed: int, include: list[str] = (),  # type: ignore[assignment]
    progress: Callable[[int], None] | None = None,
) -> int:  # fmt: skip
    """Write the extract: `people` professionals (the RPPS numbers in `include` among them, as
    general practitioners), each with one to three activities; returns the number of rows.
    Draws are made for everyone at once (NumPy): a million rows take seconds."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    families = FamilyNames.build(rng, size=max(2_000, min(100_000, people // 4)))
    given = GivenNames()
    n = people
    weights = np.array([p[3] for p in PROFESSIONS])
    profession_of = rng.choice(len(PROFESSIONS), size=n, p=weights)
    specialty_draw = rng.random(n)
    female = rng.random(n) < 0.55
    family_of = families.draw(rng, n)
    source, choice = rng.random((n, 3)), rng.random((n, 3))
    activities = 1 + rng.poisson(0.4, n)
    adeli = rng.random(n) < 0.05
    numbers = rng.integers(0, 10**9, size=2 * n + 16)
    residence = rng.integers(0, len(ref.RESIDENCES), size=n)
    street = rng.integers(0, len(ref.STREET_NAMES), size=n)
    street_kind = rng.integers(0, len(ref.STREET_KINDS), size=n)
    street_no = rng.integers(1, 200, size=n)
    at = {name: i for i, name in enumerate(HEADER)}
    taken = set(include)
    drawn = iter(numbers.tolist())
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("|".join(HEADER) + "|\n")
        for k in range(n):
            if k < len(include):
                rpps, profession, specialty, is_adeli = (
                    include[k],
                    PROFESSIONS[0],
                    "Médecine générale",
                    False,
                )
            else:
                rpps = luhn_complete(f"1{next(drawn):09d}")
                while rpps in taken:
                    rpps = luhn_complete(f"1{next(drawn):09d}")
                taken.add(rpps)
                profession = PROFESSIONS[int(profession_of[k])]
                specialty = profession[2][int(specialty_draw[k] * len(profession[2]))]
                is_adeli = bool(adeli[k])
            first = given.pick("F" if female[k] else "M", 1975, 1, source[k], choice[k])[0]
            postcode, city, _ = ref.RESIDENCES[int(residence[k])]
            row = [""] * len(HEADER)
            row[at["Type d'identifiant PP"]] = "0" if is_adeli else "8"
            row[at["Identifiant PP"]] = rpps[1:10] if is_adeli else rpps
            row[at["Identification nationale PP"]] = ("0" if is_adeli else "8") + rpps
            row[at["Nom d'exercice"]] = families.names[int(family_of[k])]
            row[at["Prénom d'exercice"]] = first
            row[at["Code profession"]], row[at["Libellé profession"]] = profession[:2]
            row[at["Libellé savoir-faire"]] = specialty
            row[at["Code postal (coord. structure)"]] = postcode
            row[at["Libellé commune (coord. structure)"]] = city
            row[at["Code pays (coord. structure)"]] = "99100"
            row[at["Libellé pays (coord. structure)"]] = "France"
            for activity in range(int(activities[k])):
                if activity == 0:  # the first activity has the practice address
                    row[at["Numéro Voie (coord. structure)"]] = str(street_no[k])
                    row[at["Libellé type de voie (coord. structure)"]] = ref.STREET_KINDS[
                        int(street_kind[k])]  # fmt: skip
                    row[at["Libellé Voie (coord. structure)"]] = ref.STREET_NAMES[int(street[k])]
                else:
                    for column in ("Numéro Voie (coord. structure)",
                                   "Libellé type de voie (coord. structure)",
                                   "Libellé Voie (coord. structure)"):  # fmt: skip
                        row[at[column]] = ""
                handle.write("|".join(row) + "|\n")
                rows += 1
            if progress is not None and (k + 1) % 50_000 == 0:
                progress(50_000)
    return rows
