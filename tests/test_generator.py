"""The synthetic group looks like France and is the same for the same seed."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from rempart.lib.identifiers import validate_nir
from rempart.patients.validation import clean_patient
from rempart.synth.names import FamilyNames
from rempart.synth.population import generate_group

TODAY = dt.date(2026, 11, 28)


def test_the_same_seed_gives_the_same_group_ids_included():
    a = generate_group(seed=11, patients=300, today=TODAY)
    b = generate_group(seed=11, patients=300, today=TODAY)
    assert a.patients == b.patients
    assert a.stays == b.stays
    assert a.prescriptions == b.prescriptions
    assert generate_group(seed=12, patients=300, today=TODAY).patients != a.patients


def test_a_group_too_small_to_hold_a_prescription_is_made_all_the_same():
    # One patient: no stay may be eligible for a prescription, and the empty arrays must hold.
    for seed in range(4):
        group = generate_group(seed=seed, patients=1, today=TODAY)
        assert len(group.patients) == 1
        assert all(s.patient_id == group.patients[0].id for s in group.stays)


def test_every_patient_passes_validation_and_nirs_agree_with_traits(db):
    group = generate_group(seed=3, patients=1500, today=TODAY)
    nirs = [p.data.nir for p in group.patients if p.data.nir]
    assert len(set(nirs)) == len(nirs) > 700
    for record in group.patients:
        clean_patient(record.data)  # raises on any inconsistency
    for nir in nirs[:50]:
        assert validate_nir(nir) == nir


def test_family_names_follow_a_long_tailed_law():
    import numpy as np

    rng = np.random.default_rng(5)
    names = FamilyNames.build(rng, 250_000)
    counts = Counter(names.draw(rng, 200_000).tolist())
    top_share = counts.most_common(1)[0][1] / 200_000
    assert 0.002 < top_share < 0.006  # MARTIN: about 0.35 % of people
    assert names.names[0] == "MARTIN"
    singletons = sum(1 for c in counts.values() if c == 1)
    assert len(counts) > 40_000 and singletons > 15_000


def test_the_population_has_married_names_accents_and_old_nursing_home_residents():
    group = generate_group(seed=9, patients=2000, today=TODAY)
    women = [p for p in group.patients if p.data.sex == "F"]
    married = sum(1 for p in women if p.data.usage_name) / len(women)
    assert 0.15 < married < 0.4
    assert any(
        any(c in p.data.birth_name + p.data.given_names for c in "ÉÈÇË") for p in group.patients
    )
    homes = {e.id for e in group.establishments if e.kind == "nursing_home"}
    residents = [s for s in group.stays if s.establishment_id in homes]
    ages = {p.id: (TODAY - p.data.birth_date).days / 365.25 for p in group.patients}
    assert residents and min(ages[s.patient_id] for s in residents) >= 75
    assert 1.3 < len(group.stays) / len(group.patients) < 1.7
    assert all(p.data.email.endswith(".test") for p in group.patients if p.data.email)


def test_stays_are_coherent_and_some_are_current(group):
    now = dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC)
    kinds = Counter(s.kind for s in group.stays)
    assert set(kinds) >= {"full", "day_case", "consultation", "emergency", "residence"}
    for stay in group.stays:
        if stay.discharged_at is not None:
            assert stay.admitted_at is not None and stay.discharged_at >= stay.admitted_at
    assert any(s.admitted_at and not s.discharged_at for s in group.stays)
    assert any(s.admitted_at is None and s.planned_admission > now for s in group.stays)


def test_no_birth_date_gathers_a_crowd():
    group = generate_group(seed=21, patients=20_000, today=TODAY)
    most = Counter(p.data.birth_date for p in group.patients).most_common(1)[0][1]
    assert most < 10  # 20,000 people over ~36,000 days: a handful per day at most


SCHEMA = """
SELECT 'c', conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace = current_schema()::regnamespace
UNION ALL SELECT 'i', tablename, indexname, indexdef FROM pg_indexes
WHERE schemaname = current_schema() ORDER BY 1, 2, 3
"""


# Pairs of indexes of a table where the first's columns (and operator classes) lead the second,
# which is not partial: the first is written on every insert and built by every bulk load for
# nothing, the second serving every look-up by those columns. The first may be unique (it then
# enforces something) or partial (it is then smaller): those are not counted.
REDUNDANT = """
WITH ix AS (
  SELECT indexrelid::regclass::text AS name, indrelid::regclass::text AS tab, indisunique,
         indpred IS NOT NULL AS partial, string_to_array(indkey::text, ' ') AS cols,
         string_to_array(indclass::text, ' ') AS classes
  FROM pg_index WHERE indrelid::regclass::text = ANY(%s))
SELECT a.tab, a.name, b.name FROM ix a JOIN ix b ON a.tab = b.tab AND a.name <> b.name
WHERE NOT a.indisunique AND NOT a.partial AND NOT b.partial
  AND cardinality(a.cols) <= cardinality(b.cols)
  AND b.cols[1:cardinality(a.cols)] = a.cols AND b.classes[1:cardinality(a.cols)] = a.classes
"""
BULK_TABLES = ("patients_patient", "patients_patientidentifier", "care_stay", "care_prescription",
               "care_prescriptionline")  # fmt: skip


def test_the_bulk_tables_carry_no_index_another_one_serves(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(REDUNDANT, [list(BULK_TABLES)])
        assert cursor.fetchall() == []
        # the query finds such a pair: the foreign key indexes the migrations dropped
        cursor.execute("CREATE INDEX test_stay_patient ON care_stay (patient_id)")
        cursor.execute(REDUNDANT, [list(BULK_TABLES)])
        assert cursor.fetchall() == [
            ("care_stay", "test_stay_patient", "care_stay_patient_a2befa_idx")
        ]


def test_generate_loads_without_keys_puts_the_schema_back_and_says_where_time_went(console):
    """`generate` on PostgreSQL drops every key, index and foreign key of its tables (those of
    other tables pointing at them too) and puts them back after the load: the schema after must
    be the migrated one, every row checked."""
    import psycopg

    console.run("migrate", "-v0")
    with psycopg.connect(console.env["DATABASE_URL"]) as conn:
        before = conn.execute(SCHEMA).fetchall()
    out = console.run("generate", "--patients", "2000", "--establishments", "3", "--seed", "3",
                      "-v", "2").stdout  # fmt: skip
    with psycopg.connect(console.env["DATABASE_URL"]) as conn:
        assert conn.execute(SCHEMA).fetchall() == before
        assert any(row[3].startswith("FOREIGN KEY") for row in before)
        assert conn.execute("SELECT count(*) FROM patients_patient").fetchone()[0] == 2000
        orphans = conn.execute(
            "SELECT count(*) FROM care_stay s LEFT JOIN patients_patient p ON p.id = s.patient_id "
            "WHERE p.id IS NULL"
        ).fetchone()[0]
        assert orphans == 0
    for phase in ("primary keys and unique constraints", "secondary indexes", "foreign keys",
                  "workers: make patients", "workers: seal patients: blind indexes"):  # fmt: skip
        assert phase in out


def test_the_loaded_care_rows_are_the_records_of_the_same_seed(group):
    """The bulk loader writes PostgreSQL's rows straight from the care arrays, while the
    in-memory group (tests, SQLite) makes records from the same arrays: every stay, prescription
    and line in the database must be its record, decrypted values included."""
    from rempart.care.models import Prescription, PrescriptionLine, Stay

    def stay(s):
        return (s.patient_id, s.establishment_id, s.service_id, s.kind, s.planned_admission,
                s.planned_discharge, s.admitted_at, s.discharged_at, s.reason)  # fmt: skip

    stored = {s.pk: stay(s) for s in Stay.objects.all()}
    assert stored == {s.id: stay(s) for s in group.stays}
    assert {s.kind for s in group.stays} >= {"full", "day_case", "emergency", "consultation",
                                             "residence"}  # fmt: skip

    def prescription(r):
        return (r.patient_id, r.stay_id, r.prescriber_id, r.prescribed_at, r.signed_at)

    stored = {r.pk: prescription(r) for r in Prescription.objects.all()}
    assert stored == {r.id: prescription(r) for r in group.prescriptions}
    assert any(r.signed_at is None for r in group.prescriptions)
    lines = {line.pk: (line.prescription_id, line.position, line.content)
             for line in PrescriptionLine.objects.all()}  # fmt: skip
    assert lines == {line.id: (r.id, line.position, line.content)
                     for r in group.prescriptions for line in r.lines}  # fmt: skip


def test_keys_put_back_are_told_apart_by_table_not_by_name_alone(db):
    """Two tables may each hold a foreign key of one name: putting back the one dropped must not
    take the other's for it."""
    from django.db import connection

    from rempart.lib.bulkwrite import keys_drop, keys_restore

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE kd_parent (id int PRIMARY KEY)")
        for child in ("kd_a", "kd_b"):
            cursor.execute(
                f"CREATE TABLE {child} (parent int, "
                "CONSTRAINT same_name FOREIGN KEY (parent) REFERENCES kd_parent (id))"
            )
        dropped = keys_drop(cursor, ["kd_a"])
        assert [(d.kind, d.table, d.name) for d in dropped] == [
            ("foreign key", "kd_a", "same_name")
        ]
        keys_restore(cursor, dropped)
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE conname = 'same_name' "
            "ORDER BY 1"
        )
        assert [row[0] for row in cursor.fetchall()] == ["kd_a", "kd_b"]
