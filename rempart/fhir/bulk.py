"""FHIR Bulk Data `$export` of a Group (one per establishment), through the export controls.

The kick-off records an export request as the client's account, for the purpose and to the age
key the security officer registered with the client; nothing is produced until a second person
(the DPO or the security officer) approves it in the Exports page. Polling answers 202 until
then; once approved, the first poll produces the file (watermarked rows, canary rows of the
export's own, FHIR Patient NDJSON encrypted to the client's key) and answers the manifest. The
file is downloaded with a token, by the client that asked, until it expires; every step is in
the audit trail (the export controls' events).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.utils import timezone

from rempart.access import policy
from rempart.directory.models import Establishment
from rempart.exports import services as exports
from rempart.exports.formats import GROUPS
from rempart.exports.models import ExportRequest, ExportStatus, RecipientKind
from rempart.fhir.models import ApiToken
from rempart.fhir.outcome import FhirError
from rempart.fhir.resources import Caller

OUTPUT_FORMATS = {"application/fhir+ndjson", "application/ndjson", "ndjson"}


def group_resource(place: Establishment) -> dict[str, Any]:
    return {"resourceType": "Group", "id": str(place.pk), "type": "person", "actual": True,
            "name": f"Patients de {place.name}",
            "managingEntity": {"reference": f"Organization/{place.pk}"}}  # fmt: skip


def _places(caller: Caller) -> list[Establishment]:
    return list(Establishment.objects.filter(pk__in=caller.actor.establishments).order_by("finess"))


def group_read(caller: Caller, group_id: str) -> dict[str, Any]:
    caller.allow("Group", "r")
    for place in _places(caller):
        if str(place.pk) == group_id:
            return group_resource(place)
    raise FhirError(404, "not-found", "groupe introuvable (un groupe par établissement servi)")


def group_search(caller: Caller) -> list[dict[str, Any]]:
    caller.allow("Group", "s")
    return [group_resource(p) for p in _places(caller)]


def kick_off(caller: Caller, token: ApiToken, group_id: str, params: dict[str, str],
             prefer: str) -> uuid.UUID:  # fmt: skip
    """Ask the export; returns its id (the status URL's). Patients only, NDJSON only."""
    caller.allow("Patient", "r")
    if "respond-async" not in prefer:
        raise FhirError(400, "invalid", "en-tête Prefer: respond-async attendu ($export)")
    if set(params.get("_type", "Patient").split(",")) != {"Patient"}:
        raise FhirError(400, "not-supported", "_type : seul Patient est exporté")
    if params.get("_outputFormat", "application/fhir+ndjson") not in OUTPUT_FORMATS:
        raise FhirError(400, "not-supported", "_outputFormat : application/fhir+ndjson")
    unknown = sorted(set(params) - {"_type", "_outputFormat"})
    if unknown:
        raise FhirError(400, "not-supported", "paramètres non pris en charge : "
                                              + ", ".join(unknown[:5]))  # fmt: skip
    client = token.client
    if not client.export_recipient or not client.export_purpose:
        raise FhirError(403, "forbidden", "ce client n'a ni clé age ni motif d'export "
                                          "enregistrés par le responsable sécurité")  # fmt: skip
    place = group_read(caller, group_id)
    ask = exports.ExportAsk(
        purpose=client.export_purpose, detail=f"FHIR $export demandé par {client.name}",
        establishment_id=uuid.UUID(place["id"]), fields=tuple(GROUPS), format="fhir",
        recipient_kind=RecipientKind.AGE, recipient=client.export_recipient,
    )  # fmt: skip
    try:
        return exports.export_request(actor=caller.actor, ask=ask).pk
    except exports.ExportRefused as exc:
        raise FhirError(400, "invalid", str(exc)) from None
    except (policy.AccessDenied, policy.AccountLocked):
        raise FhirError(403, "forbidden", "export refusé à ce compte") from None


def _own(caller: Caller, export_id: str) -> ExportRequest:
    try:
        found = ExportRequest.objects.filter(pk=uuid.UUID(export_id)).first()
    except ValueError:
        found = None
    if found is None or found.requested_by_id != caller.actor.user_id:
        raise FhirError(404, "not-found", "export inconnu")
    return found


def status(caller: Caller, export_id: str, base: str) -> dict[str, Any] | None:
    """The manifest once the file exists (produced at the first poll after the approval);
    None while a second person has not decided."""
    export = _own(caller, export_id)
    if export.status == ExportStatus.REQUESTED:
        return None
    if export.status == ExportStatus.REFUSED:
        raise FhirError(403, "forbidden", "export refusé par la seconde personne")
    if export.status == ExportStatus.APPROVED:
        try:
            exports.export_produce(actor=caller.actor, export_id=export.pk)
        except exports.ExportRefused as exc:
            raise FhirError(409, "conflict", str(exc)) from None
        export.refresh_from_db()
    if export.status != ExportStatus.READY or (
        export.expires_at and export.expires_at <= timezone.now()
    ):
        raise FhirError(404, "not-found", "fichier expiré ou détruit")
    lines = export.rows + len((export.canary_rows or {}).get("rows", []))
    assert export.produced_at is not None  # noqa: S101  # READY exports were produced
    return {
        "transactionTime": timezone.localtime(export.produced_at).isoformat(timespec="seconds"),
        "request": f"{base}/Group/{export.establishment_id}/$export",
        "requiresAccessToken": True,
        "output": [{"type": "Patient", "url": f"{base}/$export-file/{export.pk}", "count": lines}],
        "error": [],
        "extension": {"https://rempart.fr/fhir/bulk-encryption": {
            "method": "age", "recipient": export.recipient,
            "expires": timezone.localtime(export.expires_at).isoformat(timespec="seconds")
            if export.expires_at else None}},
    }  # fmt: skip


def file_path(caller: Caller, export_id: str) -> Any:
    export = _own(caller, export_id)
    try:
        return exports.export_download(actor=caller.actor, export_id=export.pk)
    except exports.ExportRefused as exc:
        raise FhirError(404, "not-found", str(exc)) from None
