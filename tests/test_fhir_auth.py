"""FHIR clients as an integrator sets them up (SMART Backend Services): registered by the
security officer with their public keys, they get a short token for a signed assertion; a
forged, replayed, expired or over-long assertion, a wrong audience, a key of another client or
a scope not granted gets nothing, and the attempt is recorded."""

from __future__ import annotations

import datetime as dt

import pytest
import tink
from django.test import Client
from django.utils import timezone
from tink import jwt

from rempart.access.policy import AccessDenied
from rempart.audit.models import Event
from rempart.fhir.services import TokenRefused, api_client_register
from tests.test_exports import people  # noqa: F401  # the fixture

TOKEN_URL = "http://testserver/fhir/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _keys() -> tink.KeysetHandle:
    jwt.register_jwt_signature()
    return tink.new_keyset_handle(jwt.jwt_es384_template())


def _assertion(keys: tink.KeysetHandle, *, iss: str = "labo", aud: str = TOKEN_URL,
               jti: str = "a1", minutes: int = 4) -> str:  # fmt: skip
    now = timezone.now()
    until = now + dt.timedelta(minutes=minutes)
    raw = jwt.new_raw_jwt(issuer=iss, subject=iss, audiences=[aud], jwt_id=jti,
                          issued_at=now, expiration=until)  # fmt: skip
    return keys.primitive(jwt.JwtPublicKeySign).sign_and_encode(raw)


def _ask(client: Client, assertion: str, scope: str = "system/Patient.read"):
    return client.post("/fhir/auth/token", {
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion, "scope": scope})  # fmt: skip


@pytest.fixture
def registered(people):  # noqa: F811
    keys = _keys()
    public = jwt.jwk_set_from_public_keyset_handle(keys.public_keyset_handle())
    api_client_register(actor=people["rssi"], client_id="labo", name="Laboratoire",
                        jwks=public, scopes=["system/Patient.read"],
                        establishments=[people["here"]])  # fmt: skip
    return keys


def test_a_registered_system_gets_a_short_token_and_meets_the_api_with_it(registered):
    client = Client()
    answer = _ask(client, _assertion(registered))
    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 300
    assert body["scope"] == "system/Patient.read"
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/Patient/1").status_code == 401
    assert client.get("/fhir/Patient/1", **bearer).status_code == 404  # known type, no such id
    assert Event.objects.filter(action="login", resource_type="ApiClient").count() == 1
    # The token is kept as its SHA-256 only.
    from rempart.fhir.models import ApiToken

    assert body["access_token"].encode() not in bytes(ApiToken.objects.get().digest)


@pytest.mark.parametrize("attack", ["replay", "other_key", "audience", "expired", "too_long",
                                    "scope", "unknown", "garbage"])  # fmt: skip
def test_a_bad_assertion_gets_nothing_and_is_recorded(registered, attack):
    client = Client()
    if attack == "replay":
        first = _assertion(registered, jti="once")
        assert _ask(client, first).status_code == 200
        answer = _ask(client, first)
    elif attack == "other_key":
        answer = _ask(client, _assertion(_keys()))
    elif attack == "audience":
        answer = _ask(client, _assertion(registered, aud="https://elsewhere/token"))
    elif attack == "expired":
        answer = _ask(client, _assertion(registered, minutes=-1))
    elif attack == "too_long":
        answer = _ask(client, _assertion(registered, minutes=60))
    elif attack == "scope":
        answer = _ask(client, _assertion(registered), scope="system/AuditEvent.read")
    elif attack == "unknown":
        answer = _ask(client, _assertion(_keys(), iss="inconnu"))
    else:
        answer = _ask(client, "pas.un.jeton")
    assert answer.status_code in (400, 401)
    assert "access_token" not in answer.json() and answer.json()["error"]
    from rempart.fhir.models import ApiToken

    assert ApiToken.objects.count() == (1 if attack == "replay" else 0)
    if attack in ("other_key", "audience", "expired", "too_long", "replay"):
        assert Event.objects.filter(action="login_failed", resource_type="ApiClient").exists()


def test_only_the_security_officer_registers_and_only_public_keys(people):  # noqa: F811
    keys = _keys()
    public = jwt.jwk_set_from_public_keyset_handle(keys.public_keyset_handle())
    with pytest.raises(AccessDenied):
        api_client_register(actor=people["dpo"], client_id="x", name="X", jwks=public,
                            scopes=["system/Patient.read"])  # fmt: skip
    with pytest.raises(TokenRefused):
        api_client_register(actor=people["rssi"], client_id="x", name="X", jwks=public,
                            scopes=["system/Everything.read"])  # fmt: skip
    import json

    private = json.loads(public)
    private["keys"][0]["d"] = "c2VjcmV0"
    with pytest.raises(TokenRefused):
        api_client_register(actor=people["rssi"], client_id="x", name="X",
                            jwks=json.dumps(private), scopes=["system/Patient.read"])  # fmt: skip


def test_the_console_registers_lists_and_disables_a_system(console, tmp_path):
    keys = _keys()
    jwks = tmp_path / "labo.jwks.json"
    jwks.write_text(jwt.jwk_set_from_public_keyset_handle(keys.public_keyset_handle()))
    console.run("migrate", "-v0")
    console.run("generate", "--patients", "300", "--establishments", "3", "--seed", "5")
    import subprocess

    script = (
        "from rempart.directory.models import Establishment; "
        "print(Establishment.objects.order_by('finess').first().finess)"
    )
    finess = console.run("shell", "-c", script).stdout.split()[-1]
    unknown = subprocess.run(console.command("fhir", "client", "add", "--id", "labo", "--name",  # noqa: S603
                                             "L", "--jwks", str(jwks), "--scope",
                                             "system/Patient.read", "--establishment",
                                             "000000000"), env=console.env, capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert unknown.returncode != 0 and "Établissement inconnu" in unknown.stderr
    added = console.run("fhir", "client", "add", "--id", "labo", "--name", "Laboratoire",
                        "--jwks", str(jwks), "--scope", "system/Patient.read",
                        "--establishment", finess)  # fmt: skip
    assert "Client labo enregistré : system/Patient.read." in added.stdout
    assert "labo\tLaboratoire\tactif" in console.run("fhir", "client", "list").stdout
    console.run("fhir", "client", "disable", "--id", "labo")
    assert "labo\tLaboratoire\tdésactivé" in console.run("fhir", "client", "list").stdout


def test_a_disabled_system_loses_its_token_at_once(registered, people):  # noqa: F811
    from rempart.fhir.services import api_client_disable

    client = Client()
    token = _ask(client, _assertion(registered)).json()["access_token"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get("/fhir/Patient/1", **bearer).status_code == 404
    api_client_disable(actor=people["rssi"], client_id="labo")
    assert client.get("/fhir/Patient/1", **bearer).status_code == 401
    assert _ask(client, _assertion(registered, jti="a2")).status_code == 401


def test_the_security_officer_registers_and_disables_a_system_in_the_pages(group):
    from rempart.directory.models import Establishment, Role
    from rempart.fhir.models import ApiClient
    from tests.test_breach_pages import _client
    from tests.test_pages_a11y import Fields

    keys = _keys()
    public = jwt.jwk_set_from_public_keyset_handle(keys.public_keyset_handle())
    officer = _client("rssi.api", Role.SECURITY_OFFICER, None)
    page = officer.get("/securite/api-fhir/").content.decode()
    parsed = Fields()
    parsed.feed(page)
    assert parsed.h1 == 1 and parsed.unlabelled() == []
    here = Establishment.objects.order_by("finess").first()
    added = officer.post("/securite/api-fhir/", {"action": "add", "kind": "system",
                                                 "client_id": "pharma", "name": "Pharmacie",
                                                 "jwks": public, "establishments": [here.pk],
                                                 "scopes": ["Patient.rs"]})  # fmt: skip
    assert added.status_code == 302 and ApiClient.objects.get(client_id="pharma").active
    assert _ask(Client(), _assertion(keys, iss="pharma")).status_code == 200
    officer.post("/securite/api-fhir/", {"action": "disable", "client_id": "pharma"})
    assert not ApiClient.objects.get(client_id="pharma").active
    assert ApiClient.objects.get(client_id="pharma").scopes == ["system/Patient.rs"]
    refused = officer.post("/securite/api-fhir/", {"action": "add", "kind": "system",
                                                   "client_id": "clef", "name": "X",
                                                   "jwks": "{\"keys\": []}",
                                                   "establishments": [here.pk],
                                                   "scopes": ["Patient.rs"]})  # fmt: skip
    assert refused.status_code == 200 and not ApiClient.objects.filter(client_id="clef").exists()
    dpo = _client("dpo.api", Role.DPO, None)
    assert dpo.get("/securite/api-fhir/").status_code == 403
