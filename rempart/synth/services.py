"""Generate a synthetic group and load it: what `rempart generate` and `rempart demo` call."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils import timezone

from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.lib.progress import progress_bar
from rempart.lib.timings import Timings
from rempart.patients.models import Patient
from rempart.synth.bulk import LoadSummary, bulk_load
from rempart.synth.population import build_directory


@dataclass(frozen=True)
class GroupShape:
    clinics: int
    health_centres: int
    nursing_homes: int


def shape_for(establishments: int) -> GroupShape:
    """The group's mix: about 14 clinics or health centres for 3 nursing homes."""
    if establishments < 2:
        raise ValidationError("Il faut au moins 2 établissements (dont un EHPAD).")
    nursing = max(1, round(establishments * 3 / 17))
    health = max(0, min(3, round((establishments - nursing) / 6)))
    clinics = establishments - nursing - health
    if clinics > 12 or nursing > 4:
        raise ValidationError(
            "Au plus 19 établissements synthétiques (12 cliniques, 3 centres, 4 EHPAD)."
        )
    return GroupShape(clinics, health, nursing)


def group_generate(
    *,
    patients: int,
    seed: int,
    establishments: int = 5,
    today: dt.date | None = None,
    workers: int = 2,
    show_progress: bool = True,
) -> LoadSummary:
    if patients < 1:
        raise ValidationError("Le nombre de patients doit être positif.")
    if Patient.objects.exists():
        raise ValidationError("La base contient déjà des patients : partez d'une base vide.")
    shape = shape_for(establishments)
    timings = Timings()
    with timings.phase("build the directory (names, practitioners)"):
        directory = build_directory(
            seed=seed,
            patients=patients,
            today=today or timezone.localdate(),
            clinics=shape.clinics,
            health_centres=shape.health_centres,
            nursing_homes=shape.nursing_homes,
        )
    if not show_progress:
        summary = bulk_load(directory, workers=workers, timings=timings)
    else:
        with progress_bar("patients générés, chiffrés et chargés", patients) as advance:
            summary = bulk_load(directory, workers=workers, advance=advance, timings=timings)
    event_record(Actor.system("generate"), Action.IMPORT, resource_type="SyntheticGroup",
                 detail={"patients": patients, "seed": seed})  # fmt: skip
    return summary
