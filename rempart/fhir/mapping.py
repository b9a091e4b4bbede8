"""Rempart's records as FHIR R4 resources (FR Core profiles) and back.

Out: each resource is built as a dict, then checked by fhir.resources' models (their R4B classes:
the elements used here are the same in R4 4.0.1). In: a posted Patient is parsed by the same
models, then its codes are checked here against the bindings FR Core requires, which
fhir.resources does not enforce, and turned into the PatientData the registration page fills.
Diagnostics name the element and the rule, never a value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from django.utils import timezone
from pydantic import ValidationError as ModelError

from rempart.audit.fhir import as_audit_event
from rempart.audit.models import Event
from rempart.care.models import (
    Prescription,
    PrescriptionLine,
    PrescriptionStatus,
    Route,
    Stay,
    StayKind,
)
from rempart.directory.models import Establishment, Practitioner
from rempart.fhir.outcome import FhirError
from rempart.patients.models import IdentityStatus, Patient
from rempart.patients.validation import PatientData

FR_CORE = "https://hl7.fr/ig/fhir/core/StructureDefinition/"
INS_NIR = "urn:oid:1.2.250.1.213.1.4.8"  # INS matricule: the NIR
INS_NIA = "urn:oid:1.2.250.1.213.1.4.9"  # INS matricule: a temporary NIA
RPPS = "urn:oid:1.2.250.1.71.4.2.1"  # national practitioner identifiers (RPPS, idNatPs)
FINESS = "urn:oid:1.2.250.1.71.4.2.2"
IDENTITY_RELIABILITY = FR_CORE + "fr-core-identity-reliability"
RELIABILITY_CODES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445"
BIRTH_LIST_GIVEN = FR_CORE + "fr-core-patient-birth-list-given-name"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
INSEE_CODE = FR_CORE + "fr-core-address-insee-code"
INSEE_COMMUNES = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_CODES = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
STAY_KINDS = "urn:rempart:sejour"  # the stay's kind (StayKind)
SERVICES = "urn:rempart:service"  # a service's id
ROUTES_SYSTEM = "urn:rempart:voie"  # Route
CATALOGUE = "urn:rempart:catalogue"  # the shipped drug catalogue's codes
_QUANTITY = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*(\S.*?)\s*$")

GENDERS = {"M": "male", "F": "female", "I": "other"}
SEXES = {fhir: ours for ours, fhir in GENDERS.items()} | {"unknown": "I"}
_CLASSES = {StayKind.FULL: ("IMP", "hospitalisation"), StayKind.DAY_CASE: ("SS", "court séjour"),
            StayKind.CONSULTATION: ("AMB", "ambulatoire"), StayKind.EMERGENCY: ("EMER", "urgences"),
            StayKind.RESIDENCE: ("IMP", "hébergement")}  # fmt: skip


def ipp_system(finess: str) -> str:
    """The namespace of an establishment's IPPs: its FINESS under Rempart's IPP URN."""
    return f"urn:rempart:ipp:{finess}"


def _version(payload: dict[str, Any]) -> str:
    """A version id for resources that keep no counter: a digest of what they say."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _instant(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else None


# --- Patient ------------------------------------------------------------------------------------


def patient_resource(patient: Patient, ipps: list[tuple[str, str, uuid.UUID]],
                     gp: Practitioner | None) -> dict[str, Any]:  # fmt: skip
    """FR Core Patient. `ipps`: (FINESS, IPP, establishment id) of the patient's IPPs."""
    identifiers: list[dict[str, Any]] = [
        {"use": "usual", "type": {"coding": [{"system": IDENTIFIER_TYPES, "code": "PI"}]},
         "system": ipp_system(finess), "value": ipp,
         "assigner": {"reference": f"Organization/{place}"}}
        for finess, ipp, place in ipps
    ]  # fmt: skip
    if patient.nir and patient.identity_status in (IdentityStatus.RETRIEVED,
                                                   IdentityStatus.QUALIFIED):  # fmt: skip
        system = INS_NIA if patient.nir[0] in "78" else INS_NIR
        identifiers.append({"use": "official",
                            "type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/"
                                                 "CodeSystem/fr-core-cs-v2-0203",
                                                 "code": "INS-NIR" if system == INS_NIR
                                                 else "INS-NIA"}]},
                            "system": system, "value": patient.nir})  # fmt: skip
    given = (patient.given_names or "").split()
    first = patient.first_given_name or (given[0] if given else "")
    official: dict[str, Any] = {"use": "official", "family": patient.birth_name,
                                "given": [first] if first else None}  # fmt: skip
    if patient.given_names:
        official["extension"] = [{"url": BIRTH_LIST_GIVEN, "valueString": patient.given_names}]
    names = [official]
    if patient.usage_name:
        names.append({"use": "usual", "family": patient.usage_name,
                      "given": [first] if first else None})  # fmt: skip
    extensions: list[dict[str, Any]] = [{"url": IDENTITY_RELIABILITY, "extension": [
        {"url": "identityStatus", "valueCoding": {
            "system": RELIABILITY_CODES, "code": patient.identity_status,
            "display": str(IdentityStatus(patient.identity_status).label)}}]}]  # fmt: skip
    if patient.birth_place_code:
        extensions.append({"url": BIRTH_PLACE, "valueAddress": {"extension": [
            {"url": INSEE_CODE, "valueCoding": {"system": INSEE_COMMUNES,
                                                "code": patient.birth_place_code}}]}})  # fmt: skip
    telecom = [
        {"system": system, "value": value, "use": use}
        for system, value, use in (("phone", patient.phone_mobile, "mobile"),
                                   ("phone", patient.phone_home, "home"),
                                   ("email", patient.email, "home"))
        if value
    ]  # fmt: skip
    address = None
    if patient.address_line or patient.city or patient.postcode:
        address = [
            {
                "use": "home",
                "line": [patient.address_line] if patient.address_line else None,
                "postalCode": patient.postcode,
                "city": patient.city,
                "country": "FRA",
            }
        ]
    body: dict[str, Any] = {
        "resourceType": "Patient", "id": str(patient.pk),
        "meta": {"versionId": str(patient.version), "lastUpdated": _instant(patient.updated_at),
                 "profile": [FR_CORE + "fr-core-patient"]},
        "extension": extensions, "identifier": identifiers or None, "name": names,
        "telecom": telecom or None, "gender": GENDERS.get(patient.sex or "", "unknown"),
        "birthDate": patient.birth_date.isoformat() if patient.birth_date else None,
        "address": address,
        "generalPractitioner": [{"reference": f"Practitioner/{gp.pk}",
                                 "display": str(gp)}] if gp else None,
    }  # fmt: skip
    return _checked("Patient", body)


def patient_data(body: dict[str, Any], gp_for: Any) -> PatientData:
    """A posted Patient as the registration page's data. `gp_for(reference)` resolves the
    generalPractitioner (a Practitioner/<id> reference, or an RPPS identifier) or raises.
    FhirError(422) names the element at fault."""
    if body.get("resourceType") != "Patient":
        raise FhirError(400, "invalid", "une ressource Patient est attendue (resourceType)")
    model = _parsed("Patient", body)
    _bindings_check(model)
    names = model.name or []
    official = next((n for n in names if n.use == "official"), names[0] if names else None)
    usual = next((n for n in names if n.use == "usual" and n is not official), None)
    if official is None or not official.family:
        raise FhirError(422, "required", "Patient.name : le nom de naissance (use=official, "
                                         "family) est obligatoire")  # fmt: skip
    listed = ""
    for extension in official.extension or []:
        if extension.url == BIRTH_LIST_GIVEN:
            listed = extension.valueString or ""
    given = [g for g in official.given or [] if g]
    if not (listed or given):
        raise FhirError(422, "required", "Patient.name.given : au moins un prénom est obligatoire")
    if model.birthDate is None:
        raise FhirError(422, "required", "Patient.birthDate est obligatoire")
    gender = model.gender or "unknown"
    if gender not in SEXES:
        raise FhirError(422, "code-invalid", "Patient.gender : male, female, other ou unknown")
    status, place = IdentityStatus.PROVISIONAL.value, ""
    for extension in model.extension or []:
        if extension.url == IDENTITY_RELIABILITY:
            for part in extension.extension or []:
                coding = part.valueCoding
                if part.url == "identityStatus" and coding is not None:
                    if coding.system != RELIABILITY_CODES or coding.code not in IdentityStatus:
                        raise FhirError(
                            422,
                            "code-invalid",
                            "identityStatus : un code de "
                            f"{RELIABILITY_CODES} (PROV, RECUP, VALI, QUAL)",
                        )
                    status = str(coding.code)
        elif extension.url == BIRTH_PLACE and extension.valueAddress is not None:
            for part in extension.valueAddress.extension or []:
                if part.url == INSEE_CODE and part.valueCoding is not None:
                    if part.valueCoding.system != INSEE_COMMUNES:
                        raise FhirError(
                            422,
                            "code-invalid",
                            f"birthPlace : code INSEE attendu ({INSEE_COMMUNES})",
                        )
                    place = part.valueCoding.code or ""
    nir = ""
    for identifier in model.identifier or []:
        if identifier.system in (INS_NIR, INS_NIA):
            nir = identifier.value or ""
    phones: dict[str, str] = {}
    email = ""
    for point in model.telecom or []:
        if point.system == "email" and not email:
            email = point.value or ""
        elif point.system == "phone":
            slot = "phone_home" if point.use == "home" else "phone_mobile"
            phones.setdefault(slot, point.value or "")
    address = (model.address or [None])[0]
    gp = None
    if model.generalPractitioner:
        gp = gp_for(model.generalPractitioner[0])
    return PatientData(
        birth_name=official.family, usage_name=usual.family if usual and usual.family else "",
        given_names=listed or " ".join(given), first_given_name=given[0] if given else "",
        sex=SEXES[gender], birth_date=model.birthDate, birth_place_code=place, nir=nir,
        identity_status=status, email=email, address_line=" ".join(address.line or [])
        if address else "", postcode=(address.postalCode or "") if address else "",
        city=(address.city or "") if address else "", gp_id=gp,
        phone_mobile=phones.get("phone_mobile", ""), phone_home=phones.get("phone_home", ""),
    )  # fmt: skip


# The required bindings of the elements read from a posted Patient (R4 value sets): fhir.resources
# checks the types, not the codes.
_REQUIRED = {
    "name.use": {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"},
    "telecom.system": {"phone", "fax", "email", "pager", "url", "sms", "other"},
    "telecom.use": {"home", "work", "temp", "old", "mobile"},
    "address.use": {"home", "work", "temp", "old", "billing"},
    "address.type": {"postal", "physical", "both"},
    "identifier.use": {"usual", "official", "temp", "secondary", "old"},
}


def _bindings_check(model: Any) -> None:
    for path, allowed in _REQUIRED.items():
        element, attribute = path.split(".")
        for item in getattr(model, element) or []:
            code = getattr(item, attribute, None)
            if code is not None and code not in allowed:
                raise FhirError(
                    422,
                    "code-invalid",
                    f"Patient.{path} : un code de {', '.join(sorted(allowed))} est attendu",
                )


# --- the directory ------------------------------------------------------------------------------


def practitioner_resource(practitioner: Practitioner) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Practitioner", "id": str(practitioner.pk),
        "meta": {"profile": [FR_CORE + "fr-core-practitioner"]},
        "identifier": [{"use": "official", "system": RPPS, "value": "8" + practitioner.rpps,
                        "type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/"
                                             "fr-core-cs-v2-0203", "code": "IDNPS"}]}}],
        "active": True,
        "name": [{"use": "official", "family": practitioner.family_name or None,
                  "given": [practitioner.given_name] if practitioner.given_name else None,
                  "prefix": ["Dr"] if practitioner.profession in ("", "Médecin") else None}],
        "address": [{"use": "work", "line": [practitioner.address_line],
                     "postalCode": practitioner.postcode or None,
                     "city": practitioner.city or None}]
        if practitioner.address_line or practitioner.city else None,
        "qualification": [{"code": {"text": text}} for text in
                          (practitioner.profession, practitioner.specialty) if text] or None,
    }  # fmt: skip
    body["meta"]["versionId"] = _version(body)
    return _checked("Practitioner", body)


def organization_resource(place: Establishment) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Organization", "id": str(place.pk),
        "meta": {"profile": [FR_CORE + "fr-core-organization"]},
        "identifier": [{"use": "official", "system": FINESS, "value": place.finess,
                        "type": {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/"
                                             "fr-core-cs-v2-0203", "code": "FINEG"}]}}],
        "active": True, "name": place.name, "type": [{"text": str(place.get_kind_display())}],
        "address": [{"city": place.city}] if place.city else None,
    }  # fmt: skip
    body["meta"]["versionId"] = _version(body)
    return _checked("Organization", body)


# --- care ---------------------------------------------------------------------------------------


def encounter_status(stay: Stay) -> str:
    if stay.cancelled_at is not None:
        return "cancelled"
    if stay.discharged_at is not None:
        return "finished"
    return "in-progress" if stay.admitted_at is not None else "planned"


def encounter_resource(stay: Stay, clinical: bool) -> dict[str, Any]:
    """A stay. Its reason is clinical content: given at the clinical level only."""
    code, label = _CLASSES[StayKind(stay.kind)]
    start = stay.admitted_at or stay.planned_admission
    end = stay.discharged_at or (stay.planned_discharge if stay.admitted_at is None else None)
    body: dict[str, Any] = {
        "resourceType": "Encounter", "id": str(stay.pk),
        "meta": {"profile": [FR_CORE + "fr-core-encounter"]},
        "status": encounter_status(stay),
        "class": {"system": ACT_CODES, "code": code, "display": label},
        "type": [{"coding": [{"system": STAY_KINDS, "code": stay.kind,
                              "display": str(stay.get_kind_display())}]}],
        "serviceType": {"coding": [{"system": SERVICES, "code": str(stay.service_id),
                                    "display": stay.service.name}]},
        "subject": {"reference": f"Patient/{stay.patient_id}"},
        "period": {"start": _instant(start), "end": _instant(end)},
        "serviceProvider": {"reference": f"Organization/{stay.establishment_id}"},
    }  # fmt: skip
    # The version is the stay's state, the same whatever the reader may see of it.
    body["meta"]["versionId"] = _version(body)
    if clinical and stay.reason:
        body["reasonCode"] = [{"text": stay.reason}]
    return _checked("Encounter", body)


@dataclass(frozen=True)
class EncounterAsk:
    """What a posted Encounter asks: a stay to plan (or to record as begun), or a change."""

    status: str
    kind: str
    service_id: uuid.UUID
    patient_id: str
    start: dt.datetime
    end: dt.datetime | None
    reason: str


def encounter_ask(body: dict[str, Any]) -> EncounterAsk:
    if body.get("resourceType") != "Encounter":
        raise FhirError(400, "invalid", "une ressource Encounter est attendue (resourceType)")
    model = _parsed("Encounter", body)
    if model.status not in ("planned", "in-progress", "finished", "cancelled"):
        raise FhirError(422, "code-invalid", "Encounter.status : planned, in-progress, "
                                             "finished ou cancelled")  # fmt: skip
    kinds = [c.code for t in model.type or [] for c in t.coding or [] if c.system == STAY_KINDS]
    if len(kinds) != 1 or kinds[0] not in StayKind.values:
        raise FhirError(422, "code-invalid", f"Encounter.type : un code de {STAY_KINDS} "
                                             f"({', '.join(StayKind.values)})")  # fmt: skip
    services = [c.code for c in (model.serviceType.coding if model.serviceType else []) or []
                if c.system == SERVICES]  # fmt: skip
    try:
        service = uuid.UUID(services[0]) if len(services) == 1 else None
    except ValueError:
        service = None
    if service is None:
        raise FhirError(422, "required", f"Encounter.serviceType : le service ({SERVICES})")
    subject = model.subject.reference if model.subject and model.subject.reference else ""
    if not subject.startswith("Patient/"):
        raise FhirError(422, "required", "Encounter.subject : une référence Patient/<id>")
    if model.period is None or model.period.start is None:
        raise FhirError(422, "required", "Encounter.period.start est obligatoire")
    reason = " ".join(r.text for r in model.reasonCode or [] if r.text)
    return EncounterAsk(str(model.status), kinds[0], service, subject[8:], model.period.start,
                        model.period.end, reason[:500])  # fmt: skip


def medication_request_resource(line: PrescriptionLine, prescription: Prescription,
                                drug_name: str) -> dict[str, Any]:  # fmt: skip
    """One prescription line (the ordonnance is the group of its lines)."""
    content = line.content or {}
    dose, frequency = str(content.get("dose", "")), str(content.get("frequency", ""))
    amount = _QUANTITY.match(dose)
    route = str(content.get("route", ""))
    body: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": str(line.pk),
        "meta": {"profile": [FR_CORE + "fr-core-medication-request"]},
        "status": "active" if prescription.status == PrescriptionStatus.SIGNED else "draft",
        "intent": "order",
        "groupIdentifier": {"system": "urn:rempart:ordonnance", "value": str(prescription.pk)},
        "medicationCodeableConcept": {"text": drug_name, "coding": [
            {"system": CATALOGUE, "code": str(content.get("drug", ""))}]},
        "subject": {"reference": f"Patient/{prescription.patient_id}"},
        "encounter": {"reference": f"Encounter/{prescription.stay_id}"}
        if prescription.stay_id else None,
        "authoredOn": _instant(prescription.prescribed_at),
        "requester": {"reference": f"Practitioner/{prescription.prescriber_id}"},
        "dosageInstruction": [{
            "sequence": 1,
            "text": f"{dose}, {frequency}, {content.get('duration_days', '')} jours",
            "patientInstruction": content.get("instructions") or None,
            "timing": {"code": {"text": frequency}},
            "route": {"coding": [{"system": ROUTES_SYSTEM, "code": route,
                                  "display": str(Route(route).label)
                                  if route in Route.values else None}]},
            "doseAndRate": [{"doseQuantity": {"value": float(amount[1].replace(",", ".")),
                                              "unit": amount[2]}}] if amount else None}],
        "dispenseRequest": {"expectedSupplyDuration": {
            "value": int(content.get("duration_days") or 0), "unit": "jours",
            "system": "http://unitsofmeasure.org", "code": "d"}},
    }  # fmt: skip
    body["meta"]["versionId"] = _version(body)
    return _checked("MedicationRequest", body)


def audit_event_resource(event: Event) -> dict[str, Any]:
    """An audit event as the trail's own FHIR rendering gives it (ids, never values)."""
    rendered: dict[str, Any] = orjson.loads(
        as_audit_event(event).model_dump_json(exclude_none=True)
    )
    return rendered


# --- fhir.resources -----------------------------------------------------------------------------


def _model(kind: str) -> Any:
    import importlib

    return getattr(importlib.import_module(f"fhir.resources.R4B.{kind.lower()}"), kind)


def _prune(value: Any) -> Any:
    """Drop empty elements (FHIR forbids them)."""
    if isinstance(value, dict):
        kept = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        kept_items = [_prune(v) for v in value]
        return [v for v in kept_items if v not in (None, "", [], {})]
    return value


def _checked(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The resource as fhir.resources validates it. A failure is our defect: it is raised
    naming the elements only (pydantic's message would carry the patient's values into the
    logs)."""
    pruned: dict[str, Any] = _prune(body)
    try:
        _model(kind).model_validate(pruned)
    except ModelError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"][:5]) for e in exc.errors()[:3])
        raise RuntimeError(f"FHIR {kind} built invalid at {where}") from None
    return pruned


def _parsed(kind: str, body: dict[str, Any]) -> Any:
    try:
        return _model(kind).model_validate(body)
    except ModelError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"][:4]) for e in exc.errors()[:3])
        raise FhirError(400, "structure", f"{kind} mal formé ({where})") from None


@dataclass(frozen=True)
class LineAsk:
    """What a posted MedicationRequest asks: one line of a draft prescription."""

    patient_id: str
    stay_id: str
    group: str  # a draft prescription to add the line to, or ""
    drug: str
    dose: str
    route: str
    frequency: str
    duration_days: int
    instructions: str


def medication_request_ask(body: dict[str, Any]) -> LineAsk:
    if body.get("resourceType") != "MedicationRequest":
        raise FhirError(400, "invalid", "une ressource MedicationRequest est attendue")
    model = _parsed("MedicationRequest", body)
    if model.status != "draft" or model.intent != "order":
        raise FhirError(422, "business-rule", "status=draft et intent=order : une ligne "
                                              "s'ajoute à une ordonnance en brouillon, signée "
                                              "ensuite dans Rempart")  # fmt: skip
    subject = model.subject.reference if model.subject and model.subject.reference else ""
    if not subject.startswith("Patient/"):
        raise FhirError(422, "required", "MedicationRequest.subject : Patient/<id>")
    concept = model.medicationCodeableConcept
    codes = [c.code for c in (concept.coding if concept else None) or [] if c.system == CATALOGUE]
    if len(codes) != 1 or not codes[0]:
        raise FhirError(422, "code-invalid", f"medicationCodeableConcept : un code de {CATALOGUE}")
    dosage = (model.dosageInstruction or [None])[0]
    if dosage is None:
        raise FhirError(422, "required", "dosageInstruction est obligatoire")
    routes = [c.code for c in (dosage.route.coding if dosage.route else None) or []
              if c.system == ROUTES_SYSTEM]  # fmt: skip
    quantity = (dosage.doseAndRate or [None])[0]
    amount = quantity.doseQuantity if quantity is not None else None
    if amount is None or amount.value is None or not amount.unit:
        raise FhirError(422, "required", "dosageInstruction.doseAndRate.doseQuantity (valeur et "
                                         "unité) est obligatoire")  # fmt: skip
    frequency = dosage.timing.code.text if dosage.timing and dosage.timing.code else ""
    supply = model.dispenseRequest.expectedSupplyDuration if model.dispenseRequest else None
    encounter = model.encounter.reference if model.encounter and model.encounter.reference else ""
    return LineAsk(
        patient_id=subject[8:], stay_id=encounter.removeprefix("Encounter/"),
        group=model.groupIdentifier.value or "" if model.groupIdentifier else "",
        drug=str(codes[0]), dose=f"{amount.value:g} {amount.unit}",
        route=str(routes[0]) if routes else "", frequency=frequency or "",
        duration_days=int(supply.value) if supply and supply.value is not None else 0,
        instructions=dosage.patientInstruction or "",
    )  # fmt: skip
