"""The FHIR API's resources: read, search, create and update, through the same selectors and
services as the pages. Every access to a patient goes through the access helper (care
relationship, read budget, canaries, locks) and is in the audit trail before it is answered; a
resource outside the caller's care is "not found", exactly like one that does not exist.

The caller is the account a token acts for: a system's own account (its establishments, the
API_CLIENT role's budget and lock) or the staff member who approved an application. Scopes
narrow what the account may do; they never widen it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from rempart.access import policy
from rempart.audit.context import Actor
from rempart.audit.models import Action, Event, Purpose
from rempart.audit.services import event_record
from rempart.care.models import Drug, Prescription, PrescriptionLine, SignedPrescriptionError, Stay
from rempart.directory.models import Establishment, Practitioner, Role, Service
from rempart.fhir import mapping
from rempart.fhir.models import ApiToken
from rempart.fhir.outcome import FhirError
from rempart.fhir.services import scope_allows
from rempart.lib.identifiers import validate_rpps
from rempart.patients.models import Patient, PatientIdentifier
from rempart.records.actors import actor_for_user
from rempart.records.selectors import patients as finders
from rempart.records.selectors.patients import PatientNotFound, SearchTooBroad, patient_open
from rempart.records.services import care as care_services
from rempart.records.services import patients as patient_services

PAGE = 20
PAGE_MAX = 100
AUDIT_READERS = frozenset({Role.DPO, Role.SECURITY_OFFICER, Role.AUDITOR, Role.API_CLIENT})
NOT_FOUND = "ressource introuvable (ou hors de votre prise en charge)"


@dataclass(frozen=True)
class Caller:
    actor: Actor
    scopes: list[str]

    def allow(self, kind: str, operation: str) -> None:
        if not scope_allows(self.scopes, kind, operation):
            raise FhirError(403, "forbidden", f"portée insuffisante pour {kind} ({operation})")


def caller_for(request: HttpRequest, token: ApiToken) -> Caller:
    """The account the token acts for, as the pages would see it, with the application named
    in every event it causes."""
    account = token.user if token.user_id is not None else token.client.account
    actor = actor_for_user(account, ip=getattr(request, "client_ip", ""),
                           request_id=getattr(request, "request_id", ""),
                           client_request_id=f"fhir:{token.client.client_id}")  # fmt: skip
    return Caller(actor, list(token.scopes))


def guarded(run: Callable[[], Any]) -> Any:
    """Run a read or write, turning the access floor's refusals into FHIR errors."""
    try:
        return run()
    except PatientNotFound:
        raise FhirError(404, "not-found", NOT_FOUND) from None
    except policy.AccessDenied:
        raise FhirError(403, "forbidden", "accès refusé à ce compte") from None
    except policy.StepUpRequired:
        raise FhirError(
            429,
            "throttled",
            "budget de consultation atteint : l'utilisateur doit "
            "confirmer son identité dans Rempart (second facteur)",
        ) from None
    except policy.AccountLocked:
        raise FhirError(
            403,
            "security",
            "compte verrouillé par mesure de sécurité : contactez le responsable sécurité",
        ) from None
    except SearchTooBroad:
        raise FhirError(400, "too-costly", "critères trop larges : précisez la recherche") from None
    except ValidationError as exc:
        raise FhirError(422, "invalid", _validation_text(exc)) from None


def _validation_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return " ; ".join(f"{field} : {' '.join(str(m) for m in errors[0].messages)}"
                          for field, errors in exc.error_dict.items())  # fmt: skip
    return " ".join(str(m) for m in exc.messages)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise FhirError(404, "not-found", NOT_FOUND) from None


# --- read ---------------------------------------------------------------------------------------


def read(caller: Caller, kind: str, resource_id: str) -> dict[str, Any]:
    caller.allow(kind, "r")
    readers: dict[str, Callable[[Caller, str], dict[str, Any]]] = {
        "Patient": _patient_read, "Practitioner": _practitioner_read,
        "Organization": _organization_read, "Encounter": _encounter_read,
        "MedicationRequest": _medication_request_read, "AuditEvent": _audit_event_read,
    }  # fmt: skip
    if kind not in readers:
        raise FhirError(405, "not-supported", f"{kind} n'est pas lisible par cette API")
    found: dict[str, Any] = guarded(lambda: readers[kind](caller, resource_id))
    return found


def _patient_read(caller: Caller, resource_id: str) -> dict[str, Any]:
    patient = finders.patient_get(actor=caller.actor, patient_id=resource_id)
    return patient_out(patient)


def patient_out(patient: Patient) -> dict[str, Any]:
    ipps = list(
        PatientIdentifier.objects.filter(patient=patient)
        .order_by("establishment__finess")
        .values_list("establishment__finess", "ipp", "establishment_id")
    )
    gp = Practitioner.objects.filter(pk=patient.gp_id).first() if patient.gp_id else None
    return mapping.patient_resource(patient, ipps, gp)


def _practitioner_read(caller: Caller, resource_id: str) -> dict[str, Any]:
    found = Practitioner.objects.filter(pk=_uuid(resource_id)).first()
    if found is None:
        raise PatientNotFound()
    return mapping.practitioner_resource(found)


def _organization_read(caller: Caller, resource_id: str) -> dict[str, Any]:
    found = Establishment.objects.filter(pk=_uuid(resource_id)).first()
    if found is None:
        raise PatientNotFound()
    return mapping.organization_resource(found)


def _encounter_read(caller: Caller, resource_id: str) -> dict[str, Any]:
    stay = Stay.objects.select_related("service").filter(pk=_uuid(resource_id)).first()
    if stay is None:
        event_record(caller.actor, Action.READ, resource_type="Stay",
                     resource_id=resource_id[:64], outcome="not_found")  # fmt: skip
        raise PatientNotFound()
    _, access = patient_open(caller.actor, stay.patient_id, Action.READ)
    if not access.clinical and stay.establishment_id not in caller.actor.establishments:
        raise PatientNotFound()  # the desk sees its own establishments' stays only
    event_record(access.actor, Action.READ, resource_type="Stay", resource_id=stay.pk,
                 patient_id=stay.patient_id)  # fmt: skip
    return mapping.encounter_resource(stay, access.clinical)


def _medication_request_read(caller: Caller, resource_id: str) -> dict[str, Any]:
    line = (
        PrescriptionLine.objects.select_related("prescription")
        .filter(pk=_uuid(resource_id))
        .first()
    )
    if line is None:
        event_record(caller.actor, Action.READ, resource_type="PrescriptionLine",
                     resource_id=resource_id[:64], outcome="not_found")  # fmt: skip
        raise PatientNotFound()
    prescription = line.prescription
    _, access = patient_open(caller.actor, prescription.patient_id, Action.READ, clinical=True)
    event_record(access.actor, Action.READ, resource_type="PrescriptionLine", resource_id=line.pk,
                 patient_id=prescription.patient_id)  # fmt: skip
    return mapping.medication_request_resource(line, prescription, _drug_names([line])[0])


def _drug_names(lines: list[PrescriptionLine]) -> list[str]:
    codes = {str((line.content or {}).get("drug", "")) for line in lines}
    drugs = Drug.objects.filter(code__in=codes)
    names = {d.code: f"{d.name} {d.strength}, {d.form}" for d in drugs}
    return [names.get(str((line.content or {}).get("drug", "")), "") for line in lines]


def _audit_reader(caller: Caller) -> None:
    policy.authorise_role(caller.actor, AUDIT_READERS)


def _audit_event_read(caller: Caller, resource_id: str) -> dict[str, Any]:
    _audit_reader(caller)
    try:
        found = Event.objects.filter(pk=int(resource_id)).first()
    except ValueError:
        found = None
    if found is None:
        raise PatientNotFound()
    event_record(caller.actor.for_purpose(Purpose.SECURITY), Action.READ,
                 resource_type="AuditEvent", resource_id=str(found.pk))  # fmt: skip
    return mapping.audit_event_resource(found)


# --- search -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    total: int
    resources: list[dict[str, Any]]
    offset: int
    count: int


def search(caller: Caller, kind: str, params: dict[str, str]) -> Page:
    caller.allow(kind, "s")
    searches: dict[str, Callable[[Caller, dict[str, str]], list[dict[str, Any]]]] = {
        "Patient": _patient_search, "Practitioner": _practitioner_search,
        "Organization": _organization_search, "Encounter": _encounter_search,
        "MedicationRequest": _medication_request_search, "AuditEvent": _audit_event_search,
    }  # fmt: skip
    if kind not in searches:
        raise FhirError(405, "not-supported", f"{kind} n'est pas cherchable par cette API")
    count = _int_param(params, "_count", PAGE, 0, PAGE_MAX)
    offset = _int_param(params, "_offset", 0, 0, 10_000)
    found = guarded(lambda: searches[kind](caller, params))
    return Page(len(found), found[offset : offset + count], offset, count)


_CONTROL = {"_count", "_offset", "_format", "_total", "_totalMethod"}  # total: always exact
_KNOWN = {
    "Patient": {"family", "given", "name", "birthdate", "identifier", "gender", "_id"},
    "Practitioner": {"identifier", "family", "_id"},
    "Organization": {"identifier", "name", "_id"},
    "Encounter": {"patient", "subject", "date", "status"},
    "MedicationRequest": {"patient", "subject", "status", "authoredon"},
    "AuditEvent": {"date", "patient", "_id"},
}


def unknown_parameters(kind: str, params: dict[str, str]) -> list[str]:
    """Search parameters this server does not support: refused (a search that silently
    ignored one would return more than the caller asked for)."""
    return sorted(p for p in params if p not in _CONTROL and p not in _KNOWN.get(kind, set()))


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise FhirError(400, "value", f"{name} : un entier de {low} à {high} est attendu")
    return int(raw)


def _date(raw: str, name: str) -> tuple[str, dt.date]:
    """A date search value with its prefix (eq, ge, le, gt, lt); full dates only."""
    prefix = raw[:2] if raw[:2] in ("eq", "ge", "le", "gt", "lt") else "eq"
    text = raw[2:] if raw[:2] == prefix else raw
    try:
        return prefix, dt.date.fromisoformat(text[:10])
    except ValueError:
        raise FhirError(400, "value", f"{name} : une date AAAA-MM-JJ est attendue") from None


def _patient_search(caller: Caller, params: dict[str, str]) -> list[dict[str, Any]]:
    actor = caller.actor
    if "_id" in params:
        return [_patient_read(caller, params["_id"])]
    identifier = params.get("identifier", "")
    if identifier:
        system, bar, value = identifier.rpartition("|")
        if not bar or not value:
            raise FhirError(400, "value", "identifier : système|valeur attendu")
        if system in (mapping.INS_NIR, mapping.INS_NIA):
            found = finders.patients_find_by_nir(actor=actor, nir=value)
        elif system.startswith("urn:rempart:ipp:"):
            try:
                finess = system.rsplit(":", 1)[1]
                patient_id = finders.patient_id_for_ipp(actor=actor, ipp=value, finess=finess)
            except PatientNotFound:
                return []
            found = [finders.patient_get(actor=actor, patient_id=patient_id)]
        else:
            raise FhirError(400, "not-supported", "identifier : systèmes INS-NIR, INS-NIA ou IPP "
                                                  "(urn:rempart:ipp:<FINESS>)")  # fmt: skip
    else:
        family = params.get("family") or params.get("name") or ""
        if not family or "birthdate" not in params:
            raise FhirError(
                400,
                "too-costly",
                "recherche de patient : nom (family ou name) et "
                "birthdate, ou identifier ; un nom seul n'est pas cherchable",
            )
        prefix, birth_date = _date(params["birthdate"], "birthdate")
        if prefix != "eq":
            raise FhirError(400, "not-supported", "birthdate : une date exacte est attendue")
        found = finders.patients_find_by_name_and_birth_date(
            actor=actor, name=family, birth_date=birth_date, given_name=params.get("given", "")
        )
    gender = params.get("gender")
    if gender is not None:
        if gender not in mapping.SEXES:
            raise FhirError(400, "code-invalid", "gender : male, female, other ou unknown")
        found = [p for p in found if (p.sex or "I") == mapping.SEXES[gender]]
    return [patient_out(p) for p in found]


def _practitioner_search(caller: Caller, params: dict[str, str]) -> list[dict[str, Any]]:
    found: QuerySet[Practitioner] = Practitioner.objects.all()
    if "_id" in params:
        found = found.filter(pk=_uuid(params["_id"]))
    elif "identifier" in params:
        system, _, value = params["identifier"].rpartition("|")
        value = value[1:] if system == mapping.RPPS and value.startswith("8") else value
        try:
            found = found.filter(rpps=validate_rpps(value))
        except ValidationError:
            said = "identifier : un RPPS (11 chiffres) est attendu"
            raise FhirError(400, "value", said) from None
    elif params.get("family"):
        found = found.filter(family_name__iexact=params["family"].strip())
    else:
        raise FhirError(400, "too-costly", "recherche de praticien : identifier ou family")
    return [mapping.practitioner_resource(p) for p in found.order_by("family_name", "rpps")[:200]]


def _organization_search(caller: Caller, params: dict[str, str]) -> list[dict[str, Any]]:
    found: QuerySet[Establishment] = Establishment.objects.all()
    if "_id" in params:
        found = found.filter(pk=_uuid(params["_id"]))
    if "identifier" in params:
        found = found.filter(finess=params["identifier"].rpartition("|")[2].strip())
    if "name" in params:
        found = found.filter(name__icontains=params["name"].strip())
    return [mapping.organization_resource(e) for e in found.order_by("finess")]


def _patient_param(params: dict[str, str]) -> str:
    raw = params.get("patient") or params.get("subject") or ""
    raw = raw.removeprefix("Patient/")
    if not raw:
        raise FhirError(400, "too-costly", "le paramètre patient est obligatoire")
    return raw


def _date_filter(field: str, raw: str, name: str) -> Q:
    prefix, day = _date(raw, name)
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    end = start + dt.timedelta(days=1)
    after, before = f"{field}__gte", f"{field}__lt"
    return {"eq": Q(**{after: start, before: end}), "ge": Q(**{after: start}),
            "gt": Q(**{after: end}), "le": Q(**{before: end}),
            "lt": Q(**{before: start})}[prefix]  # fmt: skip


def _encounter_search(caller: Caller, params: dict[str, str]) -> list[dict[str, Any]]:
    patient_id = _patient_param(params)
    _, access = patient_open(caller.actor, patient_id, Action.READ)
    stays = Stay.objects.filter(patient_id=access_patient(patient_id)).select_related("service")
    if not access.clinical:
        stays = stays.filter(establishment_id__in=caller.actor.establishments)
    for raw in _all(params, "date"):
        stays = stays.filter(_date_filter("planned_admission", raw, "date"))
    rows = list(stays.order_by("-planned_admission")[:500])
    status = params.get("status")
    if status is not None:
        rows = [s for s in rows if mapping.encounter_status(s) in status.split(",")]
    event_record(access.actor, Action.READ, resource_type="Stay",
                 patient_id=access_patient(patient_id),
                 detail={"count": len(rows), "via": "search"})  # fmt: skip
    return [mapping.encounter_resource(s, access.clinical) for s in rows]


def _medication_request_search(caller: Caller, params: dict[str, str]) -> list[dict[str, Any]]:
    patient_id = _patient_param(params)
    _, access = patient_open(caller.actor, patient_id, Action.READ, clinical=True)
    lines = PrescriptionLine.objects.filter(prescription__patient_id=access_patient(patient_id))
    for raw in _all(params, "authoredon"):
        lines = lines.filter(_date_filter("prescription__prescribed_at", raw, "authoredon"))
    status = params.get("status")
    if status is not None:
        wanted = {"active": "signed", "draft": "draft"}
        if not set(status.split(",")) <= set(wanted):
            raise FhirError(400, "code-invalid", "status : active ou draft")
        lines = lines.filter(prescription__status__in=[wanted[s] for s in status.split(",")])
    rows = list(lines.select_related("prescription").order_by("-prescription__prescribed_at",
                                                              "position")[:500])  # fmt: skip
    event_record(access.actor, Action.READ, resource_type="Prescription",
                 patient_id=access_patient(patient_id),
                 detail={"count": len(rows), "via": "search"})  # fmt: skip
    names = _drug_names(rows)
    return [mapping.medication_request_resource(line, line.prescription, name)
            for line, name in zip(rows, names, strict=True)]  # fmt: skip


def access_patient(raw: str) -> uuid.UUID:
    return uuid.UUID(raw)  # patient_open has accepted it: a well-formed id


def _all(params: dict[str, str], name: str) -> list[str]:
    value = params.get(name)
    return [v for v in value.split("\x00") if v] if value else []


def _audit_event_search(caller: Caller, params: dict[str, str]) -> list[dict[str, Any]]:
    _audit_reader(caller)
    events = Event.objects.all()
    if "_id" in params:
        events = events.filter(pk=int(params["_id"])) if params["_id"].isdigit() else events.none()
    for raw in _all(params, "date"):
        events = events.filter(_date_filter("at", raw, "date"))
    if "patient" in params:
        events = events.filter(patient_id=_uuid(params["patient"].removeprefix("Patient/")))
    if "date" not in params and "_id" not in params:
        raise FhirError(400, "too-costly", "recherche du journal : date (ge/le) obligatoire")
    rows = list(events.order_by("-id")[:1000])
    event_record(caller.actor.for_purpose(Purpose.SECURITY), Action.READ,
                 resource_type="AuditEvent", detail={"count": len(rows)})  # fmt: skip
    return [mapping.audit_event_resource(e) for e in rows]


# --- writes -------------------------------------------------------------------------------------


def _gp_for(reference: Any) -> uuid.UUID:
    """The médecin traitant of a posted Patient: a Practitioner reference, or an RPPS."""
    if reference.reference and reference.reference.startswith("Practitioner/"):
        found = Practitioner.objects.filter(pk=_uuid_or_422(reference.reference[13:])).first()
    elif reference.identifier is not None and reference.identifier.value:
        value = reference.identifier.value
        found = Practitioner.objects.filter(rpps=value[1:] if len(value) == 12 else value).first()
    else:
        found = None
    if found is None:
        raise FhirError(422, "not-found", "generalPractitioner : praticien inconnu de l'annuaire")
    return found.pk


def _uuid_or_422(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise FhirError(422, "value", "generalPractitioner : référence mal formée") from None


def patient_create(
    caller: Caller, body: dict[str, Any], if_none_exist: str
) -> tuple[dict[str, Any], bool]:
    """A new patient, with an IPP in the caller's first establishment; with `if_none_exist` (a
    search), the patient it finds instead when it finds exactly one (False: not created)."""
    caller.allow("Patient", "c")
    data = mapping.patient_data(body, _gp_for)
    if if_none_exist:
        from urllib.parse import parse_qsl

        criteria = dict(parse_qsl(if_none_exist, keep_blank_values=True))
        unknown = unknown_parameters("Patient", criteria)
        if unknown or not criteria:
            raise FhirError(400, "not-supported", "If-None-Exist : critères de recherche de "
                                                  "patient attendus")  # fmt: skip
        caller.allow("Patient", "s")
        found = guarded(lambda: _patient_search(caller, criteria))
        if len(found) > 1:
            raise FhirError(412, "multiple-matches", "If-None-Exist : plusieurs patients "
                                                     "correspondent")  # fmt: skip
        if found:
            return found[0], False
    place = None
    if caller.actor.establishment_id is not None:
        place = Establishment.objects.filter(pk=caller.actor.establishment_id).first()

    def create() -> Patient:
        return patient_services.patient_create(actor=caller.actor, data=data, establishment=place)

    return patient_out(guarded(create)), True


def patient_update(caller: Caller, resource_id: str, body: dict[str, Any],
                   if_match: str) -> dict[str, Any]:  # fmt: skip
    """Replace a patient's identity and contact (update, not create: ids are the server's)."""
    caller.allow("Patient", "u")
    if body.get("id") != resource_id:
        raise FhirError(400, "invariant", "Patient.id doit être celui de l'adresse")
    data = mapping.patient_data(body, _gp_for)
    expected = _expected_version(if_match, body)

    def update() -> Patient:
        patient, _ = patient_open(caller.actor, resource_id, Action.UPDATE)
        try:
            return patient_services.patient_update(actor=caller.actor, patient=patient, data=data,
                                                   expected_version=expected)  # fmt: skip
        except patient_services.StaleVersion:
            raise FhirError(412, "conflict", "version périmée : relisez le patient avant de le "
                                             "modifier (If-Match)") from None  # fmt: skip

    return patient_out(guarded(update))


def _expected_version(if_match: str, body: dict[str, Any]) -> int | None:
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw:
        raw = str((body.get("meta") or {}).get("versionId") or "")
    if not raw:
        return None
    if not raw.isdigit():
        raise FhirError(412, "conflict", 'If-Match : W/"<versionId>" attendu')
    return int(raw)


def _stay_of(caller: Caller, resource_id: str) -> Stay:
    stay = Stay.objects.select_related("service", "establishment").filter(
        pk=_uuid(resource_id)).first()  # fmt: skip
    if stay is None or stay.establishment_id not in caller.actor.establishments:
        raise PatientNotFound()  # a stay is written by its own establishment's desk
    return stay


def encounter_create(caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """Plan a stay (status planned), or record one begun (in-progress), as the admission desk
    does: a patient outside care is charged like a chart, a canary locks, the care opened is
    recorded and alerted like in the pages."""
    caller.allow("Encounter", "c")
    ask = mapping.encounter_ask(body)
    if ask.status not in ("planned", "in-progress"):
        raise FhirError(422, "business-rule", "un séjour se crée prévu (planned) ou commencé "
                                              "(in-progress)")  # fmt: skip

    def create() -> dict[str, Any]:
        service = Service.objects.select_related("establishment").filter(pk=ask.service_id).first()
        if service is None or service.establishment_id not in caller.actor.establishments:
            raise FhirError(422, "not-found", "Encounter.serviceType : service inconnu de vos "
                                              "établissements")  # fmt: skip
        patient = Patient.objects.filter(pk=_uuid(ask.patient_id)).first()
        if patient is None:
            raise PatientNotFound()
        begun = ask.status == "in-progress"
        stay = care_services.stay_create(
            actor=caller.actor, patient=patient, service=service, kind=ask.kind,
            planned_admission=ask.start, planned_discharge=None if begun else ask.end,
            admitted_at=ask.start if begun else None, reason=ask.reason,
        )  # fmt: skip
        return mapping.encounter_resource(stay, clinical=False)

    found: dict[str, Any] = guarded(create)
    return found


def encounter_update(caller: Caller, resource_id: str, body: dict[str, Any],
                     if_match: str) -> dict[str, Any]:  # fmt: skip
    """A stay's life through its status (planned -> in-progress -> finished, planned ->
    cancelled) and its service while the patient is present (a transfer); nothing else of a
    stay is rewritten."""
    caller.allow("Encounter", "u")
    if body.get("id") != resource_id:
        raise FhirError(400, "invariant", "Encounter.id doit être celui de l'adresse")
    ask = mapping.encounter_ask(body)

    def update() -> dict[str, Any]:
        stay = _stay_of(caller, resource_id)
        current = mapping.encounter_resource(stay, clinical=False)
        wanted = if_match.strip().removeprefix("W/").strip('"') or str(
            (body.get("meta") or {}).get("versionId") or "")  # fmt: skip
        if wanted and wanted != current["meta"]["versionId"]:
            raise FhirError(412, "conflict", "version périmée : relisez le séjour (If-Match)")
        before = mapping.encounter_status(stay)
        if ask.patient_id != str(stay.patient_id) or ask.kind != stay.kind:
            raise FhirError(422, "business-rule", "le patient et le type d'un séjour ne "
                                                  "changent pas")  # fmt: skip
        if ask.service_id != stay.service_id:
            service = Service.objects.filter(pk=ask.service_id).first()
            if service is None:
                raise FhirError(422, "not-found", "Encounter.serviceType : service inconnu")
            care_services.stay_transfer(actor=caller.actor, stay=stay, service=service)
        moves: dict[tuple[str, str], Callable[..., Stay]] = {
                 ("planned", "in-progress"): care_services.stay_admit,
                 ("in-progress", "finished"): care_services.stay_discharge,
                 ("planned", "cancelled"): care_services.stay_cancel}  # fmt: skip
        if ask.status != before:
            move = moves.get((before, ask.status))
            if move is None:
                raise FhirError(422, "business-rule", f"passage de {before} à {ask.status} "
                                                      "impossible")  # fmt: skip
            move(actor=caller.actor, stay=stay)
        stay.refresh_from_db()
        return mapping.encounter_resource(stay, clinical=False)

    found: dict[str, Any] = guarded(update)
    return found


def medication_request_create(caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    """A prescription line written by a physician for a patient in their care, as themselves
    (a user token; a system never prescribes): added to a draft prescription, or to a new one.
    Signing stays a physician's act in Rempart's pages."""
    caller.allow("MedicationRequest", "c")
    ask = mapping.medication_request_ask(body)

    def create() -> dict[str, Any]:
        policy.authorise_role(caller.actor, {Role.PHYSICIAN})
        prescriber = (
            Practitioner.objects.filter(pk=caller.actor.practitioner_id).first()
            if caller.actor.practitioner_id is not None else None
        )  # fmt: skip
        patient = Patient.objects.filter(pk=_uuid(ask.patient_id)).first()
        if patient is None or prescriber is None:
            raise PatientNotFound()
        line = care_services.LineData(drug=ask.drug, dose=ask.dose, route=ask.route,
                                      frequency=ask.frequency, duration_days=ask.duration_days,
                                      instructions=ask.instructions)  # fmt: skip
        if ask.group:
            prescription = Prescription.objects.filter(pk=_uuid(ask.group),
                                                       patient=patient).first()  # fmt: skip
            if prescription is None:
                raise FhirError(422, "not-found", "groupIdentifier : ordonnance inconnue")
            added = care_services.prescription_line_add(
                actor=caller.actor, prescription=prescription, line=line
            )
        else:
            stay = Stay.objects.filter(pk=_uuid(ask.stay_id)).first() if ask.stay_id else None
            prescription = care_services.prescription_create(
                actor=caller.actor, patient=patient, prescriber=prescriber, stay=stay,
                lines=[line])  # fmt: skip
            added = prescription.lines.get()
        return mapping.medication_request_resource(added, prescription, _drug_names([added])[0])

    try:
        found: dict[str, Any] = guarded(create)
    except SignedPrescriptionError:
        raise FhirError(422, "business-rule", "ordonnance signée : elle ne change plus") from None
    return found
