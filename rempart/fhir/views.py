"""The FHIR R4 API's base, `/fhir`: the CapabilityStatement, content negotiation, and an
OperationOutcome for every error, and the OAuth 2 token endpoint. Resources come with their
access rules (issue 16): without a live token every resource answers 401, with one 501 until
the resource is served."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from rempart.fhir.models import ApiToken
from rempart.fhir.outcome import FHIR_JSON, FhirError, fhir_response, outcome_response
from rempart.fhir.services import TokenRefused, token_client, token_issue

FHIR_VERSION = "4.0.1"
ACCEPTED = {"*/*", "application/*", FHIR_JSON, "application/json", "application/json+fhir"}
FORMATS = {"json", FHIR_JSON, "application/json"}
RESOURCES = ("Patient", "Practitioner", "Organization", "Encounter", "MedicationRequest",
             "AuditEvent")  # fmt: skip
View = Callable[..., HttpResponse]


def fhir_view(methods: tuple[str, ...]) -> Callable[[View], View]:
    """A FHIR endpoint: its methods, JSON only (Accept, `_format`), errors as OperationOutcome."""

    def wrap(view: View) -> View:
        @csrf_exempt  # token-authenticated API, no session cookie
        @wraps(view)
        def handle(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    said = f"méthode {request.method} non prise en charge ici"
                    raise FhirError(405, "not-supported", said)
                _negotiate(request)
                return view(request, *args, **kwargs)
            except FhirError as exc:
                response = outcome_response(exc.status, exc.code, exc.diagnostics)
                if exc.status == 401:
                    response["WWW-Authenticate"] = 'Bearer realm="rempart-fhir"'
                return response

        return handle

    return wrap


def _negotiate(request: HttpRequest) -> None:
    wanted = request.GET.get("_format")
    if wanted is not None and wanted not in FORMATS:
        raise FhirError(406, "not-supported", "seul le format JSON est servi (_format=json)")
    accept = request.headers.get("Accept", "")
    if accept:
        types = {part.split(";")[0].strip() for part in accept.split(",")}
        if not types & ACCEPTED:
            raise FhirError(406, "not-supported",
                            "seul application/fhir+json est servi (en-tête Accept)")  # fmt: skip


@fhir_view(("GET",))
def metadata(request: HttpRequest) -> HttpResponse:
    """What the server does today; each resource is listed as it is served."""
    statement = CapabilityStatement.model_validate({
        "status": "active", "date": timezone.localdate().isoformat(), "kind": "instance",
        "publisher": "Rempart", "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON], "implementation": {"description": "Rempart, dossier patient",
                                                   "url": request.build_absolute_uri("/fhir")},
        "rest": [{"mode": "server", "security": {
            "description": "OAuth 2 (SMART Backend Services pour les systèmes, jetons "
                           "d'utilisateur pour les comptes du personnel) : tout accès à une "
                           "ressource demande un jeton."}}],
    })  # fmt: skip
    return fhir_response(statement.model_dump_json(exclude_none=True))


@fhir_view(("GET", "POST", "PUT", "DELETE", "PATCH"))
def resource(request: HttpRequest, rest: str) -> HttpResponse:
    """Any other path under /fhir: a known resource type needs a token; an unknown one is
    not found."""
    kind = rest.strip("/").split("/")[0]
    if kind not in RESOURCES:
        raise FhirError(404, "not-found", f"type de ressource inconnu : {kind[:40]}")
    _bearer(request)
    raise FhirError(501, "not-supported", f"{kind} n'est pas encore servi par cette version")


def _bearer(request: HttpRequest) -> ApiToken:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    found = token_client(token.strip()) if scheme.lower() == "bearer" and token else None
    if found is None:
        raise FhirError(401, "login", "jeton d'accès manquant, expiré ou invalide (OAuth 2, "
                                      "en-tête Authorization: Bearer)")  # fmt: skip
    return found


@csrf_exempt  # OAuth 2 token endpoint: the client authenticates by its signed assertion
def token(request: HttpRequest) -> HttpResponse:
    """OAuth 2 client credentials with a JWT assertion (SMART Backend Services). Errors in the
    RFC 6749 form."""
    if request.method != "POST":
        return _oauth_error(TokenRefused("invalid_request", "POST attendu", 405))
    try:
        issued = token_issue(
            grant_type=request.POST.get("grant_type", ""),
            assertion_type=request.POST.get("client_assertion_type", ""),
            assertion=request.POST.get("client_assertion", ""),
            scope=request.POST.get("scope", ""),
            token_url=request.build_absolute_uri(request.path),
        )  # fmt: skip
    except TokenRefused as exc:
        return _oauth_error(exc)
    response = JsonResponse({"access_token": issued.token, "token_type": "bearer",
                             "expires_in": issued.expires_in,
                             "scope": " ".join(issued.scopes)})  # fmt: skip
    response["Cache-Control"] = "no-store"
    return response


def _oauth_error(exc: TokenRefused) -> HttpResponse:
    response = JsonResponse({"error": exc.error, "error_description": str(exc)}, status=exc.status)
    response["Cache-Control"] = "no-store"
    return response
