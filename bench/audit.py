"""Cost of the audit trail: a patient read and a search with the trail on and off (same run,
interleaved), events/s written by one and by two processes, the sealer's and the verifier's
throughput.

Usage: .venv/bin/python bench/audit.py [--patients N] [--reads N] [--events N]
Creates (and drops first) the database `rempart_bench_audit`; keys in a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

URL = "postgres://postgres@127.0.0.1:5432/rempart_bench_audit"


def setup(patients: int) -> None:
    import psycopg

    with psycopg.connect(URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS rempart_bench_audit WITH (FORCE)")
        conn.execute("CREATE DATABASE rempart_bench_audit")
    data_dir = tempfile.mkdtemp(prefix="rempart-bench-")
    os.environ.update(REMPART_ENV="test", REMPART_DATA_DIR=data_dir, DATABASE_URL=URL,
                      DJANGO_SETTINGS_MODULE="rempart.settings")  # fmt: skip
    import django

    django.setup()
    from django.core.management import call_command

    from rempart.synth.bulk import bulk_load
    from rempart.synth.population import build_directory
    from rempart.vault import keystore

    call_command("migrate", verbosity=0)
    keystore.init_keys(create_master=True)
    bulk_load(build_directory(seed=3, patients=patients, today=dt.date(2026, 11, 28), clinics=3,
                              health_centres=1, nursing_homes=1), workers=2)  # fmt: skip


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return statistics.median(ordered), p95, statistics.fmean(ordered)


def interleaved(on: Callable[[Any], Any], off: Callable[[Any], Any], args: list[Any]) -> Any:
    """Each argument through both paths, alternating which goes first, timings in ms."""
    timings: dict[str, list[float]] = {"on": [], "off": []}
    for i, arg in enumerate(args):
        order = (("on", on), ("off", off)) if i % 2 else (("off", off), ("on", on))
        for label, fn in order:
            started = time.perf_counter()
            fn(arg)
            timings[label].append((time.perf_counter() - started) * 1000)
    return timings


def writer(count: int) -> float:
    """One process recording `count` read events in autocommit (what requests do)."""
    from django.db import connections

    from rempart.audit.context import Actor
    from rempart.audit.models import Action
    from rempart.audit.services import event_record

    connections.close_all()
    actor = Actor(username="bench", role="physician", ip="10.0.0.1", request_id="bench-request")
    started = time.perf_counter()
    for _ in range(count):
        event_record(actor, Action.READ, resource_type="Patient", resource_id="x")
    return time.perf_counter() - started


def http_paths(n: int) -> None:
    """The same comparison for whole requests (Django's test client, in process: session,
    second factor, access policy, template), as a secretary of the first establishment."""
    from django.conf import settings
    from django.test import Client

    from rempart.access.services import totp_device_create
    from rempart.audit.context import Actor
    from rempart.care.models import Stay
    from rempart.directory.models import Establishment, Role
    from rempart.patients.models import Patient
    from rempart.records.selectors import care, patients
    from rempart.records.services.directory import staff_create

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (10**9, 10**9)}
    here = Establishment.objects.order_by("finess").first()
    user = staff_create(username="bench.secretaire", password="Bench-mot-de-passe-42",  # noqa: S106
                        role=Role.SECRETARY, establishments=[here]).user  # fmt: skip
    device = totp_device_create(actor=Actor.system("bench"), user_id=user.pk)
    device.confirmed = True
    device.save()
    client = Client()
    client.post("/connexion/", {"username": user.username, "password": "Bench-mot-de-passe-42"})
    client.post("/connexion/second-facteur/", {"code": f"{device.totp().token():06d}"})
    in_care = list(
        Stay.objects.filter(
            establishment=here, admitted_at__isnull=False, discharged_at=None
        ).values_list("patient_id", flat=True)[:n]
    )
    probes = [(p.birth_name, p.birth_date) for p in Patient.objects.filter(id__in=in_care[:1000])]
    assert client.get(f"/patients/{in_care[0]}/").status_code == 200

    def chart(pid: Any) -> None:
        assert client.get(f"/patients/{pid}/").status_code == 200

    def search(probe: tuple[str, dt.date]) -> None:
        query = {"name": probe[0], "birth_date": probe[1].isoformat()}
        assert client.get("/patients/", query).status_code == 200

    def trail_off(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        originals = (care.event_record, patients.event_record)

        def run(arg: Any) -> None:
            care.event_record = patients.event_record = lambda *a, **k: 0  # type: ignore[assignment]
            try:
                fn(arg)
            finally:
                care.event_record, patients.event_record = originals

        return run

    for label, fn, argv in (("HTTP chart page (GET /patients/<id>/)", chart, in_care),
                            ("HTTP search page (name + birth date)", search, probes)):  # fmt: skip
        timings = interleaved(fn, trail_off(fn), argv)
        on, off = percentiles(timings["on"]), percentiles(timings["off"])
        print(f"\n{label}, {len(argv)} requests per path")
        print(f"  trail on : p50 {on[0]:.3f} ms  p95 {on[1]:.3f} ms  mean {on[2]:.3f} ms")
        print(f"  trail off: p50 {off[0]:.3f} ms  p95 {off[1]:.3f} ms  mean {off[2]:.3f} ms")
        print(f"  overhead : p50 {100 * (on[0] / off[0] - 1):+.1f} %  "
              f"mean {100 * (on[2] / off[2] - 1):+.1f} %")  # fmt: skip


def floor(actor: Any, n: int = 3000) -> None:
    """What one durable event costs at the database: the same prepared INSERT with and without
    waiting for the WAL flush, next to a bare round trip."""
    import psycopg

    from rempart.audit.services import _INSERT_ONE

    values = [dt.datetime.now(dt.UTC), 1, "bench", "physician", None, "read", "Patient", "x",
              None, "care", "success", "10.0.0.1", "bench-request", "{}"]  # fmt: skip
    print("\nfloor, psycopg alone (no Django):")
    with psycopg.connect(URL, autocommit=True) as conn:
        for label, setup_sql, sql, params in (
            ("bare round trip (SELECT 1)", None, "SELECT 1", []),
            ("event INSERT, synchronous_commit=off", "SET synchronous_commit = off", _INSERT_ONE,
             values),
            ("event INSERT, durable (default)", "SET synchronous_commit = on", _INSERT_ONE, values),
        ):  # fmt: skip
            if setup_sql:
                conn.execute(setup_sql)
            samples = []
            for _ in range(n):
                started = time.perf_counter()
                conn.execute(sql, params, prepare=True).fetchone()
                samples.append((time.perf_counter() - started) * 1000)
            p50, p95, mean = percentiles(samples)
            print(f"  {label:40} p50 {p50:.3f} ms  p95 {p95:.3f} ms  mean {mean:.3f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--events", type=int, default=20_000, help="per writer process")
    args = parser.parse_args()
    setup(args.patients)
    import random

    from rempart.audit.context import Actor
    from rempart.audit.models import Event
    from rempart.audit.services import seal_all
    from rempart.audit.verify import verify_trail
    from rempart.patients.models import Patient
    from rempart.records.selectors import patients as sel

    # The console's actor: the selectors' own cost, without the care check (the HTTP section
    # below has it all).
    actor = Actor(username="bench", role="system", ip="10.0.0.1", request_id="bench-request")
    ids = list(Patient.objects.values_list("id", flat=True))
    sample = random.Random(5).sample(ids, args.reads)  # sampling, not security
    probes = [(p.birth_name, p.birth_date) for p in Patient.objects.filter(id__in=sample[:1000])]
    with_trail = sel.event_record
    print(f"{len(ids):,} patients; {args.reads:,} reads and {len(probes):,} searches per path")

    def open_record(patient: Patient) -> None:  # what a chart shows: every identity field
        for name in ("birth_name", "given_names", "birth_date", "sex", "nir", "email", "city"):
            getattr(patient, name)

    def read(patient_id: Any) -> None:
        open_record(sel.patient_get(actor=actor, patient_id=patient_id))

    def search(probe: tuple[str, dt.date]) -> None:
        sel.patients_find_by_name_and_birth_date(actor=actor, name=probe[0], birth_date=probe[1])

    def trail_off(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(arg: Any) -> None:
            sel.event_record = lambda *a, **k: None  # type: ignore[assignment,misc]
            try:
                fn(arg)
            finally:
                sel.event_record = with_trail

        return run

    for label, fn, argv in (("patient read (get + open 7 fields)", read, sample),
                            ("search name + birth date", search, probes)):  # fmt: skip
        fn(argv[0])
        timings = interleaved(fn, trail_off(fn), argv)
        on, off = percentiles(timings["on"]), percentiles(timings["off"])
        print(f"\n{label}")
        print(f"  trail on : p50 {on[0]:.3f} ms  p95 {on[1]:.3f} ms  mean {on[2]:.3f} ms")
        print(f"  trail off: p50 {off[0]:.3f} ms  p95 {off[1]:.3f} ms  mean {off[2]:.3f} ms")
        print(f"  overhead : p50 {100 * (on[0] / off[0] - 1):+.1f} %  "
              f"mean {100 * (on[2] / off[2] - 1):+.1f} %")  # fmt: skip

    http_paths(args.reads)
    floor(actor)

    from django.db import connections

    before = Event.objects.count()
    for processes in (1, 2):
        connections.close_all()
        started = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(writer, [args.events] * processes)
        elapsed = time.perf_counter() - started
        total = args.events * processes
        print(f"\n{processes} writer process(es): {total:,} events in {elapsed:.1f} s, "
              f"{total / elapsed:,.0f} events/s (autocommit, durable each)")  # fmt: skip
    written = Event.objects.count() - before

    pending = Event.objects.count()
    started = time.perf_counter()
    sealed = seal_all()
    elapsed = time.perf_counter() - started
    print(f"\nsealer: {sealed:,} events linked and checkpointed in {elapsed:.1f} s, "
          f"{sealed / elapsed:,.0f} events/s ({pending:,} pending, {written:,} from the writers)")  # fmt: skip
    started = time.perf_counter()
    report = verify_trail()
    elapsed = time.perf_counter() - started
    print(f"verify: {report.links:,} links, {report.checkpoints} checkpoints in {elapsed:.1f} s, "
          f"{report.links / elapsed:,.0f} events/s, ok={report.ok}")  # fmt: skip


if __name__ == "__main__":
    main()
