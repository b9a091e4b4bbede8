"""`rempart directory import` of a national-directory extract the size of the ANS one (over a
million rows), next to a plain COPY of the same file into an unindexed text table.

Usage: .venv/bin/python bench/annuaire.py [--people N]
Creates (and drops first) the database `rempart_bench_annuaire`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BASE = "postgres://postgres@127.0.0.1:5432"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=800_000)
    args = parser.parse_args()
    with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS rempart_bench_annuaire WITH (FORCE)")
        conn.execute("CREATE DATABASE rempart_bench_annuaire")
    data = tempfile.mkdtemp(prefix="rempart-annuaire-")
    os.environ.update(REMPART_ENV="test", REMPART_DATA_DIR=data,
                      DATABASE_URL=f"{BASE}/rempart_bench_annuaire",
                      DJANGO_SETTINGS_MODULE="rempart.settings")  # fmt: skip
    import django

    django.setup()
    from django.core.management import call_command

    from rempart.directory.annuaire import directory_import
    from rempart.synth.annuaire import write_directory_extract

    call_command("migrate", verbosity=0)
    path = Path(data) / "PS_LibreAcces_Personne_activite_bench.txt"
    started = time.perf_counter()
    rows = write_directory_extract(path, people=args.people, seed=1)
    size = path.stat().st_size / 2**20
    print(
        f"extract: {rows:,} rows, {size:.0f} MiB, written in {time.perf_counter() - started:.0f} s"
    )
    started = time.perf_counter()
    loaded = directory_import(path)
    first = time.perf_counter() - started
    print(
        f"rempart directory import: {first:.1f} s ({rows / first:,.0f} rows/s), "
        f"{loaded.practitioners:,} practitioners"
    )
    started = time.perf_counter()
    directory_import(path)
    print(f"  the same file again (idempotent): {time.perf_counter() - started:.1f} s")
    with psycopg.connect(f"{BASE}/rempart_bench_annuaire") as conn:
        header = path.read_text(encoding="utf-8").split("\n", 1)[0].split("|")
        conn.execute("CREATE TABLE plain (" + ", ".join(f"c{i} text" for i in range(len(header)))
                     + ")")  # fmt: skip
        started = time.perf_counter()
        with conn.cursor().copy("COPY plain FROM STDIN WITH (FORMAT text, DELIMITER '|', "
                                "HEADER true)") as copy, path.open("rb") as handle:  # fmt: skip
            while block := handle.read(1 << 20):
                copy.write(block)
        conn.commit()
        plain = time.perf_counter() - started
    print(
        f"  plain COPY of the same file, no checks: {plain:.1f} s; import / COPY = "
        f"{first / plain:.1f}x"
    )


if __name__ == "__main__":
    main()
