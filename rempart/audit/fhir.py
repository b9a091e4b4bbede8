"""Events as FHIR R4 AuditEvent resources (fhir.resources R4B models, which validate them),
shaped after IHE Basic Audit Log Patterns (BALP): PatientRead/Create/Update, Query, login."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent

from rempart.audit.models import Action, Event, Outcome, Purpose

DCM = "http://dicom.nema.org/resources/ontology/DCM"
REST = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
USERS = "urn:rempart:user"

_SUBTYPE = {  # action -> (type, subtype, FHIR action code)
    Action.READ: ((REST, "rest", "RESTful Operation"), (INTERACTION, "read", "read"), "R"),
    Action.SEARCH: (
        (REST, "rest", "RESTful Operation"), (INTERACTION, "search-type", "search type"), "E"
    ),
    Action.CREATE: ((REST, "rest", "RESTful Operation"), (INTERACTION, "create", "create"), "C"),
    Action.UPDATE: ((REST, "rest", "RESTful Operation"), (INTERACTION, "update", "update"), "U"),
    Action.DELETE: ((REST, "rest", "RESTful Operation"), (INTERACTION, "delete", "delete"), "D"),
    Action.EXPORT: ((DCM, "110106", "Export"), None, "R"),
    Action.IMPORT: ((DCM, "110107", "Import"), None, "C"),
    Action.REPORT: ((REST, "rest", "RESTful Operation"), (INTERACTION, "read", "read"), "R"),
    Action.LOGIN: ((DCM, "110114", "User Authentication"), (DCM, "110122", "Login"), "E"),
    Action.LOGIN_FAILED: ((DCM, "110114", "User Authentication"), (DCM, "110122", "Login"), "E"),
    Action.LOGOUT: ((DCM, "110114", "User Authentication"), (DCM, "110123", "Logout"), "E"),
    Action.MFA: ((DCM, "110114", "User Authentication"), None, "E"),
    Action.BREAK_GLASS: ((DCM, "110113", "Security Alert"), None, "E"),
    Action.LOCK: ((DCM, "110113", "Security Alert"), None, "E"),
    Action.UNLOCK: ((DCM, "110113", "Security Alert"), None, "E"),
    Action.REVIEW: ((DCM, "110101", "Audit Log Used"), None, "E"),
    Action.KEY: ((DCM, "110113", "Security Alert"), None, "E"),
    Action.AUDIT: ((DCM, "110101", "Audit Log Used"), None, "E"),
    Action.BREACH: ((DCM, "110113", "Security Alert"), None, "E"),  # a leak analysed
}  # fmt: skip
_OUTCOME = {Outcome.SUCCESS: "0", Outcome.DENIED: "4", Outcome.NOT_FOUND: "4", Outcome.FAILED: "8"}
_PURPOSE = {
    Purpose.CARE: ("TREAT", "treatment"),
    Purpose.BREAK_GLASS: ("ETREAT", "Emergency Treatment"),
    Purpose.ADMINISTRATION: ("HOPERAT", "healthcare operations"),
    Purpose.PATIENT_REQUEST: ("PATRQT", "patient requested"),
    Purpose.SECURITY: ("HSYSADMIN", "health system administration"),
}


def _coding(triple: tuple[str, str, str]) -> dict[str, str]:
    system, code, display = triple
    return {"system": system, "code": code, "display": display}


def as_audit_event(event: Event) -> AuditEvent:
    kind, subtype, action = _SUBTYPE[Action(event.action)]
    purpose_code, purpose_display = _PURPOSE.get(Purpose(event.purpose), ("HOPERAT", "operations"))
    user: dict[str, Any] = {
        "type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                             "display": "information recipient"}]},
        "who": {"identifier": {"system": USERS, "value": event.username},
                "display": event.username},
        "role": [{"text": event.role}],
        "requestor": True,
    }  # fmt: skip
    if event.ip:
        user["network"] = {"address": event.ip, "type": "2"}
    if event.establishment_id:
        user["location"] = {"reference": f"Location/{event.establishment_id}"}
    entities: list[dict[str, Any]] = []
    if event.patient_id:
        entities.append({
            "what": {"reference": f"Patient/{event.patient_id}"},
            "type": _coding((ENTITY_TYPE, "1", "Person")),
            "role": _coding((OBJECT_ROLE, "1", "Patient")),
        })  # fmt: skip
    if event.action == Action.SEARCH:
        entities.append({
            "type": _coding((ENTITY_TYPE, "2", "System Object")),
            "role": _coding((OBJECT_ROLE, "24", "Query")),
            # The kinds of criteria only: their values are never recorded.
            "description": "criteria: " + ",".join(event.detail.get("criteria", [])),
        })  # fmt: skip
        entities.extend(
            {"what": {"reference": f"Patient/{pid}"}, "type": _coding((ENTITY_TYPE, "1", "Person")),
             "role": _coding((OBJECT_ROLE, "1", "Patient"))}
            for pid in event.detail.get("results", [])
        )  # fmt: skip
    elif event.resource_type not in ("Patient", "User") and event.resource_id:
        entities.append({
            "what": {"reference": f"{event.resource_type}/{event.resource_id}"},
            "type": _coding((ENTITY_TYPE, "2", "System Object")),
        })  # fmt: skip
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.id),
        "type": _coding(kind),
        "action": action,
        "recorded": event.at.isoformat(),
        "outcome": _OUTCOME[Outcome(event.outcome)],
        "purposeOfEvent": [{"coding": [{"system": ACT_REASON, "code": purpose_code,
                                        "display": purpose_display}]}],
        "agent": [user],
        "source": {"site": "Rempart", "observer": {"display": "Rempart"},
                   "type": [_coding((SOURCE_TYPE, "4", "Application Server"))]},
    }  # fmt: skip
    if subtype is not None:
        resource["subtype"] = [_coding(subtype)]
    if entities:
        resource["entity"] = entities
    return AuditEvent.model_validate(resource)
