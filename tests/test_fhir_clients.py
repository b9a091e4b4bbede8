"""The FHIR API as integrators meet it: outside client libraries against the running server
(the demo, served by `runserver`). fhirpy reads, searches (following the paging links) and
creates with a system's token, obtained with a signed assertion as a lab's own code would;
fhirclient goes through SMART App Launch (authorisation code + PKCE) for a physician, who
signs in with password and second factor and approves the application in Rempart's page."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import uuid
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
import requests
import tink
from tink import jwt

from tests.test_browser import CLI, Demo, demo  # noqa: F401  # the fixture

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _uuid(hex_value: object) -> str:
    return str(uuid.UUID(str(hex_value)))


@pytest.fixture(scope="module")
def system(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:  # noqa: F811
    """A lab registered at the console for the first clinic, with its key pair."""
    jwt.register_jwt_signature()
    keys = tink.new_keyset_handle(jwt.jwt_es256_template())
    folder = tmp_path_factory.mktemp("labo")
    public = folder / "labo.jwks.json"
    public.write_text(jwt.jwk_set_from_public_keyset_handle(keys.public_keyset_handle()))
    (finess, place), *_ = demo.sql("SELECT finess, id FROM directory_establishment "
                                   "WHERE kind = 'clinic' ORDER BY finess")  # fmt: skip
    subprocess.run([*CLI, "fhir", "client", "add", "--id", "labo", "--name", "Laboratoire",  # noqa: S603
                    "--jwks", str(public), "--establishment", str(finess),
                    "--scope", "system/Patient.rs", "--scope", "system/Patient.cu",
                    "--scope", "system/Encounter.rs"],
                   env=demo.env, check=True, capture_output=True)  # fmt: skip
    token_url = f"{demo.url}/fhir/auth/token"
    now = dt.datetime.now(dt.UTC)
    claims = jwt.new_raw_jwt(issuer="labo", subject="labo", audiences=[token_url],
                             jwt_id=uuid.uuid4().hex, issued_at=now,
                             expiration=now + dt.timedelta(minutes=4))  # fmt: skip
    assertion = keys.primitive(jwt.JwtPublicKeySign).sign_and_encode(claims)
    answer = requests.post(token_url, data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs system/Patient.cu "
        "system/Encounter.rs", "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }, timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    yield {"token": answer.json()["access_token"], "place": str(place)}


def _admitted_in(demo: Demo, where: str, value: str) -> str:  # noqa: F811
    rows = demo.sql(f"SELECT patient_id FROM care_stay WHERE {where} = ? AND admitted_at IS NOT "  # noqa: S608
                    "NULL AND discharged_at IS NULL AND cancelled_at IS NULL "
                    "ORDER BY patient_id LIMIT 1", value)  # fmt: skip
    return _uuid(rows[0][0])


def test_fhirpy_reads_searches_pages_and_creates_with_a_system_token(demo, system):  # noqa: F811
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(f"{demo.url}/fhir", authorization=f"Bearer {system['token']}")
    patient_id = _admitted_in(demo, "establishment_id", uuid.UUID(system["place"]).hex)
    patient = client.reference("Patient", patient_id).to_resource()
    assert patient["resourceType"] == "Patient" and patient["id"] == patient_id
    official = next(n for n in patient["name"] if n["use"] == "official")
    found = client.resources("Patient").search(family=official["family"],
                                               birthdate=patient["birthDate"]).fetch()  # fmt: skip
    assert patient_id in [p["id"] for p in found]
    # Paging as a client follows it: one stay a page, every page fetched through the links.
    pages = client.resources("Encounter").search(patient=patient_id).limit(1)
    stays = pages.fetch_all()
    assert len(stays) == pages.count() >= 1
    # Create: the client POSTs, the server gives the id and the version.
    new = client.resource("Patient", name=[{"use": "official", "family": "FOURNIER",
                                            "given": ["Aurèle"]}],
                          gender="male", birthDate="1958-09-30")  # fmt: skip
    new.save()
    assert new["id"] and new["meta"]["versionId"] == "1"
    # A token the server does not know: the library gets the OperationOutcome's 401.
    from fhirpy.base.exceptions import AuthorizationError

    stranger = SyncFHIRClient(f"{demo.url}/fhir", authorization="Bearer faux")
    with pytest.raises(AuthorizationError, match="OperationOutcome"):
        stranger.reference("Patient", patient_id).to_resource()


def _sign_in(demo: Demo, username: str) -> requests.Session:  # noqa: F811
    browser = requests.Session()

    def csrf(path: str) -> str:
        page = browser.get(f"{demo.url}{path}", timeout=10).text
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    headers = {"Referer": f"{demo.url}/connexion/"}
    browser.post(f"{demo.url}/connexion/", headers=headers, timeout=10, data={
        "csrfmiddlewaretoken": csrf("/connexion/"), "username": username,
        "password": demo.accounts[username]})  # fmt: skip
    browser.post(f"{demo.url}/connexion/second-facteur/", headers=headers, timeout=10, data={
        "csrfmiddlewaretoken": csrf("/connexion/second-facteur/"),
        "code": demo.code(username)})  # fmt: skip
    return browser


def test_fhirclient_goes_through_smart_app_launch_for_a_physician(demo, tmp_path: Path):  # noqa: F811
    from fhirclient import client as smart_client
    from fhirclient.models.patient import Patient

    subprocess.run([*CLI, "fhir", "client", "add", "--id", "app-soins", "--name",  # noqa: S603
                    "Application de soins", "--redirect-uri", "http://localhost:8765/retour",
                    "--scope", "user/Patient.rs", "--scope", "user/Patient.cu"],
                   env=demo.env, check=True, capture_output=True)  # fmt: skip
    # A demo physician with a patient admitted in their service.
    username, patient_hex = demo.sql(
        "SELECT u.username, st.patient_id FROM auth_user u JOIN directory_staffmember m ON "
        "m.user_id = u.id JOIN directory_staffmember_services s ON s.staffmember_id = m.id "
        "JOIN care_stay st ON st.service_id = s.service_id WHERE u.username LIKE 'medecin.%' "
        "AND st.admitted_at IS NOT NULL AND st.discharged_at IS NULL AND st.cancelled_at IS "
        "NULL ORDER BY u.username, st.patient_id LIMIT 1")[0]  # fmt: skip
    patient_id = _uuid(patient_hex)
    smart = smart_client.FHIRClient(settings={
        "app_id": "app-soins", "api_base": f"{demo.url}/fhir",
        "redirect_uri": "http://localhost:8765/retour",
        "scope": "user/Patient.rs user/Patient.cu"})  # fmt: skip
    authorize = smart.authorize_url
    assert authorize.startswith(f"{demo.url}/fhir/auth/authorize?")
    browser = _sign_in(demo, username)
    consent = browser.get(authorize, timeout=10)
    assert consent.status_code == 200 and "Application de soins" in consent.text
    assert "form-action 'self' http://localhost:8765" in consent.headers["Content-Security-Policy"]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', consent.text))
    fields = {k: unescape(v) for k, v in fields.items()}
    approved = browser.post(authorize.split("?")[0], data={**fields, "action": "approve"},
                            headers={"Referer": authorize}, allow_redirects=False,
                            timeout=10)  # fmt: skip
    assert approved.status_code == 302
    smart.handle_callback(approved.headers["Location"])  # the code and the PKCE verifier
    assert smart.ready
    read = Patient.read(patient_id, smart.server)
    assert read.id == patient_id and read.name[0].family
    # Search as fhirclient builds it, then create a patient the physician registers.
    search = Patient.where(struct={"family": read.name[0].family,
                                   "birthdate": read.birthDate.isostring})  # fmt: skip
    assert patient_id in [p.id for p in search.perform_resources(smart.server)]
    new = Patient({"name": [{"use": "official", "family": "MARCHAND", "given": ["Ysé"]}],
                   "gender": "female", "birthDate": "1990-02-14"})  # fmt: skip
    created = new.create(smart.server)
    assert created is not None and created["resourceType"] == "Patient" and created["id"]
    # The application read as the physician: in the trail under their name, naming the app.
    rows = demo.sql("SELECT username, detail FROM audit_event WHERE resource_type = 'Patient' "
                    "AND action = 'read' ORDER BY id DESC LIMIT 1")  # fmt: skip
    assert rows[0][0] == username and "fhir:app-soins" in str(rows[0][1])
