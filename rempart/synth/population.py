"""Patients, stays and prescriptions of the synthetic group, made in chunks with NumPy.

A chunk is a fixed slice of patients (CHUNK_SIZE) with its own random stream derived from the seed
and the chunk number, so the group is the same whether one process or several make it. NIR order
numbers are split between chunks, so no two patients anywhere share a NIR.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from rempart.lib.identifiers import ipp_step, nir_check_digits
from rempart.lib.timings import Timings
from rempart.patients.validation import PatientData
from rempart.synth import data as ref
from rempart.synth.care import CareArrays, care_records, make_care, uuids
from rempart.synth.generator import (
    EstablishmentRec,
    Group,
    GroupGenerator,
    Ids,
    PatientRec,
    PractitionerRec,
    PrescriptionRec,
    ServiceRec,
    StayRec,
)
from rempart.synth.names import FamilyNames, GivenNames

CHUNK_SIZE = 20_000

Visit = tuple[uuid.UUID, uuid.UUID, uuid.UUID]  # the IPP row's id, the patient, the establishment
FAMILY_POOL_MAX = 250_000


@dataclass
class Chunk:
    index: int
    patients: list[PatientRec] = field(default_factory=list)
    stays: list[StayRec] = field(default_factory=list)
    prescriptions: list[PrescriptionRec] = field(default_factory=list)
    # (IPP row id, patient, establishment) in order of first visit: IPPs are numbered from these.
    visits: list[Visit] = field(default_factory=list)
    care: CareArrays | None = None  # the stays, prescriptions and lines as arrays


@dataclass(frozen=True)
class Directory:
    """What every chunk needs to know of the group, built once from the seed."""

    seed: int
    today: dt.date
    patients: int
    establishments: list[EstablishmentRec]
    services: list[ServiceRec]
    practitioners: list[PractitionerRec]
    families: FamilyNames

    @property
    def chunks(self) -> int:
        return -(-self.patients // CHUNK_SIZE)


def build_directory(
    *,
    seed: int,
    patients: int,
    today: dt.date,
    clinics: int,
    health_centres: int,
    nursing_homes: int,
) -> Directory:
    gen = GroupGenerator(seed=seed, today=today)
    pool_rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    families = FamilyNames.build(pool_rng, size=max(2_000, min(FAMILY_POOL_MAX, patients // 3)))
    gen.establishments(clinics, health_centres, nursing_homes)
    gen.practitioners(families, GivenNames(), gps=max(20, patients // 400))
    g = gen.group
    return Directory(seed, today, patients, g.establishments, g.services, g.practitioners, families)


@lru_cache(maxsize=100_000)
def _ascii_lower(value: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))
    return re.sub(r"[^a-z]", "", plain.lower())


def _weights(items: tuple[tuple[object, ...], ...]) -> np.ndarray:
    w = np.array([float(str(i[-1])) for i in items])
    normalised: np.ndarray = w / w.sum()
    return normalised


_DEPTS = tuple(d for d, _ in ref.BIRTH_DEPARTMENTS)
_DEPT_W = _weights(ref.BIRTH_DEPARTMENTS)
_MAINLAND = np.array([d not in ("2A", "2B") for d in _DEPTS])
_DEPT_W_NO_CORSICA = np.where(_MAINLAND, _DEPT_W, 0.0) / np.where(_MAINLAND, _DEPT_W, 0.0).sum()
_COUNTRY_W = _weights(ref.BIRTH_COUNTRIES)
_RESIDENCE_W = _weights(ref.RESIDENCES)
_EMAIL_W = _weights(ref.EMAIL_DOMAINS)
_DECADES = tuple(sorted(ref.GIVEN_NAMES_BY_DECADE))
_STATUSES = ("QUAL", "VALI", "RECUP", "PROV")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _elderly_ages(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ages of the over-65s: normal around 78, redrawn (not clipped) outside 65-104, so no birth
    date gathers a pile of patients at the bounds."""
    ages = rng.normal(78, 9, n)
    outside = (ages < 65) | (ages > 104)
    ages[outside] = rng.uniform(65, 95, int(outside.sum()))
    return ages


class ChunkGenerator:
    def __init__(self, directory: Directory, index: int) -> None:
        self.d = directory
        self.index = index
        self.rng = np.random.default_rng(np.random.SeedSequence([directory.seed, 1, index]))
        start = dt.datetime.combine(directory.today, dt.time(), tzinfo=dt.UTC)
        self.ids = Ids(self.rng, start + dt.timedelta(hours=3 * index))
        self.start = index * CHUNK_SIZE
        self.size = min(CHUNK_SIZE, directory.patients - self.start)
        # NIR order numbers 001-999 are shared out between chunks: no NIR twice in the group.
        span = max(1, 999 // directory.chunks)
        self.order_base = 1 + (index * span) % 999
        self.order_span = span
        self.given = GivenNames()
        self.chunk = Chunk(index)

    def make(
        self, *, with_care: bool = True, records: bool = True, timings: Timings | None = None
    ) -> Chunk:
        """The chunk's patients and, `with_care`, their stays and prescriptions as arrays, and
        as records too if `records` (the bulk loader writes PostgreSQL's rows from the arrays)."""
        timings = timings or Timings()
        with timings.phase("make patients"):
            self._patients()
        if with_care:
            with timings.phase("make stays, prescriptions"):
                care = make_care(self.d, self.chunk.patients, self.rng, self.ids)
                patients, places = self.chunk.patients, self.d.establishments
                self.chunk.care = care
                self.chunk.visits = [
                    (ipp_id, patients[p].id, places[e].id)
                    for ipp_id, (p, e) in zip(uuids(care.visit_ids), care.visits.tolist(),
                                              strict=True)
                ]  # fmt: skip
            if records:
                with timings.phase("stay and prescription records"):
                    stays, prescriptions = care_records(care, self.d, patients)
                    self.chunk.stays, self.chunk.prescriptions = stays, prescriptions
        return self.chunk

    # --- patients ---------------------------------------------------------------------------------

    def _patients(self) -> None:
        n, rng, d = self.size, self.rng, self.d
        today = np.datetime64(d.today, "D")
        female = rng.random(n) < 0.54
        band = rng.choice(3, size=n, p=[0.1, 0.45, 0.45])
        years = np.select(
            [band == 0, band == 1],
            [rng.uniform(0, 18, n), rng.uniform(18, 65, n)],
            _elderly_ages(rng, n),
        )
        birth = today - (years * 365.25).astype(np.int64) - 1
        birth_year = birth.astype("datetime64[Y]").astype(np.int64) + 1970
        birth_month = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
        age = (years).astype(np.int64)
        family = d.families.draw(rng, n)
        second = d.families.draw(rng, n)
        hyphen = (birth_year >= 2005) & (rng.random(n) < 0.06)
        married = female & (age >= 25) & (rng.random(n) < 0.34)
        counts = rng.choice([1, 2, 3], size=n, p=[0.4, 0.4, 0.2])
        abroad = rng.random(n) < 0.12
        country = rng.choice(len(ref.BIRTH_COUNTRIES), size=n, p=_COUNTRY_W)
        dept = rng.choice(len(_DEPTS), size=n, p=_DEPT_W)
        corsica_too_early = ~_MAINLAND[dept] & (birth_year < 1976)
        dept[corsica_too_early] = rng.choice(
            len(_DEPTS), size=int(corsica_too_early.sum()), p=_DEPT_W_NO_CORSICA
        )
        commune = rng.integers(1, 500, n)
        arrondissement = rng.integers(1, 21, n)
        dom_commune = rng.integers(1, 35, n)
        status = rng.choice(4, size=n, p=[0.6, 0.15, 0.1, 0.15])
        nir_anyway = rng.random(n) < 0.5
        orders = rng.integers(0, self.order_span, n)
        has_email = (age >= 16) & (age < 85) & (rng.random(n) < 0.7)
        domain = rng.choice(len(ref.EMAIL_DOMAINS), size=n, p=_EMAIL_W)
        email_number = np.where(rng.random(n) < 0.6, rng.integers(1, 100, n), 0)
        has_mobile = rng.random(n) < 0.85
        has_home = rng.random(n) < 0.35
        mobile_prefix = rng.integers(6, 8, n)
        mobile = rng.integers(0, 10**8, n)
        home = rng.integers(0, 10**8, n)
        residence = rng.choice(len(ref.RESIDENCES), size=n, p=_RESIDENCE_W)
        street_no = rng.integers(1, 180, n)
        street_kind = rng.integers(0, len(ref.STREET_KINDS), n)
        street_name = rng.integers(0, len(ref.STREET_NAMES), n)
        gps = [p.id for p in d.practitioners if not p.internal]
        gp = rng.integers(0, len(gps), n)
        has_gp = rng.random(n) < 0.85
        given_u = rng.random((n, 3))
        given_pick = rng.random((n, 3))
        names = d.families.names
        nirs: set[str] = set()
        # Python lists, not arrays, in the loop: indexing an array makes a NumPy scalar each time
        # (a third of the loop's time). The values are the same.
        (female, birth_year, birth_month, family, second, hyphen, married, counts, abroad,
         country, dept, commune, arrondissement, dom_commune, status, nir_anyway, orders,
         has_email, domain, email_number, has_mobile, has_home, mobile_prefix, mobile, home,
         residence, street_no, street_kind, street_name, gp, has_gp, given_u, given_pick) = (
            a.tolist() for a in (
                female, birth_year, birth_month, family, second, hyphen, married, counts, abroad,
                country, dept, commune, arrondissement, dom_commune, status, nir_anyway, orders,
                has_email, domain, email_number, has_mobile, has_home, mobile_prefix, mobile,
                home, residence, street_no, street_kind, street_name, gp, has_gp, given_u,
                given_pick))  # fmt: skip
        birth_dates = [dt.date.fromordinal(_EPOCH_ORDINAL + d) for d in birth.astype(np.int64)]

        for i in range(n):
            sex = "F" if female[i] else "M"
            year = birth_year[i]
            birth_name = names[family[i]]
            if hyphen[i]:
                birth_name = f"{birth_name}-{names[second[i]]}"
            usage_name = names[second[i]] if married[i] else ""
            given = self.given.pick(sex, year, counts[i], given_u[i], given_pick[i])
            if abroad[i]:
                place = ref.BIRTH_COUNTRIES[country[i]][0]
            else:
                dep = _DEPTS[dept[i]]
                if dep == "75":
                    place = f"751{arrondissement[i]:02d}"
                elif len(dep) == 3:
                    place = f"{dep}{dom_commune[i]:02d}"
                else:
                    place = f"{dep}{commune[i]:03d}"
            st = _STATUSES[status[i]]
            nir = ""
            if st in ("QUAL", "RECUP") or nir_anyway[i]:
                nir = self._nir(sex, year, birth_month[i], place, orders[i], nirs)
            first = given[0]
            email = ""
            if has_email[i]:
                local = f"{_ascii_lower(first)}.{_ascii_lower(usage_name or birth_name)}"
                if email_number[i]:
                    local += str(email_number[i])
                email = f"{local}@{ref.EMAIL_DOMAINS[domain[i]][0]}"
            postcode, city, _ = ref.RESIDENCES[residence[i]]
            m = f"0{mobile_prefix[i]}{mobile[i]:08d}"
            h = f"01{home[i]:08d}"
            self.chunk.patients.append(
                PatientRec(
                    self.ids.next(),
                    PatientData(
                        birth_name=birth_name,
                        usage_name=usage_name,
                        given_names=" ".join(given),
                        first_given_name=first,
                        sex=sex,
                        birth_date=birth_dates[i],
                        birth_place_code=place,
                        nir=nir,
                        identity_status=st,
                        email=email,
                        phone_mobile=f"{m[:2]} {m[2:4]} {m[4:6]} {m[6:8]} {m[8:]}"
                        if has_mobile[i]
                        else "",
                        phone_home=f"{h[:2]} {h[2:4]} {h[4:6]} {h[6:8]} {h[8:]}"
                        if has_home[i]
                        else "",
                        address_line=(
                            f"{street_no[i]} {ref.STREET_KINDS[street_kind[i]]} "
                            f"{ref.STREET_NAMES[street_name[i]]}"
                        ),
                        postcode=postcode,
                        city=city,
                        gp_id=gps[gp[i]] if has_gp[i] and gps else None,
                    ),
                )
            )

    def _nir(self, sex: str, year: int, month: int, place: str, order: int, taken: set[str]) -> str:
        head = f"{'1' if sex == 'M' else '2'}{year % 100:02d}{month:02d}{place}"
        for attempt in range(self.order_span):
            number = (self.order_base - 1 + (order + attempt) % self.order_span) % 999 + 1
            body = f"{head}{number:03d}"
            if body not in taken:
                taken.add(body)
                return body + nir_check_digits(body)
        return ""  # every order number of this cell is taken in this chunk: no NIR (rare)

    # --- stays and prescriptions ------------------------------------------------------------------


def make_chunk(
    directory: Directory,
    index: int,
    *,
    with_care: bool = True,
    records: bool = True,
    timings: Timings | None = None,
) -> Chunk:
    return ChunkGenerator(directory, index).make(
        with_care=with_care, records=records, timings=timings
    )


def number_ipps(
    visits: list[Visit], counters: dict[uuid.UUID, int]
) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, str]]:
    """IPP numbers in order of first visit, continuing each establishment's counter (about one
    number in IPP_GAP left free, for canaries)."""
    numbers = ipp_numbers([e for _, _, e in visits], visit_steps(visits), counters)
    return [(i, p, e, number) for (i, p, e), number in zip(visits, numbers, strict=True)]


def visit_steps(visits: list[Visit]) -> list[int]:
    """How far each visit moves its establishment's IPP counter (drawn from the two ids, so the
    chunk workers can compute it and the numbering stays the same)."""
    return [ipp_step(p.int ^ e.int) for _, p, e in visits]


def ipp_numbers(
    establishments: list[uuid.UUID], steps: list[int], counters: dict[uuid.UUID, int]
) -> list[str]:
    numbers = []
    for establishment_id, step in zip(establishments, steps, strict=True):
        value = counters[establishment_id] = counters.get(establishment_id, 0) + step
        numbers.append(f"{value:010d}")
    return numbers


def generate_group(
    *,
    seed: int,
    patients: int,
    today: dt.date,
    clinics: int = 3,
    health_centres: int = 1,
    nursing_homes: int = 1,
) -> Group:
    """The whole group in memory (tests and small demos; the bulk loader streams chunks)."""
    d = build_directory(
        seed=seed,
        patients=patients,
        today=today,
        clinics=clinics,
        health_centres=health_centres,
        nursing_homes=nursing_homes,
    )
    group = Group(
        seed=seed,
        today=today,
        establishments=d.establishments,
        services=d.services,
        practitioners=d.practitioners,
    )
    counters: dict[uuid.UUID, int] = {}
    for index in range(d.chunks):
        chunk = make_chunk(d, index)
        group.patients.extend(chunk.patients)
        group.stays.extend(chunk.stays)
        group.prescriptions.extend(chunk.prescriptions)
        group.ipps.extend(number_ipps(chunk.visits, counters))
    return group


def canary_identities(*, count: int, seed: int, today: dt.date | None = None) -> list[PatientData]:
    """Identities drawn exactly like the group's (same names, ages, places, NIRs), for canary
    patients: nothing in them tells them apart. No médecin traitant: they are in nobody's care."""
    today = today or dt.datetime.now(dt.UTC).date()
    d = build_directory(seed=seed, patients=count, today=today, clinics=1, health_centres=0,
                        nursing_homes=0)  # fmt: skip
    return [replace(p.data, gp_id=None) for p in make_chunk(d, 0, with_care=False).patients]
