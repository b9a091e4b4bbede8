"""Controlled exports: asked with a purpose, approved by a second person (the DPO or the security
officer, never the one who asked), produced once by the one who asked as a file encrypted to the
recipient (age) that expires, each step in the audit trail.

Each file is traceable: its rows carry the export's watermark (rempart.exports.marks) and a few
canary rows of its own, people drawn like the group's patients but in no database, kept sealed
in the export's record; the leak analyser (rempart.breach) finds either in a copy."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pyrage
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from rempart.access import policy
from rempart.access.alerts import alert_raise
from rempart.access.models import AlertKind, Severity
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.care.models import Stay
from rempart.directory.models import Establishment, Practitioner, Role, Service
from rempart.exports import formats, marks
from rempart.exports.models import ExportRequest, ExportStatus, RecipientKind
from rempart.lib.files import private_output
from rempart.patients.models import Patient, PatientIdentifier
from rempart.vault.fields import EncryptedField
from rempart.vault.keystore import get_vault

# A system on the FHIR API asks its Bulk $export like a person: the same second person decides.
REQUESTERS = frozenset({Role.SECRETARY, Role.PHYSICIAN, Role.DPO, Role.SECURITY_OFFICER,
                        Role.API_CLIENT})  # fmt: skip
APPROVERS = frozenset({Role.DPO, Role.SECURITY_OFFICER})
GROUP_WIDE = frozenset({Role.DPO, Role.SECURITY_OFFICER})  # may ask for any establishment
VALIDITY = dt.timedelta(days=7)  # a produced file is destroyed after this


class ExportRefused(Exception):
    """A step that cannot be taken (message for the person, never patient data)."""


@dataclass(frozen=True)
class ExportAsk:
    purpose: str
    detail: str
    establishment_id: uuid.UUID
    fields: tuple[str, ...]
    format: str
    recipient_kind: str
    recipient: str = ""
    service_id: uuid.UUID | None = None
    stays_since: dt.date | None = None


@dataclass
class Produced:
    export: ExportRequest
    path: Path
    passphrase: str | None  # shown once, never stored
    rows: int
    canaries: int
    columns: list[str] = field(default_factory=list)


def export_path(export_id: uuid.UUID) -> Path:
    return settings.REMPART_DATA_DIR / "exports" / f"{export_id}.age"


def _user(user_id: int | None) -> Any:
    if user_id is None:
        raise ExportRefused(_("Un export se demande et s'approuve sous un compte nominatif."))
    return get_user_model().objects.get(pk=user_id)


def _recipient(kind: str, text: str) -> Any:
    if kind == RecipientKind.PASSPHRASE:
        return None
    if kind != RecipientKind.AGE:
        raise ExportRefused(_("Destinataire inconnu."))
    try:
        return pyrage.x25519.Recipient.from_str(text.strip())
    except pyrage.RecipientError:
        raise ExportRefused(_("La clé publique age est invalide (age1...).")) from None


def export_request(*, actor: Actor, ask: ExportAsk) -> ExportRequest:
    """Record an export request; nothing leaves until a second person approves it."""
    policy.authorise_role(actor, REQUESTERS)
    if actor.role not in GROUP_WIDE and ask.establishment_id not in actor.establishments:
        raise policy.AccessDenied()
    if not ask.detail.strip():
        raise ExportRefused(_("Précisez le motif de l'export."))
    try:
        formats.columns_for(ask.fields)
    except formats.FormatError:
        raise ExportRefused(_("Choisissez au moins un groupe de champs.")) from None
    if ask.format not in ("csv", "xlsx", "ndjson", "fhir"):
        raise ExportRefused(_("Format inconnu."))
    _recipient(ask.recipient_kind, ask.recipient)
    establishment = Establishment.objects.get(pk=ask.establishment_id)
    if (
        ask.service_id
        and not Service.objects.filter(pk=ask.service_id, establishment=establishment).exists()
    ):
        raise ExportRefused(_("Ce service n'est pas dans cet établissement."))  # fmt: skip
    with transaction.atomic():
        export = ExportRequest.objects.create(
            requested_by=_user(actor.user_id), purpose=ask.purpose,
            notes={"detail": ask.detail.strip()[:1000]}, establishment=establishment,
            service_id=ask.service_id, stays_since=ask.stays_since, fields=list(ask.fields),
            format=ask.format, recipient_kind=ask.recipient_kind,
            recipient=ask.recipient.strip() if ask.recipient_kind == RecipientKind.AGE else "",
        )  # fmt: skip
        alert_raise(severity=Severity.INFO, kind=AlertKind.EXPORT, audience=Role.DPO,
                    user_id=actor.user_id,
                    message=f"Demande d'export {export.pk} par {actor.username} "
                            f"({establishment.name}, {export.get_purpose_display()}) : à "
                            "approuver ou refuser dans la page Exports.")  # fmt: skip
        event_record(actor, Action.EXPORT, resource_type="ExportRequest", resource_id=export.pk,
                     detail={"step": "requested", "purpose": ask.purpose,
                             "fields": list(ask.fields), "format": ask.format,
                             "establishment": str(establishment.pk),
                             "service": str(ask.service_id or "")})  # fmt: skip
    return export


def export_decide(*, actor: Actor, export_id: uuid.UUID, approve: bool, note: str = "") -> None:
    """The second person's decision. The one who asked can never approve their own request."""
    policy.authorise_role(actor, APPROVERS)
    with transaction.atomic():
        export = ExportRequest.objects.select_for_update().get(pk=export_id)
        if export.requested_by_id == actor.user_id:
            raise ExportRefused(_("Une autre personne que le demandeur doit décider."))
        if export.status != ExportStatus.REQUESTED:
            raise ExportRefused(_("Cette demande a déjà été traitée."))
        export.status = ExportStatus.APPROVED if approve else ExportStatus.REFUSED
        export.decided_by = _user(actor.user_id)
        export.decided_at = timezone.now()
        export.notes = {**(export.notes or {}), "decision_note": note.strip()[:1000]}
        export.save(update_fields=["status", "decided_by", "decided_at", "notes"])
        event_record(actor, Action.EXPORT, resource_type="ExportRequest", resource_id=export.pk,
                     detail={"step": "approved" if approve else "refused",
                             "requested_by": export.requested_by.get_username()})  # fmt: skip


def _selected(export: ExportRequest) -> dict[uuid.UUID, str]:
    """The patients of the request, with their IPP in its establishment."""
    ipps = PatientIdentifier.objects.filter(establishment_id=export.establishment_id)
    if export.service_id:
        stays = Stay.objects.filter(service_id=export.service_id, cancelled_at=None)
        if export.stays_since:
            since = timezone.make_aware(dt.datetime.combine(export.stays_since, dt.time()))
            stays = stays.filter(planned_admission__gte=since)
        ipps = ipps.filter(patient_id__in=stays.values("patient_id"))
    return dict(ipps.values_list("patient_id", "ipp"))


def _records(ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The patients' identity and contact records, decrypted (only this export's patients)."""
    identity = cast(EncryptedField, Patient._meta.get_field("identity"))
    contact = cast(EncryptedField, Patient._meta.get_field("contact"))
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for start in range(0, len(ids), 5000):
        rows = Patient.objects.filter(pk__in=ids[start : start + 5000]).values_list(
            "id", "identity_status", "identity", "contact")  # fmt: skip
        for pid, status, sealed_identity, sealed_contact in rows:
            values: dict[str, Any] = {"identity_status": status}
            if sealed_identity is not None:
                values.update(identity.open_value(pid, cast(bytes, sealed_identity)))
            if sealed_contact is not None:
                values.update(contact.open_value(pid, cast(bytes, sealed_contact)))
            out[pid] = values
    return out


def mark_key(export_id: uuid.UUID, key_id: int | None = None) -> bytes:
    """The export's watermark key, derived from the index root (outside the database)."""
    return get_vault().indexer.tag("export-mark", export_id.bytes, key_id)


def canary_count(rows: int) -> int:
    return max(3, min(100, math.ceil(rows / 2000)))


def _database_canaries(selected: dict[uuid.UUID, str]) -> list[tuple[uuid.UUID, str]]:
    """The database's canary patients among the selected ones, with their IPPs."""
    from rempart.access.models import CanaryMark
    from rempart.access.policy import canary_tag

    marks = {bytes(t) for t in CanaryMark.objects.values_list("tag", flat=True)}
    keys = get_vault().indexer.key_ids
    return [(pid, ipp) for pid, ipp in selected.items()
            if any(canary_tag(pid, k) in marks for k in keys)]  # fmt: skip


def _canary_rows(export: ExportRequest, key: bytes, real: list[dict[str, str]], count: int,
                 ipps: list[str]) -> list[tuple[int, dict[str, str]]]:  # fmt: skip
    """People drawn like the group's patients, in no database: each row as written, with its
    sort key. Their IPPs are those of the database's canary patients (left out of the file):
    numbers some patient holds, so a dump next to the file does not tell them; free numbers
    of the establishment only when there are too few. Médecin traitant and identity status
    are those of exported rows."""
    import random

    from rempart.access.canaries import free_ipp_numbers
    from rempart.synth.population import canary_identities

    seed = int.from_bytes(key[:8], "big")
    rng = random.Random(seed)  # noqa: S311  # placement, not secrecy: the key is the secret
    people = canary_identities(count=count, seed=seed % 2**32)
    numbers = list(ipps)
    if len(numbers) < count:
        free, _last = free_ipp_numbers(export.establishment)
        numbers += [f"{n:010d}" for n in rng.sample(free, min(len(free), count - len(numbers)))]
    out = []
    for i, person in enumerate(people):
        model = rng.choice(real) if real else {}
        values = {k: v for k, v in vars(person).items() if isinstance(v, str)}
        values["birth_date"] = person.birth_date.isoformat()
        values["identity_status"] = model.get("statut_identite", "PROV")
        mark = marks.row_mark(key, uuid.uuid4())
        gp = (model.get("medecin_traitant", ""), model.get("medecin_traitant_rpps", ""))
        ipp = numbers[i] if i < len(numbers) else ""
        out.append((mark.order, formats.patient_row(values, ipp=ipp, gp=gp if gp[1] else None,
                                                    mark=mark)))  # fmt: skip
    return out


def export_produce(*, actor: Actor, export_id: uuid.UUID) -> Produced:
    """Write the approved export's file, encrypted to its recipient, once, by the one who asked.
    Returns the passphrase (passphrase exports) to show once."""
    policy.authorise_role(actor, REQUESTERS)
    with transaction.atomic():
        export = ExportRequest.objects.select_for_update().get(pk=export_id)
        if export.requested_by_id != actor.user_id:
            raise ExportRefused(_("Seul le demandeur produit le fichier qu'il a demandé."))
        if export.status != ExportStatus.APPROVED:
            raise ExportRefused(_("Cet export n'est pas approuvé, ou il a déjà été produit."))
        columns = formats.columns_for(export.fields)
        selected = _selected(export)
        if export.format == "xlsx" and len(selected) > formats.XLSX_MAX_ROWS:
            raise ExportRefused(_("Trop de patients pour un fichier XLSX : choisissez CSV."))
        recipient = _recipient(export.recipient_kind, export.recipient)
        indexer = get_vault().indexer
        key = mark_key(export.pk, indexer.primary_key_id)
        # The database's canaries stay out of the file: their IPPs go to the export's own.
        planted_ipps = []
        for pid, ipp in _database_canaries(selected):
            del selected[pid]
            planted_ipps.append(ipp)
        ids = sorted(selected, key=lambda p: p.bytes)
        records = _records(ids)
        gp_ids = {r["gp_id"] for r in records.values() if r.get("gp_id")}
        gps = {
            str(p.pk): (f"{p.family_name} {p.given_name}".strip(), p.rpps)
            for p in Practitioner.objects.filter(pk__in=[uuid.UUID(g) for g in gp_ids])
        }
        rows: list[tuple[int, dict[str, str]]] = []
        for pid in ids:
            values = records.get(pid)
            if values is None:  # erased meanwhile
                continue
            mark = marks.row_mark(key, pid)
            gp = gps.get(str(values.get("gp_id", "")))
            row = formats.patient_row(values, ipp=selected[pid], gp=gp, mark=mark)
            rows.append((mark.order, row))
        written = len(rows)
        wanted = max(canary_count(written), len(planted_ipps))
        planted = _canary_rows(export, key, [r for _, r in rows[:500]], wanted, planted_ipps)
        rows.extend(planted)
        rows.sort(key=lambda r: r[0])
        plain = formats.render(export.format, columns, [r for _, r in rows],
                               finess=export.establishment.finess)  # fmt: skip
        passphrase = None
        if recipient is None:
            passphrase = _passphrase()
            sealed = pyrage.passphrase.encrypt(plain, passphrase)
        else:
            sealed = pyrage.encrypt(plain, [recipient])
        del plain
        path = export_path(export.pk)
        with private_output(path, binary=True) as handle:
            handle.write(sealed)
        now = timezone.now()
        id_list = b"".join(p.bytes for p in ids if p in records)
        export.status = ExportStatus.READY
        export.produced_at = now
        export.expires_at = now + VALIDITY
        export.rows = written
        export.file_sha256 = hashlib.sha256(sealed).hexdigest()
        export.mark_key_id = indexer.primary_key_id
        export.patient_ids = id_list
        export.canary_rows = {"columns": columns, "rows": [r for _, r in planted]}
        export.save()
        event_record(actor, Action.EXPORT, resource_type="ExportRequest", resource_id=export.pk,
                     detail={"step": "produced", "rows": written, "canaries": len(planted),
                             "fields": export.fields, "format": export.format,
                             "patients_sha256": hashlib.sha256(id_list).hexdigest(),
                             "file_sha256": export.file_sha256,
                             "approved_by": export.decided_by.get_username()
                             if export.decided_by else "",
                             "expires_at": export.expires_at.isoformat()})  # fmt: skip
    return Produced(export, path, passphrase, written, len(planted), columns)


def _passphrase() -> str:
    """120 bits in six groups of four letters and digits (no 0/O, 1/I confusion: base32)."""
    text = base64.b32encode(secrets.token_bytes(15)).decode()
    return "-".join(text[i : i + 4] for i in range(0, 24, 4))


def export_download(*, actor: Actor, export_id: uuid.UUID) -> Path:
    """The encrypted file, for the one who asked, until it expires."""
    with transaction.atomic():
        export = ExportRequest.objects.select_for_update().get(pk=export_id)
        if export.requested_by_id != actor.user_id:
            raise policy.AccessDenied()
        if export.status != ExportStatus.READY or (
            export.expires_at and export.expires_at <= timezone.now()
        ):
            raise ExportRefused(_("Ce fichier n'est plus disponible."))
        export.downloads += 1
        export.save(update_fields=["downloads"])
        event_record(actor, Action.EXPORT, resource_type="ExportRequest", resource_id=export.pk,
                     detail={"step": "downloaded", "download": export.downloads})  # fmt: skip
    return export_path(export.pk)


def exports_purge(*, actor: Actor, now: dt.datetime | None = None) -> int:
    """Destroy the files past their date (the console's `rempart export purge`, run daily)."""
    if actor.role != SYSTEM_ROLE:
        raise policy.AccessDenied()
    now = now or timezone.now()
    done = 0
    for export in ExportRequest.objects.filter(status=ExportStatus.READY, expires_at__lte=now):
        export_path(export.pk).unlink(missing_ok=True)
        export.status = ExportStatus.EXPIRED
        export.save(update_fields=["status"])
        event_record(actor, Action.EXPORT, resource_type="ExportRequest", resource_id=export.pk,
                     detail={"step": "expired"})  # fmt: skip
        done += 1
    return done
