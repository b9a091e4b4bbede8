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
from rempart.lib.replica import replica_reads
from rempart.patients.models import Patient
from rempart.records.selectors.patients import PatientNotFound, patient_open


def _stays(patient: Patient, access: policy.Access) -> list[Stay]:
    """The patient's stays the access opens: every establishment's at the clinical level, the
    user's own establishments' at the desk."""
    ordered = Stay.objects.filter(patient=patient).order_by("-planned_admission")
    if not access.clinical:
        ordered = ordered.filter(establishment_id__in=access.actor.establishments)
    return list(ordered.select_related("establishment", "service"))


def _prescriptions(patient: Patient) -> list[Prescription]:
    ordered = Prescription.objects.filter(patient=patient).order_by("-prescribed_at")
    return list(ordered.select_related("prescriber").prefetch_related("lines"))


def stays_for_patient(*, actor: Actor, patient: Patient) -> list[Stay]:
    _, access = patient_open(actor, patient.pk, Action.READ)
    stays = _stays(patient, access)
    event_record(access.actor, Action.READ, resource_type="Stay", patient_id=patient.pk,
                 detail={"count": len(stays)})  # fmt: skip
    return stays


def prescriptions_for_patient(*, actor: Actor, patient: Patient) -> list[Prescription]:
    _, access = patient_open(actor, patient.pk, Action.READ, clinical=True)
    prescriptions = _prescriptions(patient)
    event_record(access.actor, Action.READ, resource_type="Prescription", patient_id=patient.pk,
                 detail={"count": len(prescriptions)})  # fmt: skip
    return prescriptions


@dataclass(frozen=True)
class Chart:
    patient: Patient
    stays: list[Stay]
    prescriptions: list[Prescription] | None  # None: clinical content not open to this user
    clinical: bool


def patient_chart(*, actor: Actor, patient_id: uuid.UUID | str) -> Chart:
    """What the chart page shows, as one access: one policy check, one audit event naming the
    parts read (one durable write per page, not one per part). At the desk level the chart is
    identity, contact and the stays of the user's establishments; prescriptions and the other
    establishments' stays come with the clinical level."""
    with replica_reads():
        patient, access = patient_open(actor, patient_id, Action.READ)
        stays = _stays(patient, access)
        prescriptions = _prescriptions(patient) if access.clinical else None
    parts = ["identity", "contact", "stays" if access.clinical else "stays_here"]
    if prescriptions is not None:
        parts.append("prescriptions")
    event_record(access.actor, Action.READ, resource_type="Patient", resource_id=patient.pk,
                 patient_id=patient.pk,
                 detail={"parts": parts, "stays": len(stays),
                         "prescriptions": len(prescriptions or ())})  # fmt: skip
    return Chart(patient, stays, prescriptions, access.clinical)


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
    if actor.role in policy.CLINICAL and not actor.services:
        return []  # fail closed, like the access policy
    now = timezone.now()
    upcoming = now + dt.timedelta(days=settings.REMPART_CARE_UPCOMING_DAYS)
    stays = Stay.objects.filter(establishment_id__in=actor.establishments, discharged_at=None,
                                cancelled_at=None)  # fmt: skip
    if actor.role in policy.CLINICAL:
        stays = stays.filter(service_id__in=actor.services)
    stays = stays.filter(Q(admitted_at__isnull=False) | Q(planned_admission__range=(now, upcoming)))
    # What the list shows, no more: up to 200 stays, each with its patient and service, and
    # neither the contact record nor the blind indexes are read.
    ordered = (
        stays.select_related("patient", "service")
        .only("id", "patient_id", "service_id", "admitted_at", "planned_admission",
              "patient__id", "patient__identity", "service__id", "service__name")
        .order_by("planned_admission")
    )  # fmt: skip
    rows = [WardRow(s, s.patient) for s in ordered[:200]]
    event_record(actor, Action.READ, resource_type="Stay", patients=[r.patient.pk for r in rows],
                 detail={"list": "ward", "count": len(rows)})  # fmt: skip
    return rows


def prescription_get(*, actor: Actor, prescription_id: uuid.UUID | str) -> Prescription:
    """One prescription with its lines, for its page and its printed ordonnance."""
    found = Prescription.objects.filter(pk=prescription_id).select_related("prescriber").first()
    if found is None:
        raise PatientNotFound()
    _, access = patient_open(actor, found.patient_id, Action.READ, clinical=True)
    event_record(access.actor, Action.READ, resource_type="Prescription", resource_id=found.pk,
                 patient_id=found.patient_id)  # fmt: skip
    return found


@dataclass(frozen=True)
class UnrealisedStay:
    stay: Stay
    opened_by: str  # the account that brought the patient into care with it ("" if none did)
    new_here: bool
    cancelled: bool


def stays_never_realised(*, actor: Actor, days: int = 90) -> list[UnrealisedStay]:
    """For the DPO: stays planned in the last `days` days that were cancelled, or whose planned
    admission is a day past without an admission; the ones that opened a care relationship
    first (a stolen account plans stays to reach charts, then never admits anyone). Ids,
    places and accounts only: no patient data, so no read budget."""
    from django.contrib.auth import get_user_model

    from rempart.access.models import CareOpening
    from rempart.directory.models import Role

    policy.authorise_role(actor, {Role.DPO})
    now = timezone.now()
    since = now - dt.timedelta(days=days)
    stays = Stay.objects.filter(admitted_at=None, planned_admission__gte=since).filter(
        Q(cancelled_at__isnull=False) | Q(planned_admission__lt=now - dt.timedelta(days=1))
    )
    stays = stays.select_related("establishment", "service").order_by("-planned_admission")
    rows = list(stays[:500])
    openings = {o.stay_id: o for o in CareOpening.objects.filter(stay_id__in=[s.pk for s in rows])}
    users = get_user_model().objects.in_bulk({o.user_id for o in openings.values()})
    result = []
    for stay in rows:
        opening = openings.get(stay.pk)
        who = users.get(opening.user_id) if opening else None
        result.append(UnrealisedStay(stay, who.get_username() if who else "",
                                     bool(opening and opening.new_here),
                                     stay.cancelled_at is not None))  # fmt: skip
    result.sort(key=lambda r: (not r.opened_by, not r.new_here))
    event_record(actor, Action.READ, resource_type="Stay",
                 detail={"list": "never_realised", "count": len(result)})  # fmt: skip
    return result
