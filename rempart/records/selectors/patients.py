"""Reads of patients: by id, and the searches of the admission desk.

Each search asks the blind indexes for candidates (truncated digests collide on purpose), then
decrypts the candidates and keeps only exact matches. Criteria are never logged or echoed: the
audit event of a search names the kinds of criteria used and the ids it returned. Every read is
recorded before it returns (log before reveal); if the trail cannot be written, AuditUnavailable
is raised and nothing is returned.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from rempart.access import policy
from rempart.audit.context import Actor
from rempart.audit.models import Action, Outcome
from rempart.audit.services import event_record
from rempart.lib.identifiers import validate_nir
from rempart.lib.normalise import fold_email, fold_name, fold_phone
from rempart.lib.phonetic import phonetic_code
from rempart.lib.replica import replica_reads
from rempart.patients.models import Patient, PatientIdentifier
from rempart.vault.fields import BlindIndexField


class PatientNotFound(Exception):
    """No such patient (or, once access control lands, none this user may see)."""


class SearchTooBroad(ValidationError):
    def __init__(self) -> None:
        super().__init__(_("Critères trop larges : précisez la recherche."), code="too_broad")


def _digests(index_field: str, *values: object) -> list[int]:
    """The values to look for in a blind-index column: one per enabled index key."""
    field = Patient._meta.get_field(index_field)
    if not isinstance(field, BlindIndexField):
        raise TypeError(f"{index_field} is not a blind index")
    return field.lookup_digests(*values)


def _by_name_date(name: str, birth_date: dt.date) -> Q:
    """Candidates for a name on a birth date: the (phonetic code, birth date) index, in the
    birth-name and usage-name columns. Exact and approximate searches ask the same buckets and
    differ only in the filter applied to the decrypted candidates."""
    digests = _digests("bidx_name_birth", name, birth_date)
    return Q(bidx_name_birth__in=digests) | Q(bidx_name_usage__in=digests)


def _exact(candidates: Q, keep: Callable[[Patient], bool]) -> list[Patient]:
    limit = settings.REMPART_SEARCH_MAX_CANDIDATES
    rows = list(Patient.objects.filter(candidates).order_by("id")[: limit + 1])
    if len(rows) > limit:
        raise SearchTooBroad()
    found = [p for p in rows if keep(p)]
    if len(found) > settings.REMPART_SEARCH_MAX_RESULTS:
        raise SearchTooBroad()
    return found


def _matches_family_name(patient: Patient, folded: str) -> bool:
    return folded in (fold_name(patient.birth_name or ""), fold_name(patient.usage_name or ""))


def _matches_given_name(patient: Patient, folded: str) -> bool:
    if fold_name(patient.first_given_name or "") == folded:
        return True
    return folded in {fold_name(g) for g in (patient.given_names or "").split(" ")}


def patient_open(
    actor: Actor, patient_id: uuid.UUID | str, action: str = Action.READ, *, clinical: bool = False
) -> tuple[Patient, policy.Access]:
    """The patient if the actor may open the record (its clinical content too, if `clinical`),
    with the access granted (the actor carrying the purpose, and whether clinical content is
    open); PatientNotFound for a missing patient and for one outside the actor's care alike.
    The refusal is recorded; the caller records the access itself."""
    try:
        patient = Patient.objects.filter(pk=patient_id).first()
    except (ValidationError, ValueError):
        patient = None
    try:
        allowed = policy.authorise_open(actor, patient_id, patient, clinical=clinical)
    except policy.AccessDenied as exc:
        if patient is None:
            event_record(actor, action, resource_type="Patient",
                         resource_id=str(patient_id)[:64], outcome=Outcome.NOT_FOUND)  # fmt: skip
        else:
            policy.refusal_recorded(actor, action, exc, resource_type="Patient",
                                    resource_id=str(patient.pk), patient_id=patient.pk)  # fmt: skip
        raise PatientNotFound() from None
    except (policy.StepUpRequired, policy.AccountLocked) as exc:
        policy.refusal_recorded(actor, action, exc, resource_type="Patient",
                                resource_id=str(patient_id)[:64],
                                patient_id=patient.pk if patient else None)  # fmt: skip
        raise
    assert patient is not None  # noqa: S101  # authorise_open refuses a missing patient
    return patient, allowed


def patient_get(*, actor: Actor, patient_id: uuid.UUID | str) -> Patient:
    patient, allowed = patient_open(actor, patient_id)
    event_record(allowed.actor, Action.READ, resource_type="Patient", resource_id=patient.pk,
                 patient_id=patient.pk)  # fmt: skip
    return patient


def _search(actor: Actor, kinds: list[str], run: Callable[[], list[Patient]]) -> list[Patient]:
    """Run a search and record it: the kinds of criteria, the outcome, the ids returned. The
    search and each patient it shows are charged to the actor's read budget first."""
    detail: dict[str, object] = {"criteria": kinds}
    try:
        policy.authorise_search(actor)
        with replica_reads():
            found = run()
        policy.charge_search(actor, [p.pk for p in found])
    except SearchTooBroad:
        event_record(actor, Action.SEARCH, resource_type="Patient", outcome=Outcome.DENIED,
                     detail={**detail, "refused": "too_broad"})  # fmt: skip
        raise
    except ValidationError:
        event_record(actor, Action.SEARCH, resource_type="Patient", outcome=Outcome.FAILED,
                     detail={**detail, "refused": "invalid"})  # fmt: skip
        raise
    except (policy.AccessDenied, policy.StepUpRequired, policy.AccountLocked) as exc:
        policy.refusal_recorded(actor, Action.SEARCH, exc, resource_type="Patient")
        raise
    event_record(actor, Action.SEARCH, resource_type="Patient", patients=[p.pk for p in found],
                 detail={**detail, "count": len(found)})  # fmt: skip
    return found


def patients_find_by_name_and_birth_date(
    *, actor: Actor, name: str, birth_date: dt.date, given_name: str = ""
) -> list[Patient]:
    """Birth or usage name, exact after normalisation, and birth date; a given name narrows."""
    kinds = ["name", "birth_date", *(["given_name"] if given_name.strip() else [])]
    return _search(actor, kinds, lambda: _by_name_and_birth_date(name, birth_date, given_name))


def _by_name_and_birth_date(name: str, birth_date: dt.date, given_name: str) -> list[Patient]:
    folded = fold_name(name)
    if not folded:
        raise ValidationError({"name": _("Le nom est obligatoire.")})
    given = fold_name(given_name)
    candidates = _by_name_date(name, birth_date)

    def keep(p: Patient) -> bool:
        return (
            p.birth_date == birth_date
            and _matches_family_name(p, folded)
            and (not given or _matches_given_name(p, given))
        )

    return _exact(candidates, keep)


def patients_find_by_nir(*, actor: Actor, nir: str) -> list[Patient]:
    return _search(actor, ["nir"], lambda: _by_nir(nir))


def _by_nir(nir: str) -> list[Patient]:
    normalised = validate_nir(nir)
    return _exact(Q(bidx_nir__in=_digests("bidx_nir", normalised)), lambda p: p.nir == normalised)


def patients_find_by_email(*, actor: Actor, email: str) -> list[Patient]:
    return _search(actor, ["email"], lambda: _by_email(email))


def _by_email(email: str) -> list[Patient]:
    folded = fold_email(email)
    if not folded:
        raise ValidationError({"email": _("L'adresse est obligatoire.")})
    return _exact(
        Q(bidx_email__in=_digests("bidx_email", email)),
        lambda p: fold_email(p.email or "") == folded,
    )


def patients_find_by_phone(*, actor: Actor, phone: str) -> list[Patient]:
    return _search(actor, ["phone"], lambda: _by_phone(phone))


def _by_phone(phone: str) -> list[Patient]:
    folded = fold_phone(phone)
    if len(folded) < 8:
        raise ValidationError({"phone": _("Le numéro de téléphone est incomplet.")})
    digests = _digests("bidx_phone_mobile", phone)
    return _exact(
        Q(bidx_phone_mobile__in=digests) | Q(bidx_phone_home__in=digests),
        lambda p: folded in (fold_phone(p.phone_mobile or ""), fold_phone(p.phone_home or "")),
    )


def patients_find_by_phonetic_name(
    *, actor: Actor, name: str, birth_date: dt.date
) -> list[Patient]:
    """Names that sound alike (DUPONT, DUPOND) on a birth date. A name alone is not searchable:
    no index holds a name without its birth date (a stolen database would show its frequency)."""
    return _search(
        actor, ["phonetic_name", "birth_date"], lambda: _by_phonetic_name(name, birth_date)
    )


def _by_phonetic_name(name: str, birth_date: dt.date) -> list[Patient]:
    code = phonetic_code(name)
    if not code:
        raise ValidationError({"name": _("Le nom est obligatoire.")})

    def keep(p: Patient) -> bool:
        return p.birth_date == birth_date and code in (
            phonetic_code(p.birth_name or ""),
            phonetic_code(p.usage_name or ""),
        )

    return _exact(_by_name_date(name, birth_date), keep)


def patient_id_for_ipp(*, actor: Actor, ipp: str, finess: str) -> uuid.UUID:
    """The patient an establishment's IPP names (a wristband scan, a console command)."""
    try:
        policy.authorise_search(actor)
    except (policy.AccessDenied, policy.AccountLocked) as exc:
        policy.refusal_recorded(actor, Action.SEARCH, exc, resource_type="Patient")
        raise
    found = (
        PatientIdentifier.objects.filter(ipp=ipp.strip(), establishment__finess=finess.strip())
        .values_list("patient_id", flat=True)
        .first()
    )
    policy.charge_search(actor, [found] if found else [])
    event_record(actor, Action.SEARCH, resource_type="Patient",
                 patients=[found] if found else [],
                 outcome=Outcome.SUCCESS if found else Outcome.NOT_FOUND,
                 detail={"criteria": ["ipp"], "count": 1 if found else 0})  # fmt: skip
    if found is None:
        raise PatientNotFound()
    return found
