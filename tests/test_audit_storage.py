"""The migration that makes the trail append-only, run for real on a database of its own: the
application's role may insert and read events but not change them; the owner meets the trigger;
the migration goes backwards and forwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

CLI = [sys.executable, "-m", "rempart.cli"]
ROLE = "rempart_app_test"


@pytest.fixture
def app_role(scratch_database: str):
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE]).fetchone():
            conn.execute(f"CREATE ROLE {ROLE} LOGIN")
    yield ROLE
    with psycopg.connect(scratch_database, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {ROLE}")
        conn.execute(f"DROP ROLE {ROLE}")


def _triggers(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'audit_%'").fetchall()
    return {r[0] for r in rows}


def test_the_append_only_migration_forwards_and_backwards(
    scratch_database: str, app_role: str, vault_dir: Path, tmp_path: Path
):
    data_dir = tmp_path / "data"
    shutil.copytree(vault_dir, data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data_dir), DATABASE_URL=scratch_database,
               REMPART_DB_APP_ROLE=app_role)  # fmt: skip

    def run(*args: str) -> None:
        subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, check=True)  # noqa: S603

    run("migrate", "-v0")
    assert len(_triggers(scratch_database)) == 8
    owner = psycopg.connect(scratch_database, autocommit=True)
    as_app = psycopg.connect(scratch_database.replace("postgres@", f"{app_role}@"), autocommit=True)
    insert = (
        "INSERT INTO audit_event (at, username, role, action, resource_type, resource_id, purpose,"
        " outcome, ip, request_id, detail) VALUES (now(), 'dr', 'physician', 'read', 'Patient',"
        " '', 'care', 'success', '', '', '{}') RETURNING id"
    )
    with owner, as_app:
        event_id = as_app.execute(insert).fetchone()[0]
        assert as_app.execute("SELECT count(*) FROM audit_event").fetchone()[0] == 1
        for statement in (
            "UPDATE audit_event SET username = 'x'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
            "DELETE FROM audit_checkpoint",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                as_app.execute(statement)
        # The application keeps its rights on the other tables.
        as_app.execute("UPDATE patients_patient SET identity_status = identity_status")
        # The owner bypasses grants, not the trigger.
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            owner.execute("UPDATE audit_event SET username = 'x' WHERE id = %s", [event_id])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            owner.execute("TRUNCATE audit_event")

    run("migrate", "audit", "0001", "-v0")
    assert _triggers(scratch_database) == set()
    run("migrate", "audit", "-v0")
    assert len(_triggers(scratch_database)) == 8
