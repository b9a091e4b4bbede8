"""Reads of a patient's stays and prescriptions."""

from __future__ import annotations

from django.db.models import QuerySet

from rempart.care.models import Prescription, Stay
from rempart.patients.models import Patient


def stays_for_patient(*, patient: Patient) -> QuerySet[Stay]:
    return (
        Stay.objects.filter(patient=patient)
        .select_related("establishment", "service")
        .order_by("-planned_admission")
    )


def prescriptions_for_patient(*, patient: Patient) -> QuerySet[Prescription]:
    return (
        Prescription.objects.filter(patient=patient)
        .select_related("prescriber")
        .prefetch_related("lines")
        .order_by("-prescribed_at")
    )
