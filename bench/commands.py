"""The bulk paths against PostgreSQL's own load of the same rows, in one run (issue 18):

1. `rempart generate` of the whole group (760,000 patients, 17 establishments), then `pg_dump -Fc`
   of what it made and `pg_restore -j 2` of that dump into a fresh database. The ratio
   generation / restore is the figure (target <= 2x; and < 2 min on the machine).
2. `rempart import` of a 760,500-row Mediboard-style export (messy, faults, double
   registrations) against a plain `COPY` of the same CSV into an unindexed text table, plus as
   many B-tree builds on it as the import's tables carry, each on the clear column(s) its blind
   index stands for. The ratio import / (COPY + index builds) is the figure (target <= 2x; and
   <= 60 s). Then `pg_restore -j 2` of what the import wrote, the footing of the generation's
   ratio. A smaller import shows that memory does not grow with the file. Last, what the 2x
   leaves the import's loading once its own tail (keys, indexes, foreign keys, ANALYZE) is
   paid: the CPU of PostgreSQL (sampled from /proc), of the main process and of sealing,
   against what is left for reading and checking the rows.

Both commands run with `-v 2` and their own profile (time by phase) is printed.

Usage: .venv/bin/python bench/commands.py [--patients N] [--skip-generate] [--skip-import]
Creates (and drops first) the databases `rempart_bench_gen`, `rempart_bench_restore` and
`rempart_bench_imp`. Absolute times move with the machine; the ratios, taken in one run, do not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BASE = "postgres://postgres@127.0.0.1:5432"
TARGET_RATIO = 2.0


def fresh_database(name: str) -> str:
    with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{BASE}/{name}"


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mib: float  # of the process or its largest child
    cpu: float  # user + system CPU-s of the process and its children
    stdout: str


def timed(command: list[str], env: dict[str, str] | None = None) -> Run:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        ["/usr/bin/time", "-v", *command], env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:2])} failed:\n{done.stderr[-2000:]}")

    def figure(label: str) -> float:
        return float(re.search(rf"{label}: ([\d.]+)", done.stderr).group(1))

    cpu = figure(r"User time \(seconds\)") + figure(r"System time \(seconds\)")
    return Run(elapsed, figure(r"Maximum resident set size \(kbytes\)") / 1024, cpu, done.stdout)


def rempart(env: dict[str, str], *args: str) -> Run:
    return timed([str(ROOT / ".venv/bin/rempart"), *args], env)


def postgres_cpu() -> float | None:
    """CPU-s used so far by the local PostgreSQL server: its live processes, and those its
    postmaster has reaped (ended backends, parallel index builds' workers). None when no
    PostgreSQL process is visible here (a server elsewhere)."""
    ticks, seen = 0, False
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        if not stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            continue
        seen = True
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += sum(int(fields[k]) for k in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK") if seen else None


@dataclass
class PostgresSampler:
    """postgres_cpu() every 0.1 s in a thread, with the time it was read."""

    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> PostgresSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            cpu = postgres_cpu()
            if cpu is not None:
                self.samples.append((time.perf_counter(), cpu))
            if self._stop.wait(0.1):
                return

    def at(self, moment: float) -> float:
        """The CPU-s of the sample nearest `moment`."""
        return min(self.samples, key=lambda sample: abs(sample[0] - moment))[1]


def profile(out: str) -> str:
    """The command's own time-by-phase lines (printed at -v 2)."""
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Temps par étape")), None)
    return "\n".join(lines[start:]) if start is not None else "  (no profile printed)"


def phases(out: str) -> dict[str, float]:
    """The command's profile as {phase: seconds}."""
    return {m[1]: float(m[2]) for m in re.finditer(r"^  (\S.*?)\s+([\d.]+) s$", profile(out), re.M)}


def verdict(ratio: float, seconds: float, limit: float) -> str:
    ok = ratio <= TARGET_RATIO
    return (f"ratio {ratio:.2f}x (target <= {TARGET_RATIO:.0f}x: {'met' if ok else 'NOT met'}); "
            f"{seconds:.1f} s (target {limit:.0f} s: {'met' if seconds <= limit else 'NOT met'})")  # fmt: skip


def generation(env: dict[str, str], n: int, work: Path) -> None:
    env = {**env, "DATABASE_URL": fresh_database("rempart_bench_gen")}
    rempart(env, "migrate", "-v0")
    run = rempart(
        env, "generate", "--patients", str(n), "--establishments", "17", "--seed", "1", "-v", "2"
    )
    seconds, peak, out = run.seconds, run.peak_mib, run.stdout
    print(f"rempart generate --patients {n} --establishments 17")
    print(f"  {seconds:.1f} s, {n / seconds:,.0f} patients/s, peak RSS {peak:.0f} MiB")
    print(f"  {next(line for line in out.splitlines() if 'séjours' in line)}")
    print(profile(out))

    dump = work / "group.dump"
    dump_seconds = timed(["pg_dump", "-Fc", "-f", str(dump), env["DATABASE_URL"]]).seconds
    target = fresh_database("rempart_bench_restore")
    restore_seconds = timed(["pg_restore", "-j", "2", "-d", target, str(dump)]).seconds
    size = dump.stat().st_size / 2**20
    print(f"pg_dump -Fc of that database: {dump_seconds:.1f} s ({size:,.0f} MiB, compressed)")
    print(f"pg_restore -j 2 of that dump into a fresh database: {restore_seconds:.1f} s")
    print(f"generation / restore: {verdict(seconds / restore_seconds, seconds, 120)}")
    dump.unlink()


# Clear columns of the export standing for each index the import's tables carry, in turn.
PLAIN_INDEXES = (
    ("matricule",), ("nom", "prenom", "naissance"), ("nom_jeune_fille",), ("tel",), ("tel2",),
    ("email",), ("cp",), ("ipp",), ("nom", "naissance"), ("prenom",), ("ville",), ("adresse",),
    ("medecin_traitant_rpps",), ("lieu_naissance",),
)  # fmt: skip


def importing(env: dict[str, str], n: int, work: Path) -> None:
    # A fresh database with the group's directory only (17 establishments, GPs): the first
    # migration of the group, into an empty patient table.
    env = {**env, "DATABASE_URL": fresh_database("rempart_bench_imp")}
    rempart(env, "migrate", "-v0")
    rempart(env, "generate", "--patients", "1", "--establishments", "17", "--seed", "2")
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        conn.execute("TRUNCATE patients_patient CASCADE")
        finess = conn.execute("SELECT finess FROM directory_establishment ORDER BY finess").fetchone()[0]  # fmt: skip
    export, small = work / "export.csv", work / "export-small.csv"
    rempart(env, "legacy_export", "--patients", str(n), "--seed", "3", "--out", str(export),
            "--faults", "500", "--duplicates", "1000")  # fmt: skip
    rempart(env, "legacy_export", "--patients", str(n // 10), "--seed", "4", "--out", str(small))
    size = export.stat().st_size / 2**20
    with PostgresSampler() as postgres:
        run = rempart(env, "import", str(export), "--establishment", finess, "-v", "2")
        ended = time.perf_counter()
    seconds, peak, out = run.seconds, run.peak_mib, run.stdout
    print(f"\nrempart import ({n} rows, {size:.0f} MiB, cp1252, messy, 500 faulty rows, "
          "1,000 duplicates)")  # fmt: skip
    print(f"  {seconds:.1f} s, {n / seconds:,.0f} rows/s, peak RSS {peak:.0f} MiB")
    print(f"  {next(line for line in out.splitlines() if 'patients importés' in line)}")
    print(profile(out))

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename IN "
            "('patients_patient', 'patients_patientidentifier')"
        ).fetchone()[0]
        header = export.read_text(encoding="cp1252").split("\n", 1)[0].strip().split(";")
        conn.execute("CREATE TABLE bench_csv (" + ", ".join(f'"{h}" text' for h in header) + ")")
        conn.commit()
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
        copied = time.perf_counter() - started
        for k in range(indexes):
            columns = ", ".join(f'"{c}"' for c in PLAIN_INDEXES[k % len(PLAIN_INDEXES)])
            conn.execute(f"CREATE INDEX bench_csv_{k} ON bench_csv ({columns})")
        conn.commit()
        plain = time.perf_counter() - started
    print(f"plain COPY of the same CSV into an unindexed text table: {copied:.1f} s; with "
          f"{indexes} B-tree builds (as many as the import's tables carry): {plain:.1f} s")  # fmt: skip
    print(f"import / (COPY + index builds): {verdict(seconds / plain, seconds, 60)}")
    # The footing of the generation's ratio: PostgreSQL's own load of the rows the import wrote
    # (sealed patients, IPPs, refused lines, events), what its ratio cannot go below.
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP TABLE bench_csv")
    dump = work / "imported.dump"
    timed(["pg_dump", "-Fc", "-Z0", "-f", str(dump), env["DATABASE_URL"]])
    restored = timed(
        ["pg_restore", "-j", "2", "-d", fresh_database("rempart_bench_restore"), str(dump)]
    ).seconds
    dump.unlink()
    print(f"pg_restore -j 2 of what the import wrote: {restored:.1f} s; import / restore: "
          f"{seconds / restored:.2f}x")  # fmt: skip
    again = rempart(env, "import", str(small), "--establishment", finess)
    print(f"the same command on {n // 10} rows (table not empty): {again.seconds:.1f} s, "
          f"peak RSS {again.peak_mib:.0f} MiB")  # fmt: skip
    two_x_budget(run, ended, postgres, plain, n)


LOADING = ("parse the file, wait for the workers", "write the batches (COPY, IPPs, lines, events)")
# What a columnar engine could take over (bench/RESULTS.md): the rest is sealing, which any reader pays
READING = ("workers: read, check and clean the rows", "workers: seal patients: encode records")


def two_x_budget(
    run: Run, ended: float, postgres: PostgresSampler, plain: float, rows: int
) -> None:
    """What 2x the footing leaves the import's reading and checking of the rows and the
    encoding of their records: the wall left once the import's tail is paid, on the machine's
    cores, less what PostgreSQL, the main process and sealing spent meanwhile (this run's
    figures; the main process's share is the command's CPU less the workers' phases)."""
    steps = phases(run.stdout)
    workers = {k: v for k, v in steps.items() if k.startswith("workers: ")}
    tail = sum(v for k, v in steps.items() if k not in LOADING and k not in workers)
    cores = len(os.sched_getaffinity(0))
    wall = 2 * plain - tail
    if not postgres.samples or any(k not in workers for k in READING):
        print("what 2x leaves the loading: not measured (no local PostgreSQL, or no profile)")
        return
    loading_pg = postgres.at(ended - tail) - postgres.samples[0][1]
    tail_pg = postgres.samples[-1][1] - postgres.at(ended - tail)
    main = run.cpu - sum(workers.values())
    sealing = sum(v for k, v in workers.items() if k not in READING)
    reading = sum(workers[k] for k in READING)
    left = cores * wall - loading_pg - main - sealing
    print(f"\nwhat 2x leaves the import: {2 * plain:.1f} s, less its tail (keys, indexes, "
          f"foreign keys, ANALYZE, duplicates: {tail:.1f} s, PostgreSQL {tail_pg:.1f} CPU-s) = "
          f"{wall:.1f} s for the loading, {cores * wall:.1f} CPU-s on {cores} cores")  # fmt: skip
    print(f"  spent by the loading, reading and checking aside: PostgreSQL {loading_pg:.1f}, "
          f"the main process and the workers' transfer {main:.1f}, sealing in the workers (AEAD, blind "
          f"indexes, vigilance digests, COPY encoding) {sealing:.1f} CPU-s")  # fmt: skip
    print(f"  left for reading, checking and encoding the records of {rows:,} rows: {left:.1f} "
          f"CPU-s ({left / rows * 1e6:.1f} us a row); this run spent {reading:.1f} CPU-s "
          f"({reading / rows * 1e6:.1f} us a row)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--skip-generate", action="store_true", help="measure the import only")
    parser.add_argument("--skip-import", action="store_true", help="measure the generation only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rempart-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(work))
    try:
        rempart(env, "keys", "init")
        if not args.skip_generate:
            generation(env, args.patients, work)
        if not args.skip_import:
            importing(env, args.patients, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
