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
    general practitioners), each with one to three activities; returns the number of rows."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    families = FamilyNames.build(rng, size=max(2_000, min(100_000, people // 4)))
    given = GivenNames()
    weights = np.array([p[3] for p in PROFESSIONS])
    rows = 0
    taken = set(include)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("|".join(HEADER) + "|\n")
        for k in range(people):
            if k < len(include):
                rpps, profession = include[k], PROFESSIONS[0]
                specialty = "Médecine générale"
            else:
                rpps = luhn_complete(f"1{int(rng.integers(0, 10**9)):09d}")
                while rpps in taken:
                    rpps = luhn_complete(f"1{int(rng.integers(0, 10**9)):09d}")
                taken.add(rpps)
                profession = PROFESSIONS[int(rng.choice(len(PROFESSIONS), p=weights))]
                specialty = profession[2][int(rng.integers(0, len(profession[2])))]
            adeli = rng.random() < 0.05 and k >= len(include)
            sex = "F" if rng.random() < 0.55 else "M"
            first = given.pick(sex, 1975, 1, rng.random(3), rng.random(3))[0]
            family = families.names[int(families.draw(rng, 1)[0])]
            for activity in range(1 + int(rng.poisson(0.4))):
                postcode, city, _ = ref.RESIDENCES[int(rng.integers(0, len(ref.RESIDENCES)))]
                street = ref.STREET_NAMES[int(rng.integers(0, len(ref.STREET_NAMES)))]
                kind = ref.STREET_KINDS[int(rng.integers(0, len(ref.STREET_KINDS)))]
                row = dict.fromkeys(HEADER, "")
                row.update({
                    "Type d'identifiant PP": "0" if adeli else "8",
                    "Identifiant PP": rpps[1:10] if adeli else rpps,
                    "Identification nationale PP": ("0" if adeli else "8") + rpps,
                    "Nom d'exercice": family, "Prénom d'exercice": first,
                    "Code profession": profession[0], "Libellé profession": profession[1],
                    "Libellé savoir-faire": specialty,
                    "Numéro Voie (coord. structure)": "" if activity else str(
                        rng.integers(1, 200)),
                    "Libellé type de voie (coord. structure)": "" if activity else kind,
                    "Libellé Voie (coord. structure)": "" if activity else street,
                    "Code postal (coord. structure)": postcode,
                    "Libellé commune (coord. structure)": city,
                    "Code pays (coord. structure)": "99100",
                    "Libellé pays (coord. structure)": "France",
                })  # fmt: skip
                handle.write("|".join(row[h] for h in HEADER) + "|\n")
                rows += 1
            if progress is not None and (k + 1) % 50_000 == 0:
                progress(50_000)
    return rows
