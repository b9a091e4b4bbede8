"""Load a synthetic group fast: chunks made and sealed in worker processes, written with COPY on
PostgreSQL (batched INSERTs on SQLite), all in one transaction: a failure leaves nothing behind.

The main process only writes; memory holds a few chunks at a time, whatever the group's size.
"""

from __future__ import annotations

import gc
import multiprocessing
import re
import struct
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, connections, models, transaction
from django.utils import timezone

from rempart.care.models import Prescription, PrescriptionLine, PrescriptionStatus, Stay
from rempart.directory.models import Establishment, Practitioner, Role, Service, StaffMember
from rempart.lib.bulkwrite import (
    BulkWriter,
    Rows,
    binary_block,
    binary_encoder,
    keys_drop,
    keys_restore,
    uuid_field,
)
from rempart.lib.parallel import bounded_imap
from rempart.lib.timings import Timings, cpu_timings
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.sealing import PatientSealer
from rempart.synth import data as ref
from rempart.synth.care import (
    LINE_CONTENTS,
    line_rows,
    prescription_rows,
    stay_rows,
    uuid_field_table,
)
from rempart.synth.population import (
    Chunk,
    Directory,
    Visit,
    ipp_numbers,
    make_chunk,
    number_ipps,
    visit_steps,
)


@dataclass
class IppHeads:
    heads: list[bytes]
    establishments: list[int]  # index in the directory's establishments
    steps: list[int]


def ipp_heads(directory: Directory, visits: list[Visit]) -> IppHeads:
    where = {e.id: i for i, e in enumerate(directory.establishments)}
    fields = {e.id: uuid_field(e.id) for e in directory.establishments}
    count = struct.pack(">h", len(_columns(PatientIdentifier)))
    return IppHeads(
        [count + uuid_field(i) + uuid_field(p) + fields[e] for i, p, e in visits],
        [where[e] for _, _, e in visits],
        visit_steps(visits),
    )


def _ipp_block(directory: Directory, ipps: IppHeads, counters: dict[uuid.UUID, int]) -> bytes:
    establishments = [directory.establishments[i].id for i in ipps.establishments]
    numbers = ipp_numbers(establishments, ipps.steps, counters)
    text = binary_encoder("CharField")
    return binary_block([head + text(n) for head, n in zip(ipps.heads, numbers, strict=True)])


@dataclass
class SealedChunk:
    index: int
    patients: Rows | bytes  # bytes: COPY text, for PostgreSQL
    stays: Rows | bytes
    prescriptions: Rows | bytes
    lines: Rows | bytes
    # The IPP rows: PostgreSQL gets each row's binary COPY head (field count, a new id, the
    # patient, the establishment; the main process adds the number), SQLite the visits.
    visits: list[Visit] | IppHeads
    counts: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # the worker's CPU seconds by phase


TABLES: tuple[tuple[str, type[models.Model]], ...] = (
    ("patients", Patient),
    ("stays", Stay),
    ("prescriptions", Prescription),
    ("lines", PrescriptionLine),
)


def _columns(model: type[models.Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


def seal_chunk(
    directory: Directory, chunk: Chunk, *, as_copy: bool = False, timings: Timings | None = None
) -> SealedChunk:
    """The chunk's rows as stored: every patient validated, every sensitive value sealed."""
    timings = timings or cpu_timings()
    now = timezone.now()
    sealer = PatientSealer()
    # Generated data is valid and normalised by construction (the generator's tests check
    # clean_patient leaves it unchanged), so it is not validated again here.
    batch = [(p.id, p.data.as_model_values()) for p in chunk.patients]
    if as_copy:
        return _sealed_copy(
            directory, chunk, binary_block(sealer.binary_rows(batch, now, timings)), timings
        )
    reason = Stay._meta.get_field("reason")
    content = PrescriptionLine._meta.get_field("content")
    stays = [
        (s.id, s.patient_id, s.establishment_id, s.service_id, s.kind, s.planned_admission,
         s.planned_discharge, s.admitted_at, s.discharged_at, reason.seal_value(s.id, s.reason),
         None)
        for s in chunk.stays
    ]  # fmt: skip
    prescriptions = [
        (r.id, r.patient_id, r.stay_id, r.prescriber_id, r.prescribed_at,
         PrescriptionStatus.SIGNED.value if r.signed_at else PrescriptionStatus.DRAFT.value,
         r.signed_at)
        for r in chunk.prescriptions
    ]  # fmt: skip
    lines = [
        (line.id, r.id, line.position, content.seal_value(line.id, line.content))
        for r in chunk.prescriptions
        for line in r.lines
    ]
    counts = {"patients": len(batch), "stays": len(stays), "prescriptions": len(prescriptions),
              "lines": len(lines)}  # fmt: skip
    return SealedChunk(chunk.index, sealer.rows(batch, now), stays, prescriptions, lines,
                       chunk.visits, counts, timings.seconds)  # fmt: skip


def _sealed_copy(
    directory: Directory, chunk: Chunk, patients: bytes, timings: Timings
) -> SealedChunk:
    """PostgreSQL: the care rows in binary COPY format straight from the chunk's arrays."""
    care = chunk.care
    if care is None:
        raise ValueError("the chunk was made without its stays")
    reason = Stay._meta.get_field("reason")
    content = PrescriptionLine._meta.get_field("content")
    with timings.phase("COPY encoding"):
        patient_fields = uuid_field_table([p.id for p in chunk.patients])
        places = uuid_field_table([e.id for e in directory.establishments])
        services = uuid_field_table([s.id for s in directory.services])
        practitioners = uuid_field_table([p.id for p in directory.practitioners])
        ipps = ipp_heads(directory, chunk.visits)
    with timings.phase("stays: rows, reasons sealed"):
        reasons = [[reason.encode(text) for text in ref.STAY_REASONS[s.code]]
                   for s in directory.services]  # fmt: skip
        seal, prefix = reason.bulk_sealer()
        stays = stay_rows(care, patient_fields, (places, services), reasons, seal, prefix)
    with timings.phase("prescriptions: rows"):
        prescriptions = prescription_rows(
            care, patient_fields, practitioners,
            PrescriptionStatus.SIGNED.value, PrescriptionStatus.DRAFT.value,
        )  # fmt: skip
    with timings.phase("lines: rows, contents sealed"):
        seal, prefix = content.bulk_sealer()
        lines = line_rows(care, [content.encode(c) for c in LINE_CONTENTS], seal, prefix)
    counts = {"patients": len(chunk.patients), "stays": len(stays),
              "prescriptions": len(prescriptions), "lines": len(lines)}  # fmt: skip
    return SealedChunk(chunk.index, patients, binary_block(stays), binary_block(prescriptions),
                       binary_block(lines), ipps, counts, timings.seconds)  # fmt: skip


def _check_columns() -> None:
    expected = {
        "ipps": ["id", "patient_id", "establishment_id", "ipp"],
        "stays": ["id", "patient_id", "establishment_id", "service_id", "kind",
                  "planned_admission", "planned_discharge", "admitted_at", "discharged_at",
                  "reason", "cancelled_at"],
        "prescriptions": ["id", "patient_id", "stay_id", "prescriber_id", "prescribed_at",
                          "status", "signed_at"],
        "lines": ["id", "prescription_id", "position", "content"],
    }  # fmt: skip
    checked: tuple[tuple[str, type[models.Model]], ...] = (*TABLES[1:], ("ipps", PatientIdentifier))
    for name, model in checked:
        if _columns(model) != expected[name]:
            raise RuntimeError(f"{model._meta.db_table} columns changed: update synth/bulk.py")


# --- workers --------------------------------------------------------------------------------------

_directory: Directory | None = None
_as_copy = False


def _init_worker(directory: Directory, as_copy: bool) -> None:
    global _directory, _as_copy
    _directory, _as_copy = directory, as_copy
    # A chunk is a few hundred thousand short-lived objects with no cycles: the cyclic
    # collector only rescans them (a third of the generation time).
    gc.disable()


def _work(index: int) -> SealedChunk:
    assert _directory is not None  # noqa: S101  # set by _init_worker
    timings = cpu_timings()
    chunk = make_chunk(_directory, index, records=not _as_copy, timings=timings)
    return seal_chunk(_directory, chunk, as_copy=_as_copy, timings=timings)


@contextmanager
def sealed_chunks(directory: Directory, workers: int) -> Iterator[Iterator[SealedChunk]]:
    """Chunks in order, made by `workers` processes (0: in this process). Enter it before any
    transaction: the workers are forked first, with no database connection open."""
    if workers <= 0 or directory.chunks == 1:
        as_copy = connection.vendor == "postgresql"

        def here(index: int) -> SealedChunk:
            timings = cpu_timings()
            chunk = make_chunk(directory, index, records=not as_copy, timings=timings)
            return seal_chunk(directory, chunk, as_copy=as_copy, timings=timings)

        yield (here(i) for i in range(directory.chunks))
        return
    if connection.in_atomic_block:
        raise RuntimeError("fork the chunk workers before opening a transaction")
    connections.close_all()  # a forked child must never share the parent's database socket
    context = multiprocessing.get_context("fork")
    as_copy = connection.vendor == "postgresql"
    with context.Pool(workers, initializer=_init_worker, initargs=(directory, as_copy)) as pool:
        yield bounded_imap(pool, _work, range(directory.chunks), ahead=2 * workers)


# --- writing --------------------------------------------------------------------------------------


def load_directory(directory: Directory) -> int:
    """Establishments, services, practitioners and the staff (unusable passwords: accounts are
    activated by the security officer). Returns how many staff accounts were made."""
    Establishment.objects.bulk_create(
        [Establishment(id=e.id, finess=e.finess, name=e.name, kind=e.kind, city=e.city)
         for e in directory.establishments]
    )  # fmt: skip
    Service.objects.bulk_create(
        [Service(id=s.id, establishment_id=s.establishment_id, code=s.code, name=s.name)
         for s in directory.services]
    )  # fmt: skip
    Practitioner.objects.bulk_create(
        [Practitioner(id=p.id, rpps=p.rpps, family_name=p.family_name, given_name=p.given_name,
                      specialty=p.specialty, internal=p.internal, city=p.city)
         for p in directory.practitioners],
        batch_size=1000,
    )  # fmt: skip
    through = Practitioner.establishments.through
    through.objects.bulk_create(
        [through(practitioner_id=p.id, establishment_id=e)
         for p in directory.practitioners for e in p.establishment_ids]
    )  # fmt: skip
    return _load_staff(directory)


def _username(given: str, family: str, taken: set[str]) -> str:
    plain = unicodedata.normalize("NFKD", f"{given}.{family}".lower())
    base = re.sub(r"[^a-z0-9.]", "", "".join(c for c in plain if not unicodedata.combining(c)))
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name


def _load_staff(directory: Directory) -> int:
    User = get_user_model()
    taken = set(User.objects.values_list("username", flat=True))
    unusable = make_password(None)
    users: list[Any] = []
    staff: list[StaffMember] = []
    scopes: list[tuple[list[uuid.UUID], list[uuid.UUID | None]]] = []
    services_of: dict[uuid.UUID, list[uuid.UUID]] = {}
    for s in directory.services:
        services_of.setdefault(s.establishment_id, []).append(s.id)
    for p in directory.practitioners:
        if p.internal:
            user = User(username=_username(p.given_name, p.family_name, taken), password=unusable,
                        first_name=p.given_name, last_name=p.family_name)  # fmt: skip
            users.append(user)
            staff.append(StaffMember(user=user, role=Role.PHYSICIAN, practitioner_id=p.id))
            scopes.append((list(p.establishment_ids), [p.service_id]))
    for e in directory.establishments:
        for k, service_id in enumerate(services_of[e.id] * 2):
            user = User(
                username=_username("infirmier", f"{e.slug}{k + 1}", taken), password=unusable
            )
            users.append(user)
            staff.append(StaffMember(user=user, role=Role.NURSE))
            scopes.append(([e.id], [service_id]))
        for k in range(3):
            user = User(
                username=_username("secretaire", f"{e.slug}{k + 1}", taken), password=unusable
            )
            users.append(user)
            staff.append(StaffMember(user=user, role=Role.SECRETARY))
            scopes.append(([e.id], list[uuid.UUID | None](services_of[e.id])))
    User.objects.bulk_create(users)
    if connection.vendor != "postgresql":  # SQLite returns no ids from bulk_create
        by_name = dict(User.objects.filter(username__in=[u.username for u in users])
                       .values_list("username", "id"))  # fmt: skip
        for user in users:
            user.pk = by_name[user.username]
    for member, user in zip(staff, users, strict=True):
        member.user = user
    StaffMember.objects.bulk_create(staff)
    if connection.vendor != "postgresql":
        staff = list(StaffMember.objects.filter(user__in=users).order_by("user__username"))
        order = {u.username: i for i, u in enumerate(users)}
        staff.sort(key=lambda m: order[m.user.username])
    est_through = StaffMember.establishments.through
    svc_through = StaffMember.services.through
    est_through.objects.bulk_create(
        [est_through(staffmember_id=m.pk, establishment_id=e)
         for m, (ests, _) in zip(staff, scopes, strict=True) for e in ests]
    )  # fmt: skip
    svc_through.objects.bulk_create(
        [svc_through(staffmember_id=m.pk, service_id=s)
         for m, (_, svcs) in zip(staff, scopes, strict=True) for s in svcs if s is not None]
    )  # fmt: skip
    return len(users)


def _ipp_rows(ipps: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]]) -> Rows:
    return list(ipps)


_BULK_TABLES = (Patient, PatientIdentifier, Stay, Prescription, PrescriptionLine)


@contextmanager
def _indexes_deferred(timings: Timings) -> Iterator[None]:
    """On PostgreSQL, when the tables start empty, load them as pg_restore does: without their
    primary keys, unique constraints, indexes and foreign keys (those of other tables pointing
    at them included), put back once loaded: a sort per index and one join per foreign key,
    instead of millions of index inserts and per-row trigger checks. DDL is transactional there,
    so a failure restores everything; re-adding a key or a foreign key checks every row."""
    if connection.vendor != "postgresql" or any(m.objects.exists() for m in _BULK_TABLES):
        yield
        return
    tables = [m._meta.db_table for m in _BULK_TABLES]
    with connection.cursor() as cursor:
        dropped = keys_drop(cursor, tables)
    yield
    with connection.cursor() as cursor:
        keys_restore(cursor, dropped, timings)
        with timings.phase("ANALYZE"):
            for table in tables:
                cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


@dataclass(frozen=True)
class LoadSummary:
    patients: int
    stays: int
    prescriptions: int
    lines: int
    staff: int
    # Wall seconds of the writing process by phase, then the workers' CPU seconds ("workers: ").
    timings: dict[str, float] = field(default_factory=dict)


def bulk_load(
    directory: Directory,
    *,
    workers: int,
    advance: Callable[[int], None] | None = None,
    timings: Timings | None = None,
) -> LoadSummary:
    _check_columns()
    writer = BulkWriter()
    counters: dict[uuid.UUID, int] = {}
    totals = {"patients": 0, "stays": 0, "prescriptions": 0, "lines": 0}
    timings, cpu = timings or Timings(), Timings()
    with sealed_chunks(directory, workers) as chunks:
        with transaction.atomic():
            with _indexes_deferred(timings):
                with timings.phase("directory and staff"):
                    staff = load_directory(directory)
                while True:
                    with timings.phase("wait for the workers"):
                        chunk = next(chunks, None)
                    if chunk is None:
                        break
                    _write_chunk(directory, writer, chunk, counters, timings)
                    cpu.merge(chunk.cpu)
                    for name in totals:
                        totals[name] += chunk.counts[name]
                    if advance is not None:
                        advance(chunk.counts["patients"])
                IppCounter.objects.bulk_create(
                    [IppCounter(establishment_id=e, last_value=v) for e, v in counters.items()]
                )
            committing = time.perf_counter()
        timings.add("commit", time.perf_counter() - committing)
    for name, seconds in cpu.seconds.items():
        timings.add(f"workers: {name}", seconds)
    return LoadSummary(staff=staff, timings=timings.seconds, **totals)


def _write_chunk(
    directory: Directory,
    writer: BulkWriter,
    chunk: SealedChunk,
    counters: dict[uuid.UUID, int],
    timings: Timings,
) -> None:
    with timings.phase("COPY patients"):
        writer.write(Patient, chunk.patients)
    with timings.phase("IPP numbering and COPY"):
        if isinstance(chunk.visits, IppHeads):
            writer.write(PatientIdentifier, _ipp_block(directory, chunk.visits, counters))
        else:
            writer.write(PatientIdentifier, _ipp_rows(number_ipps(chunk.visits, counters)))
    with timings.phase("COPY stays"):
        writer.write(Stay, chunk.stays)
    with timings.phase("COPY prescriptions"):
        writer.write(Prescription, chunk.prescriptions)
    with timings.phase("COPY prescription lines"):
        writer.write(PrescriptionLine, chunk.lines)
