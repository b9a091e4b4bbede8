"""Reads of a patient's stays and prescriptions (each read recorded before it returns)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.care.models import Prescription, Stay
from rempart.patients.models import Patient
from rempart.records.selectors.patients import patient_open


def stays_for_patient(*, actor: Actor, patient: Patient) -> list[Stay]:
    _, allowed = patient_open(actor, patient.pk, Action.READ)
    stays = list(
        Stay.objects.filter(patient=patient)
        .select_related("establishment", "service")
        .order_by("-planned_admission")
    )
    event_record(allowed, Action.READ, resource_type="Stay", patient_id=patient.pk,
                 detail={"count": len(stays)})  # fmt: skip
    return stays


def prescriptions_for_patient(*, actor: Actor, patient: Patient) -> list[Prescription]:
    _, allowed = patient_open(actor, patient.pk, Action.READ)
    prescriptions = list(
        Prescription.objects.filter(patient=patient)
        .select_related("prescriber")
        .prefetch_related("lines")
        .order_by("-prescribed_at")
    )
    event_record(allowed, Action.READ, resource_type="Prescription", patient_id=patient.pk,
                 detail={"count": len(prescriptions)})  # fmt: skip
    return prescriptions


@dataclass(frozen=True)
class Chart:
    patient: Patient
    stays: list[Stay]
    prescriptions: list[Prescription]


def patient_chart(*, actor: Actor, patient_id: uuid.UUID | str) -> Chart:
    """What the chart page shows, as one access: one policy check, one audit event naming the
    parts read (one durable write per page, not one per part)."""
    patient, allowed = patient_open(actor, patient_id, Action.READ)
    stays = list(
        Stay.objects.filter(patient=patient)
        .select_related("establishment", "service")
        .order_by("-planned_admission")
    )
    prescriptions = list(
        Prescription.objects.filter(patient=patient)
        .select_related("prescriber")
        .prefetch_related("lines")
        .order_by("-prescribed_at")
    )
    event_record(allowed, Action.READ, resource_type="Patient", resource_id=patient.pk,
                 patient_id=patient.pk,
                 detail={"parts": ["identity", "contact", "stays", "prescriptions"],
                         "stays": len(stays), "prescriptions": len(prescriptions)})  # fmt: skip
    return Chart(patient, stays, prescriptions)
