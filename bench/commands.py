"""Whole commands at group scale, timed with their peak memory (/usr/bin/time -v):
`rempart generate` (760,000 patients, 17 establishments) and `rempart import` of a 760,000-row
Mediboard-style export, next to a plaintext COPY of the same CSV into PostgreSQL; a smaller
import shows that memory does not grow with the file.

Usage: .venv/bin/python bench/commands.py [--patients N]
Creates (and drops first) the databases `rempart_bench_gen` and `rempart_bench_imp`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BASE = "postgres://postgres@127.0.0.1:5432"


def fresh_database(name: str) -> str:
    with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{BASE}/{name}"


def rempart(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    """Run a command; return (seconds, peak RSS in MiB over the process and its workers, out)."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        ["/usr/bin/time", "-v", str(ROOT / ".venv/bin/rempart"), *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return elapsed, peak / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--skip-generate", action="store_true", help="measure the import only")
    args = parser.parse_args()
    n = args.patients
    data = Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data))

    rempart(env, "keys", "init")
    if not args.skip_generate:
        env["DATABASE_URL"] = fresh_database("rempart_bench_gen")
        rempart(env, "migrate", "-v0")
        seconds, peak, out = rempart(
            env, "generate", "--patients", str(n), "--establishments", "17", "--seed", "1"
        )
        print(f"rempart generate --patients {n} --establishments 17")
        print(f"  {seconds:.1f} s, {n / seconds:,.0f} patients/s, peak RSS {peak:.0f} MiB")
        print(f"  {out.strip().splitlines()[-1]}")

    # Import: a fresh database with the group's directory only (17 establishments, GPs): the
    # first migration of the group, into an empty patient table.
    env["DATABASE_URL"] = fresh_database("rempart_bench_imp")
    rempart(env, "migrate", "-v0")
    rempart(env, "generate", "--patients", "1", "--establishments", "17", "--seed", "2")
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute("TRUNCATE patients_patient CASCADE")
    export = data / "export.csv"
    small = data / "export-small.csv"
    rempart(env, "legacy_export", "--patients", str(n), "--seed", "3", "--out", str(export),
            "--faults", "500", "--duplicates", "1000")  # fmt: skip
    rempart(env, "legacy_export", "--patients", str(n // 10), "--seed", "4", "--out", str(small))
    size = export.stat().st_size / 2**20
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        finess = conn.execute("SELECT finess FROM directory_establishment ORDER BY finess").fetchone()[0]  # fmt: skip
    seconds, peak, out = rempart(env, "import", str(export), "--establishment", finess)
    print(f"\nrempart import ({n} rows, {size:.0f} MiB, cp1252, messy, 500 faulty rows, "
          "1,000 duplicates)")  # fmt: skip
    print(f"  {seconds:.1f} s, {n / seconds:,.0f} rows/s, peak RSS {peak:.0f} MiB")
    print(f"  {next(line for line in out.splitlines() if 'patients importés' in line)}")
    small_seconds, small_peak, _ = rempart(env, "import", str(small), "--establishment", finess)
    print(
        f"  the same command on {n // 10} rows: {small_seconds:.1f} s, peak RSS {small_peak:.0f} MiB"
    )

    # Plaintext: the same CSV copied as text into PostgreSQL, no validation, no encryption.
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        header = export.read_text(encoding="cp1252").split("\n", 1)[0].strip().split(";")
        conn.execute("CREATE TABLE bench_csv (" + ", ".join(f'"{h}" text' for h in header) + ")")
        started = time.perf_counter()
        with (
            conn.cursor().copy(
                "COPY bench_csv FROM STDIN WITH (FORMAT csv, DELIMITER ';', HEADER true, ENCODING 'WIN1252')"
            ) as copy,
            export.open("rb") as handle,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        plain = time.perf_counter() - started
    print(f"  plaintext COPY of the same CSV (no checks, no encryption): {plain:.1f} s, "
          f"{n / plain:,.0f} rows/s; import / plaintext = {seconds / plain:.1f}x")  # fmt: skip
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
