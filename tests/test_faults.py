"""Faults, played: Redis down under the budgets, the audit trail's disk full, and (with a real
server) a web worker and the sealer killed with -9 in the middle of writes, PostgreSQL restarted
under load. Each ends with nothing lost, nothing half written, nothing revealed, and the trail
verifying."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests
from django.db import connection

from rempart.access import budgets, policy
from rempart.access.models import Alert, PatientSeen
from rempart.audit.services import AuditUnavailable
from rempart.records.selectors import patients as sel
from tests.conftest import Console
from tests.test_access import _patients_in_care, world  # noqa: F401  # the fixture


def test_with_redis_down_the_budgets_are_counted_in_the_database_never_dropped(world, settings):  # noqa: F811
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.REMPART_READ_BUDGETS = {**settings.REMPART_READ_BUDGETS, "secretary": (3, 50, 100)}
    budgets._redis.cache_clear()
    secretary = world.actor("secretary")
    try:
        patients = _patients_in_care(world, 5)
        for patient in patients[:3]:
            sel.patient_get(actor=secretary, patient_id=patient.pk)
        with pytest.raises(policy.StepUpRequired):  # the budget holds: the 4th asks again
            sel.patient_get(actor=secretary, patient_id=patients[3].pk)
    finally:
        budgets._redis.cache_clear()
    assert PatientSeen.objects.filter(user_id=secretary.user_id).count() == 4
    told = Alert.objects.filter(audience="security_officer", message__contains="Redis")
    assert told.count() == 1  # once, not at every read


@pytest.fixture
def disk_full() -> None:
    """The audit table's storage is full: PostgreSQL answers every insert with SQLSTATE 53100
    (disk_full), as it does when its disk is. Played with a trigger on the one table."""
    with connection.cursor() as cursor:
        cursor.execute("""
            CREATE FUNCTION pg_temp.no_space() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'
                  USING ERRCODE = '53100'; END $$;
            CREATE TRIGGER audit_disk_full BEFORE INSERT ON audit_event
            FOR EACH ROW EXECUTE FUNCTION pg_temp.no_space();
        """)  # fmt: skip


def test_with_the_trails_disk_full_nothing_is_shown_and_nothing_written(world, disk_full):  # noqa: F811
    """Fail closed: the read is refused (no patient data returned), a write is rolled back."""
    from rempart.records.services.patients import patient_update
    from tests.test_access import _data

    physician = world.actor("physician")
    with pytest.raises(AuditUnavailable):
        sel.patient_get(actor=physician, patient_id=world.patient.pk)
    before = (world.patient.version, world.patient.email)
    changed = _data(world.patient)
    changed = type(changed)(**{**vars(changed), "email": "nouvelle.adresse@exemple.fr"})
    with pytest.raises(AuditUnavailable):
        patient_update(actor=physician, patient=world.patient, data=changed)
    world.patient.refresh_from_db()
    assert (world.patient.version, world.patient.email) == before


def test_through_the_pages_a_full_trail_gives_a_page_without_data(world, disk_full, client):  # noqa: F811
    from tests.test_redteam import _code, _device

    user = world.users["physician"]
    device = _device(user)
    with connection.cursor() as cursor:  # the login itself must be recorded: let it pass
        cursor.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_disk_full")
    client.post("/connexion/", {"username": user.username, "password": "Un-mot-de-passe-long-7"})
    client.post("/connexion/second-facteur/", {"code": _code(device)})
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_disk_full")
    page = client.get(f"/patients/{world.patient.pk}/")
    body = page.content.decode()
    assert page.status_code == 503
    assert world.patient.birth_name not in body and str(world.patient.birth_date.year) not in body


# --- with a real server ---------------------------------------------------------------------------


GUNICORN = str(Path(sys.executable).parent / "gunicorn")
DESK = ("from rempart.directory.models import Establishment, Role; "
        "from rempart.records.services.directory import staff_create; "
        "from rempart.access.services import totp_device_create; "
        "from rempart.audit.context import Actor; "
        "e = Establishment.objects.order_by('finess').first(); "
        "u = staff_create(username='sec.faults', password='Un-mot-de-passe-long-9', "
        "role=Role.SECRETARY, establishments=[e], services=list(e.services.all())).user; "
        "d = totp_device_create(actor=Actor.system('tests'), user_id=u.pk); "
        "d.confirmed = True; d.save()")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int) -> None:
    for _ in range(200):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the server did not start")


@dataclass
class Served:
    url: str
    console: Console
    web: subprocess.Popen[bytes]
    sealer: subprocess.Popen[bytes]
    database: str
    results: list[int] = field(default_factory=list)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    refusals: list[str] = field(default_factory=list)

    def desk(self) -> requests.Session:
        browser = requests.Session()

        def csrf(path: str) -> str:
            page = browser.get(self.url + path, timeout=10).text
            return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

        headers = {"Referer": self.url + "/connexion/"}
        browser.post(self.url + "/connexion/", headers=headers, timeout=10, data={
            "csrfmiddlewaretoken": csrf("/connexion/"), "username": "sec.faults",
            "password": "Un-mot-de-passe-long-9"})  # fmt: skip
        code = self.console.run("totp_code", "sec.faults").stdout.strip()
        answer = browser.post(self.url + "/connexion/second-facteur/", headers=headers,
                              timeout=10, data={"csrfmiddlewaretoken":
                                                csrf("/connexion/second-facteur/"),
                                                "code": code})  # fmt: skip
        assert answer.url.rstrip("/") == self.url, "the desk could not sign in"
        return browser

    def register(self, browser: requests.Session, stop: threading.Event) -> None:
        """Register new patients one after the other until told to stop, at a desk's brisk pace
        (a burst of hundreds would meet the read budget: each registration searches for
        duplicates); keep each status (0: the connection itself failed)."""
        while not stop.wait(0.2):
            try:
                page = browser.get(self.url + "/patients/nouveau/", timeout=10)
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
                name = "PANNE" + uuid.uuid4().hex[:10].upper().translate(
                    str.maketrans("0123456789", "GHIJKLMNOP")
                )  # letters only
                answer = browser.post(self.url + "/patients/nouveau/", allow_redirects=False,
                                      timeout=10, headers={"Referer": self.url + "/"}, data={
                    "csrfmiddlewaretoken": token.group(1) if token else "", "birth_name": name,
                    "given_names": "Alix", "sex": "F", "birth_date": "1970-05-06",
                    "identity_status": "PROV"})  # fmt: skip
                self.results.append(answer.status_code)
                if answer.status_code == 403 and not self.refusals:
                    self.refusals.append(answer.text[:3000])
            except requests.RequestException:
                self.results.append(0)

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with psycopg.connect(self.database) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def assert_whole(self) -> None:
        """No half write: every new patient has its creation event and its IPP, every
        creation event its patient; then the sealed trail verifies."""
        orphans = self.sql(
            "SELECT count(*) FROM patients_patient p WHERE NOT EXISTS (SELECT 1 FROM audit_event "
            "e WHERE e.action = 'create' AND e.resource_type = 'Patient' AND e.patient_id = p.id) "
            "AND p.created_at > %s", self.started)  # fmt: skip
        assert orphans == [(0,)]
        lost = self.sql(
            "SELECT count(*) FROM audit_event e WHERE e.action = 'create' AND e.resource_type = "
            "'Patient' AND NOT EXISTS (SELECT 1 FROM patients_patient p WHERE p.id = "
            "e.patient_id)")  # fmt: skip
        assert lost == [(0,)]
        no_ipp = self.sql(
            "SELECT count(*) FROM patients_patient p JOIN audit_event e ON e.patient_id = p.id "
            "AND e.action = 'create' AND e.resource_type = 'Patient' AND e.username = "
            "'sec.faults' WHERE NOT EXISTS (SELECT 1 FROM patients_patientidentifier i WHERE "
            "i.patient_id = p.id)")  # fmt: skip
        assert no_ipp == [(0,)]
        created = self.sql(
            "SELECT count(*) FROM audit_event WHERE action = 'create' AND "
            "resource_type = 'Patient' AND username = 'sec.faults'"
        )[0][0]
        assert created >= self.results.count(302)  # every answered write is there
        self.console.run("audit", "seal")
        assert self.console.run("audit", "verify").returncode == 0


def _serve(console: Console) -> Iterator[Served]:
    console.run("migrate", "-v0")
    console.run("generate", "--patients", "300", "--establishments", "2", "--seed", "4")
    console.run("shell", "-c", DESK)
    port = _free_port()
    web = subprocess.Popen([GUNICORN, "rempart.wsgi", "--workers", "2", "--bind",  # noqa: S603
                            f"127.0.0.1:{port}", "--log-level", "error"], env=console.env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)  # fmt: skip
    sealer = console.start("audit", "sealer")
    try:
        _wait_port(port)
        yield Served(f"http://127.0.0.1:{port}", console, web, sealer,
                     console.env["DATABASE_URL"])  # fmt: skip
    finally:
        for process in (web, sealer):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)


@pytest.fixture
def served(console: Console) -> Iterator[Served]:
    yield from _serve(console)


def _writes(served: Served, seconds_before: float, fault, seconds_after: float) -> None:  # type: ignore[no-untyped-def]
    browser = served.desk()
    stop = threading.Event()
    writer = threading.Thread(target=served.register, args=(browser, stop))
    writer.start()
    time.sleep(seconds_before)
    fault()
    time.sleep(seconds_after)
    stop.set()
    writer.join(timeout=30)


def test_a_web_worker_killed_mid_write_leaves_no_half_patient(served: Served):
    def kill_a_worker() -> None:
        workers = subprocess.run(["pgrep", "-P", str(served.web.pid)], capture_output=True,  # noqa: S603, S607
                                 text=True, check=True).stdout.split()  # fmt: skip
        os.kill(int(workers[0]), signal.SIGKILL)

    _writes(served, 2.0, kill_a_worker, 4.0)
    assert served.results.count(302) >= 5 and set(served.results) <= {302, 0, 502}, served.refusals
    # gunicorn replaced the worker: the service answers again
    assert served.results[-3:] == [302, 302, 302]
    served.assert_whole()


def test_the_sealer_killed_mid_write_loses_no_event(served: Served):
    def kill_the_sealer() -> None:
        os.killpg(served.sealer.pid, signal.SIGKILL)
        served.sealer.wait(timeout=10)

    _writes(served, 1.5, kill_the_sealer, 2.0)
    served.sealer = served.console.start("audit", "sealer")  # the service restarts it
    time.sleep(4)
    assert set(served.results) == {302}  # writes never depended on the sealer
    unsealed = served.sql("SELECT count(*) FROM audit_event e WHERE NOT EXISTS (SELECT 1 FROM "
                          "audit_link l WHERE l.event_id = e.id)")  # fmt: skip
    assert unsealed == [(0,)]  # the new sealer took up every event the killed one left
    served.assert_whole()


def _in_care(served: Served) -> list[tuple[str, str]]:
    """Patients in the desk's care (a current stay in its establishment), with their birth
    names read by the application itself."""
    rows = served.sql("SELECT DISTINCT s.patient_id FROM care_stay s JOIN "
                      "directory_establishment e ON e.id = s.establishment_id WHERE "
                      "s.admitted_at IS NOT NULL AND s.discharged_at IS NULL AND "
                      "s.cancelled_at IS NULL AND e.finess = "
                      "(SELECT min(finess) FROM directory_establishment) "
                      "ORDER BY s.patient_id LIMIT 8")  # fmt: skip
    ids = [str(r[0]) for r in rows]
    assert len(ids) >= 3, "too few current patients in the desk's establishment to read"
    script = (
        "from rempart.patients.models import Patient; "
        f"print('|'.join(Patient.objects.get(pk=i).birth_name for i in {ids!r}))"
    )
    names = served.console.run("shell", "-c", script).stdout.strip().splitlines()[-1].split("|")
    return list(zip(ids, names, strict=True))


def _read(served: Served, browser: requests.Session, patients: list[tuple[str, str]],
          stop: threading.Event, leaks: list[str]) -> None:  # fmt: skip
    """Open charts in a loop (the same few patients: within the budget); a chart must show its
    patient's name, and no failed answer may show any."""
    turn = 0
    while not stop.wait(0.1):
        patient_id, name = patients[turn % len(patients)]
        turn += 1
        try:
            answer = browser.get(f"{served.url}/patients/{patient_id}/", timeout=10)
        except requests.RequestException:
            served.results.append(0)
            continue
        served.results.append(answer.status_code)
        if answer.status_code == 200:
            if name not in answer.text:
                leaks.append(f"chart {patient_id} without its name")
        elif any(n in answer.text for _, n in patients):
            leaks.append(f"a {answer.status_code} page shows a patient's name")


def test_a_key_rotation_and_reencryption_under_load_fail_no_read(served: Served):
    patients = _in_care(served)
    browser = served.desk()
    stop, leaks = threading.Event(), []
    reader = threading.Thread(target=_read, args=(served, browser, patients, stop, leaks))
    reader.start()
    try:
        time.sleep(1.0)
        added = served.console.run("keys", "add", "identity").stdout
        key_id = re.search(r"clé (\d+) ajoutée", added).group(1)  # type: ignore[union-attr]
        served.console.run("keys", "promote", "identity", key_id)
        served.console.run("keys", "reencrypt", "--category", "identity")
        time.sleep(6.0)  # past the workers' recheck period: they seal with the new key now
    finally:
        stop.set()
        reader.join(timeout=30)
    assert leaks == [] and len(served.results) >= 20
    assert set(served.results) == {200}, served.results  # not one read failed
    left = served.sql("SELECT count(*) FROM patients_patient WHERE substring(identity from 2 "
                      "for 4) <> %s", int(key_id).to_bytes(4, "big"))  # fmt: skip
    assert left == [(0,)]  # every identity is under the new key


@pytest.fixture
def own_cluster(vault_dir: Path, tmp_path: Path) -> Iterator[Console]:
    """A PostgreSQL cluster of its own, to restart without touching the suite's."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    name, port = f"faults{uuid.uuid4().hex[:6]}", _free_port()
    subprocess.run(["pg_createcluster", version, name, "-p", str(port), "--", "--auth=trust"],  # noqa: S603, S607
                   check=True, capture_output=True)  # fmt: skip
    try:
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True)  # noqa: S603, S607
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                             autocommit=True) as conn:  # fmt: skip
            conn.execute("CREATE DATABASE rempart")
        data_dir = tmp_path / "data"
        import shutil

        shutil.copytree(vault_dir, data_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
        env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data_dir),
                   DATABASE_URL=f"postgres://postgres@127.0.0.1:{port}/rempart")  # fmt: skip
        yield Console(env, data_dir)
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], check=False)  # noqa: S603, S607


def test_a_postgresql_restart_under_load_fails_requests_cleanly_then_the_service_resumes(
    own_cluster: Console,
):
    for served in _serve(own_cluster):
        patients = _in_care(served)
        browser = served.desk()
        stop, leaks = threading.Event(), []
        reader = threading.Thread(target=_read, args=(served, browser, patients, stop, leaks))
        reader.start()
        try:
            time.sleep(1.0)
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            name = own_cluster.env["DATABASE_URL"]  # the cluster is named in pg_lsclusters
            port = name.rsplit(":", 1)[1].split("/")[0]
            cluster = next(line.split()[1] for line in subprocess.run(
                ["pg_lsclusters", "--no-header"], capture_output=True, text=True,  # noqa: S607
                check=True).stdout.splitlines() if line.split()[2] == port)  # fmt: skip
            subprocess.run(["pg_ctlcluster", "-m", "fast", version, cluster, "restart"],  # noqa: S603, S607
                           check=True)  # fmt: skip
            time.sleep(3.0)
        finally:
            stop.set()
            reader.join(timeout=30)
        assert leaks == []
        failed = [s for s in served.results if s != 200]
        print(f"PostgreSQL restart: {len(served.results)} reads, failed: {failed}")
        assert set(failed) <= {0, 500, 502, 503}
        assert served.results[-5:] == [200] * 5  # the service resumed on its own
        served.assert_whole()
