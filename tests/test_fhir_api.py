"""The FHIR API's resources as a system and as a staff member's application use them: read,
search, create and update a patient, with the same care relationship, budgets, canaries and
audit events as the pages; outside care looks exactly like missing."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from tink import jwt

from rempart.access.models import AccountLock
from rempart.audit.models import Event
from rempart.care.models import Prescription, PrescriptionLine, Stay
from rempart.fhir.services import api_client_register
from rempart.patients.models import Patient, PatientIdentifier
from rempart.records.services.care import stay_create
from tests.test_access import SYSTEM, _new_patients, _user, world  # noqa: F401  # the fixture
from tests.test_fhir_auth import _ask, _assertion, _keys
from tests.test_redteam import _code, _device

FHIR = "application/fhir+json"
_jti = itertools.count()


def _system_token(world, scopes: list[str], client_id: str = "labo",  # noqa: F811
                  **terms: str) -> dict[str, str]:  # fmt: skip
    keys = _keys()
    public = jwt.jwk_set_from_public_keyset_handle(keys.public_keyset_handle())
    api_client_register(actor=SYSTEM, client_id=client_id, name="Laboratoire", jwks=public,
                        scopes=scopes, establishments=[world.here], **terms)  # fmt: skip
    answer = _ask(Client(), _assertion(keys, iss=client_id, jti=f"j{next(_jti)}"),
                  scope=" ".join(scopes))  # fmt: skip
    assert answer.status_code == 200, answer.content
    return {"HTTP_AUTHORIZATION": f"Bearer {answer.json()['access_token']}"}


def _get(path: str, bearer: dict[str, str]) -> Any:
    return Client().get(path, HTTP_ACCEPT=FHIR, **bearer)


def _send(method: str, path: str, body: dict[str, Any], bearer: dict[str, str],
          **headers: str) -> Any:  # fmt: skip
    return getattr(Client(), method)(path, data=json.dumps(body), content_type=FHIR,
                                     **bearer, **headers)  # fmt: skip


def _new_patient_body(**changes: Any) -> dict[str, Any]:
    body = {
        "resourceType": "Patient",
        "extension": [{"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/"
                              "fr-core-identity-reliability",
                       "extension": [{"url": "identityStatus", "valueCoding": {
                           "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445",
                           "code": "PROV"}}]}],
        "name": [{"use": "official", "family": "ARNAUD", "given": ["Léonie"],
                  "extension": [{"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/"
                                        "fr-core-patient-birth-list-given-name",
                                 "valueString": "Léonie Marthe"}]}],
        "gender": "female", "birthDate": "1961-04-12",
        "telecom": [{"system": "phone", "value": "06 11 22 33 44", "use": "mobile"},
                    {"system": "email", "value": "léonie.arnaud@exemple.fr"}],
        "address": [{"line": ["3 rue des Lilas"], "postalCode": "94300", "city": "Vincennes"}],
    }  # fmt: skip
    body.update(changes)
    return body


def test_a_system_reads_a_patient_of_its_establishment_as_fr_core(world):  # noqa: F811
    bearer = _system_token(world, ["system/Patient.rs", "system/Encounter.rs",
                                   "system/MedicationRequest.rs"])  # fmt: skip
    answer = _get(f"/fhir/Patient/{world.patient.pk}", bearer)
    assert answer.status_code == 200 and answer["Content-Type"].startswith(FHIR)
    body = answer.json()
    assert body["resourceType"] == "Patient" and body["id"] == str(world.patient.pk)
    assert answer["ETag"] == f'W/"{world.patient.version}"'
    official = next(n for n in body["name"] if n["use"] == "official")
    assert official["family"] == world.patient.birth_name
    reliability = body["extension"][0]
    assert reliability["extension"][0]["valueCoding"]["code"] == world.patient.identity_status
    ipp = PatientIdentifier.objects.filter(patient=world.patient).first()
    if ipp is not None:
        assert any(i["value"] == ipp.ipp for i in body["identifier"])
    # The read is in the trail under the system's own account, naming the system.
    event = Event.objects.filter(resource_type="Patient", action="read").latest("id")
    assert event.username == "api:labo" and event.role == "api_client"
    assert event.patient_id == world.patient.pk and event.outcome == "success"
    assert event.detail["client_request_id"] == "fhir:labo"
    # Its stays, and its prescriptions: the patient is admitted in the system's establishment.
    stays = _get(f"/fhir/Encounter?patient={world.patient.pk}", bearer).json()
    assert stays["resourceType"] == "Bundle" and stays["total"] >= 1
    assert stays["entry"][0]["resource"]["status"] == "in-progress"
    assert _get(f"/fhir/MedicationRequest?patient={world.patient.pk}", bearer).status_code == 200


def test_outside_care_looks_exactly_like_missing(world):  # noqa: F811
    bearer = _system_token(world, ["system/Patient.rs"])
    outside = _get(f"/fhir/Patient/{world.stranger.pk}", bearer)
    missing = _get("/fhir/Patient/0190a8f2-0000-7000-8000-000000000000", bearer)
    garbage = _get("/fhir/Patient/pas-un-id", bearer)
    assert outside.status_code == missing.status_code == garbage.status_code == 404
    assert outside.json() == missing.json() == garbage.json()
    assert outside.json()["resourceType"] == "OperationOutcome"
    assert Event.objects.filter(patient_id=world.stranger.pk, outcome="denied").exists()


def test_scopes_narrow_what_a_token_may_do(world):  # noqa: F811
    bearer = _system_token(world, ["system/Patient.rs"])
    refused = _get(f"/fhir/Encounter?patient={world.patient.pk}", bearer)
    assert refused.status_code == 403 and refused.json()["issue"][0]["code"] == "forbidden"
    created = _send("post", "/fhir/Patient", _new_patient_body(), bearer)
    assert created.status_code == 403
    assert not Event.objects.filter(action="create", resource_type="Patient",
                                    username="api:labo").exists()  # fmt: skip


def test_a_system_creates_a_patient_once_and_updates_it_only_from_the_latest_version(world):  # noqa: F811
    bearer = _system_token(world, ["system/Patient.rs", "system/Patient.cu"])
    created = _send("post", "/fhir/Patient", _new_patient_body(), bearer)
    assert created.status_code == 201, created.content
    body = created.json()
    assert created["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    patient = Patient.objects.get(pk=body["id"])
    assert (patient.birth_name, patient.given_names, patient.email) == (
        "ARNAUD",
        "Léonie Marthe",
        "léonie.arnaud@exemple.fr",
    )
    assert PatientIdentifier.objects.filter(patient=patient, establishment=world.here).exists()
    # Stored sealed: the name is nowhere in the row as stored.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT identity::text, contact::text FROM patients_patient WHERE id = %s",
                       [patient.pk])  # fmt: skip
        assert "ARNAUD" not in repr(cursor.fetchone())
    # Conditional create: the same identity again finds the patient, creates nothing.
    again = _send(
        "post",
        "/fhir/Patient",
        _new_patient_body(),
        bearer,
        HTTP_IF_NONE_EXIST="family=ARNAUD&birthdate=1961-04-12&given=Léonie",
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"], again.content
    assert Patient.objects.filter(pk=body["id"]).count() == 1
    # A record is written by those who have the patient in care, as in the pages: the new
    # patient is not yet (no stay), so an update is "not found" until a stay is planned.
    assert _send("put", f"/fhir/Patient/{body['id']}", body, bearer).status_code == 404
    stay_create(actor=SYSTEM, patient=patient, service=world.ward, kind="consultation",
                planned_admission=timezone.now() + dt.timedelta(hours=2))  # fmt: skip
    # Update from version 1: accepted, version 2. From version 1 again: 412, nothing changed.
    changed = dict(body, telecom=[{"system": "phone", "value": "+33 6 99 88 77 66",
                                   "use": "mobile"}])  # fmt: skip
    first = _send("put", f"/fhir/Patient/{body['id']}", changed, bearer, HTTP_IF_MATCH='W/"1"')
    assert first.status_code == 200 and first["ETag"] == 'W/"2"'
    stale = dict(body, telecom=[{"system": "phone", "value": "01 02 03 04 05", "use": "home"}])
    second = _send("put", f"/fhir/Patient/{body['id']}", stale, bearer, HTTP_IF_MATCH='W/"1"')
    assert second.status_code == 412 and second.json()["resourceType"] == "OperationOutcome"
    patient.refresh_from_db()
    assert (patient.version, patient.phone_mobile, patient.phone_home) == (
        2,
        "+33 6 99 88 77 66",
        None,
    )


@pytest.mark.parametrize("fault", ["no_name", "no_birth", "gender", "status", "json", "type",
                                   "structure", "place", "gp", "binding"])  # fmt: skip
def test_a_bad_patient_gets_an_outcome_and_writes_nothing(world, fault):  # noqa: F811
    bearer = _system_token(world, ["system/Patient.cu"])
    body = _new_patient_body()
    if fault == "no_name":
        body["name"] = [{"use": "official", "given": ["Léonie"]}]
    elif fault == "no_birth":
        del body["birthDate"]
    elif fault == "gender":
        body["gender"] = "F"
    elif fault == "status":
        body["extension"][0]["extension"][0]["valueCoding"]["code"] = "SUPER"
    elif fault == "type":
        body["resourceType"] = "Practitioner"
    elif fault == "structure":
        body["birthDate"] = "12/04/1961"
    elif fault == "place":
        body["extension"].append({"url": "http://hl7.org/fhir/StructureDefinition/"
                                         "patient-birthPlace", "valueAddress": {"extension": [
            {"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code",
             "valueCoding": {"system": "https://www.insee.fr", "code": "75056"}}]}})  # fmt: skip
    elif fault == "gp":
        body["generalPractitioner"] = [{"reference": "Practitioner/pas-un-id"}]
    elif fault == "binding":  # a code outside the required value set: types alone would pass
        body["telecom"] = [{"system": "pigeon", "value": "06 11 22 33 44"}]
    before = Patient.objects.count()
    if fault == "json":
        answer = Client().post("/fhir/Patient", data="{pas du json", content_type=FHIR, **bearer)
    else:
        answer = _send("post", "/fhir/Patient", body, bearer)
    assert answer.status_code in (400, 422)
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["diagnostics"]
    assert "ARNAUD" not in answer.content.decode() and "1961" not in answer.content.decode()
    assert Patient.objects.count() == before


def test_patient_search_by_identity_identifier_and_paging(world):  # noqa: F811
    bearer = _system_token(world, ["system/Patient.rs"])
    patient = world.patient
    found = _get(f"/fhir/Patient?family={patient.birth_name}&birthdate={patient.birth_date}",
                 bearer).json()  # fmt: skip
    assert found["type"] == "searchset" and found["total"] == 1
    assert found["entry"][0]["resource"]["id"] == str(patient.pk)
    wrong_gender = {"M": "female", "F": "male"}.get(patient.sex or "", "female")
    none = _get(f"/fhir/Patient?family={patient.birth_name}&birthdate={patient.birth_date}"
                f"&gender={wrong_gender}", bearer).json()  # fmt: skip
    assert none["total"] == 0 and "entry" not in none
    # A name alone is not searchable (the frequency of a name is what a thief wants).
    alone = _get(f"/fhir/Patient?family={patient.birth_name}", bearer)
    assert alone.status_code == 400 and alone.json()["issue"][0]["code"] == "too-costly"
    # Unknown parameters are refused, not ignored (ignoring would widen the search).
    odd = _get(f"/fhir/Patient?family={patient.birth_name}&birthdate={patient.birth_date}"
               "&address-city=Paris", bearer)  # fmt: skip
    assert odd.status_code == 400
    ipp = PatientIdentifier.objects.filter(patient=patient, establishment=world.here).first()
    if ipp is not None:
        by_ipp = _get(f"/fhir/Patient?identifier=urn:rempart:ipp:{world.here.finess}|{ipp.ipp}",
                      bearer).json()  # fmt: skip
        assert by_ipp["total"] == 1
    # Paging: _count=0 gives the total only; self/next links carry the criteria.
    counted = _get(f"/fhir/Patient?family={patient.birth_name}&birthdate={patient.birth_date}"
                   "&_count=0", bearer).json()  # fmt: skip
    assert counted["total"] == 1 and "entry" not in counted
    assert any(link["relation"] == "next" for link in counted["link"])
    # The criteria are never in the trail: kinds only.
    search = Event.objects.filter(action="search", username="api:labo").latest("id")
    assert search.detail["criteria"] and patient.birth_name not in json.dumps(search.detail)


def test_a_canary_opened_through_the_api_locks_the_system(world):  # noqa: F811
    from rempart.access.canaries import canaries_plant

    bearer = _system_token(world, ["system/Patient.rs"])
    planted = canaries_plant(actor=SYSTEM, per_establishment=1)
    answer = _get(f"/fhir/Patient/{planted[0].patient_ids[0]}", bearer)
    assert answer.status_code == 403 and answer.json()["issue"][0]["code"] == "security"
    assert AccountLock.objects.filter(user__username="api:labo", lifted_at=None).exists()
    # Locked: even its own patients are refused now.
    assert _get(f"/fhir/Patient/{world.patient.pk}", bearer).status_code == 403


def test_a_scraping_system_meets_its_budget_then_is_locked(world, settings):  # noqa: F811
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "api_client": (3, 5, 9)}
    settings.REDIS_URL = ""
    bearer = _system_token(world, ["system/Patient.rs"])
    statuses = []
    for patient in _new_patients(6, seed=31):
        statuses.append(_get(f"/fhir/Patient/{patient.pk}", bearer).status_code)
    # Outside care (404) until the budget: then 429 (a system cannot give a second factor),
    # then locked (403) past the hard limit.
    assert statuses[:3] == [404, 404, 404] and 429 in statuses and statuses[-1] == 403
    assert AccountLock.objects.filter(user__username="api:labo", lifted_at=None).exists()


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"v" * 40).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _app(world) -> None:  # noqa: F811
    api_client_register(actor=SYSTEM, client_id="app-soins", name="Application de soins",
                        scopes=["user/Patient.rs", "user/MedicationRequest.rs"],
                        redirect_uris=["http://localhost:8765/retour"])  # fmt: skip


def _signed_in(user: Any) -> Client:
    client = Client()
    device = _device(user)
    client.post("/connexion/", {"username": user.username, "password": "Un-mot-de-passe-long-7"})
    client.post("/connexion/second-facteur/", {"code": _code(device)})
    return client


def _user_token(world, name: str, scope: str = "user/Patient.rs") -> dict[str, str]:  # noqa: F811
    verifier, challenge = _pkce()
    browser = _signed_in(world.users[name])
    asked = {"response_type": "code", "client_id": "app-soins", "state": "s-42",
             "redirect_uri": "http://localhost:8765/retour", "scope": scope,
             "code_challenge": challenge, "code_challenge_method": "S256",
             "aud": "http://testserver/fhir"}  # fmt: skip
    page = browser.get("/fhir/auth/authorize", asked)
    assert page.status_code == 200 and "Application de soins" in page.content.decode()
    approved = browser.post("/fhir/auth/authorize", {**asked, "action": "approve"})
    assert approved.status_code == 302
    back = urlsplit(approved["Location"])
    query = parse_qs(back.query)
    assert back.netloc == "localhost:8765" and query["state"] == ["s-42"]
    form = {"grant_type": "authorization_code", "code": query["code"][0],
            "redirect_uri": "http://localhost:8765/retour", "client_id": "app-soins",
            "code_verifier": verifier}  # fmt: skip
    token = Client().post("/fhir/auth/token", form)
    assert token.status_code == 200, token.content
    assert Client().post("/fhir/auth/token", form).status_code == 400  # the code works once
    return {"HTTP_AUTHORIZATION": f"Bearer {token.json()['access_token']}"}


def test_an_application_acts_for_the_staff_member_within_their_care(world):  # noqa: F811
    _app(world)
    physician = _user_token(world, "physician")
    assert _get(f"/fhir/Patient/{world.patient.pk}", physician).status_code == 200
    event = Event.objects.filter(resource_type="Patient", action="read").latest("id")
    assert event.username == "dr.care" and event.detail["client_request_id"] == "fhir:app-soins"
    # Another service's physician, through the same application: outside care, not found.
    elsewhere = _user_token(world, "other_ward")
    assert _get(f"/fhir/Patient/{world.patient.pk}", elsewhere).status_code == 404
    # The scope approved was Patient only.
    assert _get(f"/fhir/MedicationRequest?patient={world.patient.pk}",
                physician).status_code == 403  # fmt: skip


def test_a_code_needs_its_pkce_verifier_and_an_unregistered_return_is_never_followed(world):  # noqa: F811
    _app(world)
    _, challenge = _pkce()
    browser = _signed_in(world.users["physician"])
    asked = {"response_type": "code", "client_id": "app-soins", "state": "x",
             "redirect_uri": "https://attaquant.example/vol", "scope": "user/Patient.rs",
             "code_challenge": challenge, "code_challenge_method": "S256"}  # fmt: skip
    refused = browser.get("/fhir/auth/authorize", asked)
    assert refused.status_code == 400 and "Location" not in refused
    asked["redirect_uri"] = "http://localhost:8765/retour"
    approved = browser.post("/fhir/auth/authorize", {**asked, "action": "approve"})
    code = parse_qs(urlsplit(approved["Location"]).query)["code"][0]
    stolen = Client().post("/fhir/auth/token", {
        "grant_type": "authorization_code", "code": code, "client_id": "app-soins",
        "redirect_uri": asked["redirect_uri"], "code_verifier": "un-autre-verificateur",
    })  # fmt: skip
    assert stolen.status_code == 400 and "access_token" not in stolen.json()


def test_stays_and_prescriptions_follow_the_level_of_access(world):  # noqa: F811
    """A desk-level system sees its own establishment's stays and no prescription; a planned
    stay alone gives no clinical content."""
    bearer = _system_token(world, ["system/Patient.rs", "system/Encounter.rs",
                                   "system/MedicationRequest.rs"])  # fmt: skip
    planned = _new_patients(1, seed=41)[0]
    tomorrow = timezone.now() + dt.timedelta(days=1)
    stay_create(actor=SYSTEM, patient=planned, service=world.ward, kind="full",
                planned_admission=tomorrow)  # fmt: skip
    assert _get(f"/fhir/Patient/{planned.pk}", bearer).status_code == 200
    stays = _get(f"/fhir/Encounter?patient={planned.pk}", bearer).json()
    assert stays["entry"][0]["resource"]["status"] == "planned"
    assert "reasonCode" not in stays["entry"][0]["resource"]
    assert _get(f"/fhir/MedicationRequest?patient={planned.pk}", bearer).status_code == 404
    line = PrescriptionLine.objects.filter(
        prescription__in=Prescription.objects.filter(patient=world.patient)
    ).first()
    if line is not None:
        assert _get(f"/fhir/MedicationRequest/{line.pk}", bearer).status_code == 200


def _platform(world) -> tuple[Any, dict[str, str]]:  # noqa: F811
    """A regional platform allowed Bulk $export, with the age identity its files open with."""
    import pyrage

    identity = pyrage.x25519.Identity.generate()
    bearer = _system_token(world, ["system/Patient.rs", "system/Group.rs"], "plateforme",
                           export_purpose="care_transfer",
                           export_recipient=str(identity.to_public()))  # fmt: skip
    return identity, bearer


def test_bulk_export_waits_for_a_second_person_then_gives_an_encrypted_watermarked_file(world):  # noqa: F811
    import pyrage
    from fhir.resources.R4B.patient import Patient as FhirPatient

    from rempart.exports.models import ExportRequest
    from rempart.exports.services import export_decide
    from rempart.records.actors import actor_for_user

    identity, bearer = _platform(world)
    groups = _get("/fhir/Group", bearer).json()
    assert [e["resource"]["id"] for e in groups["entry"]] == [str(world.here.pk)]
    kick = f"/fhir/Group/{world.here.pk}/$export"
    assert _get(kick, bearer).status_code == 400  # Prefer: respond-async is required
    assert _get(f"/fhir/Group/{world.there.pk}/$export", {**bearer, "HTTP_PREFER":
                "respond-async"}).status_code == 404  # not a group it serves  # fmt: skip
    asked = _get(kick, {**bearer, "HTTP_PREFER": "respond-async"})
    assert asked.status_code == 202
    status_url = asked["Content-Location"].removeprefix("http://testserver")
    waiting = _get(status_url, bearer)
    assert waiting.status_code == 202 and waiting["X-Progress"]
    export = ExportRequest.objects.get()
    assert export.requested_by.username == "api:plateforme" and export.format == "fhir"
    # A second person approves in the Exports page (here, the service it calls).
    export_decide(actor=actor_for_user(world.users["dpo"]), export_id=export.pk, approve=True)
    manifest = _get(status_url, bearer)
    assert manifest.status_code == 200, manifest.content
    body = manifest.json()
    assert body["requiresAccessToken"] is True and body["output"][0]["type"] == "Patient"
    file_url = body["output"][0]["url"].removeprefix("http://testserver")
    assert _get(file_url, {}).status_code == 401  # the file needs the token too
    sealed = b"".join(_get(file_url, bearer).streaming_content)
    lines = pyrage.decrypt(sealed, [identity]).decode().splitlines()
    export.refresh_from_db()
    assert len(lines) == body["output"][0]["count"] > export.rows > 0  # canary rows inside
    resources = [json.loads(line) for line in lines]
    for resource in resources[:50]:
        FhirPatient.model_validate(resource)
    # No resource carries an id: canary rows have none to give and would stand out.
    assert all("id" not in r for r in resources)
    assert all(r["identifier"][0]["system"] == f"urn:rempart:ipp:{world.here.finess}"
               for r in resources)  # fmt: skip
    events = Event.objects.filter(resource_type="ExportRequest", resource_id=str(export.pk))
    steps = [e.detail["step"] for e in events]
    assert steps == ["requested", "approved", "produced", "downloaded"]


def test_a_leaked_bulk_file_is_traced_to_its_export(world):  # noqa: F811
    """The FHIR file leaks after decryption: the analyser reads FHIR Patients like any export
    and names the export, the system that asked and the person who approved."""
    import pyrage

    from rempart.breach.services import breach_analyse
    from rempart.exports.models import ExportRequest
    from rempart.exports.services import export_decide
    from rempart.records.actors import actor_for_user

    identity, bearer = _platform(world)
    asked = _get(f"/fhir/Group/{world.here.pk}/$export", {**bearer, "HTTP_PREFER": "respond-async"})
    status_url = asked["Content-Location"].removeprefix("http://testserver")
    export = ExportRequest.objects.get()
    export_decide(actor=actor_for_user(world.users["security"]), export_id=export.pk, approve=True)
    file_url = _get(status_url, bearer).json()["output"][0]["url"].removeprefix("http://testserver")
    sealed = b"".join(_get(file_url, bearer).streaming_content)
    lines = pyrage.decrypt(sealed, [identity]).splitlines()
    posted = b"\n".join(lines[:300]) + b"\n"
    report = breach_analyse(actor=SYSTEM, data=posted, file_name="patients.ndjson").report
    assert report["matches"]["exact"] + report["matches"]["partial"] >= 0.9 * min(300, len(lines))
    source = report["source"]
    assert source["verdict"] == "export" and source["exports"][0]["id"] == str(export.pk)
    assert source["exports"][0]["requested_by"] == "api:plateforme"
    assert source["exports"][0]["approved_by"] == "rssi"


def test_the_audit_trail_is_read_by_a_system_granted_it_never_by_a_clinician(world):  # noqa: F811
    siem = _system_token(world, ["system/AuditEvent.rs"], client_id="siem")
    assert _get(f"/fhir/Patient/{world.patient.pk}", siem).status_code == 403  # scope
    today = timezone.localdate().isoformat()
    found = _get(f"/fhir/AuditEvent?date=ge{today}", siem)
    assert found.status_code == 200 and found.json()["total"] >= 1
    first = found.json()["entry"][0]["resource"]
    assert first["resourceType"] == "AuditEvent"
    assert _get(f"/fhir/AuditEvent/{first['id']}", siem).status_code == 200
    assert _get("/fhir/AuditEvent", siem).status_code == 400  # a date range is required
    # The trail's read is itself in the trail.
    assert Event.objects.filter(resource_type="AuditEvent", username="api:siem").exists()
    # A physician's application, even granted the scope, is refused: the role decides.
    api_client_register(actor=SYSTEM, client_id="app-soins", name="Application de soins",
                        scopes=["user/AuditEvent.rs", "user/Patient.rs"],
                        redirect_uris=["http://localhost:8765/retour"])  # fmt: skip
    physician = _user_token(world, "physician")
    assert _get(f"/fhir/AuditEvent?date=ge{today}", physician).status_code == 403


def _encounter_body(patient_id: Any, service_id: Any, status: str = "planned",
                    **changes: Any) -> dict[str, Any]:  # fmt: skip
    start = (timezone.now() + dt.timedelta(days=2)).isoformat(timespec="seconds")
    body = {"resourceType": "Encounter", "status": status,
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "IMP"},
            "type": [{"coding": [{"system": "urn:rempart:sejour", "code": "full"}]}],
            "serviceType": {"coding": [{"system": "urn:rempart:service",
                                        "code": str(service_id)}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "period": {"start": start}}  # fmt: skip
    body.update(changes)
    return body


def test_a_system_plans_admits_and_discharges_stays_as_the_desk_does(world):  # noqa: F811
    from rempart.access.models import CareOpening

    bearer = _system_token(world, ["system/Patient.rs", "system/Encounter.rs",
                                   "system/Encounter.cu"])  # fmt: skip
    newcomer = _new_patients(1, seed=51)[0]
    assert _get(f"/fhir/Patient/{newcomer.pk}", bearer).status_code == 404  # not in care yet
    planned = _send("post", "/fhir/Encounter", _encounter_body(newcomer.pk, world.ward.pk),
                    bearer)  # fmt: skip
    assert planned.status_code == 201, planned.content
    stay = planned.json()
    assert stay["status"] == "planned" and planned["Location"].endswith(stay["id"])
    # Planning brought the patient into the system's care, recorded like the desk's.
    assert CareOpening.objects.filter(patient_id=newcomer.pk).exists()
    assert _get(f"/fhir/Patient/{newcomer.pk}", bearer).status_code == 200
    version = planned["ETag"]
    admitted = _send("put", f"/fhir/Encounter/{stay['id']}", dict(stay, status="in-progress"),
                     bearer, HTTP_IF_MATCH=version)  # fmt: skip
    assert admitted.status_code == 200 and admitted.json()["status"] == "in-progress"
    stale = _send("put", f"/fhir/Encounter/{stay['id']}", dict(stay, status="cancelled"), bearer,
                  HTTP_IF_MATCH=version)  # fmt: skip
    assert stale.status_code == 412
    current = admitted.json()
    jump = _send("put", f"/fhir/Encounter/{stay['id']}", dict(current, status="planned"), bearer)
    assert jump.status_code == 422  # no way back
    done = _send("put", f"/fhir/Encounter/{stay['id']}", dict(current, status="finished"), bearer)
    assert done.status_code == 200 and done.json()["status"] == "finished"
    # Another establishment's service: refused, nothing written.
    elsewhere = world.there.services.first()
    before = Stay.objects.count()
    assert _send("post", "/fhir/Encounter", _encounter_body(newcomer.pk, elsewhere.pk),
                 bearer).status_code == 422  # fmt: skip
    assert Stay.objects.count() == before


def test_planning_a_stay_for_a_canary_through_the_api_locks_the_system(world):  # noqa: F811
    from rempart.access.canaries import canaries_plant

    bearer = _system_token(world, ["system/Encounter.cu"])
    planted = canaries_plant(actor=SYSTEM, per_establishment=1)
    canary = planted[0].patient_ids[0]
    answer = _send("post", "/fhir/Encounter", _encounter_body(canary, world.ward.pk), bearer)
    assert answer.status_code == 403 and answer.json()["issue"][0]["code"] == "security"
    assert AccountLock.objects.filter(user__username="api:labo", lifted_at=None).exists()


def _line_body(patient_id: Any, drug: str, **changes: Any) -> dict[str, Any]:
    body = {"resourceType": "MedicationRequest", "status": "draft", "intent": "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": {"coding": [{"system": "urn:rempart:catalogue",
                                                      "code": drug}]},
            "dosageInstruction": [{
                "doseAndRate": [{"doseQuantity": {"value": 500, "unit": "mg"}}],
                "route": {"coding": [{"system": "urn:rempart:voie", "code": "oral"}]},
                "timing": {"code": {"text": "3 fois par jour"}},
                "patientInstruction": "Au cours des repas"}],
            "dispenseRequest": {"expectedSupplyDuration": {"value": 7, "unit": "jours"}},
            }  # fmt: skip
    body.update(changes)
    return body


def test_a_physician_writes_draft_prescription_lines_a_system_never_prescribes(world):  # noqa: F811
    from rempart.care.models import Drug

    drug = Drug.objects.order_by("code").first().code
    api_client_register(actor=SYSTEM, client_id="app-soins", name="Application de soins",
                        scopes=["user/Patient.rs", "user/MedicationRequest.rs",
                                "user/MedicationRequest.c"],
                        redirect_uris=["http://localhost:8765/retour"])  # fmt: skip
    physician = _user_token(
        world, "physician", "user/MedicationRequest.rs user/MedicationRequest.c"
    )
    first = _send("post", "/fhir/MedicationRequest", _line_body(world.patient.pk, drug), physician)
    assert first.status_code == 201, first.content
    line = first.json()
    assert line["status"] == "draft" and line["dosageInstruction"][0]["doseAndRate"][0][
        "doseQuantity"] == {"value": 500.0, "unit": "mg"}  # fmt: skip
    prescription = Prescription.objects.get(pk=line["groupIdentifier"]["value"])
    assert prescription.prescriber.staff.user == world.users["physician"]
    second = _send(
        "post",
        "/fhir/MedicationRequest",
        _line_body(world.patient.pk, drug, groupIdentifier={"value": str(prescription.pk)}),
        physician,
    )
    assert second.status_code == 201 and prescription.lines.count() == 2
    assert _get(f"/fhir/MedicationRequest/{second.json()['id']}", physician).json()[
        "dosageInstruction"][0]["timing"]["code"]["text"] == "3 fois par jour"  # fmt: skip
    # Not a draft, an unknown drug, a patient outside the physician's care: refused, no line.
    lines = PrescriptionLine.objects.count()
    signed = _line_body(world.patient.pk, drug, status="active")
    unknown = _line_body(world.patient.pk, "pas-un-medicament")
    outside = _line_body(world.stranger.pk, drug)
    assert _send("post", "/fhir/MedicationRequest", signed, physician).status_code == 422
    assert _send("post", "/fhir/MedicationRequest", unknown, physician).status_code == 422
    assert _send("post", "/fhir/MedicationRequest", outside, physician).status_code == 404
    # A system holding the scope still cannot prescribe: prescribing is a physician's act.
    system = _system_token(world, ["system/MedicationRequest.cruds"])
    refused = _send("post", "/fhir/MedicationRequest", _line_body(world.patient.pk, drug), system)
    assert refused.status_code == 403
    assert PrescriptionLine.objects.count() == lines
