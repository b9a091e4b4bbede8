"""Recording events, and sealing them into the hash chain with signed checkpoints.

Hot path: `event_record` is one INSERT (two with a search's results), in the caller's
transaction for writes, committed before the caller returns for reads (log before reveal). When
it fails, `AuditUnavailable` is raised and the caller reveals and changes nothing (fail closed).

Sealing runs apart (`rempart audit sealer`): it takes the events not yet in the chain, in id
order, links them (each digest covers the previous one), then signs a checkpoint of the head with
the Ed25519 key and appends it to a file outside the database (and to syslog when configured).
Requests never wait on the chain: they only insert. The unsealed window is bounded by the
sealer's interval plus one batch (docs/ARCHITECTURE.md, "Audit trail").
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from rempart.audit import sinks
from rempart.audit.context import Actor
from rempart.audit.models import Checkpoint, Event, EventPatient, Link, Outcome
from rempart.vault import crypto
from rempart.vault.keystore import get_signer

SEAL_BATCH = 20_000
_SEALER_LOCK = 0x52454D50  # "REMP": one sealer at a time (PostgreSQL advisory lock)


class AuditUnavailable(Exception):
    """The trail could not be written: the operation is refused and nothing is revealed."""

    def __init__(self) -> None:
        super().__init__(
            "Journal d'audit indisponible : l'opération est refusée et aucune donnée n'est "
            "communiquée."
        )


_COLUMNS = (
    "at", "user_id", "username", "role", "establishment_id", "action", "resource_type",
    "resource_id", "patient_id", "purpose", "outcome", "ip", "request_id", "detail",
)  # fmt: skip
_VALUES = ", ".join(["%s"] * (len(_COLUMNS) - 1) + ["%s::jsonb"])
_INSERT = f"INSERT INTO audit_event ({', '.join(_COLUMNS)}) VALUES ({_VALUES})"  # noqa: S608
_INSERT_ONE = _INSERT + " RETURNING id"
# A search's event and the patients it returned, in one statement (one round trip, one commit).
_INSERT_WITH_PATIENTS = (
    f"WITH e AS ({_INSERT} RETURNING id) "  # noqa: S608  # constant column names
    "INSERT INTO audit_event_patient (event_id, patient_id) "
    "SELECT e.id, p FROM e, unnest(%s::uuid[]) AS p RETURNING event_id"
)


def event_record(
    actor: Actor,
    action: str,
    *,
    resource_type: str,
    resource_id: str | uuid.UUID = "",
    patient_id: uuid.UUID | None = None,
    patients: Sequence[uuid.UUID] = (),
    outcome: str = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> int:
    """Write one event (and the patients a search returned); returns its id. Raises
    AuditUnavailable, having written nothing, when the trail cannot be written."""
    detail = dict(detail or {})
    if actor.client_request_id:
        detail["client_request_id"] = actor.client_request_id
    if patients:
        detail["results"] = [str(p) for p in patients]
    values = [
        timezone.now(), actor.user_id, actor.username[:150], actor.role[:32],
        actor.establishment_id, action, resource_type, str(resource_id)[:64], patient_id,
        actor.purpose, outcome, actor.ip[:45], actor.request_id[:64],
    ]  # fmt: skip
    try:
        if connection.in_atomic_block:
            # Inside the caller's transaction (a write): the event commits or rolls back with
            # it; the savepoint keeps the caller's transaction usable to report the failure.
            with transaction.atomic():
                return _insert(values, detail, patients)
        return _insert(values, detail, patients)  # autocommit: durable when this returns
    except DatabaseError:
        raise AuditUnavailable() from None


def _insert(values: list[Any], detail: dict[str, Any], patients: Sequence[uuid.UUID]) -> int:
    if connection.vendor != "postgresql":  # the embedded demo database
        with transaction.atomic():
            event = Event(**dict(zip(_COLUMNS, [*values, detail], strict=True)))
            event.save(force_insert=True)
            EventPatient.objects.bulk_create(
                [EventPatient(event_id=event.id, patient_id=p) for p in patients]
            )
        return event.id
    encoded = json.dumps(detail, separators=(",", ":"), ensure_ascii=False)
    with connection.cursor() as wrapper, connection.wrap_database_errors:
        # Server-side binding (Django's cursors bind on the client): a prepared statement,
        # parsed and planned once per connection.
        cursor = psycopg.Cursor(wrapper.cursor.connection)
        if patients:
            cursor.execute(_INSERT_WITH_PATIENTS, [*values, encoded, list(patients)], prepare=True)
        else:
            cursor.execute(_INSERT_ONE, [*values, encoded], prepare=True)
        row = cursor.fetchone()
    if row is None:  # RETURNING always gives the row; a missing one would be a server fault
        raise AuditUnavailable()
    return int(row[0])


# --- the chain ------------------------------------------------------------------------------------


def canonical(event: Event) -> bytes:
    """The bytes the chain covers: every column, in a fixed form that survives a round trip."""
    at = event.at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    values = [
        1, event.id, at, event.user_id, event.username, event.role,
        str(event.establishment_id) if event.establishment_id else None,
        event.action, event.resource_type, event.resource_id,
        str(event.patient_id) if event.patient_id else None,
        event.purpose, event.outcome, event.ip, event.request_id, event.detail,
    ]  # fmt: skip
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checkpoint_payload(cp: Checkpoint | dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers."""
    if isinstance(cp, Checkpoint):
        fields = (cp.first_seq, cp.seq, bytes(cp.head).hex(), cp.watermark,
                  cp.signed_at.astimezone(dt.UTC).isoformat(timespec="microseconds"))  # fmt: skip
    else:
        fields = (cp["first_seq"], cp["seq"], cp["head"], cp["watermark"], cp["signed_at"])
    return "|".join(["rempart/audit-checkpoint/v1", *map(str, fields)]).encode()


def checkpoint_record(cp: Checkpoint) -> dict[str, Any]:
    """A checkpoint as one line of the external file."""
    return {
        "seq": cp.seq,
        "first_seq": cp.first_seq,
        "head": bytes(cp.head).hex(),
        "watermark": cp.watermark,
        "signed_at": cp.signed_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "signature": bytes(cp.signature).hex(),
    }


@dataclass(frozen=True)
class Sealed:
    events: int
    checkpoint: Checkpoint | None


def _unlinked(after: int) -> Any:
    linked = Link.objects.filter(event_id__gt=after).values("event_id")
    return Event.objects.filter(id__gt=after).exclude(id__in=linked).order_by("id")


def _watermark(previous: int) -> int:
    """The highest event id W such that every event <= W is in the chain and no transaction
    still in flight can commit an event <= W. Ids come from a sequence in time order, and a
    transaction holds an event at most REMPART_AUDIT_MAX_TRANSACTION seconds before committing,
    so W stops below the first unsealed event and below the events of that last window."""
    gap = _unlinked(previous).values_list("id", flat=True).first()
    horizon = timezone.now() - dt.timedelta(seconds=settings.REMPART_AUDIT_MAX_TRANSACTION)
    settled = (
        Event.objects.filter(id__gt=previous, at__lt=horizon).aggregate(top=Max("id"))["top"]
        or previous
    )
    return max(previous, min(settled, gap - 1) if gap is not None else settled)


def seal_pending(*, batch: int = SEAL_BATCH) -> Sealed:
    """Link the events not yet in the chain (up to `batch`) and sign a checkpoint of the head."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEALER_LOCK])
        last = Checkpoint.objects.order_by("-seq").first()
        watermark = last.watermark if last is not None else 0
        head = Link.objects.order_by("-seq").first()
        seq = head.seq if head is not None else 0
        digest = bytes(head.digest) if head is not None else crypto.CHAIN_GENESIS
        pending = list(_unlinked(watermark)[:batch])
        if not pending:
            return Sealed(0, None)
        first_seq = seq + 1
        links = []
        for event in pending:
            seq += 1
            digest = crypto.chain_digest(digest, canonical(event))
            links.append(Link(seq=seq, event_id=event.id, digest=digest))
        Link.objects.bulk_create(links)
        checkpoint = Checkpoint(
            seq=seq,
            first_seq=first_seq,
            head=digest,
            watermark=_watermark(watermark),
            signed_at=timezone.now(),
            signature=b"",
        )
        checkpoint.signature = get_signer().sign(checkpoint_payload(checkpoint))
        checkpoint.save(force_insert=True)
    sinks.publish(checkpoint_record(checkpoint), pending)
    return Sealed(len(pending), checkpoint)


def seal_all(*, batch: int = SEAL_BATCH) -> int:
    """Seal until nothing is pending; returns how many events were linked."""
    total = 0
    while (sealed := seal_pending(batch=batch)).events:
        total += sealed.events
    sinks.sync_checkpoint_file()
    return total


def events_of(ids: Iterable[int]) -> list[Event]:
    return list(Event.objects.filter(id__in=list(ids)).order_by("id"))
