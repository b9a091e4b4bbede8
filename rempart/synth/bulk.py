"""Load a synthetic group fast: chunks made and sealed in worker processes, written with COPY on
PostgreSQL (batched INSERTs on SQLite), all in one transaction: a failure leaves nothing behind.

The main process only writes; memory holds a few chunks at a time, whatever the group's size.
"""

from __future__ import annotations

import multiprocessing
import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, connections, models, transaction
from django.utils import timezone

from rempart.care.models import Prescription, PrescriptionLine, PrescriptionStatus, Stay
from rempart.directory.models import Establishment, Practitioner, Role, Service, StaffMember
from rempart.lib.ids import new_id
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.sealing import PatientSealer
from rempart.patients.validation import clean_patient
from rempart.synth.population import Chunk, Directory, make_chunk, number_ipps

Rows = list[tuple[Any, ...]]


@dataclass
class SealedChunk:
    index: int
    patients: Rows
    stays: Rows
    prescriptions: Rows
    lines: Rows
    visits: list[tuple[uuid.UUID, uuid.UUID]]


TABLES: tuple[tuple[str, type[models.Model]], ...] = (
    ("patients", Patient),
    ("stays", Stay),
    ("prescriptions", Prescription),
    ("lines", PrescriptionLine),
)


def _columns(model: type[models.Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


def seal_chunk(chunk: Chunk) -> SealedChunk:
    """The chunk's rows as stored: every patient validated, every sensitive value sealed."""
    now = timezone.now()
    sealer = PatientSealer()
    if _columns(Patient) != sealer.columns:
        raise RuntimeError("patient columns changed: update PatientSealer")
    reason = Stay._meta.get_field("reason")
    content = PrescriptionLine._meta.get_field("content")
    patients = [
        sealer.row(p.id, clean_patient(p.data).as_model_values(), now) for p in chunk.patients
    ]
    stays = [
        (s.id, s.patient_id, s.establishment_id, s.service_id, s.kind, s.planned_admission,
         s.planned_discharge, s.admitted_at, s.discharged_at,
         reason.seal_value(s.id, s.reason) if s.reason else None)
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
    return SealedChunk(chunk.index, patients, stays, prescriptions, lines, chunk.visits)


def _check_columns() -> None:
    expected = {
        "ipps": ["id", "patient_id", "establishment_id", "ipp"],
        "stays": ["id", "patient_id", "establishment_id", "service_id", "kind",
                  "planned_admission", "planned_discharge", "admitted_at", "discharged_at",
                  "reason"],
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


def _init_worker(directory: Directory) -> None:
    global _directory
    _directory = directory


def _work(index: int) -> SealedChunk:
    assert _directory is not None  # noqa: S101  # set by _init_worker
    return seal_chunk(make_chunk(_directory, index))


def sealed_chunks(directory: Directory, workers: int) -> Iterator[SealedChunk]:
    """Chunks in order, made by `workers` processes (0: in this process)."""
    if workers <= 0 or directory.chunks == 1:
        for index in range(directory.chunks):
            yield seal_chunk(make_chunk(directory, index))
        return
    connections.close_all()  # a forked child must never share the parent's database socket
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(directory,)) as pool:
        yield from pool.imap(_work, range(directory.chunks), chunksize=1)


# --- writing --------------------------------------------------------------------------------------


class _Writer:
    """COPY on PostgreSQL, executemany on SQLite, same rows."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"

    def write(self, model: type[models.Model], rows: Sequence[tuple[Any, ...]]) -> None:
        if not rows:
            return
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(c) for c in _columns(model))
        with connection.cursor() as cursor:
            if self.postgres:
                raw = cursor.cursor
                with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(rows[0]))
                cursor.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608  # model names
                    [tuple(_sqlite(v) for v in row) for row in rows],
                )


def _sqlite(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        return connection.ops.adapt_datetimefield_value(value)
    return value


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


@dataclass(frozen=True)
class LoadSummary:
    patients: int
    stays: int
    prescriptions: int
    lines: int
    staff: int


def bulk_load(
    directory: Directory, *, workers: int, advance: Callable[[int], None] | None = None
) -> LoadSummary:
    _check_columns()
    writer = _Writer()
    counters: dict[uuid.UUID, int] = {}
    totals = {"patients": 0, "stays": 0, "prescriptions": 0, "lines": 0}
    with transaction.atomic():
        staff = load_directory(directory)
        for chunk in sealed_chunks(directory, workers):
            writer.write(Patient, chunk.patients)
            writer.write(
                PatientIdentifier,
                [(new_id(), pid, eid, ipp)
                 for pid, eid, ipp in number_ipps(chunk.visits, counters)],
            )  # fmt: skip
            writer.write(Stay, chunk.stays)
            writer.write(Prescription, chunk.prescriptions)
            writer.write(PrescriptionLine, chunk.lines)
            for name in totals:
                totals[name] += len(getattr(chunk, name))
            if advance is not None:
                advance(len(chunk.patients))
        IppCounter.objects.bulk_create(
            [IppCounter(establishment_id=e, last_value=v) for e, v in counters.items()]
        )
    return LoadSummary(staff=staff, **totals)
