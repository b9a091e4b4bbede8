"""The "Reprise des données" page's reads and writes: each import, its warned and refused lines;
a refused line opened (its sealed values read back, recorded and charged like a chart),
corrected into a patient with the registration page's validation, or discarded. Every step is
recorded in the audit trail; a handled line's sealed values are erased."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rempart.access import policy
from rempart.audit.context import Actor
from rempart.audit.models import Action, Purpose
from rempart.audit.services import event_record
from rempart.directory.models import Establishment, Role
from rempart.imports.models import ImportJob, ImportLine
from rempart.imports.sources import MEDIBOARD, Mapping, RowReader
from rempart.patients.models import Patient
from rempart.patients.validation import PatientData

VIEWERS = frozenset({Role.SECRETARY, Role.DPO})
# Why a refused line is discarded: a list, not free text (which could name the patient).
DISCARD_REASONS = {
    "duplicate": _("Personne déjà enregistrée (doublon)"),
    "test": _("Enregistrement de test ou fictif"),
    "unusable": _("Données inexploitables, personne non identifiable"),
}
CORRECTORS = frozenset({Role.SECRETARY})  # a correction registers a patient: the desk's act


class LineNotFound(Exception):
    """No such line, or one already handled."""


def _jobs_of(actor: Actor) -> Any:
    """The imports an actor may see: all for the DPO and the console; for the desk, those of its
    establishments (and those made for none)."""
    from django.db.models import Q

    from rempart.audit.context import SYSTEM_ROLE

    jobs = ImportJob.objects.all()
    if actor.role not in (Role.DPO, SYSTEM_ROLE):
        jobs = jobs.filter(Q(establishment_id__in=actor.establishments) | Q(establishment=None))
    return jobs


def import_jobs(*, actor: Actor) -> list[ImportJob]:
    """The imports the actor may see, newest first, with their counts (no patient data)."""
    policy.authorise_role(actor, VIEWERS)
    jobs = _jobs_of(actor).select_related("establishment").order_by("-started_at")
    return list(jobs[:200])


@dataclass(frozen=True)
class JobLines:
    job: ImportJob
    refused: list[ImportLine]
    warned: list[ImportLine]


def import_job_lines(*, actor: Actor, job_id: uuid.UUID | str) -> JobLines:
    """An import's lines to look at: the refused ones still open, and the warnings (line
    numbers and reasons only: reading them reveals no patient data)."""
    policy.authorise_role(actor, VIEWERS)
    job = _jobs_of(actor).filter(pk=job_id).select_related("establishment").first()
    if job is None:
        raise LineNotFound()
    lines = ImportLine.objects.filter(job=job).defer("content").order_by("line")
    refused = list(lines.filter(kind=ImportLine.Kind.REFUSED, status=ImportLine.Status.OPEN))
    warned = list(lines.filter(kind=ImportLine.Kind.WARNING)[:2000])
    event_record(actor, Action.READ, resource_type="ImportJob", resource_id=job.pk,
                 detail={"refused": len(refused), "warned": len(warned)})  # fmt: skip
    return JobLines(job, refused, warned)


def _open_line(actor: Actor, line_id: uuid.UUID | str) -> ImportLine:
    line = (
        ImportLine.objects.filter(pk=line_id, kind=ImportLine.Kind.REFUSED,
                                  status=ImportLine.Status.OPEN, job__in=_jobs_of(actor))
        .select_related("job")
        .first()
    )  # fmt: skip
    if line is None:
        raise LineNotFound()
    return line


def import_line_open(*, actor: Actor, line_id: uuid.UUID | str) -> tuple[ImportLine, PatientData]:
    """A refused line to correct, its values read back into a patient's fields (as far as the
    mapping tells): charged to the read budget and recorded like an opened chart."""
    policy.authorise_role(actor, VIEWERS)
    line = _open_line(actor, line_id)
    policy.charge(actor, [line.pk])
    event_record(actor, Action.READ, resource_type="ImportLine", resource_id=line.pk,
                 detail={"job": str(line.job_id), "line": line.line})  # fmt: skip
    return line, prefill(line.content or {})


def prefill(values: dict[str, str]) -> PatientData:
    """The line's values in a patient's fields, with the import's own reading of them (the
    Mediboard mapping; a line of another layout leaves the fields it cannot place empty)."""
    header = list(values)
    reader = RowReader(Mapping.load(None), header)
    row = [values[h] for h in header]

    def get(target: str) -> str:
        for column in MEDIBOARD["columns"].get(target, []):
            if values.get(column, "").strip():
                return " ".join(values[column].split())
        return ""

    try:
        extracted = reader.extract(row)
        data = extracted.data
    except ValidationError:
        data = PatientData(birth_name=get("birth_name"), given_names=get("given_names"),
                           sex="", birth_date=None)  # type: ignore[arg-type]  # fmt: skip
    return data


def import_line_correct(
    *, actor: Actor, line: ImportLine, data: PatientData,
    establishment: Establishment | None = None,
) -> Patient:  # fmt: skip
    """The corrected line registered as a patient (the registration page's validation, the IPP
    in the import's establishment), the line marked corrected and its sealed values erased."""
    from rempart.records.services.patients import patient_create

    policy.authorise_role(actor, CORRECTORS)
    place = establishment or line.job.establishment
    if place is not None and place.pk not in actor.establishments:
        place = Establishment.objects.filter(pk__in=actor.establishments).order_by("finess").first()
    with transaction.atomic():
        locked = ImportLine.objects.select_for_update().filter(
            pk=line.pk, status=ImportLine.Status.OPEN
        )
        if not locked.exists():
            raise LineNotFound()
        patient = patient_create(actor=actor, data=data, establishment=place)
        locked.update(status=ImportLine.Status.CORRECTED, patient_id=patient.pk, content=None,
                      handled_at=timezone.now())  # fmt: skip
        event_record(actor, Action.UPDATE, resource_type="ImportLine", resource_id=line.pk,
                     patient_id=patient.pk,
                     detail={"job": str(line.job_id), "line": line.line,
                             "change": "corrected"})  # fmt: skip
    return patient


def import_line_discard(*, actor: Actor, line: ImportLine, reason: str) -> None:
    """A refused line that will not come in (a test record, a person already registered): its
    sealed values are erased, the reason (one of DISCARD_REASONS) recorded."""
    policy.authorise_role(actor, VIEWERS)
    if reason not in DISCARD_REASONS:
        raise ValidationError({"reason": _("Choisissez un motif dans la liste.")})
    with transaction.atomic():
        done = ImportLine.objects.filter(pk=line.pk, status=ImportLine.Status.OPEN).update(
            status=ImportLine.Status.DISCARDED, content=None, handled_at=timezone.now(),
            reasons=f"{line.reasons} — écartée : {DISCARD_REASONS[reason]}",
        )  # fmt: skip
        if not done:
            raise LineNotFound()
        event_record(actor.for_purpose(Purpose.ADMINISTRATION), Action.DELETE,
                     resource_type="ImportLine", resource_id=line.pk,
                     detail={"job": str(line.job_id), "line": line.line,
                             "change": "discarded", "reason": reason})  # fmt: skip


def prefill_initial(data: PatientData, values: dict[str, str] | None = None) -> dict[str, Any]:
    """Form initial values from prefilled data (and the médecin traitant's RPPS of the line's
    `values`, when it is 11 digits)."""
    initial: dict[str, Any] = {}
    for column in MEDIBOARD["columns"]["gp_rpps"]:
        rpps = "".join((values or {}).get(column, "").split())
        if len(rpps) == 11 and rpps.isdigit():
            initial["gp_rpps"] = rpps
            break
    for name in ("birth_name", "usage_name", "given_names", "first_given_name", "sex",
                 "birth_place_code", "nir", "phone_mobile", "phone_home", "email",
                 "address_line", "postcode", "city"):  # fmt: skip
        initial[name] = getattr(data, name) or ""
    if isinstance(data.birth_date, dt.date):
        initial["birth_date"] = data.birth_date
    initial["identity_status"] = "PROV"
    return initial
