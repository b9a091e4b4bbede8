"""Writes on patients: create, update, IPP allocation. Every value is validated, then sealed."""

from __future__ import annotations

from dataclasses import fields

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from rempart.directory.models import Establishment
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.validation import PatientData, clean_patient

Actor = AbstractBaseUser | AnonymousUser | None


def patient_create(
    *, actor: Actor, data: PatientData, establishment: Establishment | None = None
) -> Patient:
    """A new patient (and their IPP in `establishment`), all or nothing."""
    cleaned = clean_patient(data)
    with transaction.atomic():
        patient = Patient(**cleaned.as_model_values())
        patient.save(force_insert=True)
        if establishment is not None:
            ipp_allocate(patient=patient, establishment=establishment)
    return patient


def patient_update(*, actor: Actor, patient: Patient, data: PatientData) -> Patient:
    """Replace the patient's identity and contact with `data` (validated as a whole)."""
    cleaned = clean_patient(data)
    values = cleaned.as_model_values()
    changed = [
        f.name
        for f in fields(cleaned)
        if f.name in values and getattr(patient, f.name) != values[f.name]
    ]
    if not changed:
        return patient
    with transaction.atomic():
        for name in changed:
            setattr(patient, name, values[name])
        patient.save()
    return patient


def ipp_allocate(*, patient: Patient, establishment: Establishment) -> PatientIdentifier:
    """The patient's IPP in this establishment, made once: the next number of its counter."""
    with transaction.atomic():
        existing = PatientIdentifier.objects.filter(
            patient=patient, establishment=establishment
        ).first()
        if existing is not None:
            return existing
        counter, _ = IppCounter.objects.select_for_update().get_or_create(
            establishment=establishment
        )
        counter.last_value += 1
        counter.save(update_fields=["last_value"])
        return PatientIdentifier.objects.create(
            patient=patient, establishment=establishment, ipp=f"{counter.last_value:010d}"
        )
