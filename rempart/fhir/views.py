"""The FHIR R4 API's HTTP layer, `/fhir`: the CapabilityStatement and SMART discovery, content
negotiation, an OperationOutcome for every error, the OAuth 2 token endpoint, and the routes of
the resources (read, search, create, update, Bulk $export). What each resource says and who may
see it is in `mapping.py`, `resources.py` and `bulk.py`: without a live token every resource
answers 401."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

import orjson
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from rempart.fhir import bulk, resources
from rempart.fhir.models import ApiToken
from rempart.fhir.outcome import FHIR_JSON, FhirError, fhir_response, outcome_response
from rempart.fhir.services import TokenRefused, code_redeem, token_client, token_issue

FHIR_VERSION = "4.0.1"
ACCEPTED = {"*/*", "application/*", FHIR_JSON, "application/json", "application/json+fhir"}
FORMATS = {"json", FHIR_JSON, "application/json"}
RESOURCES = ("Patient", "Practitioner", "Organization", "Encounter", "MedicationRequest",
             "AuditEvent", "Group")  # fmt: skip
View = Callable[..., HttpResponseBase]


def fhir_view(methods: tuple[str, ...]) -> Callable[[View], View]:
    """A FHIR endpoint: its methods, JSON only (Accept, `_format`), errors as OperationOutcome."""

    def wrap(view: View) -> View:
        @csrf_exempt  # token-authenticated API, no session cookie
        @wraps(view)
        def handle(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
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


_SEARCH = {
    "Patient": ("family", "given", "name", "birthdate", "identifier", "gender", "_id"),
    "Practitioner": ("identifier", "family", "_id"),
    "Organization": ("identifier", "name", "_id"),
    "Encounter": ("patient", "subject", "date", "status"),
    "MedicationRequest": ("patient", "subject", "status", "authoredon"),
    "AuditEvent": ("date", "patient", "_id"),
    "Group": (),
}
_PARAM_TYPES = {"birthdate": "date", "date": "date", "authoredon": "date", "identifier": "token",
                "gender": "token", "status": "token", "patient": "reference",
                "subject": "reference", "_id": "token"}  # fmt: skip


def _oauth_uris(request: HttpRequest) -> dict[str, str]:
    return {
        "token_endpoint": request.build_absolute_uri("/fhir/auth/token"),
        "authorization_endpoint": request.build_absolute_uri("/fhir/auth/authorize"),
    }


@fhir_view(("GET",))
def metadata(request: HttpRequest) -> HttpResponse:
    """What the server does: each resource with its interactions and search parameters, and
    where the OAuth 2 endpoints are (SMART)."""
    uris = _oauth_uris(request)
    resources_listed = []
    for kind in RESOURCES:
        writes = {"Patient": ["create", "update"], "Encounter": ["create", "update"],
                  "MedicationRequest": ["create"]}.get(kind, [])  # fmt: skip
        interactions = ["read", "search-type", *writes]
        if kind == "Group":
            entry_ops = [
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/"
                    "OperationDefinition/group-export",
                }
            ]
        entry: dict[str, Any] = {
            "type": kind, "interaction": [{"code": code} for code in interactions],
            "searchParam": [{"name": name, "type": _PARAM_TYPES.get(name, "string")}
                            for name in _SEARCH[kind]],
        }  # fmt: skip
        if kind == "Group":
            entry["operation"] = entry_ops
        if kind == "Patient":
            entry |= {"versioning": "versioned-update", "conditionalCreate": True,
                      "updateCreate": False, "readHistory": False}  # fmt: skip
        resources_listed.append(entry)
    statement = CapabilityStatement.model_validate({
        "status": "active", "date": timezone.localdate().isoformat(), "kind": "instance",
        "publisher": "Rempart", "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON], "implementation": {"description": "Rempart, dossier patient",
                                                   "url": request.build_absolute_uri("/fhir")},
        "rest": [{"mode": "server", "resource": resources_listed, "security": {
            "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                               "restful-security-service",
                                     "code": "SMART-on-FHIR"}]}],
            "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/"
                                  "oauth-uris",
                           "extension": [{"url": "token", "valueUri": uris["token_endpoint"]},
                                         {"url": "authorize",
                                          "valueUri": uris["authorization_endpoint"]}]}],
            "description": "OAuth 2 : SMART Backend Services pour les systèmes (assertion JWT "
                           "signée), SMART App Launch avec PKCE pour les applications qui "
                           "agissent au nom d'un membre du personnel. Tout accès à une "
                           "ressource demande un jeton."}}],
    })  # fmt: skip
    return fhir_response(statement.model_dump_json(exclude_none=True))


def smart_configuration(request: HttpRequest) -> HttpResponse:
    """SMART's discovery document: the endpoints and what they accept."""
    body = _oauth_uris(request) | {
        "grant_types_supported": ["client_credentials", "authorization_code"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS384"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["system/*.rs", "user/*.rs", "user/Patient.cu", "system/Patient.cu"],
        "capabilities": ["client-confidential-asymmetric", "client-public", "launch-standalone",
                         "permission-v1", "permission-v2", "permission-user"],
    }  # fmt: skip
    return JsonResponse(body)


@fhir_view(("GET", "POST", "PUT", "DELETE", "PATCH"))
def resource(request: HttpRequest, rest: str) -> HttpResponseBase:
    """Any other path under /fhir: `Type` (search, create), `Type/_search` (search by POST),
    `Type/id` (read, update). A known type needs a token; an unknown one is not found."""
    parts = rest.strip("/").split("/")
    kind = parts[0]
    if kind in ("$export-status", "$export-file") and len(parts) == 2:
        return _bulk(request, kind, parts[1])
    if kind not in RESOURCES:
        raise FhirError(404, "not-found", f"type de ressource inconnu : {kind[:40]}")
    token = _bearer(request)
    caller = resources.caller_for(request, token)
    if kind == "Group":
        return _group(request, caller, token, parts[1:])
    if len(parts) == 1 or (len(parts) == 2 and parts[1] == "_search" and request.method == "POST"):
        if request.method == "GET" or len(parts) == 2:
            return _search(request, caller, kind)
        if request.method == "POST":
            return _create(request, caller, kind)
    elif len(parts) == 2 and parts[1] and not parts[1].startswith(("_", "$")):
        if request.method == "GET":
            body = resources.read(caller, kind, parts[1])
            return _resource_response(request, body)
        if request.method == "PUT" and kind in ("Patient", "Encounter"):
            write = resources.patient_update if kind == "Patient" else resources.encounter_update
            updated = write(caller, parts[1], _json_body(request),
                            request.headers.get("If-Match", ""))  # fmt: skip
            return _resource_response(request, updated)
    said = f"opération {request.method} non prise en charge sur {'/'.join(parts)[:80]}"
    raise FhirError(405, "not-supported", said)


def _group(request: HttpRequest, caller: resources.Caller, token: ApiToken,
           rest: list[str]) -> HttpResponse:  # fmt: skip
    """Group (one per establishment the caller serves): search, read, and Bulk $export."""
    if request.method == "GET" and not rest:
        groups = bulk.group_search(caller)
        base = request.build_absolute_uri("/fhir/Group")
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset",
                                  "total": len(groups)}  # fmt: skip
        if groups:
            bundle["entry"] = [{"fullUrl": f"{base}/{g['id']}", "resource": g,
                                "search": {"mode": "match"}} for g in groups]  # fmt: skip
        return fhir_response(orjson.dumps(bundle).decode())
    if request.method == "GET" and len(rest) == 1:
        return _resource_response(request, bulk.group_read(caller, rest[0]))
    if request.method in ("GET", "POST") and len(rest) == 2 and rest[1] == "$export":
        params = {k: str(request.GET.get(k, "")) for k in request.GET if k != "_format"}
        export_id = bulk.kick_off(caller, token, rest[0], params,
                                  request.headers.get("Prefer", ""))  # fmt: skip
        response = outcome_response(
            202,
            "informational",
            "export demandé : il attend l'approbation d'une seconde personne",
            severity="information",
        )
        response["Content-Location"] = request.build_absolute_uri(
            f"/fhir/$export-status/{export_id}"
        )
        return response
    raise FhirError(405, "not-supported", "Group : lecture, recherche et $export seulement")


def _bulk(request: HttpRequest, kind: str, export_id: str) -> HttpResponseBase:
    caller = resources.caller_for(request, _bearer(request))
    if request.method != "GET":
        raise FhirError(405, "not-supported", "GET seulement")
    if kind == "$export-file":
        path = bulk.file_path(caller, export_id)
        sent = FileResponse(path.open("rb"), content_type="application/octet-stream")
        sent["Content-Disposition"] = f'attachment; filename="Patient-{export_id}.ndjson.age"'
        sent["Cache-Control"] = "no-store"
        return sent
    manifest = bulk.status(caller, export_id, request.build_absolute_uri("/fhir"))
    if manifest is None:
        response = outcome_response(202, "informational", "en attente de l'approbation d'une "
                                    "seconde personne (DPO ou responsable sécurité)",
                                    severity="information")  # fmt: skip
        response["X-Progress"] = "en attente d'approbation"
        response["Retry-After"] = "60"
        return response
    answer = JsonResponse(manifest)
    answer["Cache-Control"] = "no-store"
    return answer


def _json_body(request: HttpRequest) -> dict[str, Any]:
    kind = request.content_type or ""
    if kind not in ("application/fhir+json", "application/json"):
        raise FhirError(415, "not-supported", "corps en application/fhir+json attendu")
    if len(request.body) > 100_000:
        raise FhirError(413, "too-long", "ressource trop grande (100 ko au plus)")
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise FhirError(400, "structure", "JSON illisible") from None
    if not isinstance(body, dict):
        raise FhirError(400, "structure", "un objet JSON (une ressource) est attendu")
    return body


def _params(request: HttpRequest) -> dict[str, str]:
    source = request.POST if request.method == "POST" else request.GET
    return {key: "\x00".join(source.getlist(key)) for key in source}


def _search(request: HttpRequest, caller: resources.Caller, kind: str) -> HttpResponse:
    params = _params(request)
    unknown = resources.unknown_parameters(kind, params)
    if unknown:
        said = "paramètres de recherche non pris en charge : " + ", ".join(unknown[:5])
        raise FhirError(400, "not-supported", said[:300])
    page = resources.search(caller, kind, params)
    base = request.build_absolute_uri(f"/fhir/{kind}")

    def link(relation: str, offset: int) -> dict[str, str]:
        kept = {k: v for k, v in params.items() if k not in ("_offset", "_count")}
        query = urlencode([*((k, x) for k, v in kept.items() for x in v.split("\x00")),
                           ("_count", page.count), ("_offset", offset)])  # fmt: skip
        return {"relation": relation, "url": f"{base}?{query}"}

    links = [link("self", page.offset)]
    if page.offset + page.count < page.total:
        links.append(link("next", page.offset + page.count))
    if page.offset > 0:
        links.append(link("previous", max(0, page.offset - page.count)))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
    }
    if page.resources:
        bundle["entry"] = [{"fullUrl": f"{base}/{r['id']}", "resource": r,
                            "search": {"mode": "match"}} for r in page.resources]  # fmt: skip
    return fhir_response(orjson.dumps(bundle).decode())


def _create(request: HttpRequest, caller: resources.Caller, kind: str) -> HttpResponse:
    if kind == "Encounter":
        created = resources.encounter_create(caller, _json_body(request))
        return _resource_response(request, created, status=201)
    if kind == "MedicationRequest":
        created = resources.medication_request_create(caller, _json_body(request))
        return _resource_response(request, created, status=201)
    if kind != "Patient":
        raise FhirError(405, "not-supported", f"{kind} ne se crée pas par cette API")
    body, new = resources.patient_create(caller, _json_body(request),
                                         request.headers.get("If-None-Exist", ""))  # fmt: skip
    return _resource_response(request, body, status=201 if new else 200)


def _resource_response(request: HttpRequest, body: dict[str, Any],
                       status: int = 200) -> HttpResponse:  # fmt: skip
    response = fhir_response(orjson.dumps(body).decode(), status=status)
    meta = body.get("meta") or {}
    if meta.get("versionId"):
        response["ETag"] = f'W/"{meta["versionId"]}"'
    location = request.build_absolute_uri(f"/fhir/{body['resourceType']}/{body['id']}")
    if meta.get("versionId") and body["resourceType"] == "Patient":
        location += f"/_history/{meta['versionId']}"
    response["Location" if status == 201 else "Content-Location"] = location
    return response


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
    form = request.POST
    try:
        if form.get("grant_type") == "authorization_code":
            issued = code_redeem(code=form.get("code", ""), client_id=form.get("client_id", ""),
                                 redirect_uri=form.get("redirect_uri", ""),
                                 verifier=form.get("code_verifier", ""))  # fmt: skip
        else:
            issued = token_issue(
                grant_type=form.get("grant_type", ""),
                assertion_type=form.get("client_assertion_type", ""),
                assertion=form.get("client_assertion", ""), scope=form.get("scope", ""),
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
