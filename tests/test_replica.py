"""Two nodes: a PostgreSQL primary and its streaming replica (pg_basebackup -R), the searches
served from the replica while every write (the audit event of the search itself, the budget
counters) goes to the primary. Stopping the replica stops the searches, not the writes: the
reads did come from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Console
from tests.test_faults import _free_port

VERSION = sorted(os.listdir("/etc/postgresql"))[-1] if os.path.isdir("/etc/postgresql") else ""
pytestmark = pytest.mark.skipif(not shutil.which("pg_createcluster") or not VERSION,
                                reason="Debian's postgresql-common is needed")  # fmt: skip

SEARCH = """
from rempart.directory.models import Establishment, Role
from rempart.patients.models import Patient
from rempart.records.actors import actor_for_user
from rempart.records.selectors.patients import patients_find_by_name_and_birth_date
from django.contrib.auth import get_user_model
patient = Patient.objects.using("default").order_by("id").first()
actor = actor_for_user(get_user_model().objects.get(username="sec.replica"))
found = patients_find_by_name_and_birth_date(actor=actor, name=patient.birth_name,
                                             birth_date=patient.birth_date)
print("FOUND", patient.pk in [p.pk for p in found], [p._state.db for p in found][:1])
"""
DESK = ("from rempart.directory.models import Establishment, Role; "
        "from rempart.records.services.directory import staff_create; "
        "e = Establishment.objects.order_by('finess').first(); "
        "staff_create(username='sec.replica', password='Un-mot-de-passe-long-5', "
        "role=Role.SECRETARY, establishments=[e])")  # fmt: skip


def _cluster(name: str, port: int) -> None:
    subprocess.run(["pg_createcluster", VERSION, name, "-p", str(port), "--", "--auth=trust"],  # noqa: S603, S607
                   check=True, capture_output=True)  # fmt: skip


def _ctl(name: str, action: str) -> None:
    subprocess.run(["pg_ctlcluster", VERSION, name, action], check=True, capture_output=True)  # noqa: S603, S607


@pytest.fixture
def two_nodes(vault_dir: Path, tmp_path: Path) -> Iterator[tuple[Console, str, str]]:
    tag = uuid.uuid4().hex[:6]
    primary, replica = f"prim{tag}", f"repl{tag}"
    p_port, r_port = _free_port(), _free_port()
    _cluster(primary, p_port)
    try:
        _ctl(primary, "start")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{p_port}/postgres",
                             autocommit=True) as conn:  # fmt: skip
            conn.execute("CREATE DATABASE rempart")
        _cluster(replica, r_port)
        data = Path(f"/var/lib/postgresql/{VERSION}/{replica}")
        for item in data.iterdir():  # emptied, kept: the folder is the postgres user's
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        subprocess.run(["runuser", "-u", "postgres", "--", "pg_basebackup", "-h", "127.0.0.1",  # noqa: S603, S607
                        "-p", str(p_port), "-U", "postgres", "-D", str(data), "-R",
                        "--wal-method=stream"], check=True, capture_output=True)  # fmt: skip
        _ctl(replica, "start")
        data_dir = tmp_path / "data"
        shutil.copytree(vault_dir, data_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
        env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data_dir),
                   DATABASE_URL=f"postgres://postgres@127.0.0.1:{p_port}/rempart")  # fmt: skip
        yield (Console(env, data_dir), f"postgres://postgres@127.0.0.1:{r_port}/rempart",
               env["DATABASE_URL"])  # fmt: skip
    finally:
        for name in (replica, primary):
            subprocess.run(["pg_dropcluster", "--stop", VERSION, name], check=False,  # noqa: S603, S607
                           capture_output=True)  # fmt: skip


def replica_name(url: str) -> str:
    port = url.rsplit(":", 1)[1].split("/")[0]
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True,  # noqa: S607
                            check=True).stdout.splitlines()  # fmt: skip
    return next(line.split()[1] for line in listed if line.split()[2] == port)


def _count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(query).fetchone()[0])  # type: ignore[index]


def test_searches_are_served_by_the_replica_while_writes_go_to_the_primary(two_nodes):
    console, replica_url, primary_url = two_nodes
    console.run("migrate", "-v0")
    console.run("generate", "--patients", "300", "--establishments", "2", "--seed", "6")
    console.run("shell", "-c", DESK)
    wanted = _count(primary_url, "SELECT count(*) FROM patients_patient")
    for _ in range(100):  # the replica catches up by streaming
        if _count(replica_url, "SELECT count(*) FROM patients_patient") == wanted:
            break
        time.sleep(0.1)
    with psycopg.connect(replica_url) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
    two = Console({**console.env, "REMPART_REPLICA_URL": replica_url}, console.data_dir)
    before = _count(primary_url, "SELECT count(*) FROM audit_event WHERE action = 'search'")
    done = two.run("shell", "-c", SEARCH).stdout
    assert "FOUND True ['replica']" in done  # the patients came from the replica
    assert _count(primary_url, "SELECT count(*) FROM audit_event WHERE action = 'search'") == (
        before + 1)  # the search's own event was written on the primary  # fmt: skip
    # The replica down: the search stops (its reads were the replica's); writes go on.
    _ctl(replica_name(replica_url), "stop")
    stopped = subprocess.run(two.command("shell", "-c", SEARCH), env=two.env,  # noqa: S603
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert stopped.returncode != 0 and "FOUND" not in stopped.stdout
    two.run("shell", "-c", "from rempart.access.models import StepUp; "
            "from django.contrib.auth import get_user_model; from django.utils import timezone; "
            "StepUp.objects.create(user=get_user_model().objects.get(username='sec.replica'), "
            "at=timezone.now())")  # fmt: skip
    assert _count(primary_url, "SELECT count(*) FROM access_stepup") == 1
