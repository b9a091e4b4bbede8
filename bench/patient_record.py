"""Cost of the encrypted patient record next to plaintext: seal and open time per patient, and
stored bytes per patient in PostgreSQL (heap, indexes, total), in one run.

Usage: .venv/bin/python bench/patient_record.py [--patients N] [--database-url URL]
It creates (or empties) the database `rempart_bench` and a temporary key folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _setup(database_url: str) -> None:
    import psycopg

    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(
        REMPART_ENV="test",
        REMPART_DATA_DIR=tempfile.mkdtemp(prefix="rempart-bench-"),
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="rempart.settings",
    )
    import django

    django.setup()
    from django.core.management import call_command

    from rempart.vault import keystore

    call_command("migrate", verbosity=0)
    keystore.init_keys(create_master=True)


PLAIN_TABLE = """
CREATE TABLE bench_patient_plain (
    id uuid PRIMARY KEY, identity_status varchar(5) NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    birth_name text, usage_name text, given_names text, first_given_name text, sex text,
    birth_date date, birth_place_code text, nir text, email text, phone_mobile text,
    phone_home text, address_line text, postcode text, city text, gp_id uuid
);
CREATE INDEX ON bench_patient_plain (birth_name);
CREATE INDEX ON bench_patient_plain (usage_name);
CREATE INDEX ON bench_patient_plain (birth_date);
CREATE INDEX ON bench_patient_plain (nir);
CREATE INDEX ON bench_patient_plain (email);
CREATE INDEX ON bench_patient_plain (phone_mobile);
CREATE INDEX ON bench_patient_plain (phone_home);
CREATE INDEX ON bench_patient_plain (birth_name, first_given_name, birth_date);
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/rempart_bench"
    )
    args = parser.parse_args()
    _setup(args.database_url)

    from django.db import connection

    from rempart.patients.models import Patient
    from rempart.patients.validation import clean_patient
    from rempart.synth.population import generate_group
    from rempart.vault.fields import BlindIndexField, EncryptedField, SealedAttribute

    n = args.patients
    group = generate_group(seed=1, patients=n, today=dt.date(2026, 11, 28), nursing_homes=1)
    values = [(p.id, clean_patient(p.data).as_model_values()) for p in group.patients]
    sealed_fields = [f for f in Patient._meta.concrete_fields if isinstance(f, EncryptedField)]
    attributes = [n for n, a in vars(Patient).items() if isinstance(a, SealedAttribute)]
    index_fields = [f for f in Patient._meta.concrete_fields if isinstance(f, BlindIndexField)]

    # Plaintext path: the same values turned into their stored bytes, nothing more.
    t0 = time.perf_counter()
    for _, row in values:
        for name in attributes:
            v = row[name]
            if v is not None:
                str(v).encode()
    plain_encode = time.perf_counter() - t0

    # Encrypted path: what a save does, field by field (seal + blind indexes).
    patients = [Patient(id=pid, **row) for pid, row in values]
    t0 = time.perf_counter()
    for p in patients:
        for f in sealed_fields:
            f.pre_save(p, True)
    seal = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in patients:
        for f in index_fields:
            f.pre_save(p, True)
    index = time.perf_counter() - t0

    Patient.objects.bulk_create(patients, batch_size=2000)
    with connection.cursor() as cur:
        cur.execute(PLAIN_TABLE)
        now = dt.datetime.now(dt.UTC)
        with cur.copy(
            "COPY bench_patient_plain (id, identity_status, created_at, updated_at, "
            + ", ".join(attributes)
            + ") FROM STDIN"
        ) as copy:
            for pid, row in values:
                copy.write_row(
                    [pid, row["identity_status"], now, now, *(row[name] for name in attributes)]
                )
        cur.execute("VACUUM ANALYZE patients_patient")
        cur.execute("VACUUM ANALYZE bench_patient_plain")

    # Reading back: fetch every row, then open every field (encrypted) or read it (plaintext).
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM bench_patient_plain")
        plain_rows = cur.fetchall()
    plain_fetch = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = list(Patient.objects.all())
    enc_fetch = time.perf_counter() - t0
    t0 = time.perf_counter()
    for p in loaded:
        for name in attributes:
            getattr(p, name)
    opened = time.perf_counter() - t0
    assert len(plain_rows) == len(loaded) == n

    def sizes(table: str) -> tuple[int, int, int]:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_table_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
                [table, table, table],
            )
            heap, idx, total = cur.fetchone()
        return heap, idx, total

    enc, plain = sizes("patients_patient"), sizes("bench_patient_plain")
    us = 1e6 / n
    print(f"patients: {n}  (PostgreSQL {connection.pg_version}, Tink AES256_GCM, BLAKE2b indexes)")
    print("time per patient                 encrypted     plaintext")
    print(f"  write: encode+seal 2 records    {seal * us:8.1f} µs   {plain_encode * us:8.1f} µs")
    print(f"  write: 10 blind indexes         {index * us:8.1f} µs          -")
    print(
        f"  read:  fetch row (ORM / cursor) {enc_fetch * us:8.1f} µs   {plain_fetch * us:8.1f} µs"
    )
    print(f"  read:  open all 15 fields       {opened * us:8.1f} µs          -")
    print("stored bytes per patient         encrypted     plaintext   ratio")
    for label, i in (("heap (table + TOAST)", 0), ("indexes", 1), ("total", 2)):
        print(f"  {label:30} {enc[i] / n:9.0f}     {plain[i] / n:9.0f}   {enc[i] / plain[i]:5.2f}x")


if __name__ == "__main__":
    main()
