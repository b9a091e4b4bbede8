"""Writes on care: stays (admission, discharge), prescriptions (draft, lines, signature)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.care.models import (
    Drug,
    Prescription,
    PrescriptionLine,
    PrescriptionStatus,
    Route,
    SignedPrescriptionError,
    Stay,
    StayKind,
)
from rempart.directory.models import Practitioner, Role, Service
from rempart.patients.models import Patient
from rempart.records.selectors.patients import patient_open
from rempart.records.services.patients import ipp_allocate


def stay_create(
    *,
    actor: Actor,
    patient: Patient,
    service: Service,
    kind: str,
    planned_admission: dt.datetime,
    planned_discharge: dt.datetime | None = None,
    admitted_at: dt.datetime | None = None,
    discharged_at: dt.datetime | None = None,
    reason: str = "",
) -> Stay:
    policy.authorise_role(actor, policy.READERS)
    policy.authorise_establishment(actor, service.establishment_id)
    errors: dict[str, Any] = {}
    if kind not in StayKind.values:
        errors["kind"] = _("Type de séjour inconnu.")
    if planned_discharge is not None and planned_discharge < planned_admission:
        errors["planned_discharge"] = _("La sortie prévue précède l'entrée prévue.")
    if discharged_at is not None and admitted_at is None:
        errors["discharged_at"] = _("Une sortie suppose une entrée.")
    elif discharged_at is not None and admitted_at is not None and discharged_at < admitted_at:
        errors["discharged_at"] = _("La sortie précède l'entrée.")
    if admitted_at is not None and admitted_at > timezone.now():
        errors["admitted_at"] = _("L'entrée réelle est dans le futur.")
    if errors:
        raise ValidationError(errors)
    opening = policy.authorise_care_opening(actor, patient, service.establishment_id)
    with transaction.atomic():
        stay = Stay(
            patient=patient,
            establishment_id=service.establishment_id,
            service=service,
            kind=kind,
            planned_admission=planned_admission,
            planned_discharge=planned_discharge,
            admitted_at=admitted_at,
            discharged_at=discharged_at,
            reason=reason or None,
        )
        stay.save(force_insert=True)
        if opening is None:
            _stay_event(actor, Action.CREATE, stay, "created")
        else:
            policy.care_opened(actor, opening, patient_id=patient.pk, stay_id=stay.pk,
                               establishment_id=service.establishment_id)  # fmt: skip
            event_record(actor, Action.CREATE, resource_type="Stay", resource_id=stay.pk,
                         patient_id=patient.pk,
                         detail={"change": "created", "care": "opened",
                                 "new_here": opening.new_here})  # fmt: skip
        if actor.role != SYSTEM_ROLE:
            ipp_allocate(actor=actor, patient=patient, establishment=service.establishment)
    return stay


def _stay_event(actor: Actor, action: str, stay: Stay, change: str) -> None:
    event_record(actor, action, resource_type="Stay", resource_id=stay.pk,
                 patient_id=stay.patient_id, detail={"change": change})  # fmt: skip


def _authorise_stay(actor: Actor, stay: Stay) -> None:
    policy.authorise_role(actor, policy.READERS)
    policy.authorise_establishment(actor, stay.establishment_id)
    patient_open(actor, stay.patient_id, Action.UPDATE)


def stay_cancel(*, actor: Actor, stay: Stay) -> Stay:
    """A planned stay that will not happen (the patient cancelled, a duplicate): it no longer
    puts the patient in anyone's care, and stays on the DPO's list of stays never realised."""
    _authorise_stay(actor, stay)
    if stay.admitted_at is not None:
        raise ValidationError(_("Le patient est entré : le séjour ne s'annule plus."),
                              code="admitted")  # fmt: skip
    if stay.cancelled_at is not None:
        raise ValidationError(_("Ce séjour est déjà annulé."), code="cancelled")
    stay.cancelled_at = timezone.now()
    with transaction.atomic():
        stay.save(update_fields=["cancelled_at"])
        _stay_event(actor, Action.UPDATE, stay, "cancelled")
    return stay


def stay_admit(*, actor: Actor, stay: Stay, at: dt.datetime | None = None) -> Stay:
    _authorise_stay(actor, stay)
    at = at or timezone.now()
    if stay.admitted_at is not None:
        raise ValidationError(_("Le patient est déjà entré."), code="already_admitted")
    if stay.cancelled_at is not None:
        raise ValidationError(_("Ce séjour a été annulé."), code="cancelled")
    stay.admitted_at = at
    with transaction.atomic():
        stay.save(update_fields=["admitted_at"])
        _stay_event(actor, Action.UPDATE, stay, "admitted")
    return stay


def stay_discharge(*, actor: Actor, stay: Stay, at: dt.datetime | None = None) -> Stay:
    _authorise_stay(actor, stay)
    at = at or timezone.now()
    if stay.admitted_at is None:
        raise ValidationError({"discharged_at": _("Une sortie suppose une entrée.")})
    if stay.discharged_at is not None:
        raise ValidationError({"discharged_at": _("Le patient est déjà sorti.")})
    if at < stay.admitted_at:
        raise ValidationError({"discharged_at": _("La sortie précède l'entrée.")})
    stay.discharged_at = at
    with transaction.atomic():
        stay.save(update_fields=["discharged_at"])
        _stay_event(actor, Action.UPDATE, stay, "discharged")
    return stay


def stay_transfer(
    *, actor: Actor, stay: Stay, service: Service, at: dt.datetime | None = None
) -> Stay:
    """The patient moves to another service of the same establishment during the stay."""
    _authorise_stay(actor, stay)
    errors: dict[str, Any] = {}
    if stay.admitted_at is None or stay.discharged_at is not None:
        errors["service"] = _("Seul un patient présent peut être transféré.")
    elif service.establishment_id != stay.establishment_id:
        errors["service"] = _("Le transfert se fait vers un service du même établissement.")
    elif service.pk == stay.service_id:
        errors["service"] = _("Le patient est déjà dans ce service.")
    if errors:
        raise ValidationError(errors)
    previous = stay.service_id
    stay.service = service
    with transaction.atomic():
        stay.save(update_fields=["service"])
        event_record(actor, Action.UPDATE, resource_type="Stay", resource_id=stay.pk,
                     patient_id=stay.patient_id,
                     detail={"change": "transferred", "from": str(previous),
                             "to": str(service.pk),
                             "at": (at or timezone.now()).isoformat()})  # fmt: skip
    return stay


@dataclass(frozen=True)
class LineData:
    drug: str  # catalogue code
    dose: str
    route: str
    frequency: str
    duration_days: int
    instructions: str = ""


def _clean_line(line: LineData) -> LineData:
    errors: dict[str, Any] = {}
    if not Drug.objects.filter(code=line.drug).exists():
        errors["drug"] = _("Médicament absent du catalogue.")
    if not line.dose.strip():
        errors["dose"] = _("La dose est obligatoire.")
    if line.route not in Route.values:
        errors["route"] = _("Voie d'administration inconnue.")
    if not line.frequency.strip():
        errors["frequency"] = _("La fréquence est obligatoire.")
    if not 1 <= line.duration_days <= 365:
        errors["duration_days"] = _("La durée doit être comprise entre 1 et 365 jours.")
    if errors:
        raise ValidationError(errors)
    return line


def _authorise_prescriber(
    actor: Actor, patient_id: uuid.UUID, prescriber: Practitioner | None
) -> None:
    """Prescriptions are written and signed by a physician for a patient in their care, as
    themselves (the console's system actor excepted: imports and the generator)."""
    policy.authorise_role(actor, {Role.PHYSICIAN})
    if (
        actor.role != SYSTEM_ROLE
        and prescriber is not None
        and prescriber.pk != actor.practitioner_id
    ):
        raise policy.AccessDenied()
    patient_open(actor, patient_id, Action.UPDATE, clinical=True)


def prescription_create(
    *,
    actor: Actor,
    patient: Patient,
    prescriber: Practitioner,
    stay: Stay | None = None,
    lines: list[LineData] = (),  # type: ignore[assignment]  # an empty tuple is a fine default
    prescribed_at: dt.datetime | None = None,
) -> Prescription:
    _authorise_prescriber(actor, patient.pk, prescriber)
    if stay is not None and stay.patient_id != patient.pk:
        raise ValidationError({"stay": _("Ce séjour est celui d'un autre patient.")})
    cleaned = [_clean_line(line) for line in lines]
    with transaction.atomic():
        prescription = Prescription(
            patient=patient,
            prescriber=prescriber,
            stay=stay,
            prescribed_at=prescribed_at or timezone.now(),
        )
        prescription.save(force_insert=True)
        for position, line in enumerate(cleaned, start=1):
            PrescriptionLine(
                prescription=prescription, position=position, content=asdict(line)
            ).save(force_insert=True)
        event_record(actor, Action.CREATE, resource_type="Prescription",
                     resource_id=prescription.pk, patient_id=patient.pk,
                     detail={"lines": len(cleaned)})  # fmt: skip
    return prescription


def prescription_line_add(
    *, actor: Actor, prescription: Prescription, line: LineData
) -> PrescriptionLine:
    _authorise_prescriber(actor, prescription.patient_id, prescription.prescriber)
    cleaned = _clean_line(line)
    with transaction.atomic():
        locked = Prescription.objects.select_for_update().get(pk=prescription.pk)
        if locked.status == PrescriptionStatus.SIGNED:
            raise SignedPrescriptionError()
        position = locked.lines.count() + 1
        result = PrescriptionLine(prescription=locked, position=position, content=asdict(cleaned))
        result.save(force_insert=True)
        event_record(actor, Action.CREATE, resource_type="PrescriptionLine",
                     resource_id=result.pk, patient_id=locked.patient_id,
                     detail={"prescription": str(locked.pk)})  # fmt: skip
    return result


def prescription_sign(
    *, actor: Actor, prescription: Prescription, at: dt.datetime | None = None
) -> Prescription:
    _authorise_prescriber(actor, prescription.patient_id, prescription.prescriber)
    with transaction.atomic():
        locked = Prescription.objects.select_for_update().get(pk=prescription.pk)
        if locked.status == PrescriptionStatus.SIGNED:
            raise SignedPrescriptionError()
        if not locked.lines.exists():
            raise ValidationError(
                _("Une ordonnance sans ligne ne peut pas être signée."), code="empty"
            )
        locked.status = PrescriptionStatus.SIGNED
        locked.signed_at = at or timezone.now()
        locked.save(update_fields=["status", "signed_at"])
        event_record(actor, Action.UPDATE, resource_type="Prescription", resource_id=locked.pk,
                     patient_id=locked.patient_id, detail={"change": "signed"})  # fmt: skip
    return locked
