"""The thief holding the dump and the source looks for the canaries, with every query on clear
columns we could think of: counts of stays, prescriptions and lines, how current and how old the
stays are, IPP positions and gaps, id times against creation stamps, heap order against id order,
identity status, which blind-index slots are empty, the audit trail, and twins (another patient
with a stay of the very same length in the same service). For each, the area under the ROC curve
of "canary" against the patient's score must stay near 0.5 (chance); the first version's
canaries scored 1.0 on "no stay" and on "last IPP numbers".

Canaries make 3 % of the test group here (50 among 1,500), so that a lift would show: with
this many, chance gives an AUC of 0.5 +/- 0.042 (one standard deviation)."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
from django.db import connection

from rempart.access.canaries import canaries_plant
from rempart.access.models import CanaryMark
from rempart.audit.context import Actor
from rempart.care.models import Stay
from rempart.patients.models import Patient

SYSTEM = Actor.system("tests")
PER_ESTABLISHMENT = 10
TOLERANCE = 0.17  # about 4 standard deviations of chance

# One row per patient; every column a score the thief might sort by. Clear columns only.
FEATURES_SQL = """
WITH st AS (
    SELECT patient_id, count(*) AS n, max(coalesce(discharged_at, now())) AS last_end,
           min(planned_admission) AS first_start,
           bool_or(discharged_at IS NULL) AS open_stay,
           avg(extract(epoch FROM discharged_at - admitted_at)) AS mean_length,
           count(DISTINCT establishment_id) AS places,
           min(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint) AS first_id_ms
    FROM care_stay GROUP BY patient_id),
pr AS (
    SELECT p.patient_id, count(DISTINCT p.id) AS n, count(l.id) AS lines,
           bool_or(p.status = 'draft') AS draft
    FROM care_prescription p LEFT JOIN care_prescriptionline l ON l.prescription_id = p.id
    GROUP BY p.patient_id),
ids AS (
    SELECT patient_id, count(*) AS n,
           max(ipp::bigint::float / greatest(c.last_value, 1)) AS ipp_position,
           min(('x' || substr(replace(i.id::text, '-', ''), 1, 12))::bit(48)::bigint) AS id_ms
    FROM patients_patientidentifier i JOIN patients_ippcounter c USING (establishment_id)
    GROUP BY patient_id),
gaps AS (
    SELECT patient_id,
           min(least(coalesce(ipp::bigint - prev, 99), coalesce(next - ipp::bigint, 99))) AS gap
    FROM (SELECT patient_id, ipp,
                 lag(ipp::bigint) OVER w AS prev, lead(ipp::bigint) OVER w AS next
          FROM patients_patientidentifier
          WINDOW w AS (PARTITION BY establishment_id ORDER BY ipp)) g
    GROUP BY patient_id),
ipp_order AS (
    SELECT patient_id, max(abs(by_ipp - by_id)) AS disorder FROM (
        SELECT patient_id,
               rank() OVER (PARTITION BY establishment_id ORDER BY ipp) AS by_ipp,
               rank() OVER (PARTITION BY establishment_id ORDER BY id) AS by_id
        FROM patients_patientidentifier) r
    GROUP BY patient_id),
heap AS (
    SELECT id, row_number() OVER (ORDER BY ctid) AS by_heap,
           row_number() OVER (ORDER BY id) AS by_id
    FROM patients_patient),
same_length AS (
    SELECT patient_id, sum(alike - 1) AS twins FROM (
        SELECT patient_id, count(*) OVER (
                   PARTITION BY service_id, kind, discharged_at - admitted_at) AS alike
        FROM care_stay
        WHERE kind IN ('full', 'day_case', 'emergency') AND discharged_at IS NOT NULL) s
    GROUP BY patient_id),
trail AS (
    SELECT patient_id, count(*) AS n FROM audit_event_patient GROUP BY patient_id)
SELECT p.id,
       coalesce(st.n, 0), coalesce(pr.n, 0), coalesce(pr.lines, 0),
       coalesce(pr.lines, 0)::float / greatest(coalesce(pr.n, 0), 1),
       coalesce(ids.n, 0), coalesce(st.places, 0),
       coalesce(extract(epoch FROM st.last_end), 0), coalesce(extract(epoch FROM st.first_start), 0),
       coalesce(st.open_stay, false)::int, coalesce(st.mean_length, 0),
       coalesce(pr.draft, false)::int,
       coalesce(ids.ipp_position, 0), coalesce(gaps.gap, 99), coalesce(ipp_order.disorder, 0),
       ('x' || substr(replace(p.id::text, '-', ''), 1, 12))::bit(48)::bigint,
       extract(epoch FROM p.created_at), extract(epoch FROM p.updated_at - p.created_at),
       abs(('x' || substr(replace(p.id::text, '-', ''), 1, 12))::bit(48)::bigint / 1000.0
           - extract(epoch FROM p.created_at)),
       coalesce(ids.id_ms, 0) - ('x' || substr(replace(p.id::text, '-', ''), 1, 12))::bit(48)::bigint,
       coalesce(st.first_id_ms, 0) - ('x' || substr(replace(p.id::text, '-', ''), 1, 12))::bit(48)::bigint,
       abs(heap.by_heap - heap.by_id),
       array_position(ARRAY['PROV', 'RECUP', 'VALI', 'QUAL'], p.identity_status::text),
       (p.bidx_name_usage IS NULL)::int, (p.bidx_nir IS NULL)::int, (p.bidx_email IS NULL)::int,
       (p.bidx_phone_mobile IS NULL)::int, (p.bidx_phone_home IS NULL)::int,
       p.index_key_id, length(p.identity), length(p.contact),
       coalesce(same_length.twins, 0), coalesce(trail.n, 0)
FROM patients_patient p
LEFT JOIN st ON st.patient_id = p.id LEFT JOIN pr ON pr.patient_id = p.id
LEFT JOIN ids ON ids.patient_id = p.id LEFT JOIN gaps ON gaps.patient_id = p.id
LEFT JOIN ipp_order ON ipp_order.patient_id = p.id JOIN heap ON heap.id = p.id
LEFT JOIN same_length ON same_length.patient_id = p.id LEFT JOIN trail ON trail.patient_id = p.id
"""  # noqa: E501

NAMES = [
    "stays", "prescriptions", "lines", "lines per prescription", "IPPs", "establishments",
    "last stay end", "first stay", "stay still open", "mean stay length", "draft prescription",
    "IPP position in the sequence", "IPP gap to neighbours", "IPP order against id order",
    "id time", "created_at", "updated - created", "|id time - created_at|",
    "IPP id time - patient id time", "first stay id time - patient id time",
    "heap order against id order", "identity status", "no usage-name index", "no NIR index",
    "no e-mail index", "no mobile index", "no home-phone index", "index key", "identity size",
    "contact size", "stays of the same length in the same service", "events in the trail",
]  # fmt: skip


ID_NAMES = [
    "rows sharing the patient id's millisecond", "rows sharing its stays' milliseconds",
    "prescription id time - its stay's", "line id time - its prescription's",
    "rows sorting before their stay's", "id spacing around the patient",
    "id spacing around its stays", "id spacing around its IPPs",
    "patients with the same stays moved in time", "stays with a look-alike among id neighbours",
    "ids whose random bits repeat each other",
]  # fmt: skip

_ID_TABLES = {
    # table: (the column that leads to the patient, how)
    "patients_patient": "SELECT id, id FROM patients_patient",
    "patients_patientidentifier": "SELECT id, patient_id FROM patients_patientidentifier",
    "care_stay": "SELECT id, patient_id FROM care_stay",
    "care_prescription": "SELECT id, patient_id FROM care_prescription",
    "care_prescriptionline": "SELECT l.id, p.patient_id FROM care_prescriptionline l "
    "JOIN care_prescription p ON p.id = l.prescription_id",
}


def id_features(cursor, patients: list[uuid.UUID]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """What the ids say, to a thief who knows UUIDv7 and reads every table's ids: how crowded
    each row's millisecond is, how far a record's rows are from each other in time and in sort
    order, how far apart a row's neighbours are in id order (a row slipped into the gap after
    another narrows that gap: the thief measures it). One row per patient, in `patients`' order."""
    rows: dict[str, list[tuple[int, uuid.UUID]]] = {}
    for table, sql in _ID_TABLES.items():
        cursor.execute(sql)
        rows[table] = [(i.int, owner) for i, owner in cursor.fetchall()]
    per_ms: dict[int, int] = {}
    owners_in_ms: dict[int, dict[uuid.UUID, int]] = {}
    for listed in rows.values():
        for value, owner in listed:
            ms = value >> 80
            per_ms[ms] = per_ms.get(ms, 0) + 1
            mine = owners_in_ms.setdefault(ms, {})
            mine[owner] = mine.get(owner, 0) + 1

    def others_in(value: int, owner: uuid.UUID) -> int:
        ms = value >> 80
        return per_ms[ms] - owners_in_ms[ms][owner]

    def spacing(table: str) -> dict[int, float]:
        ordered = sorted(v for v, _ in rows[table])
        out = {}
        for k, v in enumerate(ordered):
            low = ordered[k - 1] if k else v
            high = ordered[k + 1] if k + 1 < len(ordered) else v
            out[v] = math.log2(max(high - low, 1))
        return out

    spaced = {
        table: spacing(table)
        for table in ("patients_patient", "care_stay", "patients_patientidentifier")
    }
    cursor.execute(
        "SELECT s.patient_id, s.id, p.id, l.id FROM care_stay s "
        "LEFT JOIN care_prescription p ON p.stay_id = s.id "
        "LEFT JOIN care_prescriptionline l ON l.prescription_id = p.id"
    )
    record_rows = cursor.fetchall()
    index = {pid: k for k, pid in enumerate(patients)}
    out = np.zeros((len(patients), len(ID_NAMES)))
    counts = np.zeros((len(patients), 3))
    for pid in patients:
        out[index[pid], 0] = others_in(pid.int, pid)
        out[index[pid], 5] = spaced["patients_patient"][pid.int]
    for value, owner in rows["care_stay"]:
        k = index[owner]
        out[k, 1] += others_in(value, owner)
        out[k, 6] += spaced["care_stay"][value]
        counts[k, 0] += 1
    for value, owner in rows["patients_patientidentifier"]:
        k = index[owner]
        out[k, 7] += spaced["patients_patientidentifier"][value]
        counts[k, 1] += 1
    seen_rx = set()
    for owner, stay, rx, line in record_rows:
        k = index[owner]
        if rx is not None and rx not in seen_rx:
            seen_rx.add(rx)
            out[k, 2] += (rx.int >> 80) - (stay.int >> 80)
            out[k, 4] += rx.int < stay.int
            counts[k, 2] += 1
        if line is not None:
            out[k, 3] += (line.int >> 80) - (rx.int >> 80)
            out[k, 4] += line.int < stay.int
    for column, by in ((1, 0), (6, 0), (7, 1), (2, 2)):
        out[:, column] /= np.maximum(counts[:, by], 1)
    out[:, 8], out[:, 9] = _copies(cursor, index)
    # An id's two random fields (12 bits after the version, 62 after the variant) drawn from one
    # number would repeat each other's bits: a generator's tell that a planted id lacks.
    for listed in rows.values():
        for value, owner in listed:
            if owner in index:
                out[index[owner], 10] += (value >> 65) & 0x7FF == value & 0x7FF
    return out


def _copies(cursor, index: dict[uuid.UUID, int]) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """A canary's stays are its twin's moved in time: the thief looks for patients whose stays
    are another's, moved (same services and kinds, same times between admissions), and for
    stays with a look-alike (same service and kind, admitted within 20 days) among the 16 stays
    on each side in id order."""
    cursor.execute(
        "SELECT patient_id, id, service_id, kind, "
        "extract(epoch FROM planned_admission) FROM care_stay ORDER BY id"
    )
    stays = cursor.fetchall()
    shapes: dict[uuid.UUID, list[tuple[object, str, float]]] = {}
    for owner, _, service, kind, at in stays:
        shapes.setdefault(owner, []).append((service, kind, float(at)))
    keys: dict[uuid.UUID, tuple[object, ...]] = {}
    for owner, listed in shapes.items():
        if len(listed) > 1:
            listed.sort(key=lambda s: s[2])
            keys[owner] = tuple((s, k, round(at - listed[0][2])) for s, k, at in listed)
    same: dict[tuple[object, ...], int] = {}
    for key in keys.values():
        same[key] = same.get(key, 0) + 1
    moved = np.zeros(len(index))
    for owner, key in keys.items():
        moved[index[owner]] = same[key] - 1
    alike = np.zeros(len(index))
    for k, (owner, _, service, kind, at) in enumerate(stays):
        around = stays[max(0, k - 16) : k] + stays[k + 1 : k + 17]
        alike[index[owner]] += any(
            o != owner and s == service and d == kind and abs(float(t) - float(at)) < 20 * 86400
            for o, _, s, d, t in around
        )
    return moved, alike


def _auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@pytest.fixture
def dump(group) -> tuple[np.ndarray, np.ndarray, list[uuid.UUID]]:
    planted = canaries_plant(actor=SYSTEM, per_establishment=PER_ESTABLISHMENT)
    print("\ncanaries per establishment:", [len(p.patient_ids) for p in planted])
    canaries = {pid for p in planted for pid in p.patient_ids}
    with connection.cursor() as cursor:
        cursor.execute(FEATURES_SQL)
        rows = cursor.fetchall()
        ids = [r[0] for r in rows]
        features = np.array([[float(v or 0) for v in r[1:]] for r in rows])
        features = np.hstack([features, id_features(cursor, ids)])
    positive = np.array([i in canaries for i in ids])
    return features, positive, ids


def test_canaries_are_planted_among_the_others_with_past_care(dump):
    _, positive, ids = dump
    # The three clinics found free numbers and twins; the health centre, with about 190 IPPs
    # and so about 10 free numbers, finds fewer; the nursing home's residents stay (they are
    # current patients, never models).
    assert positive.sum() >= 3 * PER_ESTABLISHMENT
    canaries = [i for i, p in zip(ids, positive, strict=True) if p]
    assert Stay.objects.filter(patient_id__in=canaries).exclude(discharged_at=None).count() >= len(
        canaries
    )
    assert not Stay.objects.filter(patient_id__in=canaries, discharged_at=None).exists()
    # More marks than canaries (decoys), and no column of them names a place.
    assert CanaryMark.objects.count() > len(canaries)
    assert [f.name for f in CanaryMark._meta.concrete_fields] == ["tag", "index_key_id"]
    sample = Patient.objects.get(pk=canaries[0])
    assert sample.birth_name and sample.birth_date  # sealed like anyone's, readable with keys


def test_no_query_on_the_clear_columns_finds_canaries_better_than_chance(dump):
    features, positive, _ = dump
    assert features.shape[1] == len(NAMES + ID_NAMES)
    aucs = {name: _auc(features[:, k], positive) for k, name in enumerate(NAMES + ID_NAMES)}
    print("\nAUC per feature (0.5 = chance):")
    for name, auc in sorted(aucs.items(), key=lambda kv: -abs(kv[1] - 0.5)):
        print(f"  {name:50s} {auc:.3f}")
    off = {name: round(auc, 3) for name, auc in aucs.items() if abs(auc - 0.5) > TOLERANCE}
    assert not off, f"canaries stand out on {off}"


def test_the_best_combination_of_clear_columns_does_no_better(dump):
    """A thief who combines the columns: nearest neighbours of known canaries (as if a few
    had leaked) by standardised features, scored on the others."""
    features, positive, _ = dump
    std = features.std(axis=0)
    z = (features - features.mean(axis=0)) / np.where(std > 0, std, 1)
    rng = np.random.default_rng(7)
    known = rng.choice(np.flatnonzero(positive), size=positive.sum() // 3, replace=False)
    rest = np.setdiff1d(np.arange(len(z)), known)
    distance = np.min(((z[rest, None, :] - z[None, known, :]) ** 2).sum(axis=2), axis=1)
    auc = _auc(-distance, positive[rest])
    print(f"\nnearest-known-canary AUC: {auc:.3f}")
    assert abs(auc - 0.5) <= TOLERANCE
