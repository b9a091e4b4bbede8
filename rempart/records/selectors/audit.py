"""The patient access report: who accessed a patient's record, when, why, from which
establishment, as the patient is entitled to ask (RGPD art. 15, CSP L.1110-4)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db.models import Q

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action, Event, EventPatient, Outcome, Purpose
from rempart.audit.services import event_record
from rempart.directory.models import Establishment, Role
from rempart.lib.ids import new_id
from rempart.patients.models import Patient
from rempart.records.selectors.patients import PatientNotFound, patient_open

_ROLES = {**dict(Role.choices), SYSTEM_ROLE: "Système (traitement automatique)"}
_ACTIONS = dict(Action.choices)
_PURPOSES = dict(Purpose.choices)
_OUTCOMES = dict(Outcome.choices)
_RESOURCES = {
    "Patient": "identité et coordonnées", "Stay": "séjours", "Prescription": "prescriptions",
    "PrescriptionLine": "ligne de prescription", "PatientIdentifier": "IPP",
    "ImportJob": "reprise de données", "AccessReport": "relevé des accès",
}  # fmt: skip


@dataclass(frozen=True)
class AccessEntry:
    at: dt.datetime
    who: str
    role: str
    establishment: str
    action: str
    what: str
    purpose: str
    outcome: str


@dataclass(frozen=True)
class AccessReport:
    patient: Patient
    entries: list[AccessEntry]
    made_at: dt.datetime


def patient_access_report(*, actor: Actor, patient_id: uuid.UUID | str) -> AccessReport:
    """Every recorded access to the patient, oldest first (the request is itself recorded)."""
    if actor.role in (Role.DPO, SYSTEM_ROLE):  # the DPO answers patients' requests
        patient = Patient.objects.filter(pk=patient_id).first()
        # The report's header names the patient: charged to the DPO's read budget like a chart.
        policy.charge(actor, [patient.pk if patient is not None else new_id()])
        if patient is None:
            event_record(actor, Action.REPORT, resource_type="AccessReport",
                         resource_id=str(patient_id), outcome=Outcome.NOT_FOUND)  # fmt: skip
            raise PatientNotFound()
    else:  # a clinician shows it from the chart of a patient in their care (clinical level:
        # the report names every establishment that read the record)
        patient, access = patient_open(actor, patient_id, Action.REPORT, clinical=True)
        actor = access.actor
    touched = EventPatient.objects.filter(patient_id=patient.pk).values("event_id")
    events = list(Event.objects.filter(Q(patient_id=patient.pk) | Q(id__in=touched)).order_by("id"))
    users = get_user_model().objects.in_bulk({e.user_id for e in events if e.user_id})
    places = Establishment.objects.in_bulk({e.establishment_id for e in events
                                            if e.establishment_id})  # fmt: skip
    entries = []
    for e in events:
        user = users.get(e.user_id) if e.user_id else None
        place = places.get(e.establishment_id) if e.establishment_id else None
        entries.append(
            AccessEntry(
                at=e.at,
                who=(user.get_full_name() or user.get_username()) if user else e.username,
                role=str(_ROLES.get(e.role, e.role)),
                establishment=place.name if place else "",
                action=str(_ACTIONS.get(e.action, e.action)),
                what=_RESOURCES.get(e.resource_type, e.resource_type),
                purpose=str(_PURPOSES.get(e.purpose, e.purpose)),
                outcome=str(_OUTCOMES.get(e.outcome, e.outcome)),
            )
        )
    event_record(actor.for_purpose(Purpose.PATIENT_REQUEST), Action.REPORT,
                 resource_type="AccessReport", patient_id=patient.pk,
                 detail={"entries": len(entries)})  # fmt: skip
    return AccessReport(patient=patient, entries=entries, made_at=dt.datetime.now(dt.UTC))
