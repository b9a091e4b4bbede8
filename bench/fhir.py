"""The FHIR API under a real server (gunicorn, 2 workers) on the whole group: Patient read and
Patient search (name + birth date) with system tokens, p50/p95 one request after the other, then
requests/s with 4 clients at once; Practitioner read (clear directory data, no patient, no
budget) as the plaintext path in the same run, through the same server, token and checks.

Usage: .venv/bin/python bench/fhir.py [--patients 760000] [--requests 1000] [--skip-generate]
Creates (and drops first) the database `rempart_bench_fhir`; keys in a temporary folder (or
BENCH_DATA_DIR). Each system reads at most 60 patients of its establishment and searches each
once (120 items, within the api_client role's hourly budget of 200), so the figures are the
API's, not the lock's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "postgres://postgres@127.0.0.1:5432"
NAME = "rempart_bench_fhir"
PER_CLIENT = 60
SCOPES = "system/Patient.rs system/Practitioner.rs"


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(ROOT / ".venv/bin/rempart"), *args], env=env, check=True,  # noqa: S603
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout


def busiest(env: dict[str, str]) -> tuple[str, str]:
    script = ("from django.db.models import Count; from rempart.directory.models import "
              "Establishment; e = Establishment.objects.annotate(n=Count('stays'))"
              ".order_by('-n').first(); print(e.pk, e.finess)")  # fmt: skip
    place, finess = run(env, "shell", "-c", script).split()[-2:]
    return place, finess


class Api:
    """One system: its key pair, registered at the console, and a token from a signed assertion."""

    def __init__(self, url: str, env: dict[str, str], name: str, finess: str, folder: Path) -> None:
        import tink
        from tink import jwt

        jwt.register_jwt_signature()
        keys = tink.new_keyset_handle(jwt.jwt_es256_template())
        jwks = folder / f"{name}.jwks.json"
        jwks.write_text(jwt.jwk_set_from_public_keyset_handle(keys.public_keyset_handle()))
        run(
            env,
            "fhir",
            "client",
            "add",
            "--id",
            name,
            "--name",
            name,
            "--jwks",
            str(jwks),
            "--establishment",
            finess,
            *[a for s in SCOPES.split() for a in ("--scope", s)],
        )
        self.url, self.name, self.keys = url, name, keys
        self.token = self._token()

    def _token(self) -> str:
        from tink import jwt

        token_url = f"{self.url}/fhir/auth/token"
        now = dt.datetime.now(dt.UTC)
        claims = jwt.new_raw_jwt(issuer=self.name, subject=self.name, audiences=[token_url],
                                 jwt_id=uuid.uuid4().hex, issued_at=now,
                                 expiration=now + dt.timedelta(minutes=4))  # fmt: skip
        assertion = self.keys.primitive(jwt.JwtPublicKeySign).sign_and_encode(claims)
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "scope": SCOPES, "client_assertion": assertion,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        }).encode()  # fmt: skip
        with urllib.request.urlopen(token_url, data=form) as answer:  # noqa: S310  # local server
            return str(json.loads(answer.read())["access_token"])

    def get(self, path: str) -> tuple[int, dict[str, object], float]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/fhir+json"}
        request = urllib.request.Request(self.url + path, headers=headers)  # noqa: S310
        started = time.perf_counter()
        with urllib.request.urlopen(request) as answer:  # noqa: S310  # local server
            body = json.loads(answer.read())
            status = answer.status
        return status, body, (time.perf_counter() - started) * 1000


def pct(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--requests", type=int, default=1000, help="of each kind")
    parser.add_argument("--skip-generate", action="store_true")
    args = parser.parse_args()
    data = Path(os.environ.get("BENCH_DATA_DIR") or tempfile.mkdtemp(prefix="rempart-fhir-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data), DATABASE_URL=f"{BASE}/{NAME}")
    import psycopg

    if not (data / "master.key").exists():
        run(env, "keys", "init")
    if not args.skip_generate:
        with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {NAME}")
        run(env, "migrate", "-v0")
        started = time.perf_counter()
        run(env, "generate", "--patients", str(args.patients), "--establishments", "17",
            "--seed", "1")  # fmt: skip
        print(f"generated {args.patients:,} patients in {time.perf_counter() - started:.0f} s")
    place, finess = busiest(env)
    with psycopg.connect(f"{BASE}/{NAME}") as conn:
        in_care = [str(r[0]) for r in conn.execute(
            "SELECT DISTINCT patient_id FROM care_stay WHERE establishment_id = %s AND "
            "admitted_at IS NOT NULL AND discharged_at IS NULL AND cancelled_at IS NULL",
            [place]).fetchall()]  # fmt: skip
        doctors = [
            str(r[0])
            for r in conn.execute(
                "SELECT id FROM directory_practitioner ORDER BY rpps LIMIT 500"
            ).fetchall()
        ]
        conn.execute("DELETE FROM access_patientseen")
        conn.commit()
    print(f"{len(in_care):,} patients in care at the busiest establishment ({finess})")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        [str(ROOT / ".venv/bin/gunicorn"), "rempart.wsgi", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"], env=env, cwd=ROOT)  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        stamp = uuid.uuid4().hex[:6]
        clients = [Api(url, env, f"bench-{stamp}-{i}", finess, data)
                   for i in range(-(-args.requests // PER_CLIENT))]  # fmt: skip
        reads: list[float] = []
        searches: list[float] = []
        plain: list[float] = []
        queue = itertools.cycle(in_care)  # each system counts its own distinct patients
        chosen: list[tuple[Api, str]] = []
        for client in clients:
            for _ in range(PER_CLIENT):
                pid = next(queue)
                status, body, ms = client.get(f"/fhir/Patient/{pid}")
                assert status == 200 and body["id"] == pid, status
                reads.append(ms)
                name = next(n for n in body["name"] if n["use"] == "official")["family"]
                query = urllib.parse.urlencode({"family": name, "birthdate": body["birthDate"]})
                status, found, ms = client.get(f"/fhir/Patient?{query}")
                assert status == 200 and found["total"] >= 1, status
                searches.append(ms)
                status, _, ms = client.get(f"/fhir/Practitioner/{doctors[len(plain) % 500]}")
                plain.append(ms)
                chosen.append((client, pid))
        print(f"one request after the other, {len(reads):,} of each kind:")
        for label, samples in (("Patient read", reads), ("Patient search", searches),
                               ("Practitioner read (clear)", plain)):  # fmt: skip
            p50, p95 = pct(samples)
            print(f"  {label:27} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms")
        # Throughput: 4 clients at once re-reading the patients they already read (within
        # budget: distinct patients are counted, not requests).
        done = [0]
        lock = threading.Lock()

        def worker(items: list[tuple[Api, str]]) -> None:
            for client, pid in items:
                status, _, _ = client.get(f"/fhir/Patient/{pid}")
                assert status == 200
                with lock:
                    done[0] += 1

        threads = [threading.Thread(target=worker, args=(chosen[k::4],)) for k in range(4)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        print(
            f"4 clients at once: {done[0]:,} Patient reads in {elapsed:.1f} s = "
            f"{done[0] / elapsed:,.0f} requests/s"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
