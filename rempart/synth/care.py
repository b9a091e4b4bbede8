"""The stays, prescriptions and prescription lines of a chunk of patients, drawn as NumPy arrays.

A chunk of 20,000 patients has about 30,000 stays, 16,000 prescriptions and 41,000 lines: drawn one
value at a time in Python, with a record object each, they were the largest part of generating the
group. Here every draw is an array over the chunk, and the bulk loader turns the arrays into
PostgreSQL's binary COPY rows without a Python object per row; the records (StayRec, ...) are only
made for the in-memory group of tests and for SQLite.

The law is the same as when stays were drawn one by one: about 1.5 stays per patient
(1 + Poisson(0.5)), a first establishment weighted 3 for clinics, 30 % of later stays elsewhere;
nursing-home residents (75 and over, 1.5 % of the group) have a residence stay first; 3 % of stays
upcoming, 3 % of full stays current; lengths by kind; 70 % of eligible stays have a prescription
of 1 to 4 lines, 30 % of those of current stays unsigned.

Ids: each stay is a record made at a time of the chunk's clock (generator.Ids), the chunk's
stays in random order, its prescription and lines in the same millisecond; the IPP rows follow,
in the order of their numbers, at the clock's next times. Canaries are placed among real rows by
these laws (access/canaries.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np

from rempart.lib.identifiers import ipp_step
from rempart.synth import data as ref
from rempart.synth.generator import (
    PARIS,
    Ids,
    LineRec,
    PatientRec,
    PrescriptionRec,
    StayRec,
)

if TYPE_CHECKING:
    from rempart.synth.population import Directory

US = 1_000_000
MINUTE, HOUR, DAY = 60 * US, 3_600 * US, 86_400 * US
_UNIX = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_UNIX_PARIS = _UNIX.astimezone(PARIS)
_PG_EPOCH_US = 946_684_800 * US  # 2000-01-01, PostgreSQL's epoch, from 1970's

KINDS = ("full", "day_case", "emergency", "consultation", "residence")
FULL, DAY_CASE, EMERGENCY, CONSULTATION, RESIDENCE = range(len(KINDS))
_KIND_BY_SERVICE = {"URG": EMERGENCY, "CONS": CONSULTATION, "SOINS": CONSULTATION,
                    "AMBU": DAY_CASE, "HEB": RESIDENCE, "UPAD": RESIDENCE}  # fmt: skip
PAST, CURRENT, UPCOMING = range(3)

# The shipped line templates, shared and never modified (the loader seals them).
LINE_CONTENTS: tuple[dict[str, object], ...] = tuple(
    {"drug": drug, "dose": dose, "route": route, "frequency": frequency,
     "duration_days": days, "instructions": ""}
    for drug, dose, route, frequency, days in ref.PRESCRIPTION_LINES
)  # fmt: skip


@dataclass
class CareArrays:
    """One row per stay, prescription and line. Times are microseconds since 1970 (UTC); ids
    are the UUIDs' two 64-bit halves."""

    stay_ids: np.ndarray  # (S, 2) uint64
    stay_patient: np.ndarray  # index in the chunk's patients
    stay_establishment: np.ndarray  # index in the directory's establishments
    stay_service: np.ndarray  # index in the directory's services
    stay_kind: np.ndarray  # index in KINDS
    stay_state: np.ndarray  # PAST, CURRENT, UPCOMING
    stay_reason: np.ndarray  # index in the service's STAY_REASONS
    stay_start: np.ndarray
    stay_end: np.ndarray
    rx_ids: np.ndarray  # (P, 2) uint64
    rx_stay: np.ndarray  # index in the stays
    rx_prescriber: np.ndarray  # index in the directory's practitioners
    rx_signed: np.ndarray  # bool
    line_ids: np.ndarray  # (L, 2) uint64
    line_rx: np.ndarray  # index in the prescriptions
    line_position: np.ndarray  # 1, 2, ...
    line_template: np.ndarray  # index in ref.PRESCRIPTION_LINES
    visits: np.ndarray  # (V, 2): (patient, establishment) indexes, in order of first visit
    visit_ids: np.ndarray  # (V, 2) uint64: the IPP rows' ids

    # NULLs: no planned discharge for a residence, no admission before it happens, no discharge
    # before it is over.
    @property
    def has_planned_discharge(self) -> np.ndarray:
        present: np.ndarray = self.stay_kind != RESIDENCE
        return present

    @property
    def admitted(self) -> np.ndarray:
        present: np.ndarray = self.stay_state != UPCOMING
        return present

    @property
    def discharged(self) -> np.ndarray:
        present: np.ndarray = self.stay_state == PAST
        return present


class _Layout:
    """The directory as index arrays: services by establishment, kinds, reasons, doctors."""

    def __init__(self, d: Directory) -> None:
        self.establishments = d.establishments
        self.services = d.services
        where = {e.id: i for i, e in enumerate(self.establishments)}
        # services are listed establishment by establishment: each one's are a contiguous run
        owner = np.array([where[s.establishment_id] for s in self.services])
        if len(owner) and np.any(np.diff(owner) < 0):
            raise ValueError("services must be listed establishment by establishment")
        self.service_offset = np.searchsorted(owner, np.arange(len(self.establishments)))
        self.service_count = np.bincount(owner, minlength=len(self.establishments))
        self.service_kind = np.array([_KIND_BY_SERVICE.get(s.code, FULL) for s in self.services])
        self.reason_count = np.array([len(ref.STAY_REASONS[s.code]) for s in self.services])
        practitioners = d.practitioners
        by_service: dict[uuid.UUID, list[int]] = {}
        for i, p in enumerate(practitioners):
            if p.service_id is not None:
                by_service.setdefault(p.service_id, []).append(i)
        runs = [by_service.get(s.id, []) for s in self.services]
        self.doctor_count = np.array([len(r) for r in runs])
        self.doctor_offset = np.concatenate(([0], np.cumsum(self.doctor_count)[:-1]))
        self.doctors = np.array([i for r in runs for i in r], dtype=np.int64)
        kinds = [e.kind for e in self.establishments]
        self.homes = np.array([i for i, k in enumerate(kinds) if k == "nursing_home"], dtype=int)
        self.others = np.array([i for i, k in enumerate(kinds) if k != "nursing_home"], dtype=int)
        weights = np.array([3.0 if kinds[i] == "clinic" else 1.0 for i in self.others])
        self.other_weights = weights / weights.sum()


def _below(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """A uniform index below each count (count >= 1)."""
    drawn: np.ndarray = np.minimum((rng.random(len(counts)) * counts).astype(np.int64), counts - 1)
    return drawn


def _id_halves(rng: np.random.Generator, ms: np.ndarray) -> np.ndarray:
    """UUIDv7 at these milliseconds, random bits from the seed: what Ids.at makes, as arrays.
    The two random fields are drawn apart (taken from one number, their bits repeated each
    other's, which a planted id's do not: tests/test_canary_attack.py)."""
    rand_a = rng.integers(0, 2**12, size=len(ms), dtype=np.int64).astype(np.uint64)
    rand_b = rng.integers(0, 2**62, size=len(ms), dtype=np.int64).astype(np.uint64)
    halves = np.empty((len(ms), 2), dtype=np.uint64)
    halves[:, 0] = ((ms.astype(np.uint64) & np.uint64(2**48 - 1)) << np.uint64(16)) | np.uint64(
        0x7 << 12
    ) | rand_a  # fmt: skip
    halves[:, 1] = np.uint64(0b10 << 62) | rand_b
    return halves


def make_care(
    directory: Directory,
    patients: list[PatientRec],
    rng: np.random.Generator,
    ids: Ids,
) -> CareArrays:
    layout = _Layout(directory)
    today = directory.today
    now = (dt.datetime.combine(today, dt.time(12), tzinfo=PARIS) - _UNIX) // dt.timedelta(
        microseconds=1
    )
    n = len(patients)
    birth_days = np.array([(p.data.birth_date - _UNIX.date()).days for p in patients], np.int64)
    # Nursing homes: about 1.5 % of the group lives in one, all aged 75 and over.
    elderly = np.flatnonzero((today - _UNIX.date()).days - birth_days > 75 * 365)
    home_of = np.full(n, -1, dtype=np.int64)
    if len(layout.homes):
        per_home = max(1, n * 15 // 1000 // len(layout.homes))
        chosen = elderly[rng.permutation(len(elderly))][: per_home * len(layout.homes)]
        home_of[chosen] = layout.homes[np.arange(len(chosen)) // per_home]
    extra = rng.poisson(0.5, n)
    first = layout.others[rng.choice(len(layout.others), size=n, p=layout.other_weights)]

    # --- stays: 1 + extra per patient, the residence first -----------------------------------
    per_patient = 1 + extra
    s_count = int(per_patient.sum())
    patient = np.repeat(np.arange(n), per_patient)
    starts = np.concatenate(([0], np.cumsum(per_patient)[:-1]))
    position = np.arange(s_count) - np.repeat(starts, per_patient)
    resident = (home_of[patient] >= 0) & (position == 0)
    later = position > (home_of[patient] >= 0)  # not the first stay outside a nursing home
    elsewhere = layout.others[rng.choice(len(layout.others), size=s_count, p=layout.other_weights)]
    moved = later & (rng.random(s_count) < 0.3)
    establishment = np.where(resident, home_of[patient], np.where(moved, elsewhere, first[patient]))
    count = layout.service_count[establishment]
    service = layout.service_offset[establishment] + np.where(
        resident, 0, _below(rng, np.maximum(count, 1))
    )
    kind = layout.service_kind[service]
    roll = rng.random(s_count)
    minutes = rng.integers(0, 24 * 60, s_count) * MINUTE
    upcoming = ~resident & (roll < 0.03)
    current = resident | (~upcoming & (roll < 0.06) & (kind == FULL))
    state = np.select([upcoming, current], [UPCOMING, CURRENT], PAST)
    start = np.select(
        [resident, upcoming, current],
        [now - rng.integers(30, 6 * 365, s_count) * DAY - minutes,
         now + rng.integers(1, 30, s_count) * DAY + minutes,
         now - rng.integers(0, 6, s_count) * DAY - minutes],
        now - rng.integers(7, 5 * 365, s_count) * DAY - minutes,
    )  # fmt: skip
    born = birth_days[patient] * DAY - HOUR  # midnight in Paris (UTC+1)
    start = np.maximum(start, born + DAY)
    length = np.select(
        [kind == FULL, kind == DAY_CASE, kind == EMERGENCY, kind == CONSULTATION],
        [rng.geometric(0.2, s_count) * DAY, rng.integers(4, 10, s_count) * HOUR,
         rng.integers(2, 9, s_count) * HOUR, np.full(s_count, 30 * MINUTE)],
        365 * DAY,
    )  # fmt: skip
    reason = _below(rng, layout.reason_count[service])

    # --- prescriptions and their lines ---------------------------------------------------------
    eligible = (
        ~upcoming
        & (kind != CONSULTATION)
        & (layout.doctor_count[service] > 0)
        & (rng.random(s_count) < 0.7)
    )
    rx_stay = np.flatnonzero(eligible)
    p_count = len(rx_stay)
    rx_service = service[rx_stay]
    prescriber = layout.doctors[
        layout.doctor_offset[rx_service]
        + _below(rng, np.maximum(layout.doctor_count[rx_service], 1))
    ]
    signed = ~((state[rx_stay] == CURRENT) & (rng.random(p_count) < 0.3))
    lines_per_rx = rng.integers(1, 5, p_count)
    line_rx = np.repeat(np.arange(p_count), lines_per_rx)
    rx_first_line = np.cumsum(lines_per_rx) - lines_per_rx  # empty when no stay has one
    line_position = np.arange(len(line_rx)) - np.repeat(rx_first_line, lines_per_rx) + 1
    template = rng.integers(0, len(ref.PRESCRIPTION_LINES), len(line_rx))

    # --- ids: a stay, its prescription and its lines made in one millisecond ------------------
    # The stays of the chunk are made in random order: a patient's stays are not next to each
    # other in id order (in a real record they are years apart), so a canary's need not be.
    stay_ms = ids.times(s_count)[rng.permutation(s_count)]
    line_ms = np.repeat(stay_ms[rx_stay], lines_per_rx)
    rx_ms = stay_ms[rx_stay]
    stay_ids, line_ids, rx_ids = (_id_halves(rng, ms) for ms in (stay_ms, line_ms, rx_ms))

    # --- IPPs: each patient's establishments in order of first visit ---------------------------
    key = patient * len(layout.establishments) + establishment
    _, first_seen = np.unique(key, return_index=True)
    first_seen.sort()
    visits = np.stack([patient[first_seen], establishment[first_seen]], axis=1)
    # Their rows are made in that order, each establishment's at the times of its own Poisson
    # process over the next stretch of the clock. A number left free (a registration rolled
    # back) took its time too: the rows around a free number are as far apart in time as two
    # registrations there, and a canary that takes it later fits between them as a real row
    # would (access/canaries.py).
    places = layout.establishments
    steps = np.array([ipp_step(patients[p].id.int ^ places[e].id.int)
                      for p, e in visits.tolist()], dtype=np.int64)  # fmt: skip
    begin, span = ids.stretch(int(steps.sum()))
    visit_ms = np.zeros(len(visits), dtype=np.int64)
    for place in np.unique(visits[:, 1]).tolist():
        mine = np.flatnonzero(visits[:, 1] == place)
        taken = np.cumsum(steps[mine])
        stamps = begin + np.sort(rng.random(int(taken[-1]))) * span
        visit_ms[mine] = stamps[taken - 1].astype(np.int64)
    visit_ids = _id_halves(rng, visit_ms)
    return CareArrays(
        stay_ids, patient, establishment, service, kind, state, reason, start, start + length,
        rx_ids, rx_stay, prescriber, signed,
        line_ids, line_rx, line_position, template, visits, visit_ids,
    )  # fmt: skip


# --- records: the in-memory group (tests) and SQLite ---------------------------------------------


def uuids(halves: np.ndarray) -> list[uuid.UUID]:
    return [uuid.UUID(int=(hi << 64) | lo) for hi, lo in halves.tolist()]


def _times(values: np.ndarray) -> list[dt.datetime]:
    return [_UNIX_PARIS + dt.timedelta(microseconds=v) for v in values.tolist()]


def _times_or_none(values: np.ndarray, present: np.ndarray) -> list[dt.datetime | None]:
    made: list[dt.datetime | None] = list(_times(values))
    for i in np.flatnonzero(~present).tolist():
        made[i] = None
    return made


def care_records(
    care: CareArrays, directory: Directory, patients: list[PatientRec]
) -> tuple[list[StayRec], list[PrescriptionRec]]:
    layout = _Layout(directory)
    practitioners = directory.practitioners
    stay_ids = uuids(care.stay_ids)
    start = _times(care.stay_start)
    planned_discharge = _times_or_none(care.stay_end, care.has_planned_discharge)
    admitted = _times_or_none(care.stay_start, care.admitted)
    discharged = _times_or_none(care.stay_end, care.discharged)
    stays = [
        StayRec(
            id=stay_ids[i],
            patient_id=patients[p].id,
            establishment_id=layout.establishments[e].id,
            service_id=layout.services[s].id,
            kind=KINDS[k],
            planned_admission=start[i],
            planned_discharge=planned_discharge[i],
            admitted_at=admitted[i],
            discharged_at=discharged[i],
            reason=ref.STAY_REASONS[layout.services[s].code][r],
        )
        for i, (p, e, s, k, r) in enumerate(
            zip(care.stay_patient.tolist(), care.stay_establishment.tolist(),
                care.stay_service.tolist(), care.stay_kind.tolist(), care.stay_reason.tolist(),
                strict=True)
        )
    ]  # fmt: skip
    line_ids = uuids(care.line_ids)
    lines: list[list[LineRec]] = [[] for _ in range(len(care.rx_stay))]
    for i, (rx, position, template) in enumerate(
        zip(care.line_rx.tolist(), care.line_position.tolist(), care.line_template.tolist(),
            strict=True)
    ):  # fmt: skip
        lines[rx].append(LineRec(line_ids[i], position, LINE_CONTENTS[template]))
    prescriptions = []
    for j, (rx_id, stay, prescriber, signed) in enumerate(
        zip(uuids(care.rx_ids), care.rx_stay.tolist(), care.rx_prescriber.tolist(),
            care.rx_signed.tolist(), strict=True)
    ):  # fmt: skip
        at = start[stay] + dt.timedelta(hours=1)
        prescriptions.append(
            PrescriptionRec(
                id=rx_id,
                patient_id=stays[stay].patient_id,
                stay_id=stays[stay].id,
                prescriber_id=practitioners[prescriber].id,
                prescribed_at=at,
                signed_at=at if signed else None,
                lines=tuple(lines[j]),
            )
        )
    return stays, prescriptions


# --- PostgreSQL's binary COPY, straight from the arrays ------------------------------------------

_NULL = b"\xff\xff\xff\xff"


def _uuid_fields(halves: np.ndarray) -> np.ndarray:
    """(k, 20) bytes: each id as a binary COPY uuid value (length 16, then the 16 bytes)."""
    fields = np.zeros((len(halves), 20), dtype=np.uint8)
    fields[:, 3] = 16
    fields[:, 4:] = halves.astype(">u8").view(np.uint8).reshape(len(halves), 16)
    return fields


def _time_fields(values: np.ndarray) -> np.ndarray:
    """(k, 12) bytes: binary COPY timestamptz values (length 8, microseconds since 2000)."""
    fields = np.zeros((len(values), 12), dtype=np.uint8)
    fields[:, 3] = 8
    fields[:, 4:] = (values - _PG_EPOCH_US).astype(">i8").view(np.uint8).reshape(len(values), 8)
    return fields


def _cells(*parts: np.ndarray) -> list[bytes]:
    """Fixed-width parts side by side, one bytes value per row."""
    joined = np.ascontiguousarray(np.concatenate(parts, axis=1))
    cells: list[bytes] = joined.view(f"V{joined.shape[1]}").ravel().tolist()
    return cells


def _nullable(cells: list[bytes], present: np.ndarray) -> list[bytes]:
    for i in np.flatnonzero(~present).tolist():
        cells[i] = _NULL
    return cells


def _count(columns: int, rows: int) -> np.ndarray:
    return np.tile(np.array([0, columns], dtype=np.uint8), (rows, 1))


def _text(value: str) -> bytes:
    data = value.encode()
    return len(data).to_bytes(4, "big") + data


Seal = Callable[[bytes, bytes], bytes]


def stay_rows(
    care: CareArrays,
    patient_fields: np.ndarray,
    directory_fields: tuple[np.ndarray, np.ndarray],
    reasons: list[list[bytes]],
    seal: Seal,
    ad_prefix: bytes,
) -> list[bytes]:
    """The stays' rows in the table's column order: id, patient, establishment, service, kind,
    planned admission and discharge, admitted, discharged, reason (sealed), cancelled (NULL).
    `reasons[service][k]` is the encoded reason; `seal(payload, associated data)` seals it."""
    establishment_fields, service_fields = directory_fields
    size = len(care.stay_patient)
    stay_id = _uuid_fields(care.stay_ids)
    heads = _cells(_count(11, size), stay_id, patient_fields[care.stay_patient],
                   establishment_fields[care.stay_establishment],
                   service_fields[care.stay_service])  # fmt: skip
    kinds = [_text(k) for k in KINDS]
    kind = [kinds[k] for k in care.stay_kind.tolist()]
    start = _cells(_time_fields(care.stay_start))
    end = _cells(_time_fields(care.stay_end))
    planned_discharge = _nullable(list(end), care.has_planned_discharge)
    admitted = _nullable(list(start), care.admitted)
    discharged = _nullable(end, care.discharged)
    ids = stay_id[:, 4:].copy().view("V16").ravel().tolist()
    pairs = zip(care.stay_service.tolist(), care.stay_reason.tolist(), ids, strict=True)
    sealed = [seal(reasons[s][r], ad_prefix + i) for s, r, i in pairs]
    reason = [len(v).to_bytes(4, "big") + v for v in sealed]
    return [
        b"".join(cells)
        for cells in zip(
            heads,
            kind,
            start,
            planned_discharge,
            admitted,
            discharged,
            reason,
            repeat(_NULL),
            strict=False,
        )
    ]


def prescription_rows(
    care: CareArrays,
    patient_fields: np.ndarray,
    practitioner_fields: np.ndarray,
    signed_status: str,
    draft_status: str,
) -> list[bytes]:
    """id, patient, stay, prescriber, prescribed at, status, signed at."""
    size = len(care.rx_stay)
    at = care.stay_start[care.rx_stay] + HOUR
    heads = _cells(_count(7, size), _uuid_fields(care.rx_ids),
                   patient_fields[care.stay_patient[care.rx_stay]],
                   _uuid_fields(care.stay_ids[care.rx_stay]),
                   practitioner_fields[care.rx_prescriber], _time_fields(at))  # fmt: skip
    signed_at = _cells(_time_fields(at))
    signed, draft = _text(signed_status), _text(draft_status) + _NULL
    return [
        head + signed + when if is_signed else head + draft
        for head, when, is_signed in zip(heads, signed_at, care.rx_signed.tolist(), strict=True)
    ]


def line_rows(care: CareArrays, payloads: list[bytes], seal: Seal, ad_prefix: bytes) -> list[bytes]:
    """id, prescription, position (smallint), content (sealed)."""
    size = len(care.line_rx)
    line_id = _uuid_fields(care.line_ids)
    position = np.zeros((size, 6), dtype=np.uint8)
    position[:, 3] = 2
    position[:, 4:] = care.line_position.astype(">i2").view(np.uint8).reshape(size, 2)
    heads = _cells(_count(4, size), line_id, _uuid_fields(care.rx_ids)[care.line_rx], position)
    ids = line_id[:, 4:].copy().view("V16").ravel().tolist()
    rows = []
    for head, template, row_id in zip(heads, care.line_template.tolist(), ids, strict=True):
        sealed = seal(payloads[template], ad_prefix + row_id)
        rows.append(head + len(sealed).to_bytes(4, "big") + sealed)
    return rows


def uuid_field_table(values: list[uuid.UUID]) -> np.ndarray:
    """(k, 20): binary COPY uuid values of known ids (patients, the directory)."""
    halves = np.array([divmod(v.int, 1 << 64) for v in values], dtype=np.uint64).reshape(-1, 2)
    return _uuid_fields(halves)
