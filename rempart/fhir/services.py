"""Registering FHIR clients and issuing their tokens (OAuth 2 client credentials with a signed
JWT assertion, as SMART Backend Services asks): the assertion is signed with a key the client
registered, names the client as issuer and subject and the token URL as audience, expires within
five minutes and is accepted once. The token is random, 5 minutes long, kept as its SHA-256."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action, Outcome
from rempart.audit.services import event_record
from rempart.directory.models import Role
from rempart.fhir.models import ApiClient, ApiToken, AssertionSeen
from rempart.vault.crypto import VaultError, jwk_set_check, jwt_assertion_verify

REGISTRARS = frozenset({Role.SECURITY_OFFICER, SYSTEM_ROLE})
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = dt.timedelta(minutes=5)
ASSERTION_LONGEST = dt.timedelta(minutes=5)
SCOPES = frozenset(f"system/{kind}.{access}"
                   for kind in ("Patient", "Practitioner", "Organization", "Encounter",
                                "MedicationRequest", "AuditEvent", "*")
                   for access in ("read", "write", "rs", "cruds", "*"))  # fmt: skip


class TokenRefused(Exception):
    """An OAuth 2 error: `error` is the RFC 6749 code, the message says why (no secret)."""

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error, self.status = error, status


def api_client_register(*, actor: Actor, client_id: str, name: str, jwks: str,
                        scopes: list[str]) -> ApiClient:  # fmt: skip
    policy.authorise_role(actor, REGISTRARS)
    unknown = sorted(set(scopes) - SCOPES)
    if unknown or not scopes:
        raise TokenRefused("invalid_scope", "portées inconnues : " + ", ".join(unknown[:5]))
    try:
        jwk_set_check(jwks)
    except VaultError:
        said = "clés publiques illisibles (un JWK Set de clés de signature publiques attendu)"
        raise TokenRefused("invalid_request", said) from None
    with transaction.atomic():
        client = ApiClient.objects.create(client_id=client_id, name=name, jwks=json.loads(jwks),
                                          scopes=sorted(set(scopes)),
                                          created_by=actor.username)  # fmt: skip
        event_record(actor, Action.KEY, resource_type="ApiClient", resource_id=client.pk,
                     detail={"client_id": client_id, "scopes": client.scopes})  # fmt: skip
    return client


def api_client_disable(*, actor: Actor, client_id: str) -> None:
    """Stop a system: no new token, and its live tokens stop working at once."""
    policy.authorise_role(actor, REGISTRARS)
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().filter(client_id=client_id).first()
        if client is None:
            raise TokenRefused("invalid_client", "client inconnu")
        client.active = False
        client.save(update_fields=["active"])
        event_record(actor, Action.KEY, resource_type="ApiClient", resource_id=client.pk,
                     detail={"client_id": client_id, "disabled": True})  # fmt: skip


@dataclass(frozen=True)
class Issued:
    token: str
    expires_in: int
    scopes: list[str]


def token_issue(*, grant_type: str, assertion_type: str, assertion: str, scope: str,
                token_url: str) -> Issued:  # fmt: skip
    if grant_type != "client_credentials":
        raise TokenRefused("unsupported_grant_type", "seul client_credentials est accepté")
    if assertion_type != ASSERTION_TYPE or not assertion:
        raise TokenRefused("invalid_request", "une assertion JWT signée est attendue")
    claimed = _unverified_issuer(assertion)
    client = ApiClient.objects.filter(client_id=claimed, active=True).first()
    if client is None:
        raise TokenRefused("invalid_client", "client inconnu ou désactivé", 401)
    try:
        checked = jwt_assertion_verify(json.dumps(client.jwks), assertion, issuer=client.client_id,
                                       audience=token_url)  # fmt: skip
    except VaultError:
        _refused(client, "signature, émetteur, audience ou expiration")
        raise TokenRefused("invalid_client", "assertion refusée", 401) from None
    now = timezone.now()
    if checked.subject != client.client_id or not checked.jwt_id:
        _refused(client, "sujet ou identifiant manquant")
        raise TokenRefused("invalid_client", "assertion refusée (sub, jti)", 401)
    if checked.expires_at - now > ASSERTION_LONGEST:
        _refused(client, "expiration trop lointaine")
        raise TokenRefused("invalid_client", "assertion valable plus de 5 minutes", 401)
    asked = scope.split() if scope else list(client.scopes)
    if not asked or set(asked) - set(client.scopes):
        raise TokenRefused("invalid_scope", "portée non accordée à ce client")
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            AssertionSeen.objects.filter(expires_at__lt=now).delete()
            AssertionSeen.objects.create(client=client, jwt_id=checked.jwt_id[:200],
                                         expires_at=checked.expires_at)  # fmt: skip
            ApiToken.objects.create(digest=token_digest(token), client=client, scopes=asked,
                                    expires_at=now + TOKEN_LIFETIME)  # fmt: skip
            event_record(_client_actor(client), Action.LOGIN, resource_type="ApiClient",
                         resource_id=client.pk, detail={"scopes": asked})  # fmt: skip
    except IntegrityError:
        _refused(client, "assertion rejouée")
        raise TokenRefused("invalid_grant", "assertion déjà utilisée") from None
    return Issued(token, int(TOKEN_LIFETIME.total_seconds()), asked)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_client(token: str) -> ApiToken | None:
    """The live token of a Bearer header value, or None."""
    found = ApiToken.objects.select_related("client").filter(digest=token_digest(token)).first()
    if found is None or found.expires_at <= timezone.now() or not found.client.active:
        return None
    return found


def _client_actor(client: ApiClient) -> Actor:
    return Actor(username=f"fhir:{client.client_id}"[:150], role="fhir_client")


def _unverified_issuer(assertion: str) -> str:
    """The `iss` claim, read before the signature is checked only to find whose keys check it."""
    import base64

    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("iss", ""))[:100]
    except (IndexError, ValueError, UnicodeDecodeError):
        raise TokenRefused("invalid_request", "assertion illisible") from None


def _refused(client: ApiClient, why: str) -> None:
    event_record(_client_actor(client), Action.LOGIN_FAILED, resource_type="ApiClient",
                 resource_id=client.pk, outcome=Outcome.DENIED, detail={"reason": why})  # fmt: skip
