"""The records of a synthetic clinic group (plain dataclasses) and its directory: establishments,
services, practitioners. Patients, stays and prescriptions come in chunks from population.py.
The same seed and reference date always give the same group, ids included.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rempart.lib.identifiers import luhn_complete
from rempart.lib.ids import uuid_of
from rempart.patients.validation import PatientData
from rempart.synth import data as ref
from rempart.synth.names import FamilyNames, GivenNames

PARIS = dt.timezone(dt.timedelta(hours=1))


@dataclass(frozen=True)
class EstablishmentRec:
    id: uuid.UUID
    finess: str
    name: str
    kind: str
    city: str
    slug: str


@dataclass(frozen=True)
class ServiceRec:
    id: uuid.UUID
    establishment_id: uuid.UUID
    code: str
    name: str


@dataclass(frozen=True)
class PractitionerRec:
    id: uuid.UUID
    rpps: str
    family_name: str
    given_name: str
    specialty: str
    internal: bool
    establishment_ids: tuple[uuid.UUID, ...]
    service_id: uuid.UUID | None
    city: str


# The records made by the million (patients, stays, prescriptions and lines) are plain slotted
# classes: a frozen dataclass sets each field through object.__setattr__, six times slower.
@dataclass(slots=True)
class PatientRec:
    id: uuid.UUID
    data: PatientData


@dataclass(slots=True)
class StayRec:
    id: uuid.UUID
    patient_id: uuid.UUID
    establishment_id: uuid.UUID
    service_id: uuid.UUID
    kind: str
    planned_admission: dt.datetime
    planned_discharge: dt.datetime | None
    admitted_at: dt.datetime | None
    discharged_at: dt.datetime | None
    reason: str


@dataclass(slots=True)
class LineRec:
    id: uuid.UUID
    position: int
    content: dict[str, object]


@dataclass(slots=True)
class PrescriptionRec:
    id: uuid.UUID
    patient_id: uuid.UUID
    stay_id: uuid.UUID
    prescriber_id: uuid.UUID
    prescribed_at: dt.datetime
    signed_at: dt.datetime | None
    lines: tuple[LineRec, ...]


@dataclass
class Group:
    seed: int
    today: dt.date
    establishments: list[EstablishmentRec] = field(default_factory=list)
    services: list[ServiceRec] = field(default_factory=list)
    practitioners: list[PractitionerRec] = field(default_factory=list)
    patients: list[PatientRec] = field(default_factory=list)
    # (row id, patient, establishment, IPP)
    ipps: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]] = field(default_factory=list)
    stays: list[StayRec] = field(default_factory=list)
    prescriptions: list[PrescriptionRec] = field(default_factory=list)


# Records made per millisecond on average. A busy system makes several in some milliseconds and
# none in others; a canary's rows, placed at a random millisecond among its twin's neighbours
# (access/canaries.py), then fall where a real record could have (tests/test_canary_attack.py).
RECORDS_PER_MS = 1.0


class Ids:
    """Deterministic UUIDv7 of a busy system: records made at the times of a Poisson process
    from `start` (RECORDS_PER_MS on average), every row of a record in its millisecond, random
    bits from the seed (no counter: see lib/ids.py)."""

    def __init__(self, rng: np.random.Generator, start: dt.datetime) -> None:
        self._rng = rng
        self._start = int(start.timestamp() * 1000)
        self._elapsed = 0.0  # milliseconds since start, not rounded
        self._gaps: list[float] = []
        self._bits: list[int] = []

    def times(self, count: int) -> np.ndarray:
        """The milliseconds of the next `count` records (ids made as arrays, synth/care.py)."""
        elapsed = self._elapsed + np.cumsum(self._rng.exponential(1 / RECORDS_PER_MS, count))
        if count:
            self._elapsed = float(elapsed[-1])
        stamps: np.ndarray = self._start + elapsed.astype(np.int64)
        return stamps

    def stretch(self, count: int) -> tuple[float, float]:
        """The start and length (milliseconds) of the time `count` records take, the clock
        moved past it (records timed elsewhere as arrays: the IPP rows, synth/care.py)."""
        start, length = self._start + self._elapsed, count / RECORDS_PER_MS
        self._elapsed += length
        return start, length

    def next(self) -> uuid.UUID:
        """The id of the next record."""
        if not self._gaps:
            self._gaps = self._rng.exponential(1 / RECORDS_PER_MS, 4096).tolist()
        self._elapsed += self._gaps.pop()
        return self.at(self._start + int(self._elapsed))

    def at(self, ms: int) -> uuid.UUID:
        """An id of this millisecond (another row of the same record)."""
        if not self._bits:  # 74 random bits each, the two fields drawn apart (synth/care.py)
            high = self._rng.integers(0, 2**12, size=4096, dtype=np.int64).tolist()
            low = self._rng.integers(0, 2**62, size=4096, dtype=np.int64).tolist()
            self._bits = [a << 62 | b for a, b in zip(high, low, strict=True)]
        rand = self._bits.pop()
        value = (ms & (2**48 - 1)) << 80
        value |= 0x7 << 76
        value |= (rand >> 62) << 64  # 12 bits after the version
        value |= 0b10 << 62  # RFC 9562 variant
        value |= rand & (2**62 - 1)
        return uuid_of(value)


def _weighted(rng: np.random.Generator, items: Sequence[tuple[object, ...]]) -> int:
    weights = np.array([float(str(i[-1])) for i in items])
    return int(rng.choice(len(items), p=weights / weights.sum()))


def _slug(name: str) -> str:
    words = [w for w in re.split(r"[\s'\-]+", _ascii_lower_keep_spaces(name)) if len(w) > 3]
    return words[-1] if words else "etab"


def _ascii_lower_keep_spaces(value: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    return plain.lower()


class GroupGenerator:
    """The directory part of the group: establishments, services, practitioners."""

    def __init__(self, *, seed: int, today: dt.date) -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
        self.group = Group(seed=seed, today=today)
        self.ids = Ids(self.rng, dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC))
        self._rpps: set[str] = set()

    # --- directory --------------------------------------------------------------------------------

    def establishments(self, clinics: int, health_centres: int, nursing_homes: int) -> None:
        finesses: set[str] = set()
        plan = (
            [("clinic", n, ref.CLINIC_SERVICES) for n in ref.CLINIC_NAMES[:clinics]]
            + [
                ("health_centre", n, ref.HEALTH_CENTRE_SERVICES)
                for n in ref.HEALTH_CENTRE_NAMES[:health_centres]
            ]
            + [
                ("nursing_home", n, ref.NURSING_HOME_SERVICES)
                for n in ref.NURSING_HOME_NAMES[:nursing_homes]
            ]
        )
        if (
            clinics > len(ref.CLINIC_NAMES)
            or health_centres > len(ref.HEALTH_CENTRE_NAMES)
            or nursing_homes > len(ref.NURSING_HOME_NAMES)
        ):
            raise ValueError("not that many establishment names in the synthetic lists")
        for i, (kind, name, services) in enumerate(plan):
            dept, city = ref.ESTABLISHMENT_CITIES[i % len(ref.ESTABLISHMENT_CITIES)]
            while True:
                finess = luhn_complete(dept + f"{int(self.rng.integers(0, 10**6)):06d}")
                if finess not in finesses:
                    finesses.add(finess)
                    break
            est = EstablishmentRec(self.ids.next(), finess, name, kind, city, _slug(name))
            self.group.establishments.append(est)
            for code, label in services:
                self.group.services.append(ServiceRec(self.ids.next(), est.id, code, label))

    def _rpps_number(self) -> str:
        while True:
            rpps = luhn_complete("10" + f"{int(self.rng.integers(0, 10**8)):08d}")
            if rpps not in self._rpps:
                self._rpps.add(rpps)
                return rpps

    def _person_name(self, families: FamilyNames, given: GivenNames) -> tuple[str, str]:
        sex = "F" if self.rng.random() < 0.55 else "M"
        family = families.names[int(families.draw(self.rng, 1)[0])]
        year = int(self.rng.integers(1955, 1996))
        return family, given.draw(self.rng, sex, year, 1)[0]

    def practitioners(self, families: FamilyNames, given: GivenNames, gps: int) -> None:
        for service in self.group.services:
            for _ in range(int(self.rng.integers(2, 5))):
                family, first = self._person_name(families, given)
                self.group.practitioners.append(
                    PractitionerRec(
                        self.ids.next(),
                        self._rpps_number(),
                        family,
                        first,
                        ref.SPECIALTIES_BY_SERVICE[service.code],
                        True,
                        (service.establishment_id,),
                        service.id,
                        "",
                    )
                )
        for _ in range(gps):
            family, first = self._person_name(families, given)
            city = ref.RESIDENCES[_weighted(self.rng, ref.RESIDENCES)][1]
            self.group.practitioners.append(
                PractitionerRec(
                    self.ids.next(),
                    self._rpps_number(),
                    family,
                    first,
                    "Médecine générale",
                    False,
                    (),
                    None,
                    city,
                )
            )
