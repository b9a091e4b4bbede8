"""Canary patients that look like everyone else, to a thief holding the dump and the source.

A canary takes its place from a real patient, its twin: the holder of the IPP just below a free
number of an establishment's sequence (IPP allocation leaves about one number in IPP_GAP free,
see `rempart.lib.identifiers`), whose stays are all over (a canary is nobody's current or
upcoming patient). The canary takes that free number, and a free number near the twin's in each
other establishment where the twin has an IPP; its ids are UUIDv7 at times drawn among the
twin's neighbours the way real rows are made (`_time_near`, `_ipp_time`), its creation stamps
between the twin's and the neighbour's. It takes its shape from another patient, its model,
drawn at random with the twin's establishments and as many stays: the model's stays, each moved
by up to 20 days, each with the length of another patient's stay of the same service and kind,
and their prescriptions (same prescriber and status, as many lines drawn from the catalogue);
its identity comes from the group generator seeded by a tag of the index root, of the model's
sex and shape (NIR, usage name, e-mail, phones present or not), born near it. Only a keyed tag
of its id marks it, among decoy tags, with nothing else in the row. The tables are then
rewritten in id order (PostgreSQL `CLUSTER`), so rows planted today are not at the end of the
heap.

The thief's test (tests/test_canary_attack.py) plays 32 queries on the clear columns, 10 on the
ids and on copies, and a nearest-neighbour attack; bench/canary_attack.py plays them at group
scale with a logistic regression over all of them.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from rempart.access.models import CanaryMark
from rempart.audit.context import SYSTEM_ROLE, Actor
from rempart.audit.models import Action, Purpose
from rempart.audit.services import event_record
from rempart.care.models import Prescription, PrescriptionLine, Stay
from rempart.directory.models import Establishment
from rempart.lib.ids import id_at, new_id
from rempart.patients.models import IppCounter, Patient, PatientIdentifier
from rempart.patients.validation import PatientData
from rempart.vault.keystore import get_vault

_RNG = secrets.SystemRandom()
DECOYS_PER_CANARY = (1, 3)  # decoy tags per canary, drawn in this range: the mark count blurs
NEIGHBOURS = 16  # rows on each side of the twin's whose times frame a canary's (_time_near)
PAUSE = 8


@dataclass(frozen=True)
class Planted:
    establishment_id: uuid.UUID
    patient_ids: list[uuid.UUID]  # fewer than asked when the sequence has too few free numbers


class CanaryRefused(Exception):
    pass


def _time_near(model: Any, twin_id: uuid.UUID) -> int:
    """A millisecond drawn uniformly over the times of the twin's neighbours in the table
    (NEIGHBOURS rows on each side), never inside a pause (a gap PAUSE times the window's median
    one: a night, the time between two loads).

    Uniform over a stretch of time, not inside the gap that follows the twin: a gap is hit in
    proportion to its length, so the rows around a canary are spaced as the rows around any
    real row are, and its millisecond holds as many others as a real row's does. A row put in
    the gap after another halves that gap, and in a table of rows one millisecond apart it had
    to share its neighbour's millisecond, which no real row did: both gave canaries away
    (tests/test_canary_attack.py, the id features)."""
    before = model.objects.filter(pk__lt=twin_id).order_by("-pk").values_list("pk", flat=True)
    after = model.objects.filter(pk__gt=twin_id).order_by("pk").values_list("pk", flat=True)
    times = [_ms(i) for i in reversed(before[:NEIGHBOURS])]
    centre = len(times)
    times += [_ms(twin_id), *(_ms(i) for i in after[:NEIGHBOURS])]
    gaps = sorted(b - a for a, b in pairwise(times))
    pause = PAUSE * max(1, gaps[len(gaps) // 2]) if gaps else 0
    low = high = centre
    while low > 0 and times[low] - times[low - 1] <= pause:
        low -= 1
    while high + 1 < len(times) and times[high + 1] - times[high] <= pause:
        high += 1
    return _uniform_ms(times[low], times[high])


def _uniform_ms(low: int, high: int) -> int:
    """A millisecond drawn uniformly in time between two rows of these milliseconds. Their
    times within their millisecond are unknown, so drawn too: a whole millisecond at each end
    would be chosen twice as often as a real row falls there, and the canary would share its
    neighbours' millisecond (and sort before them) more often than a real row does."""
    start, end = low + _RNG.random(), high + _RNG.random()
    if end < start:
        start, end = end, start
    return int(start + (end - start) * _RNG.random())


def _ipp_time(establishment_id: uuid.UUID, number: int) -> int:
    """A millisecond between the ids of the IPPs numbered just below and just above `number`
    there, drawn uniformly: IPP order and id order agree, as they do for every patient (a
    number is given at registration; a free one was a registration rolled back, between its
    neighbours)."""
    here = PatientIdentifier.objects.filter(establishment_id=establishment_id)
    below = here.filter(ipp__lt=f"{number:010d}").order_by("-ipp").values_list("pk", flat=True)
    above = here.filter(ipp__gt=f"{number:010d}").order_by("ipp").values_list("pk", flat=True)
    low, high = below.first(), above.first()
    if low is None or high is None:
        beside = low or high
        return _time_near(PatientIdentifier, beside) if beside else _ms(new_id())
    return _uniform_ms(_ms(low), _ms(high))


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


def _identity_like(model: Patient, seed: int) -> PatientData:
    """A generated identity of the model's sex, with a NIR exactly when the model has one, the
    same contact details present or absent (each blind index is empty or not in the clear), and
    born as near the model as the pool allows."""
    from rempart.synth.population import canary_identities

    pool = canary_identities(count=300, seed=seed)
    want_nir = bool(model.nir)
    fitting = [d for d in pool if d.sex == model.sex and (bool(d.nir) or not want_nir)] or pool
    born = model.birth_date or dt.date(1970, 1, 1)
    shape = [bool(getattr(model, f)) for f in _PRESENCE]

    def distance(d: PatientData) -> float:
        misses = sum(bool(getattr(d, f)) != want for f, want in zip(_PRESENCE, shape, strict=True))
        return misses * 100_000 + abs((d.birth_date - born).days) + _RNG.random()

    best = min(fitting, key=distance)
    if not want_nir:
        best = replace(best, nir="")
    return replace(best, identity_status=model.identity_status)


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


def _places(patient_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
    places: dict[uuid.UUID, set[uuid.UUID]] = {}
    for pid, place in PatientIdentifier.objects.filter(patient_id__in=patient_ids).values_list(
        "patient_id", "establishment_id"
    ):
        places.setdefault(pid, set()).add(place)
    return {pid: frozenset(p) for pid, p in places.items()}


def _model_for(twin: Patient) -> Patient:
    """The patient a canary is modelled on: drawn at random in the group, known in the same
    establishments as the twin, with as many stays, all over. Not the twin: a canary sits next
    to its twin in id order, and copies of the twin's stays there were found by a thief looking
    for look-alike stays among neighbours (tests/test_canary_attack.py)."""
    wanted = _places([twin.pk]).get(twin.pk, frozenset())
    stays = Stay.objects.filter(patient=twin).count()
    first = Patient.objects.order_by("pk").values_list("pk", flat=True).first()
    last = Patient.objects.order_by("-pk").values_list("pk", flat=True).first()
    if first is None or last is None:
        return twin
    from rempart.access.policy import is_canary

    for _ in range(20):
        start = uuid.UUID(int=first.int + _RNG.randrange(max(1, last.int - first.int)))
        batch = list(
            Patient.objects.filter(pk__gte=start).order_by("pk").values_list("pk", flat=True)[:100]
        )
        places = _places(batch)
        counts = dict(
            Stay.objects.filter(patient_id__in=batch)
            .values("patient_id")
            .annotate(n=Count("pk"), open=Count("pk", filter=Q(discharged_at=None)))
            .filter(open=0)
            .values_list("patient_id", "n")
        )
        for pid in batch:
            fits = counts.get(pid) == stays and places.get(pid) == wanted
            if fits and pid != twin.pk and not is_canary(pid):
                return Patient.objects.get(pk=pid)
    return twin


def _plant_one(
    establishment: Establishment, number: int, twin_ident: PatientIdentifier,
    neighbour: PatientIdentifier | None, now: dt.datetime, seed: int,
    free: dict[uuid.UUID, list[int]],
) -> uuid.UUID:  # fmt: skip
    """The twin (holder of the number below) gives the canary its place: its IPP numbers and
    its times. The model, another patient, gives it its shape and its care."""
    twin = Patient.objects.get(pk=twin_ident.patient_id)
    model = _model_for(twin)
    other = Patient.objects.get(pk=neighbour.patient_id) if neighbour else None
    data = _identity_like(model, seed)
    if model.gp_id is not None:  # sealed, but its presence shows in the contact's length
        from rempart.directory.models import Practitioner

        town = Practitioner.objects.filter(internal=False).order_by("?").values_list("pk")
        data = replace(data, gp_id=(town.first() or (model.gp_id,))[0])
    pid = id_at(_time_near(Patient, twin.pk))
    created = _between(twin.created_at, other.created_at if other else twin.created_at)
    values = data.as_model_values()
    patient = Patient(pk=pid, **values)
    patient.save(force_insert=True)
    Patient.objects.filter(pk=pid).update(
        created_at=created, updated_at=created + (model.updated_at - model.created_at)
    )
    ident_id = id_at(_ipp_time(establishment.pk, number))
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
        PatientIdentifier.objects.create(
            id=id_at(_ipp_time(other_ident.establishment_id, nearest)),
            patient=patient, establishment_id=other_ident.establishment_id,
            ipp=f"{nearest:010d}",
        )  # fmt: skip
        places.add(other_ident.establishment_id)
    _copy_care(model, twin, patient, establishment, places, now)
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


def _shift(stay: Stay, born: dt.datetime, latest_end: dt.datetime) -> dt.timedelta:
    """Up to 20 days either way, to the minute, keeping the stay after birth and over."""
    end = stay.discharged_at or stay.planned_admission
    low = max(-20.0, (born - stay.planned_admission).total_seconds() / 86400 + 1)
    high = min(20.0, (latest_end - end).total_seconds() / 86400)
    days = _RNG.uniform(low, high) if low < high else min(0.0, high)
    return dt.timedelta(minutes=round(days * 1440))


def _copy_care(  # type: ignore[no-untyped-def]
    model: Patient, twin: Patient, canary: Patient, establishment: Establishment,
    places: set[uuid.UUID], now: dt.datetime,
):  # fmt: skip
    """The model's stays, each moved by up to 20 days on its own and stretched, with their
    prescriptions: in the same places where the canary has an IPP, moved to the same kind of
    service of `establishment` else. Each is made at a time near one of the twin's stays (the
    model has as many), as the canary's other rows are made near the twin's.

    Moved one by one: moved together, the times between a canary's admissions were its
    model's to the minute, and a thief matching those patterns found the pairs."""
    from rempart.care.models import PrescriptionStatus
    from rempart.synth.care import LINE_CONTENTS

    latest_end = now - dt.timedelta(days=1)
    born = dt.datetime.combine(canary.birth_date or dt.date(1900, 1, 1), dt.time(), tzinfo=dt.UTC)
    here = {svc.code: svc.pk for svc in establishment.services.all()}
    stays = []
    for stay in Stay.objects.filter(patient=model).select_related("service"):
        if stay.establishment_id not in places:
            if stay.service.code not in here:
                continue
            stay.establishment_id, stay.service_id = establishment.pk, here[stay.service.code]
        stays.append(stay)
    anchors = list(Stay.objects.filter(patient=twin).values_list("pk", flat=True))
    _RNG.shuffle(anchors)

    for k, stay in enumerate(stays):
        shift = _shift(stay, born, latest_end)

        def moved(at: dt.datetime | None, shift: dt.timedelta = shift) -> Any:
            return None if at is None else at + shift

        start = moved(stay.admitted_at)
        end = stay.discharged_at
        if start is not None and end is not None and stay.admitted_at is not None:
            end = start + (_donor_length(stay, model) or _stretched(end - stay.admitted_at))
            end = min(end, latest_end) if start < latest_end else end
        planned_discharge = None
        if stay.planned_discharge is not None and start is not None and end is not None:
            planned_discharge = max(start, moved(stay.planned_discharge))
        # made near a stay of the twin; its prescriptions as long after it as the model's were
        made = _time_near(Stay, anchors[k % len(anchors)] if anchors else stay.pk)
        copy = Stay(id=id_at(made), patient=canary,
                    establishment_id=stay.establishment_id, service_id=stay.service_id,
                    kind=stay.kind,
                    planned_admission=moved(stay.planned_admission),
                    planned_discharge=planned_discharge, admitted_at=start, discharged_at=end,
                    reason=stay.reason)  # fmt: skip
        copy.save(force_insert=True)
        for prescription in Prescription.objects.filter(stay=stay):
            signed = prescription.status == PrescriptionStatus.SIGNED
            written = Prescription(
                id=id_at(made + _ms(prescription.pk) - _ms(stay.pk)),
                patient=canary,
                stay=copy, prescriber_id=prescription.prescriber_id,
                prescribed_at=moved(prescription.prescribed_at),
            )  # fmt: skip
            written.save(force_insert=True)
            twin_lines = list(prescription.lines.order_by("position").values_list("pk", flat=True))
            for position, twin_line in enumerate(twin_lines, start=1):
                PrescriptionLine(
                    id=id_at(made + _ms(twin_line) - _ms(stay.pk)),
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
