"""Registering FHIR clients and issuing their tokens (OAuth 2 client credentials with a signed
JWT assertion, as SMART Backend Services asks): the assertion is signed with a key the client
registered, names the client as issuer and subject and the token URL as audience, expires within
five minutes and is accepted once. The token is random, 5 minutes long, kept as its SHA-256."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from rempart.access import policy
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action, Outcome
from rempart.audit.services import event_record
from rempart.directory.models import Establishment, Role, StaffMember
from rempart.fhir.models import ApiClient, ApiToken, AssertionSeen, AuthorisationCode, ClientKind
from rempart.vault.crypto import VaultError, jwk_set_check, jwt_assertion_verify

REGISTRARS = frozenset({Role.SECURITY_OFFICER, SYSTEM_ROLE})
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME = dt.timedelta(minutes=5)
ASSERTION_LONGEST = dt.timedelta(minutes=5)
CODE_LIFETIME = dt.timedelta(seconds=60)
TYPES = ("Patient", "Practitioner", "Organization", "Encounter", "MedicationRequest",
         "AuditEvent", "Group")  # fmt: skip
ACCESSES = ("read", "write", "rs", "r", "s", "cruds", "cru", "cu", "c", "u", "*")
SCOPES = frozenset(f"{context}/{kind}.{access}" for context in ("system", "user")
                   for kind in (*TYPES, "*") for access in ACCESSES)  # fmt: skip
_LETTERS = {"read": "rs", "write": "cud", "*": "cruds"}


def _covered(asked: str, granted: list[str]) -> bool:
    """Is every operation `asked` (SMART v1 or v2 notation) granted by one of `granted`?"""
    if asked not in SCOPES:
        return False
    context, _, rest = asked.partition("/")
    kind, _, access = rest.partition(".")
    mine = [g for g in granted if g.startswith(context + "/")]
    return all(scope_allows(mine, kind if kind != "*" else t, op)
               for op in _LETTERS.get(access, access)
               for t in ((kind,) if kind != "*" else TYPES))  # fmt: skip


def scope_allows(scopes: list[str], kind: str, operation: str) -> bool:
    """Does one of `scopes` (SMART v1 `.read`/`.write`/`.*` or v2 `.cruds` letters) allow the
    `operation` (one of c, r, u, d, s) on resources of type `kind`?"""
    for scope in scopes:
        target, _, access = scope.partition("/")[2].partition(".")
        if target in (kind, "*") and operation in _LETTERS.get(access, access):
            return True
    return False


class TokenRefused(Exception):
    """An OAuth 2 error: `error` is the RFC 6749 code, the message says why (no secret)."""

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error, self.status = error, status


def api_client_register(
    *, actor: Actor, client_id: str, name: str, scopes: list[str], jwks: str = "",
    establishments: list[Establishment] | None = None, redirect_uris: list[str] | None = None,
    export_recipient: str = "", export_purpose: str = "",
) -> ApiClient:  # fmt: skip
    """A system (public keys, `system/` scopes, the establishments it serves: it gets an
    account of its own) or, with `redirect_uris`, an application acting for the staff member
    who approves it (`user/` scopes, PKCE, no key)."""
    policy.authorise_role(actor, REGISTRARS)
    kind = ClientKind.APP if redirect_uris else ClientKind.SYSTEM
    context = "user/" if kind == ClientKind.APP else "system/"
    unknown = sorted(s for s in set(scopes) if s not in SCOPES or not s.startswith(context))
    if unknown or not scopes:
        raise TokenRefused("invalid_scope", "portées inconnues ou d'un autre type de client : "
                                            + ", ".join(unknown[:5]))  # fmt: skip
    if kind == ClientKind.SYSTEM:
        if not establishments:
            raise TokenRefused("invalid_request", "un système sert au moins un établissement")
        try:
            jwk_set_check(jwks)
        except VaultError:
            said = "clés publiques illisibles (un JWK Set de clés de signature publiques attendu)"
            raise TokenRefused("invalid_request", said) from None
        if export_recipient or export_purpose:
            _export_terms_check(export_recipient, export_purpose)
    elif any(not _redirect_ok(uri) for uri in redirect_uris or ()):
        raise TokenRefused("invalid_request", "adresse de retour refusée (https, ou http sur "
                                              "la machine locale ; sans fragment)")  # fmt: skip
    with transaction.atomic():
        account = None
        if kind == ClientKind.SYSTEM:
            account = _system_account(client_id, establishments or [])
        client = ApiClient.objects.create(
            client_id=client_id, name=name, kind=kind, scopes=sorted(set(scopes)),
            jwks=json.loads(jwks) if kind == ClientKind.SYSTEM else {},
            redirect_uris=list(redirect_uris or ()), account=account, created_by=actor.username,
            export_recipient=export_recipient.strip(), export_purpose=export_purpose,
        )  # fmt: skip
        event_record(actor, Action.KEY, resource_type="ApiClient", resource_id=client.pk,
                     detail={"client_id": client_id, "kind": kind, "scopes": client.scopes,
                             "establishments": [e.finess for e in establishments or ()]},
                     )  # fmt: skip
    return client


def _export_terms_check(recipient: str, purpose: str) -> None:
    """A system's Bulk $export terms: an age public key and a listed purpose, both or neither."""
    import pyrage

    from rempart.exports.models import ExportPurpose

    if purpose not in ExportPurpose.values:
        raise TokenRefused("invalid_request", "motif d'export inconnu")
    try:
        pyrage.x25519.Recipient.from_str(recipient.strip())
    except pyrage.RecipientError:
        raise TokenRefused("invalid_request", "clé publique age invalide (age1...)") from None


def _system_account(client_id: str, establishments: list[Establishment]) -> Any:
    """The account a system acts as: no password (it never logs in to the pages), its
    establishments, and the budget and lock of the API_CLIENT role."""
    user = get_user_model().objects.create_user(username=f"api:{client_id}"[:150])
    user.set_unusable_password()
    user.save(update_fields=["password"])
    staff = StaffMember.objects.create(user=user, role=Role.API_CLIENT)
    staff.establishments.set(establishments)
    return user


def _redirect_ok(uri: str) -> bool:
    parsed = urlsplit(uri)
    local = parsed.hostname in ("localhost", "127.0.0.1", "::1")
    return (parsed.scheme == "https" or (parsed.scheme == "http" and local)) and bool(
        parsed.netloc) and not parsed.fragment  # fmt: skip


def api_client_disable(*, actor: Actor, client_id: str) -> None:
    """Stop a system: no new token, and its live tokens stop working at once."""
    policy.authorise_role(actor, REGISTRARS)
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().filter(client_id=client_id).first()
        if client is None:
            raise TokenRefused("invalid_client", "client inconnu")
        client.active = False
        client.save(update_fields=["active"])
        if client.account_id is not None:
            get_user_model().objects.filter(pk=client.account_id).update(is_active=False)
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
    client = ApiClient.objects.filter(client_id=claimed, active=True,
                                      kind=ClientKind.SYSTEM).first()  # fmt: skip
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
    if not asked or not all(_covered(s, client.scopes) for s in asked):
        raise TokenRefused("invalid_scope", "portée non accordée à ce client")
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            AssertionSeen.objects.filter(expires_at__lt=now).delete()
            ApiToken.objects.filter(client=client, expires_at__lt=now).delete()
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
    """The live token of a Bearer header value, or None (expired, client disabled, or the
    account it acts as deactivated)."""
    found = (
        ApiToken.objects.select_related("client", "client__account", "user")
        .filter(digest=token_digest(token))
        .first()
    )
    if found is None or found.expires_at <= timezone.now() or not found.client.active:
        return None
    account = found.user if found.user_id is not None else found.client.account
    if account is None or not account.is_active:
        return None
    return found


# --- applications acting for a staff member (SMART App Launch, authorisation code + PKCE) ------


@dataclass(frozen=True)
class Authorisation:
    """A checked request of an application to act for the signed-in staff member."""

    client: ApiClient
    redirect_uri: str
    scopes: list[str]
    state: str
    challenge: str


def authorisation_check(params: dict[str, str]) -> Authorisation:
    """The /authorize request's parameters, checked before anything is shown. An unknown
    client or a redirect URI not registered is never redirected to (TokenRefused, shown on
    the page); the other errors go back to the application."""
    client = ApiClient.objects.filter(client_id=params.get("client_id", ""), active=True,
                                      kind=ClientKind.APP).first()  # fmt: skip
    redirect_uri = params.get("redirect_uri", "")
    if client is None or redirect_uri not in client.redirect_uris:
        raise TokenRefused("invalid_client", "application inconnue ou adresse de retour non "
                                             "enregistrée")  # fmt: skip
    asked = [s for s in params.get("scope", "").split() if s.startswith("user/")]
    asked = [s for s in asked if s in SCOPES]
    if params.get("response_type") != "code":
        raise TokenRefused("unsupported_response_type", "response_type=code attendu")
    if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
        raise TokenRefused("invalid_request", "PKCE (code_challenge en S256) obligatoire")
    if not asked or not all(_covered(s, client.scopes) for s in asked):
        raise TokenRefused("invalid_scope", "portée non accordée à cette application")
    return Authorisation(client, redirect_uri, asked, params.get("state", "")[:500],
                         params["code_challenge"][:128])  # fmt: skip


def authorisation_grant(*, actor: Actor, user: Any, request: Authorisation) -> str:
    """The staff member approved: a one-time code for the application (60 s, kept hashed)."""
    policy.authorise_role(actor, policy.READERS - {policy.API_CLIENT})
    code = secrets.token_urlsafe(32)
    with transaction.atomic():
        AuthorisationCode.objects.create(
            digest=token_digest(code), client=request.client, user=user, scopes=request.scopes,
            redirect_uri=request.redirect_uri, challenge=request.challenge,
            expires_at=timezone.now() + CODE_LIFETIME,
        )  # fmt: skip
        event_record(
            actor,
            Action.LOGIN,
            resource_type="ApiClient",
            resource_id=request.client.pk,
            detail={"client_id": request.client.client_id, "approved": request.scopes},
        )
    return code


def code_redeem(*, code: str, client_id: str, redirect_uri: str, verifier: str) -> Issued:
    """Exchange a code for a token acting for the staff member who approved: the code once,
    within 60 s, by the same application, with the PKCE verifier of its challenge."""
    now = timezone.now()
    with transaction.atomic():
        found = (
            AuthorisationCode.objects.select_for_update()
            .select_related("client", "user")
            .filter(digest=token_digest(code))
            .first()
        )
        if found is not None:
            found.delete()  # once, whatever happens next
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    if (found is None or found.expires_at <= now or found.client.client_id != client_id
            or not found.client.active or found.redirect_uri != redirect_uri
            or not secrets.compare_digest(challenge.decode(), found.challenge)
            or not found.user.is_active):  # fmt: skip
        raise TokenRefused("invalid_grant", "code inconnu, expiré, déjà utilisé ou PKCE faux")
    token = secrets.token_urlsafe(32)
    ApiToken.objects.filter(client=found.client, expires_at__lt=now).delete()
    AuthorisationCode.objects.filter(client=found.client, expires_at__lt=now).delete()
    ApiToken.objects.create(digest=token_digest(token), client=found.client, user=found.user,
                            scopes=found.scopes, expires_at=now + TOKEN_LIFETIME)  # fmt: skip
    return Issued(token, int(TOKEN_LIFETIME.total_seconds()), found.scopes)


def _client_actor(client: ApiClient) -> Actor:
    return Actor(username=f"fhir:{client.client_id}"[:150], role="fhir_client")


def _unverified_issuer(assertion: str) -> str:
    """The `iss` claim, read before the signature is checked only to find whose keys check it."""
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims.get("iss", ""))[:100]
    except (IndexError, ValueError, UnicodeDecodeError):
        raise TokenRefused("invalid_request", "assertion illisible") from None


def _refused(client: ApiClient, why: str) -> None:
    event_record(_client_actor(client), Action.LOGIN_FAILED, resource_type="ApiClient",
                 resource_id=client.pk, outcome=Outcome.DENIED, detail={"reason": why})  # fmt: skip
