"""kill -9 in the middle of an import, then run it again: every valid row exactly once."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg


def _job(url: str) -> tuple[int, str] | None:
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute("SELECT lines_done, status FROM imports_importjob").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return row


def test_an_import_killed_mid_way_finishes_on_rerun_with_no_duplicate_and_no_loss(
    console, scratch_database: str, tmp_path: Path
):
    run = console.run
    run("migrate", "-v0")
    run("generate", "--patients", "300", "--seed", "5", "--workers", "0")
    export = tmp_path / "export.csv"
    run(
        "legacy_export",
        "--patients",
        "30000",
        "--seed",
        "8",
        "--out",
        str(export),
        "--faults",
        "40",
    )
    # A first migration: the patient table starts empty, so the import defers the keys, indexes
    # and foreign keys of the patient and IPP tables (but the IPP numbering's own).
    schema = _schema(scratch_database)
    assert any(row[3].startswith("FOREIGN KEY") for row in schema)
    with psycopg.connect(scratch_database) as conn:
        conn.execute("TRUNCATE patients_patient CASCADE")
    finess = _scalar(
        scratch_database, "SELECT finess FROM directory_establishment ORDER BY finess LIMIT 1"
    )

    importing = console.start(
        "import", str(export), "--establishment", finess, "--batch-size", "500"
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = _job(scratch_database)
        if job is not None and job[0] >= 2000:
            break
        time.sleep(0.02)
    os.killpg(importing.pid, signal.SIGKILL)
    importing.wait()
    lines_done, status = _job(scratch_database)
    assert status == "running" and 2000 <= lines_done < 30000, "the kill must land mid-way"
    loading = _schema(scratch_database)
    # Left while loading: the IPP numbering's unique constraint (and its index), the checks.
    assert sorted({row[2] for row in loading}) == [
        "ipp_unique_in_establishment", "patients_patient_version_check"
    ]  # fmt: skip
    assert len(schema) > 20

    rerun = run("import", str(export), "--establishment", finess, "--batch-size", "500")
    assert f"Reprise après la ligne {lines_done}" in rerun.stdout
    # 40 faults, one of each kind in turn: 16 leave no usable identity, 24 only lose a field.
    assert "29984 patients importés (dont 24 avec un champ écarté), 16 lignes refusées" in (
        rerun.stdout
    )

    assert _scalar(scratch_database, "SELECT count(*) FROM patients_patient") == 29984
    ipps = _scalar(
        scratch_database,
        "SELECT count(DISTINCT i.ipp) FROM patients_patientidentifier i "
        "JOIN directory_establishment e ON e.id = i.establishment_id "
        "WHERE e.finess = %s AND i.ipp::bigint BETWEEN 100000 AND 129999",
        [finess],
    )
    assert ipps == 29984  # each legacy IPP once: nothing lost, nothing twice
    lines = "SELECT count(*) FROM imports_importline WHERE kind = %s"
    assert _scalar(scratch_database, lines, ["refused"]) == 16
    assert _scalar(scratch_database, lines, ["warning"]) == 24
    assert _scalar(scratch_database, "SELECT status FROM imports_importjob") == "done"
    assert _schema(scratch_database) == schema  # put back after the resumed run


SCHEMA = """
SELECT 'c', conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid::regclass::text = ANY(%(tables)s) OR confrelid::regclass::text = ANY(%(tables)s)
UNION ALL SELECT 'i', tablename, indexname, indexdef FROM pg_indexes
WHERE tablename = ANY(%(tables)s) ORDER BY 1, 2, 3
"""


def _schema(url: str) -> list[tuple[str, ...]]:
    with psycopg.connect(url) as conn:
        tables = ["patients_patient", "patients_patientidentifier"]
        return conn.execute(SCHEMA, {"tables": tables}).fetchall()


def _scalar(url: str, sql: str, params: list[object] | None = None) -> object:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params or []).fetchone()[0]
