"""The leak analyser at group scale: a 1,000,000-row sample against the 760,000-patient group.

The sample is what a thief posts after reading the database: 700,000 rows of real patients as
stored (names, given name, birth date, phone, e-mail, postcode, town; some with a typo in the
name, some without e-mail), 300,000 invented people drawn like them, shuffled, as CSV. Timed:
`rempart breach analyse` (the whole command: reading, blind-index candidates, decryption of the
candidates, comparison, sources, the report stored). Next to it, in the same run, the plaintext
path: the same rows matched by PostgreSQL against a clear copy of the identities (hash join on
family name and birth date), what an unencrypted system would do.

Usage: .venv/bin/python bench/leak.py [--patients 760000] [--rows 1000000] [--reuse DATA_DIR]
Creates (drops first) the database `rempart_bench_leak`; --reuse keeps a generated group.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BASE = "postgres://postgres@127.0.0.1:5432"
DB = "rempart_bench_leak"


def run(env: dict[str, str], *args: str) -> tuple[float, float, str]:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        ["/usr/bin/time", "-v", str(ROOT / ".venv/bin/rempart"), *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return time.perf_counter() - started, peak / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reuse", type=Path, help="a data folder of an earlier run")
    args = parser.parse_args()
    data = args.reuse or Path(tempfile.mkdtemp(prefix="rempart-leak-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data), DATABASE_URL=f"{BASE}/{DB}")
    if not args.reuse:
        with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{DB}"')
        run(env, "keys", "init")
        run(env, "migrate", "-v0")
        took, _, _ = run(env, "generate", "--patients", str(args.patients), "--establishments",
                         "17", "--seed", "1")  # fmt: skip
        print(f"group of {args.patients:,} patients generated in {took:.0f} s (data: {data})")

    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "rempart.settings"
    django.setup()
    from rempart.patients.models import Patient
    from rempart.synth.population import canary_identities

    started = time.perf_counter()
    rng = random.Random(7)
    real_count = int(args.rows * 0.7)
    clear: list[tuple[str, str, str]] = []
    rows: list[list[str]] = []
    for p in Patient.objects.order_by("?")[:real_count].iterator(chunk_size=10_000):
        clear.append((p.birth_name or "", p.birth_date.isoformat() if p.birth_date else "", ""))
        name = p.birth_name or ""
        if rng.random() < 0.05 and len(name) > 3:
            name = name[:-1] + "E"
        rows.append([name, p.first_given_name or "", p.birth_date.strftime("%d/%m/%Y"),
                     p.phone_mobile or "", p.email if rng.random() < 0.8 and p.email else "",
                     p.postcode or "", p.city or ""])  # fmt: skip
    fakes = []
    while len(fakes) < args.rows - len(rows):  # one chunk of people per draw
        fakes += canary_identities(count=20_000, seed=99 + len(fakes))
    fakes = fakes[: args.rows - len(rows)]
    rows += [[d.birth_name, d.first_given_name, d.birth_date.strftime("%d/%m/%Y"),
              d.phone_mobile, d.email, d.postcode, d.city] for d in fakes]  # fmt: skip
    rng.shuffle(rows)
    sample = data / "fuite.csv"
    with sample.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["nom", "prenom", "ddn", "tel", "mail", "cp", "ville"])
        writer.writerows(rows)
    size = sample.stat().st_size / 2**20
    print(f"sample of {len(rows):,} rows ({real_count:,} real, 5 % with a typo in the name; "
          f"{len(fakes):,} invented), {size:.0f} MiB, built in {time.perf_counter() - started:.0f} s")  # fmt: skip

    took, peak, out = run(env, "breach", "analyse", str(sample), "--json", str(data / "r.json"))
    print(f"\nrempart breach analyse ({len(rows):,} rows against {Patient.objects.count():,} "
          f"patients): {took:.1f} s, {len(rows) / took:,.0f} rows/s, peak RSS {peak:.0f} MiB")  # fmt: skip
    for line in out.splitlines()[:3]:
        print("  " + line)

    # Plaintext: the sample and a clear copy of the identities in PostgreSQL, one hash join.
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_clear, bench_sample")
        conn.execute("CREATE TABLE bench_clear (name text, born date)")
        with conn.cursor().copy("COPY bench_clear FROM STDIN") as copy:
            for name, born, _ in clear:
                copy.write_row((name, born or None))
        conn.execute("CREATE TABLE bench_sample (nom text, prenom text, ddn text, tel text, "
                     "mail text, cp text, ville text)")  # fmt: skip
        started = time.perf_counter()
        with (conn.cursor().copy("COPY bench_sample FROM STDIN WITH (FORMAT csv, DELIMITER ';', "
                                 "HEADER true)") as copy, sample.open("rb") as handle):  # fmt: skip
            while block := handle.read(1 << 20):
                copy.write(block)
        found = conn.execute(
            "SELECT count(*) FROM bench_sample s JOIN bench_clear c ON upper(c.name) = "
            "upper(s.nom) AND c.born = to_date(s.ddn, 'DD/MM/YYYY')"
        ).fetchone()[0]
        plain = time.perf_counter() - started
        conn.execute("DROP TABLE bench_clear, bench_sample")
    print(f"plaintext path (COPY of the sample + hash join on name and birth date against a "
          f"clear copy): {plain:.1f} s, {found:,} rows matched by exact name and date; "
          f"encrypted / plaintext = {took / plain:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
