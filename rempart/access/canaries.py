"""Canary patients that look like everyone else, to a thief holding the dump and the source.

A canary is modelled on a real patient, its twin: the holder of the IPP just below a free
number of an establishment's sequence (IPP allocation leaves about one number in IPP_GAP free,
see `rempart.lib.identifiers`), whose stays are all over (a canary is nobody's current or
upcoming patient). The canary takes that free number, and a free number near the twin's in each
other establishment where the twin has an IPP; its ids are UUIDv7 drawn between the twin's and
the next row's, its creation stamps between the twin's and the neighbour's; it has the twin's
stays, shifted together by up to 20 days, each with the length of another patient's stay of the
same service and kind, and their prescriptions (same prescriber and status, as many lines drawn
from the catalogue); its identity comes from the group generator seeded by a tag of the index
root, of the twin's sex and shape (NIR, usage name, e-mail, phones present or not), born near
it. Only a keyed tag of its id marks it, among decoy tags, with nothing else in the row. The
tables are then rewritten in id order (PostgreSQL `CLUSTER`), so rows planted today are not at
the end of the heap.

The thief's test (tests/test_canary_attack.py) plays 32 queries on the clear columns and a
nearest-neighbour attack; bench/canary_attack.py plays them at group scale with a logistic
regression over all of them.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, replace
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from rempart.access.models import CanaryMark
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action, Purpose
from rempart.audit.services import event_record
from rempart.care.models import Prescription, PrescriptionLine, Stay
from rempart.directory.models import Establishment
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.validation import PatientData
from rempart.vault.keystore import get_vault

_RNG = secrets.SystemRandom()
DECOYS_PER_CANARY = (1, 3)  # decoy tags per canary, drawn in this range: the mark count blurs


@dataclass(frozen=True)
class Planted:
    establishment_id: uuid.UUID
    patient_ids: list[uuid.UUID]  # fewer than asked when the sequence has too few free numbers


class CanaryRefused(Exception):
    pass


def _uuid7_at(ms: int) -> uuid.UUID:
    """A UUIDv7 with this millisecond time and fresh random bits (RFC 9562 layout)."""
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | secrets.randbits(12) << 64
    value |= 0b10 << 62 | secrets.randbits(62)
    return uuid.UUID(int=value)


def _uuid7_between(low: uuid.UUID, high: uuid.UUID | None) -> uuid.UUID:
    """A UUIDv7 strictly between two ids in sort order (ids made in the same millisecond sort
    by their random bits: a canary's id falls among its neighbours' as a real one would)."""
    lo = low.int
    hi = high.int if high is not None and high.int > lo else lo + (1 << 80)  # a ms later
    for _ in range(32):
        value = lo + 1 + _RNG.randrange(max(1, hi - lo - 1))
        value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
        value = (value & ~(0b11 << 62)) | (0b10 << 62)  # RFC 9562 variant
        if lo < value < hi:
            return uuid.UUID(int=value)
    return _uuid7_at(_ms(low))  # neighbours too close to fit one between: same millisecond


def _next_id(model: Any, value: uuid.UUID) -> uuid.UUID | None:
    following: uuid.UUID | None = (
        model.objects.filter(pk__gt=value).order_by("pk").values_list("pk", flat=True).first()
    )
    return following


def _ms(value: uuid.UUID) -> int:
    return value.int >> 80


def _between(a: Any, b: Any) -> Any:
    """A uniform point between two stamps (ints or datetimes), or `a` when they are equal."""
    if isinstance(a, int):
        low, high = min(a, b), max(a, b)
        return low + _RNG.randrange(high - low + 1)
    low, high = min(a, b), max(a, b)
    return low + (high - low) * _RNG.random()


def free_ipp_numbers(establishment: Establishment) -> tuple[list[int], int]:
    """The free numbers inside the establishment's IPP sequence, and its last value."""
    counter = IppCounter.objects.select_for_update().filter(establishment=establishment).first()
    last = counter.last_value if counter else 0
    table = PatientIdentifier._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT n FROM generate_series(1, %s) AS n EXCEPT "  # noqa: S608  # model table
                f"SELECT ipp::bigint FROM {table} WHERE establishment_id = %s "
                "AND ipp ~ '^[0-9]{1,18}$'",
                [last, establishment.pk],
            )
            free = [int(r[0]) for r in cursor.fetchall()]
        else:
            taken = set(
                PatientIdentifier.objects.filter(establishment=establishment).values_list(
                    "ipp", flat=True
                )
            )
            free = [n for n in range(1, last + 1) if f"{n:010d}" not in taken]
    return free, last


def _identity_like(twin: Patient, seed: int) -> PatientData:
    """A generated identity of the twin's sex, with a NIR exactly when the twin has one, the
    same contact details present or absent (each blind index is empty or not in the clear), and
    born as near the twin as the pool allows."""
    from rempart.synth.population import canary_identities

    pool = canary_identities(count=300, seed=seed)
    want_nir = bool(twin.nir)
    fitting = [d for d in pool if d.sex == twin.sex and (bool(d.nir) or not want_nir)] or pool
    born = twin.birth_date or dt.date(1970, 1, 1)
    shape = [bool(getattr(twin, f)) for f in _PRESENCE]

    def distance(d: PatientData) -> float:
        misses = sum(bool(getattr(d, f)) != want for f, want in zip(_PRESENCE, shape, strict=True))
        return misses * 100_000 + abs((d.birth_date - born).days) + _RNG.random()

    best = min(fitting, key=distance)
    if not want_nir:
        best = replace(best, nir="")
    return replace(best, identity_status=twin.identity_status)


_PRESENCE = ("usage_name", "email", "phone_mobile", "phone_home")


def _twin_for(establishment: Establishment, number: int, now: dt.datetime) -> Any:
    """The holder of the IPP just below `number` (or just above), if its stays in the
    establishment are all over (a canary is nobody's current or upcoming patient), it has no
    canary mark, and it has at least one stay there."""
    below = (
        PatientIdentifier.objects.filter(establishment=establishment, ipp__lt=f"{number:010d}")
        .order_by("-ipp")
        .first()
    )
    above = (
        PatientIdentifier.objects.filter(establishment=establishment, ipp__gt=f"{number:010d}")
        .order_by("ipp")
        .first()
    )
    twin_ident = below or above
    if twin_ident is None:
        return None
    # A patient with IPPs in k establishments sits next to free numbers in k sequences: taken
    # with probability 1/k, twins are drawn like patients, not like IPPs (else canaries would
    # have more establishments and stays than the group; measured at 760,000 patients).
    places = PatientIdentifier.objects.filter(patient_id=twin_ident.patient_id).count()
    if _RNG.random() * places >= 1:
        return None
    here = Stay.objects.filter(patient_id=twin_ident.patient_id, establishment=establishment)
    anywhere = Stay.objects.filter(patient_id=twin_ident.patient_id)
    if not here.exists() or anywhere.filter(discharged_at=None).exists():
        return None
    from rempart.access.policy import is_canary

    if is_canary(twin_ident.patient_id):
        return None
    return twin_ident, (above if twin_ident is below else below)


def _plant_one(
    establishment: Establishment, number: int, twin_ident: PatientIdentifier,
    neighbour: PatientIdentifier | None, now: dt.datetime, seed: int,
    free: dict[uuid.UUID, list[int]],
) -> uuid.UUID:  # fmt: skip
    twin = Patient.objects.get(pk=twin_ident.patient_id)
    other = Patient.objects.get(pk=neighbour.patient_id) if neighbour else None
    data = _identity_like(twin, seed)
    if twin.gp_id is not None:  # sealed, but its presence shows in the contact's length
        from rempart.directory.models import Practitioner

        town = Practitioner.objects.filter(internal=False).order_by("?").values_list("pk")
        data = replace(data, gp_id=(town.first() or (twin.gp_id,))[0])
    pid = _uuid7_between(twin.pk, _next_id(Patient, twin.pk))
    created = _between(twin.created_at, other.created_at if other else twin.created_at)
    values = data.as_model_values()
    patient = Patient(pk=pid, **values)
    patient.save(force_insert=True)
    Patient.objects.filter(pk=pid).update(
        created_at=created, updated_at=created + (twin.updated_at - twin.created_at)
    )
    ident_id = _uuid7_between(twin_ident.pk, _next_id(PatientIdentifier, twin_ident.pk))
    PatientIdentifier.objects.create(id=ident_id, patient=patient,
                                     establishment=establishment, ipp=f"{number:010d}")  # fmt: skip
    places = {establishment.pk}
    # An IPP in each other establishment the twin has one in: the free number nearest the
    # twin's there (a canary known in one place only would stand out among the group's).
    for other_ident in PatientIdentifier.objects.filter(patient=twin).exclude(
        establishment=establishment
    ):
        numbers = free.get(other_ident.establishment_id)
        if not numbers or not other_ident.ipp.isdigit():
            continue
        nearest = min(numbers, key=lambda n: abs(n - int(other_ident.ipp)))
        numbers.remove(nearest)
        # its id right after the holder of the number below it there: IPP order and id order
        # agree as they do for every patient
        before = (
            PatientIdentifier.objects.filter(establishment_id=other_ident.establishment_id,
                                             ipp__lt=f"{nearest:010d}")
            .order_by("-ipp")
            .first()
        ) or other_ident  # fmt: skip
        PatientIdentifier.objects.create(
            id=_uuid7_between(before.pk, _next_id(PatientIdentifier, before.pk)),
            patient=patient, establishment_id=other_ident.establishment_id,
            ipp=f"{nearest:010d}",
        )  # fmt: skip
        places.add(other_ident.establishment_id)
    _copy_care(twin, patient, establishment, places, now)
    CanaryMark.objects.create(tag=get_vault().indexer.tag("canary", pid.bytes))
    return pid


def _donor_length(stay: Stay, twin: Patient) -> dt.timedelta | None:
    """The length of another patient's stay of the same service and kind, drawn at random (a
    random point in the id range, the next such stay after it): the copy's length then follows
    the group's own distribution, not one shaped around the twin's."""
    first = Stay.objects.order_by("pk").values_list("pk", flat=True).first()
    last = Stay.objects.order_by("-pk").values_list("pk", flat=True).first()
    if first is None or last is None:
        return None
    start = uuid.UUID(int=first.int + _RNG.randrange(max(1, last.int - first.int)))
    found = (
        Stay.objects.filter(service_id=stay.service_id, kind=stay.kind, pk__gte=start,
                            admitted_at__isnull=False, discharged_at__isnull=False)
        .exclude(patient=twin)
        .order_by("pk")
        .values_list("admitted_at", "discharged_at")[:1]
    )  # fmt: skip
    row = next(iter(found), None)
    if row is None or row[0] is None or row[1] is None:
        return None
    length: dt.timedelta = row[1] - row[0]
    return length


def _stretched(length: dt.timedelta) -> dt.timedelta:
    """A length near `length` (within about a quarter), in the same unit: whole days stay whole
    days, whole hours whole hours; an unusual length would single the copy out."""
    seconds = int(length.total_seconds())
    unit = next((u for u in (86400, 3600, 60) if seconds and seconds % u == 0), 1)
    units = seconds // unit
    spread = max(1, round(units / 4))
    return dt.timedelta(seconds=unit * max(1, units + _RNG.randint(-spread, spread)))


def _copy_care(  # type: ignore[no-untyped-def]
    twin: Patient, canary: Patient, establishment: Establishment, places: set[uuid.UUID],
    now: dt.datetime,
):  # fmt: skip
    """The twin's stays, shifted and stretched, with their prescriptions: in the same places
    where the canary has an IPP, moved to the same kind of service of `establishment` else."""
    from rempart.care.models import PrescriptionStatus
    from rempart.synth.care import LINE_CONTENTS

    latest_end = now - dt.timedelta(days=1)
    born = dt.datetime.combine(canary.birth_date or dt.date(1900, 1, 1), dt.time(), tzinfo=dt.UTC)
    here = {svc.code: svc.pk for svc in establishment.services.all()}
    stays = []
    for stay in Stay.objects.filter(patient=twin).select_related("service"):
        if stay.establishment_id not in places:
            if stay.service.code not in here:
                continue
            stay.establishment_id, stay.service_id = establishment.pk, here[stay.service.code]
        stays.append(stay)
    last_end = max(s.discharged_at for s in stays if s.discharged_at)
    first_start = min(s.planned_admission for s in stays)
    low = max(-20.0, (born - first_start).total_seconds() / 86400 + 1)
    high = min(20.0, (latest_end - last_end).total_seconds() / 86400)
    shift = dt.timedelta(days=_RNG.uniform(low, high) if low < high else min(0.0, high))
    shift = dt.timedelta(minutes=round(shift.total_seconds() / 60))

    def moved(at: dt.datetime | None) -> Any:
        return None if at is None else at + shift

    for stay in stays:
        start = moved(stay.admitted_at)
        end = stay.discharged_at
        if start is not None and end is not None and stay.admitted_at is not None:
            end = start + (_donor_length(stay, twin) or _stretched(end - stay.admitted_at))
            end = min(end, latest_end) if start < latest_end else end
        planned_discharge = None
        if stay.planned_discharge is not None and start is not None and end is not None:
            planned_discharge = max(start, moved(stay.planned_discharge))
        copy = Stay(id=_uuid7_between(stay.pk, _next_id(Stay, stay.pk)), patient=canary,
                    establishment_id=stay.establishment_id, service_id=stay.service_id,
                    kind=stay.kind,
                    planned_admission=moved(stay.planned_admission),
                    planned_discharge=planned_discharge, admitted_at=start, discharged_at=end,
                    reason=stay.reason)  # fmt: skip
        copy.save(force_insert=True)
        for prescription in Prescription.objects.filter(stay=stay):
            signed = prescription.status == PrescriptionStatus.SIGNED
            written = Prescription(
                id=_uuid7_between(prescription.pk, _next_id(Prescription, prescription.pk)),
                patient=canary,
                stay=copy, prescriber_id=prescription.prescriber_id,
                prescribed_at=moved(prescription.prescribed_at),
            )  # fmt: skip
            written.save(force_insert=True)
            twin_lines = list(prescription.lines.order_by("position").values_list("pk", flat=True))
            for position, twin_line in enumerate(twin_lines, start=1):
                PrescriptionLine(
                    id=_uuid7_between(twin_line, _next_id(PrescriptionLine, twin_line)),
                    prescription=written, position=position,
                    content=LINE_CONTENTS[_RNG.randrange(len(LINE_CONTENTS))],
                ).save(force_insert=True)  # fmt: skip
            if signed:
                Prescription.objects.filter(pk=written.pk).update(
                    status=PrescriptionStatus.SIGNED, signed_at=moved(prescription.signed_at)
                )


def canaries_plant(*, actor: Actor, per_establishment: int, reorder: bool = True) -> list[Planted]:
    """Plant canaries in every establishment (see the module's docstring); the console's only."""
    if actor.role != SYSTEM_ROLE:
        from rempart.access.policy import AccessDenied

        raise AccessDenied()
    if not 1 <= per_establishment <= 1000:
        raise CanaryRefused("Entre 1 et 1000 leurres par établissement.")
    now = timezone.now()
    indexer = get_vault().indexer
    planted: list[Planted] = []
    with transaction.atomic():
        places = list(Establishment.objects.order_by("finess"))
        free = {place.pk: free_ipp_numbers(place)[0] for place in places}
        for place in places:
            holes = list(free[place.pk])
            _RNG.shuffle(holes)
            ids: list[uuid.UUID] = []
            for number in holes:
                if number not in free[place.pk]:
                    continue  # taken meanwhile by a canary of another place
                if len(ids) == per_establishment:
                    break
                found = _twin_for(place, number, now)
                if found is None:
                    continue
                seed = int.from_bytes(
                    indexer.tag("canary_seed", place.pk.bytes + number.to_bytes(8, "big"))[:8],
                    "big",
                )
                free[place.pk].remove(number)
                ids.append(_plant_one(place, number, found[0], found[1], now, seed, free))
            planted.append(Planted(place.pk, ids))
        marks = sum(len(p.patient_ids) for p in planted)
        decoys = sum(_RNG.randint(*DECOYS_PER_CANARY) for _ in range(marks))
        CanaryMark.objects.bulk_create([CanaryMark(tag=secrets.token_bytes(16))
                                        for _ in range(decoys)])  # fmt: skip
        # Recorded without counts or ids: the trail is in the dump too.
        event_record(actor.for_purpose(Purpose.SECURITY), Action.CREATE, resource_type="Canary",
                     detail={"planted": True})  # fmt: skip
        if reorder and connection.vendor == "postgresql":
            _reorder_tables()
    return planted


def _reorder_tables() -> None:
    """Rewrite the tables canaries went into in primary-key order (UUIDv7: creation order), and
    the marks in tag order: a row planted today is not at the end of the heap."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # deferred checks would block CLUSTER
        for model in (Patient, PatientIdentifier, Stay, Prescription, PrescriptionLine, CanaryMark):
            table = model._meta.db_table
            cursor.execute(
                "SELECT indexrelid::regclass::text FROM pg_index "
                "WHERE indrelid = %s::regclass AND indisprimary",
                [table],
            )
            (pkey,) = cursor.fetchone()
            cursor.execute(f'CLUSTER "{table}" USING "{pkey}"')
            cursor.execute(f'ANALYZE "{table}"')
