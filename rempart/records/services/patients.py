"""Writes on patients: create, update, IPP allocation. Every value is validated, then sealed."""

from __future__ import annotations

from dataclasses import fields

from django.db import transaction

from rempart.access import policy
from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.directory.models import Establishment
from rempart.lib.identifiers import ipp_step
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.validation import PatientData, clean_patient
from rempart.records.selectors.patients import patient_open


def patient_create(
    *, actor: Actor, data: PatientData, establishment: Establishment | None = None
) -> Patient:
    """A new patient (and their IPP in `establishment`), all or nothing."""
    policy.authorise_role(actor, policy.READERS)
    if establishment is not None:
        policy.authorise_establishment(actor, establishment.pk)
    cleaned = clean_patient(data)
    with transaction.atomic():
        values = cleaned.as_model_values()
        patient = Patient(**values)
        patient.save(force_insert=True)
        given = sorted(k for k, v in values.items() if v is not None)  # names, never values
        event_record(actor, Action.CREATE, resource_type="Patient", resource_id=patient.pk,
                     patient_id=patient.pk, detail={"fields": given})  # fmt: skip
        if establishment is not None:
            ipp_allocate(actor=actor, patient=patient, establishment=establishment)
    return patient


class StaleVersion(Exception):
    """The record changed since the version the writer read (FHIR If-Match)."""


def patient_update(
    *, actor: Actor, patient: Patient, data: PatientData, expected_version: int | None = None
) -> Patient:
    """Replace the patient's identity and contact with `data` (validated as a whole). With
    `expected_version`, refuse (StaleVersion) if someone wrote the record since that version."""
    policy.authorise_role(actor, policy.READERS)
    patient_open(actor, patient.pk, Action.UPDATE)
    cleaned = clean_patient(data)
    values = cleaned.as_model_values()
    with transaction.atomic():
        locked = Patient.objects.select_for_update().filter(pk=patient.pk)
        version = locked.values_list("version", flat=True).first()
        if version is None or (expected_version is not None and version != expected_version):
            raise StaleVersion()
        if version != patient.version:
            patient.refresh_from_db()
        changed = [
            f.name
            for f in fields(cleaned)
            if f.name in values and getattr(patient, f.name) != values[f.name]
        ]
        if not changed:
            return patient
        for name in changed:
            setattr(patient, name, values[name])
        patient.version = version + 1
        patient.save()
        event_record(actor, Action.UPDATE, resource_type="Patient", resource_id=patient.pk,
                     patient_id=patient.pk, detail={"fields": sorted(changed)})  # fmt: skip
    return patient


def ipp_allocate(
    *, actor: Actor, patient: Patient, establishment: Establishment
) -> PatientIdentifier:
    """The patient's IPP in this establishment, made once: the next number of its counter."""
    policy.authorise_role(actor, policy.READERS)
    policy.authorise_establishment(actor, establishment.pk)
    with transaction.atomic():
        existing = PatientIdentifier.objects.filter(
            patient=patient, establishment=establishment
        ).first()
        if existing is not None:
            return existing
        counter, _ = IppCounter.objects.select_for_update().get_or_create(
            establishment=establishment
        )
        counter.last_value += ipp_step()
        counter.save(update_fields=["last_value"])
        identifier = PatientIdentifier.objects.create(
            patient=patient, establishment=establishment, ipp=f"{counter.last_value:010d}"
        )
        event_record(actor, Action.CREATE, resource_type="PatientIdentifier",
                     resource_id=identifier.pk, patient_id=patient.pk,
                     detail={"establishment": str(establishment.pk)})  # fmt: skip
        return identifier
