"""Reads of a patient's stays and prescriptions (each read recorded before it returns)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from rempart.access import policy
from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.care.models import Drug, Prescription, Stay
from rempart.patients.models import Patient
from rempart.records.selectors.patients import PatientNotFound, patient_open


def _stays(patient: Patient) -> list[Stay]:
    ordered = Stay.objects.filter(patient=patient).order_by("-planned_admission")
    return list(ordered.select_related("establishment", "service"))


def _prescriptions(patient: Patient) -> list[Prescription]:
    ordered = Prescription.objects.filter(patient=patient).order_by("-prescribed_at")
    return list(ordered.select_related("prescriber").prefetch_related("lines"))


def stays_for_patient(*, actor: Actor, patient: Patient) -> list[Stay]:
    _, allowed = patient_open(actor, patient.pk, Action.READ)
    stays = _stays(patient)
    event_record(allowed, Action.READ, resource_type="Stay", patient_id=patient.pk,
                 detail={"count": len(stays)})  # fmt: skip
    return stays


def prescriptions_for_patient(*, actor: Actor, patient: Patient) -> list[Prescription]:
    _, allowed = patient_open(actor, patient.pk, Action.READ)
    prescriptions = _prescriptions(patient)
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
    stays, prescriptions = _stays(patient), _prescriptions(patient)
    event_record(allowed, Action.READ, resource_type="Patient", resource_id=patient.pk,
                 patient_id=patient.pk,
                 detail={"parts": ["identity", "contact", "stays", "prescriptions"],
                         "stays": len(stays), "prescriptions": len(prescriptions)})  # fmt: skip
    return Chart(patient, stays, prescriptions)


def drugs_search(*, query: str = "", limit: int = 30) -> list[Drug]:
    """The shipped catalogue (public data: no patient, no audit), by name, ATC code or code."""
    drugs = Drug.objects.all()
    query = query.strip()
    if query:
        drugs = drugs.filter(Q(name__icontains=query) | Q(atc__istartswith=query)
                             | Q(code__icontains=query))  # fmt: skip
    return list(drugs.order_by("name", "strength")[:limit])


@dataclass(frozen=True)
class WardRow:
    stay: Stay
    patient: Patient


def ward_stays(*, actor: Actor) -> list[WardRow]:
    """Current and upcoming stays of the actor's establishments (and services, for clinical
    roles): the home page's list. Every patient on it is in the actor's care by definition, so
    the list is recorded (one event naming them) but not charged to the read budget."""
    policy.authorise_role(actor, policy.READERS)
    now = timezone.now()
    upcoming = now + dt.timedelta(days=settings.REMPART_CARE_UPCOMING_DAYS)
    stays = Stay.objects.filter(establishment_id__in=actor.establishments, discharged_at=None)
    if actor.role in policy.CLINICAL and actor.services:
        stays = stays.filter(service_id__in=actor.services)
    stays = stays.filter(Q(admitted_at__isnull=False) | Q(planned_admission__range=(now, upcoming)))
    ordered = stays.select_related("patient", "service").order_by("planned_admission")
    rows = [WardRow(s, s.patient) for s in ordered[:200]]
    event_record(actor, Action.READ, resource_type="Stay", patients=[r.patient.pk for r in rows],
                 detail={"list": "ward", "count": len(rows)})  # fmt: skip
    return rows


def prescription_get(*, actor: Actor, prescription_id: uuid.UUID | str) -> Prescription:
    """One prescription with its lines, for its page and its printed ordonnance."""
    found = Prescription.objects.filter(pk=prescription_id).select_related("prescriber").first()
    if found is None:
        raise PatientNotFound()
    _, allowed = patient_open(actor, found.patient_id, Action.READ)
    event_record(allowed, Action.READ, resource_type="Prescription", resource_id=found.pk,
                 patient_id=found.patient_id)  # fmt: skip
    return found
