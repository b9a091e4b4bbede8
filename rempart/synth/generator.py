"""A deterministic synthetic clinic group: establishments, practitioners, patients, stays and
prescriptions. The same seed and reference date always give the same group, ids included.

Everything is plain data (dataclasses); rempart.synth.load writes it through the models.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rempart.lib.identifiers import luhn_complete, nir_check_digits
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


@dataclass(frozen=True)
class PatientRec:
    id: uuid.UUID
    data: PatientData


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class LineRec:
    id: uuid.UUID
    position: int
    content: dict[str, object]


@dataclass(frozen=True)
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
    ipps: list[tuple[uuid.UUID, uuid.UUID, str]] = field(default_factory=list)
    stays: list[StayRec] = field(default_factory=list)
    prescriptions: list[PrescriptionRec] = field(default_factory=list)


class _Ids:
    """Deterministic UUIDv7: timestamps from the reference date, random bits from the seed."""

    def __init__(self, rng: np.random.Generator, start: dt.datetime) -> None:
        self._rng = rng
        self._ms = int(start.timestamp() * 1000)

    def next(self) -> uuid.UUID:
        self._ms += 1
        rand = int(self._rng.integers(0, 2**62, dtype=np.int64)) | (
            int(self._rng.integers(0, 2**12)) << 62
        )
        value = (self._ms & (2**48 - 1)) << 80
        value |= 0x7 << 76
        value |= ((rand >> 62) & 0xFFF) << 64
        value |= 0b10 << 62
        value |= rand & (2**62 - 1)
        return uuid.UUID(int=value)


def _weighted(rng: np.random.Generator, items: Sequence[tuple[object, ...]]) -> int:
    weights = np.array([float(str(i[-1])) for i in items])
    return int(rng.choice(len(items), p=weights / weights.sum()))


def _ascii_lower(value: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    return re.sub(r"[^a-z]", "", plain.lower())


def _slug(name: str) -> str:
    words = [w for w in re.split(r"[\s'\-]+", _ascii_lower_keep_spaces(name)) if len(w) > 3]
    return words[-1] if words else "etab"


def _ascii_lower_keep_spaces(value: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    return plain.lower()


class GroupGenerator:
    def __init__(self, *, seed: int, today: dt.date) -> None:
        self.rng = np.random.default_rng(seed)
        self.group = Group(seed=seed, today=today)
        self.ids = _Ids(self.rng, dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC))
        self._rpps: set[str] = set()
        self._nirs: set[str] = set()

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

    # --- patients ---------------------------------------------------------------------------------

    def _birth_place(self, birth_year: int) -> str:
        if self.rng.random() < 0.12:
            return ref.BIRTH_COUNTRIES[_weighted(self.rng, ref.BIRTH_COUNTRIES)][0]
        while True:
            dept = ref.BIRTH_DEPARTMENTS[_weighted(self.rng, ref.BIRTH_DEPARTMENTS)][0]
            if dept in ("2A", "2B") and birth_year < 1976:
                continue  # before 1976 Corsica was département 20
            break
        if dept == "75":
            return f"751{int(self.rng.integers(1, 21)):02d}"
        if len(dept) == 3:
            return f"{dept}{int(self.rng.integers(1, 35)):02d}"
        return f"{dept}{int(self.rng.integers(1, 500)):03d}"

    def _nir(self, sex: str, birth_date: dt.date, place: str) -> str:
        while True:
            body = (
                ("1" if sex == "M" else "2")
                + f"{birth_date.year % 100:02d}{birth_date.month:02d}"
                + place
                + f"{int(self.rng.integers(1, 1000)):03d}"
            )
            nir = body + nir_check_digits(body)
            if nir not in self._nirs:
                self._nirs.add(nir)
                return nir

    def _phone(self, mobile: bool) -> str:
        prefix = ("06", "07")[int(self.rng.integers(0, 2))] if mobile else "01"
        digits = prefix + f"{int(self.rng.integers(0, 10**8)):08d}"
        return " ".join(digits[i : i + 2] for i in range(0, 10, 2))

    def patients(self, n: int, families: FamilyNames, given: GivenNames) -> None:
        today = self.group.today
        rng = self.rng
        gps = [p for p in self.group.practitioners if not p.internal]
        sexes = np.where(rng.random(n) < 0.54, "F", "M")
        # Ages of a clinic population: children, working adults and a heavy elderly share.
        ages = np.concatenate(
            [rng.uniform(0, 18, n), rng.uniform(18, 65, n), np.clip(rng.normal(78, 9, n), 65, 104)]
        ).reshape(3, n)
        band = rng.choice(3, size=n, p=[0.1, 0.45, 0.45])
        age_days = (ages[band, np.arange(n)] * 365.25).astype(int)
        family_idx = families.draw(rng, n)
        married_idx = families.draw(rng, n)
        for i in range(n):
            sex = str(sexes[i])
            birth_date = today - dt.timedelta(days=int(age_days[i]) + 1)
            age = int(age_days[i] // 365.25)
            birth_name = families.names[int(family_idx[i])]
            if birth_date.year >= 2005 and rng.random() < 0.06:
                birth_name = f"{birth_name}-{families.names[int(married_idx[i])]}"
            usage_name = ""
            if sex == "F" and age >= 25 and rng.random() < 0.34:
                usage_name = families.names[int(married_idx[i])]
            count = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
            names = given.draw(rng, sex, birth_date.year, count)
            place = self._birth_place(birth_date.year)
            status = ("QUAL", "VALI", "RECUP", "PROV")[int(rng.choice(4, p=[0.6, 0.15, 0.1, 0.15]))]
            has_nir = status in ("QUAL", "RECUP") or rng.random() < 0.5
            nir = self._nir(sex, birth_date, place) if has_nir else ""
            first = names[0]
            email = ""
            if 16 <= age < 85 and rng.random() < 0.7:
                domain = ref.EMAIL_DOMAINS[_weighted(self.rng, ref.EMAIL_DOMAINS)][0]
                local = f"{_ascii_lower(first)}.{_ascii_lower(usage_name or birth_name)}"
                if rng.random() < 0.6:
                    local += str(int(rng.integers(1, 100)))
                email = f"{local}@{domain}"
            postcode, city, _ = ref.RESIDENCES[_weighted(self.rng, ref.RESIDENCES)]
            street = (
                f"{int(rng.integers(1, 180))} "
                f"{ref.STREET_KINDS[int(rng.integers(len(ref.STREET_KINDS)))]} "
                f"{ref.STREET_NAMES[int(rng.integers(len(ref.STREET_NAMES)))]}"
            )
            gp = gps[int(rng.integers(len(gps)))].id if gps and rng.random() < 0.85 else None
            self.group.patients.append(
                PatientRec(
                    self.ids.next(),
                    PatientData(
                        birth_name=birth_name,
                        usage_name=usage_name,
                        given_names=" ".join(names),
                        first_given_name=first,
                        sex=sex,
                        birth_date=birth_date,
                        birth_place_code=place,
                        nir=nir,
                        identity_status=status,
                        email=email,
                        phone_mobile=self._phone(True) if rng.random() < 0.85 else "",
                        phone_home=self._phone(False) if rng.random() < 0.35 else "",
                        address_line=street,
                        postcode=postcode,
                        city=city,
                        gp_id=gp,
                    ),
                )
            )

    # --- stays and prescriptions ------------------------------------------------------------------

    def stays(self, per_patient: float = 1.5) -> None:
        rng = self.rng
        now = dt.datetime.combine(self.group.today, dt.time(12), tzinfo=PARIS)
        services_by_est: dict[uuid.UUID, list[ServiceRec]] = {}
        for s in self.group.services:
            services_by_est.setdefault(s.establishment_id, []).append(s)
        homes = [e for e in self.group.establishments if e.kind == "nursing_home"]
        others = [e for e in self.group.establishments if e.kind != "nursing_home"]
        weights = np.array([3.0 if e.kind == "clinic" else 1.0 for e in others])
        weights /= weights.sum()
        prescribers: dict[uuid.UUID, list[PractitionerRec]] = {}
        for p in self.group.practitioners:
            if p.service_id is not None:
                prescribers.setdefault(p.service_id, []).append(p)
        residents_per_home = max(5, len(self.group.patients) * 15 // 1000)
        elderly = [
            p for p in self.group.patients if (self.group.today - p.data.birth_date).days > 75 * 365
        ]
        resident_ids: dict[uuid.UUID, EstablishmentRec] = {}
        order = rng.permutation(len(elderly))
        for k, nursing_home in enumerate(homes):
            for j in order[k * residents_per_home : (k + 1) * residents_per_home]:
                resident_ids[elderly[int(j)].id] = nursing_home
        counters: dict[uuid.UUID, int] = {}
        for patient in self.group.patients:
            visited: list[EstablishmentRec] = []
            home = resident_ids.get(patient.id)
            if home is not None:
                self._stay(patient, home, services_by_est[home.id], prescribers, now, resident=True)
                visited.append(home)
            count = 1 + int(rng.poisson(per_patient - 1.0))
            first = others[int(rng.choice(len(others), p=weights))]
            for k in range(count if home is None else count - 1):
                est = (
                    first
                    if k == 0 or rng.random() < 0.7
                    else others[int(rng.choice(len(others), p=weights))]
                )
                self._stay(patient, est, services_by_est[est.id], prescribers, now, resident=False)
                if est not in visited:
                    visited.append(est)
            for est in visited:
                counters[est.id] = counters.get(est.id, 0) + 1
                self.group.ipps.append((patient.id, est.id, f"{counters[est.id]:010d}"))

    def _stay(
        self,
        patient: PatientRec,
        est: EstablishmentRec,
        services: list[ServiceRec],
        prescribers: dict[uuid.UUID, list[PractitionerRec]],
        now: dt.datetime,
        *,
        resident: bool,
    ) -> None:
        rng = self.rng
        service = services[0] if resident else services[int(rng.integers(len(services)))]
        code = service.code
        kind = {
            "URG": "emergency",
            "CONS": "consultation",
            "SOINS": "consultation",
            "AMBU": "day_case",
            "HEB": "residence",
            "UPAD": "residence",
        }.get(code, "full")
        birth = dt.datetime.combine(patient.data.birth_date, dt.time(), tzinfo=PARIS)
        roll = rng.random()
        minutes = int(rng.integers(0, 24 * 60))
        if resident:
            start = now - dt.timedelta(days=int(rng.integers(30, 6 * 365)), minutes=minutes)
            state = "current"
        elif roll < 0.03:
            start = now + dt.timedelta(days=int(rng.integers(1, 30)), minutes=minutes)
            state = "upcoming"
        elif roll < 0.06 and kind == "full":
            start = now - dt.timedelta(days=int(rng.integers(0, 6)), minutes=minutes)
            state = "current"
        else:
            start = now - dt.timedelta(days=int(rng.integers(7, 5 * 365)), minutes=minutes)
            state = "past"
        start = max(start, birth + dt.timedelta(days=1))
        length = {
            "full": dt.timedelta(days=int(rng.geometric(0.2))),
            "day_case": dt.timedelta(hours=int(rng.integers(4, 10))),
            "consultation": dt.timedelta(minutes=30),
            "emergency": dt.timedelta(hours=int(rng.integers(2, 9))),
            "residence": dt.timedelta(days=365),
        }[kind]
        stay = StayRec(
            id=self.ids.next(),
            patient_id=patient.id,
            establishment_id=est.id,
            service_id=service.id,
            kind=kind,
            planned_admission=start,
            planned_discharge=None if kind == "residence" else start + length,
            admitted_at=None if state == "upcoming" else start,
            discharged_at=start + length if state == "past" else None,
            reason=ref.STAY_REASONS[code][int(rng.integers(len(ref.STAY_REASONS[code])))],
        )
        self.group.stays.append(stay)
        doctors = prescribers.get(service.id)
        if state != "upcoming" and kind != "consultation" and doctors and rng.random() < 0.7:
            lines = tuple(
                LineRec(self.ids.next(), pos, self._line())
                for pos in range(1, int(rng.integers(1, 5)) + 1)
            )
            at = start + dt.timedelta(hours=1)
            self.group.prescriptions.append(
                PrescriptionRec(
                    id=self.ids.next(),
                    patient_id=patient.id,
                    stay_id=stay.id,
                    prescriber_id=doctors[int(rng.integers(len(doctors)))].id,
                    prescribed_at=at,
                    signed_at=None if state == "current" and rng.random() < 0.3 else at,
                    lines=lines,
                )
            )

    def _line(self) -> dict[str, object]:
        drug, dose, route, frequency, days = ref.PRESCRIPTION_LINES[
            int(self.rng.integers(len(ref.PRESCRIPTION_LINES)))
        ]
        return {
            "drug": drug,
            "dose": dose,
            "route": route,
            "frequency": frequency,
            "duration_days": days,
            "instructions": "",
        }


def generate_group(
    *,
    seed: int,
    patients: int,
    today: dt.date,
    clinics: int = 3,
    health_centres: int = 1,
    nursing_homes: int = 1,
    stays_per_patient: float = 1.5,
) -> Group:
    gen = GroupGenerator(seed=seed, today=today)
    families = FamilyNames.build(gen.rng, size=max(2_000, min(250_000, patients // 3)))
    given = GivenNames()
    gen.establishments(clinics, health_centres, nursing_homes)
    gen.practitioners(families, given, gps=max(20, patients // 400))
    gen.patients(patients, families, given)
    gen.stays(stays_per_patient)
    return gen.group
