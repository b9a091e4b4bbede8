"""The group at scale (default 760,000 patients): load rate encrypted vs plaintext vs pgcrypto,
stored bytes per patient, and selector latency next to the plaintext B-tree equivalent.

Usage: .venv/bin/python bench/scale.py [--patients N] [--pgcrypto-rows N] [--searches N]
                                       [--rounds N] [--load-only] [--searches-again DATA_DIR]
Creates (and drops first) the database `rempart_bench_scale`; keys in a temporary folder.
Two worker processes each make their share of the synthetic values first (not timed), as a
loader's workers hold the rows they generated or parsed. Each timed load then goes from those
values to rows committed in PostgreSQL with their indexes, in one transaction as `rempart
generate` does: workers seal (or, for plaintext, only encode) their chunks into binary COPY
blocks, the main process streams them, indexes are rebuilt, ANALYZE, commit. Encrypted and
plaintext loads alternate for `--rounds` rounds; then the same blocks, made beforehand, are
loaded again to show PostgreSQL's own share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

URL = "postgres://postgres@127.0.0.1:5432/rempart_bench_scale"
TODAY = dt.date(2026, 11, 28)

PLAIN = """
CREATE TABLE bench_plain (
    id uuid PRIMARY KEY, identity_status varchar(5) NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    birth_name text, usage_name text, given_names text, first_given_name text, sex text,
    birth_date date, birth_place_code text, nir text, email text, phone_mobile text,
    phone_home text, address_line text, postcode text, city text, gp_id uuid,
    phonetic_birth text, phonetic_usage text
)"""
PLAIN_INDEXES = [
    "CREATE INDEX ON bench_plain (birth_name)", "CREATE INDEX ON bench_plain (usage_name)",
    "CREATE INDEX ON bench_plain (phonetic_birth)", "CREATE INDEX ON bench_plain (phonetic_usage)",
    "CREATE INDEX ON bench_plain (birth_date)", "CREATE INDEX ON bench_plain (nir)",
    "CREATE INDEX ON bench_plain (email)", "CREATE INDEX ON bench_plain (phone_mobile)",
    "CREATE INDEX ON bench_plain (phone_home)",
    "CREATE INDEX ON bench_plain (birth_name, first_given_name, birth_date)",
]  # fmt: skip
ATTRS = [
    "birth_name", "usage_name", "given_names", "first_given_name", "sex", "birth_date",
    "birth_place_code", "nir", "email", "phone_mobile", "phone_home", "address_line", "postcode",
    "city", "gp_id",
]  # fmt: skip
PLAIN_TYPES = {"birth_date": "DateField", "gp_id": "UUIDField"}


def connect(data_dir: str) -> None:
    os.environ.update(
        REMPART_ENV="test", REMPART_DATA_DIR=data_dir, DATABASE_URL=URL,
        DJANGO_SETTINGS_MODULE="rempart.settings",
    )  # fmt: skip
    import django

    django.setup()


def setup() -> None:
    import psycopg

    with psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS rempart_bench_scale WITH (FORCE)")
        conn.execute("CREATE DATABASE rempart_bench_scale")
    data_dir = tempfile.mkdtemp(prefix="rempart-bench-")
    print(f"keys in {data_dir} (--searches-again {data_dir}: the searches alone, later)")
    connect(data_dir)
    from django.core.management import call_command

    from rempart.vault import keystore

    call_command("migrate", verbosity=0)
    keystore.init_keys(create_master=True)


class Workers:
    """Two processes, each holding its share of the group's values (every other chunk, made before
    any timing, as a loader's workers hold the rows they parsed); asked for a load, they turn their
    chunks into binary COPY blocks, which the main process streams in chunk order."""

    def __init__(self, patients: int, count: int = 2) -> None:
        from django.db import connections

        from rempart.synth.population import build_directory

        self.directory = build_directory(seed=1, patients=patients, today=TODAY, clinics=12,
                                         health_centres=2, nursing_homes=3)  # fmt: skip
        connections.close_all()  # the workers never touch the database
        context = multiprocessing.get_context("fork")
        self.pipes, self.processes = [], []
        for rank in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=self._serve, args=(rank, count, child), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)
        self.patients = sum(pipe.recv() for pipe in self.pipes)  # each says how many it holds

    def _serve(self, rank: int, count: int, pipe: Any) -> None:
        from rempart.synth.population import make_chunk

        gc.disable()  # as in `rempart generate`: a batch's objects hold no cycles
        mine = [
            [(p.id, p.data.as_model_values()) for p in make_chunk(self.directory, i, with_care=False).patients]
            for i in range(rank, self.directory.chunks, count)
        ]  # fmt: skip
        pipe.send(sum(len(chunk) for chunk in mine))
        while (kind := pipe.recv()) is not None:
            if isinstance(kind, int):  # a sample of `kind` patients' values, for the searches
                import random

                everyone = [v for chunk in mine for _, v in chunk]
                pipe.send(random.Random(7 + rank).sample(everyone, min(kind, len(everyone))))
                continue
            maker = encrypted_block if kind == "encrypted" else plain_block
            for chunk in mine:
                pipe.send_bytes(maker(chunk))

    def blocks(self, kind: str) -> Iterator[bytes]:
        for pipe in self.pipes:
            pipe.send(kind)
        for i in range(self.directory.chunks):
            yield self.pipes[i % len(self.pipes)].recv_bytes()

    def sample(self, count: int) -> list[dict[str, Any]]:
        """`count` patients' values drawn at random from the whole group (sampling, not security)."""
        for pipe in self.pipes:
            pipe.send(-(-count // len(self.pipes)))
        return [v for pipe in self.pipes for v in pipe.recv()][:count]

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join()


# --- the two block makers (run in the workers) ----------------------------------------------------

Batch = list[tuple[Any, dict[str, Any]]]


def encrypted_block(batch: Batch) -> bytes:
    from django.utils import timezone

    from rempart.lib.bulkwrite import binary_block
    from rempart.patients.sealing import PatientSealer

    return binary_block(PatientSealer().binary_rows(batch, timezone.now()))


def plain_block(batch: Batch) -> bytes:
    """The same values in clear, built the same way (column by column, binary COPY)."""
    from django.utils import timezone

    from rempart.lib.bulkwrite import Same, binary_block, binary_encoder, binary_rows_from_columns
    from rempart.lib.phonetic import phonetic_code

    values = [v for _, v in batch]
    now = timezone.now()
    columns: list[Any] = [[pid for pid, _ in batch], [v["identity_status"] for v in values],
                          Same(now), Same(now), *([v[a] for v in values] for a in ATTRS)]  # fmt: skip
    for source in ("birth_name", "usage_name"):
        columns.append([phonetic_code(x) if x else None for x in columns[4 + ATTRS.index(source)]])
    kinds = ["UUIDField", "TextField", "DateTimeField", "DateTimeField",
             *(PLAIN_TYPES.get(a, "TextField") for a in ATTRS), "TextField", "TextField"]  # fmt: skip
    return binary_block(binary_rows_from_columns(columns, [binary_encoder(k) for k in kinds]))


def timed_load(
    blocks: Iterable[bytes],
    kind: str,
    table: str,
    columns: list[str],
    before: Callable[[Any], None],
    after: Callable[[Any], None],
) -> float:
    """One transaction, as `rempart generate`: indexes dropped, rows streamed, indexes rebuilt."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")  # each load starts with no dirty pages left by the other
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        before(cursor)
        sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)"
        for block in blocks:
            with cursor.cursor.copy(sql) as copy:
                copy.write(block)
        loaded = time.perf_counter()
        after(cursor)
    took = time.perf_counter() - started
    print(f"  {kind}: rows in {loaded - started:.1f} s, "
          f"then indexes, statistics and commit {took - loaded + started:.1f} s")  # fmt: skip
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--pgcrypto-rows", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="loads of each kind, interleaved")
    parser.add_argument("--load-only", action="store_true", help="skip pgcrypto and searches")
    parser.add_argument(
        "--searches-again", metavar="DATA_DIR",
        help="only the searches, on the group an earlier run left (a database at rest: no load, "
        "vacuum or checkpoint of a fresh load competing)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.searches_again:
        searches_again(args.searches_again, args.searches)
        return
    setup()
    from django.db import connection

    from rempart.patients.models import Patient
    from rempart.patients.sealing import PatientSealer

    t0 = time.perf_counter()
    workers = Workers(args.patients)
    n: int = workers.patients
    print(f"{n} synthetic patients made by the workers in {time.perf_counter() - t0:.1f} s "
          "(not timed below)")  # fmt: skip

    # Encrypted: secondary indexes dropped, loaded, rebuilt (what `rempart generate` does).
    saved: list[tuple[str, str]] = []

    def drop_patient_indexes(cursor: Any) -> None:
        cursor.execute("TRUNCATE patients_patient CASCADE")  # empty, as before `generate`
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'patients_patient' "
            "AND indexname <> 'patients_patient_pkey'"
        )
        saved[:] = cursor.fetchall()
        for name, _ in saved:
            cursor.execute(f'DROP INDEX "{name}"')

    def rebuild_patient_indexes(cursor: Any) -> None:
        for _, definition in saved:
            cursor.execute(definition)
        cursor.execute("ANALYZE patients_patient")

    def create_plain(cursor: Any) -> None:
        cursor.execute("DROP TABLE IF EXISTS bench_plain")
        cursor.execute(PLAIN)

    def index_plain(cursor: Any) -> None:
        for statement in PLAIN_INDEXES:
            cursor.execute(statement)
        cursor.execute("ANALYZE bench_plain")

    plain_cols = ["id", "identity_status", "created_at", "updated_at", *ATTRS,
                  "phonetic_birth", "phonetic_usage"]  # fmt: skip
    encs, plains = [], []
    for round_ in range(1, args.rounds + 1):  # interleaved: both see the same machine state
        print(f"round {round_}")
        encs.append(timed_load(workers.blocks("encrypted"), "encrypted", "patients_patient",
                               PatientSealer().columns, drop_patient_indexes,
                               rebuild_patient_indexes))  # fmt: skip
        plains.append(timed_load(workers.blocks("plaintext"), "plaintext", "bench_plain",
                                 plain_cols, create_plain, index_plain))  # fmt: skip
    enc, plain = statistics.mean(encs), statistics.mean(plains)
    # PostgreSQL's share: the same blocks, made beforehand, only copied and indexed.
    print("PostgreSQL alone (blocks made beforehand)")
    enc_pg = timed_load(list(workers.blocks("encrypted")), "encrypted", "patients_patient",
                        PatientSealer().columns, drop_patient_indexes,
                        rebuild_patient_indexes)  # fmt: skip
    plain_pg = timed_load(list(workers.blocks("plaintext")), "plaintext", "bench_plain",
                          plain_cols, create_plain, index_plain)  # fmt: skip
    searched = [] if args.load_only else workers.sample(args.searches)
    workers.close()

    # pgcrypto: what a DBA would do instead, encrypting inside PostgreSQL, on a sample.
    pg_rates = {}
    sample = 0 if args.load_only else min(args.pgcrypto_rows, n)
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        cursor.execute("CREATE TABLE bench_pgcrypto (id uuid PRIMARY KEY, "
                       + ", ".join(f"{a} bytea" for a in ATTRS) + ")")  # fmt: skip
        for label, options, rows in (
            ("s2k-mode=1 (no key stretching)", "s2k-mode=1, cipher-algo=aes256", sample),
            ("default (iterated S2K)", "cipher-algo=aes256", sample // 10),
        ):
            if not rows:
                continue
            cursor.execute("TRUNCATE bench_pgcrypto")
            started = time.perf_counter()
            cursor.execute(
                "INSERT INTO bench_pgcrypto SELECT id, "
                + ", ".join(f"pgp_sym_encrypt({a}::text, %(k)s, %(o)s)" for a in ATTRS)
                + " FROM bench_plain LIMIT %(n)s",
                {"k": "bench-passphrase", "o": options, "n": rows},
            )
            pg_rates[label] = rows / (time.perf_counter() - started)

    def per_row(table: str) -> float:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_total_relation_size('{table}')")
            return float(cursor.fetchone()[0]) / n

    print(f"\nload of {n} patients into PostgreSQL, 2 worker processes + COPY, indexes included "
          f"(mean of {args.rounds} rounds)")  # fmt: skip
    print(f"  encrypted (Tink AEAD + 6 blind indexes)  {n / enc:10,.0f} patients/s  ({enc:.1f} s)")
    print(
        f"  plaintext (same values, 10 B-trees)      {n / plain:10,.0f} patients/s  ({plain:.1f} s)"
    )
    print(f"  ratio plaintext / encrypted              {enc / plain:10.2f}x")
    print(
        f"  PostgreSQL alone, encrypted rows         {n / enc_pg:10,.0f} patients/s  ({enc_pg:.1f} s)"
    )
    print(
        f"  PostgreSQL alone, plaintext rows         {n / plain_pg:10,.0f} patients/s  ({plain_pg:.1f} s)"
    )
    for label, rate in pg_rates.items():
        print(f"  pgcrypto pgp_sym_encrypt, {label:30} {rate:10,.0f} patients/s (15 fields)")
    enc_b, plain_b = per_row("patients_patient"), per_row("bench_plain")
    print("\nstored bytes per patient (table + TOAST + indexes)")
    print(f"  encrypted {enc_b:7.0f}   plaintext {plain_b:7.0f}   ratio {enc_b / plain_b:.2f}x")

    if not args.load_only:
        search(searched, Patient)


def searches_again(data_dir: str, count: int) -> None:
    connect(data_dir)
    from django.db import connection

    from rempart.patients.models import Patient

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE patients_patient")
        cursor.execute("VACUUM ANALYZE bench_plain")
    keys = ("birth_name", "usage_name", "birth_date", "nir", "email", "phone_mobile")
    sample = [{k: getattr(p, k) for k in keys} for p in Patient.objects.order_by("?")[:count]]
    search(sample, Patient)


def search(sample: list[dict[str, Any]], patient_model: Any) -> None:
    from django.db import connection

    from rempart.audit.context import Actor
    from rempart.lib.phonetic import phonetic_code
    from rempart.records.selectors import patients as sel

    ACTOR = Actor.system("bench")  # the console: each search is audited, no care check
    with_nir = [v for v in sample if v["nir"]]
    with_email = [v for v in sample if v["email"]]
    with_phone = [v for v in sample if v["phone_mobile"]]
    married = [v for v in sample if v["usage_name"]]

    def timed(
        fn: Callable[[dict[str, Any]], Any], rows: list[dict[str, Any]]
    ) -> tuple[float, float]:
        times = []
        for v in rows:
            started = time.perf_counter()
            fn(v)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        return statistics.median(times), times[int(len(times) * 0.95)]

    def plain_query(
        sql: str, params: Callable[[dict[str, Any]], list[Any]]
    ) -> Callable[[dict[str, Any]], Any]:
        def run(v: dict[str, Any]) -> Any:
            with connection.cursor() as cursor:
                cursor.execute(sql, params(v))
                return cursor.fetchall()

        return run

    cases = [
        ("name + birth date",
         lambda v: sel.patients_find_by_name_and_birth_date(actor=ACTOR, name=v["birth_name"], birth_date=v["birth_date"]),
         lambda v: sel._by_name_and_birth_date(v["birth_name"], v["birth_date"], ""),
         plain_query("SELECT * FROM bench_plain WHERE (birth_name = %s OR usage_name = %s) AND birth_date = %s",
                     lambda v: [v["birth_name"], v["birth_name"], v["birth_date"]]), sample),
        ("usage name + birth date",
         lambda v: sel.patients_find_by_name_and_birth_date(actor=ACTOR, name=v["usage_name"], birth_date=v["birth_date"]),
         lambda v: sel._by_name_and_birth_date(v["usage_name"], v["birth_date"], ""),
         plain_query("SELECT * FROM bench_plain WHERE (birth_name = %s OR usage_name = %s) AND birth_date = %s",
                     lambda v: [v["usage_name"], v["usage_name"], v["birth_date"]]), married),
        ("phonetic name + birth date",
         lambda v: sel.patients_find_by_phonetic_name(actor=ACTOR, name=v["birth_name"], birth_date=v["birth_date"]),
         lambda v: sel._by_phonetic_name(v["birth_name"], v["birth_date"]),
         plain_query("SELECT * FROM bench_plain WHERE (phonetic_birth = %s OR phonetic_usage = %s) AND birth_date = %s",
                     lambda v: [phonetic_code(v["birth_name"])] * 2 + [v["birth_date"]]), sample),
        ("NIR",
         lambda v: sel.patients_find_by_nir(actor=ACTOR, nir=v["nir"]),
         lambda v: sel._by_nir(v["nir"]),
         plain_query("SELECT * FROM bench_plain WHERE nir = %s", lambda v: [v["nir"]]), with_nir),
        ("e-mail",
         lambda v: sel.patients_find_by_email(actor=ACTOR, email=v["email"]),
         lambda v: sel._by_email(v["email"]),
         plain_query("SELECT * FROM bench_plain WHERE email = %s", lambda v: [v["email"]]), with_email),
        ("phone",
         lambda v: sel.patients_find_by_phone(actor=ACTOR, phone=v["phone_mobile"]),
         lambda v: sel._by_phone(v["phone_mobile"]),
         plain_query("SELECT * FROM bench_plain WHERE phone_mobile = %s OR phone_home = %s",
                     lambda v: [v["phone_mobile"], v["phone_mobile"]]), with_phone),
    ]  # fmt: skip
    print(f"\nselector latency over {len(sample)} random patients (ms, p50 / p95); 'search' is "
          "the whole selector with its durable audit event, 'index' the blind-index look-up, "
          "fetch and exact filter alone")  # fmt: skip
    case: tuple[str, Callable[[dict[str, Any]], Any], Callable[[dict[str, Any]], Any],
                Callable[[dict[str, Any]], Any], list[Any]]  # fmt: skip
    for case in cases:
        label, encrypted, core, plaintext, rows = case
        for v in rows[:20]:  # warm the caches the same way for all
            encrypted(v)
            core(v)
            plaintext(v)
        e50, e95 = timed(encrypted, rows)
        c50, c95 = timed(core, rows)
        p50, p95 = timed(plaintext, rows)
        print(
            f"  {label:27} search {e50:5.2f} / {e95:5.2f}   index {c50:5.2f} / {c95:5.2f}   "
            f"plaintext B-tree {p50:5.2f} / {p95:5.2f}"
        )
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_flush (id bigserial, at timestamptz)")
    event = plain_query("INSERT INTO bench_flush (at) VALUES (now()) RETURNING id", lambda v: [])
    f50, f95 = timed(event, sample)
    print(
        f"  {'a durable one-row insert':27} {f50:5.2f} / {f95:5.2f}   (the WAL flush each audit event waits for)"
    )


if __name__ == "__main__":
    main()
