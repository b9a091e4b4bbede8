"""The web pages under a real server (gunicorn, 2 workers) on the whole group: patient search and
chart open through HTTP, p50/p95, with the second factor, the access policy, the budgets and the
audit trail all on.

Usage: .venv/bin/python bench/pages.py [--patients 760000] [--requests 1000] [--skip-generate]
Creates (and drops first) the database `rempart_bench_http`; keys in a temporary folder. Logs in
medical secretaries of the busiest establishment, each opening 15 charts and making 15 searches
(within its hourly budget), so the numbers are the pages', not the lock's.
"""

from __future__ import annotations

import argparse
import html
import http.cookiejar
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "postgres://postgres@127.0.0.1:5432"
NAME = "rempart_bench_http"
PER_USER = 15  # charts and searches each: within a secretary's hourly budget (60 items)
PASSWORD = "Bench-http-mot-de-passe-42"  # noqa: S105  # a throwaway account of the benchmark


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(ROOT / ".venv/bin/rempart"), *args], env=env, check=True,  # noqa: S603
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout


def prepare(env: dict[str, str], patients: int, skip: bool, users: int) -> None:
    import psycopg

    if not skip:
        with psycopg.connect(f"{BASE}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {NAME}")
        run(env, "migrate", "-v0")
        run(env, "generate", "--patients", str(patients), "--establishments", "17", "--seed", "1")
    script = f"""
from rempart.directory.models import Establishment, Role
from rempart.records.services.directory import staff_create
from rempart.access.services import totp_device_create
from rempart.audit.context import Actor
from django.contrib.auth import get_user_model
from django.db.models import Count
place = Establishment.objects.annotate(n=Count("stays")).order_by("-n").first()
for i in range({users}):
    name = f"bench.sec{{i}}"
    if get_user_model().objects.filter(username=name).exists():
        continue
    user = staff_create(username=name, password="{PASSWORD}", role=Role.SECRETARY,
                        establishments=[place]).user
    device = totp_device_create(actor=Actor.system("bench"), user_id=user.pk)
    device.confirmed = True
    device.save()
print(place.pk)
"""
    env["BENCH_PLACE"] = run(env, "shell", "-c", script).strip().splitlines()[-1]


class Session:
    def __init__(self, url: str, env: dict[str, str], username: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.get("/connexion/")
        self.post("/connexion/", {"username": username, "password": PASSWORD})
        code = run(env, "totp_code", username).strip()
        self.post("/connexion/second-facteur/", {"code": code})

    def _csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def get(self, path: str, query: dict[str, str] | None = None) -> tuple[int, str, float]:
        target = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        started = time.perf_counter()
        with self.opener.open(target) as response:  # the local server
            body = response.read().decode()
            status = response.status
        return status, body, (time.perf_counter() - started) * 1000

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str, float]:
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self._csrf()}).encode()
        request = urllib.request.Request(self.url + path, data=body,  # noqa: S310
                                         headers={"Referer": self.url + path})  # fmt: skip
        started = time.perf_counter()
        with self.opener.open(request) as response:
            text = response.read().decode()
            status = response.status
        return status, text, (time.perf_counter() - started) * 1000


def pct(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=760_000)
    parser.add_argument("--requests", type=int, default=1000, help="of each kind")
    parser.add_argument("--skip-generate", action="store_true")
    args = parser.parse_args()
    data = Path(os.environ.get("BENCH_DATA_DIR") or tempfile.mkdtemp(prefix="rempart-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data), DATABASE_URL=f"{BASE}/{NAME}")
    if not (data / "master.key").exists():
        run(env, "keys", "init")
    users = -(-args.requests // PER_USER)
    prepare(env, args.patients, args.skip_generate, users)

    import psycopg

    with psycopg.connect(f"{BASE}/{NAME}") as conn:
        rows = conn.execute(
            "SELECT s.patient_id FROM care_stay s WHERE s.establishment_id = %s "
            "AND s.admitted_at IS NOT NULL AND s.discharged_at IS NULL",
            [env["BENCH_PLACE"]],
        ).fetchall()
    in_care = [str(r[0]) for r in rows]
    print(f"{args.patients:,} patients; {len(in_care):,} in care at the busiest establishment")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(  # noqa: S603
        [str(ROOT / ".venv/bin/gunicorn"), "rempart.wsgi", "--workers", "2",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        sessions = [Session(url, env, f"bench.sec{i}") for i in range(users)]
        rng = random.Random(3)  # sampling, not security
        per_user = min(PER_USER, len(in_care))
        charts: list[float] = []
        searches: list[float] = []
        for session in sessions:
            for pid in rng.sample(in_care, per_user):
                status, body, ms = session.get(f"/patients/{pid}/")
                assert status == 200 and "Séjours" in body, status
                charts.append(ms)
                found = re.search(r'<span class="birth-name">([^<]+)</span>', body)
                assert found is not None
                name = html.unescape(found.group(1))
                born = re.search(r"Né\(e\) le (\d\d)/(\d\d)/(\d{4})", body)
                assert born is not None
                query = {"name": name, "birth_date": f"{born[3]}-{born[2]}-{born[1]}"}
                status, body, ms = session.post("/patients/", query)  # criteria not in URLs
                assert status == 200 and html.escape(name) in body, status
                searches.append(ms)
        for label, samples, target in (("search (name + birth date)", searches, 20.0),
                                       ("chart open", charts, 40.0)):  # fmt: skip
            p50, p95 = pct(samples)
            verdict = "met" if p95 <= target else "MISSED"
            print(f"{label:28} {len(samples):5} requests  p50 {p50:6.2f} ms  p95 {p95:6.2f} ms"
                  f"  (target p95 <= {target:.0f} ms: {verdict})")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
