"""Write a synthetic group into the database through the models (every value sealed on save).

One transaction: a failure leaves the database as it was. Issue-scale loads (hundreds of
thousands of patients) will take the COPY path; this one serves the demo and the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from django.db import models, transaction

from rempart.care.models import Prescription, PrescriptionLine, PrescriptionStatus, Stay
from rempart.directory.models import Establishment, Practitioner, Service
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.validation import clean_patient
from rempart.synth.generator import Group

M = TypeVar("M", bound=models.Model)
BATCH = 500


def _bulk(model: type[M], rows: Iterable[M], advance: Callable[[int], None] | None = None) -> None:
    batch: list[M] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            model._default_manager.bulk_create(batch)
            if advance:
                advance(len(batch))
            batch = []
    if batch:
        model._default_manager.bulk_create(batch)
        if advance:
            advance(len(batch))


def load_group(group: Group, *, advance: Callable[[int], None] | None = None) -> None:
    with transaction.atomic():
        _bulk(
            Establishment,
            (
                Establishment(id=e.id, finess=e.finess, name=e.name, kind=e.kind, city=e.city)
                for e in group.establishments
            ),
        )
        _bulk(
            Service,
            (
                Service(id=s.id, establishment_id=s.establishment_id, code=s.code, name=s.name)
                for s in group.services
            ),
        )
        _bulk(
            Practitioner,
            (
                Practitioner(
                    id=p.id,
                    rpps=p.rpps,
                    family_name=p.family_name,
                    given_name=p.given_name,
                    specialty=p.specialty,
                    internal=p.internal,
                    city=p.city,
                )
                for p in group.practitioners
            ),
        )
        through = Practitioner.establishments.through
        through.objects.bulk_create(
            [
                through(practitioner_id=p.id, establishment_id=e)
                for p in group.practitioners
                for e in p.establishment_ids
            ]
        )
        _bulk(
            Patient,
            (Patient(id=p.id, **clean_patient(p.data).as_model_values()) for p in group.patients),
            advance,
        )
        _bulk(
            PatientIdentifier,
            (
                PatientIdentifier(patient_id=pid, establishment_id=eid, ipp=ipp)
                for pid, eid, ipp in group.ipps
            ),
        )
        last: dict[uuid.UUID, int] = {}
        for _, eid, ipp in group.ipps:
            last[eid] = max(last.get(eid, 0), int(ipp))
        IppCounter.objects.bulk_create(
            [IppCounter(establishment_id=eid, last_value=v) for eid, v in last.items()]
        )
        _bulk(
            Stay,
            (
                Stay(
                    id=s.id,
                    patient_id=s.patient_id,
                    establishment_id=s.establishment_id,
                    service_id=s.service_id,
                    kind=s.kind,
                    planned_admission=s.planned_admission,
                    planned_discharge=s.planned_discharge,
                    admitted_at=s.admitted_at,
                    discharged_at=s.discharged_at,
                    reason=s.reason or None,
                )
                for s in group.stays
            ),
        )
        _bulk(
            Prescription,
            (
                Prescription(
                    id=r.id,
                    patient_id=r.patient_id,
                    stay_id=r.stay_id,
                    prescriber_id=r.prescriber_id,
                    prescribed_at=r.prescribed_at,
                    status=PrescriptionStatus.SIGNED if r.signed_at else PrescriptionStatus.DRAFT,
                    signed_at=r.signed_at,
                )
                for r in group.prescriptions
            ),
        )
        _bulk(
            PrescriptionLine,
            (
                PrescriptionLine(
                    id=line.id, prescription_id=r.id, position=line.position, content=line.content
                )
                for r in group.prescriptions
                for line in r.lines
            ),
        )


def patient_ids(group: Group) -> Sequence[object]:
    return [p.id for p in group.patients]
